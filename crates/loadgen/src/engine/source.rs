//! A publisher's synthetic camera and microphone: when each video frame and audio packet
//! is due, how a frame is cut into RTP packets (keyframes periodically and on request),
//! and where the packets go ([`PacketOut`]: a str0m stream via `write_rtp`, or straight
//! to the relay). Payloads come from [`crate::payload`].

use std::time::{Duration, Instant};

use str0m::media::{Mid, Pt};
use str0m::rtp::RtpWrite;

use super::conn::{Conn, Link};
use crate::payload::{self, FramePart, Kind, Label};

/// A late engine sends at most this many overdue video frames at once and skips the
/// rest, as a real encoder would.
const MAX_CATCH_UP: u32 = 3;

/// What publishers send.
#[derive(Debug, Clone, Copy)]
pub struct MediaProfile {
    /// Video frames per second (0: no video).
    pub fps: u32,
    /// Video bytes per frame (payload bytes, all packets of the frame together).
    pub frame_bytes: usize,
    /// Largest video RTP payload.
    pub packet_size: usize,
    /// Time between periodic keyframes.
    pub keyframe_interval: Duration,
    /// Audio packets per second (0: no audio).
    pub audio_pps: u32,
    /// Audio payload size.
    pub audio_size: usize,
}

/// A publisher's synthetic camera and microphone.
pub(super) struct Source {
    pub(super) audio_mid: Option<Mid>,
    pub(super) video_mid: Option<Mid>,
    pub(super) vp8: Option<Pt>,
    pub(super) opus: Option<Pt>,
    /// Sending: set once the connection is up.
    pub(super) running: bool,
    started: Instant,
    frames: u64,
    audio_packets: u64,
    pub(super) video_seq: u64,
    pub(super) audio_seq: u64,
    /// Sequence numbers at the start of the measurement window.
    pub(super) window_video: u64,
    pub(super) window_audio: u64,
    pub(super) keyframe_asked: bool,
    last_keyframe: Option<Instant>,
}

/// Where a source's packets go: a str0m stream, or straight to the relay.
pub(super) struct PacketOut<'a> {
    pub(super) conn: &'a mut Conn,
    pub(super) now: Instant,
    pub(super) epoch: Instant,
    pub(super) publisher: u32,
    pub(super) errors: u64,
}

impl PacketOut<'_> {
    fn send(&mut self, kind: Kind, seq: u64, part: FramePart, size: usize, rtp: RtpInfo) {
        let label = Label {
            publisher: self.publisher,
            kind,
            seq,
            sent_ns: super::nanos_since(self.epoch, self.now),
        };
        let bytes = payload::encode(label, part, size);
        match &mut self.conn.link {
            Link::Plain { relay } => {
                if self.conn.socket.send_to(&bytes, *relay).is_err() {
                    self.errors += 1;
                }
            }
            Link::Rtc { rtc, .. } => {
                let Some(mid) = rtp.mid else {
                    return;
                };
                let mut api = rtc.direct_api();
                let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                    return;
                };
                tx.write_rtp(
                    RtpWrite::new(rtp.pt, (seq + 1).into(), rtp.time, self.now, bytes)
                        .marker(rtp.marker)
                        .nackable(kind == Kind::Video),
                );
            }
        }
    }
}

/// RTP fields of one packet.
struct RtpInfo {
    mid: Option<Mid>,
    pt: Pt,
    time: u32,
    marker: bool,
}

impl Source {
    pub(super) fn new(audio_mid: Option<Mid>, video_mid: Option<Mid>, now: Instant) -> Source {
        Source {
            audio_mid,
            video_mid,
            vp8: None,
            opus: None,
            running: false,
            started: now,
            frames: 0,
            audio_packets: 0,
            video_seq: 0,
            audio_seq: 0,
            window_video: 0,
            window_audio: 0,
            keyframe_asked: false,
            last_keyframe: None,
        }
    }

    pub(super) fn start(&mut self, now: Instant) {
        if !self.running {
            self.running = true;
            self.started = now;
        }
    }

    fn frame_at(&self, profile: &MediaProfile, n: u64) -> Option<Instant> {
        (profile.fps > 0).then(|| {
            self.started + Duration::from_nanos(n * 1_000_000_000 / u64::from(profile.fps))
        })
    }

    fn audio_at(&self, profile: &MediaProfile, n: u64) -> Option<Instant> {
        (profile.audio_pps > 0).then(|| {
            self.started + Duration::from_nanos(n * 1_000_000_000 / u64::from(profile.audio_pps))
        })
    }

    pub(super) fn next_due(&self, profile: &MediaProfile) -> Option<Instant> {
        let v = self.frame_at(profile, self.frames);
        let a = self.audio_at(profile, self.audio_packets);
        [v, a].into_iter().flatten().min()
    }

    /// Sends every frame and audio packet that is due. Returns whether it sent any.
    pub(super) fn send_due(&mut self, out: &mut PacketOut<'_>, profile: &MediaProfile) -> bool {
        let now = out.now;
        let mut wrote = false;
        let mut sent_frames = 0;
        while let Some(at) = self.frame_at(profile, self.frames).filter(|t| *t <= now) {
            if sent_frames == MAX_CATCH_UP {
                // Skip what we could not send in time.
                self.frames += 1;
                let _ = at;
                continue;
            }
            let key = self.keyframe_asked
                || self
                    .last_keyframe
                    .is_none_or(|k| now.duration_since(k) >= profile.keyframe_interval);
            if key {
                self.keyframe_asked = false;
                self.last_keyframe = Some(now);
            }
            let time = (self.frames * 90_000 / u64::from(profile.fps)) as u32;
            let mut left = profile.frame_bytes.max(payload::HEADER_LEN);
            let mut first = true;
            while left > 0 {
                let size = left.min(profile.packet_size).max(payload::HEADER_LEN);
                left = left.saturating_sub(size);
                let part = match (first, key) {
                    (true, true) => FramePart::KeyStart,
                    (true, false) => FramePart::DeltaStart,
                    (false, _) => FramePart::Continuation,
                };
                first = false;
                let rtp = RtpInfo {
                    mid: self.video_mid,
                    pt: self.vp8.unwrap_or(Pt::from(96)),
                    time,
                    marker: left == 0,
                };
                out.send(Kind::Video, self.video_seq, part, size, rtp);
                self.video_seq += 1;
            }
            self.frames += 1;
            sent_frames += 1;
            wrote = true;
        }
        while let Some(at) = self
            .audio_at(profile, self.audio_packets)
            .filter(|t| *t <= now)
        {
            let _ = at;
            let time = (self.audio_packets * 48_000 / u64::from(profile.audio_pps)) as u32;
            let rtp = RtpInfo {
                mid: self.audio_mid,
                pt: self.opus.unwrap_or(Pt::from(111)),
                time,
                marker: false,
            };
            out.send(
                Kind::Audio,
                self.audio_seq,
                FramePart::Audio,
                profile.audio_size,
                rtp,
            );
            self.audio_seq += 1;
            self.audio_packets += 1;
            wrote = true;
        }
        wrote
    }
}
