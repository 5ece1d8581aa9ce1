//! A publisher's synthetic camera and microphone: when each video frame and audio packet
//! is due, how a frame is cut into RTP packets on each simulcast layer (keyframes
//! periodically and when a layer is asked for one), and where the packets go
//! ([`PacketOut`]: a str0m stream via `write_rtp`, or straight to the relay). Payloads
//! come from [`crate::payload`]; audio carries an RFC 6464 audio level.

use std::time::{Duration, Instant};

use str0m::media::{Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpWrite};

use super::conn::{Conn, Link};
use crate::payload::{self, FramePart, Kind, Label};

/// A late engine sends at most this many overdue video frames at once and skips the
/// rest, as a real encoder would.
const MAX_CATCH_UP: u32 = 3;

/// The browser client's camera layers (`web/publish.js` at its default 720p): rid,
/// share of the bitrate (100, 500 and 1,800 kbit/s there) and picture size.
pub const SIMULCAST: [(&str, u32, u16, u16); 3] = [
    ("q", 100, 320, 180),
    ("h", 500, 640, 360),
    ("f", 1800, 1280, 720),
];

/// Picture size of single-layer video.
const SINGLE: (u16, u16) = (1280, 720);

/// Seconds each publisher in turn speaks (a loud audio level) before the next one.
const SPEAKING_TURN_S: u64 = 4;

/// What publishers send.
#[derive(Debug, Clone, Copy)]
pub struct MediaProfile {
    /// Video frames per second (0: no video).
    pub fps: u32,
    /// Video bytes per frame (payload bytes, all packets of the frame and of all its
    /// layers together).
    pub frame_bytes: usize,
    /// Simulcast layers: 3 (rids q, h, f, split as [`SIMULCAST`]) or 1 (no simulcast).
    pub layers: u8,
    /// Largest video RTP payload.
    pub packet_size: usize,
    /// Time between periodic keyframes.
    pub keyframe_interval: Duration,
    /// Audio packets per second (0: no audio).
    pub audio_pps: u32,
    /// Audio payload size.
    pub audio_size: usize,
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
    fn send(&mut self, label: Label, part: FramePart, size: usize, rtp: RtpInfo) {
        let label = Label {
            sent_ns: super::nanos_since(self.epoch, self.now),
            ..label
        };
        let bytes = payload::encode(label, part, rtp.picture_id, size);
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
                let Some(tx) = api.stream_tx_by_mid(mid, rtp.rid) else {
                    return;
                };
                let mut write =
                    RtpWrite::new(rtp.pt, (label.seq + 1).into(), rtp.time, self.now, bytes)
                        .marker(rtp.marker)
                        .nackable(label.kind == Kind::Video);
                if let Some(level) = rtp.audio_level {
                    write = write.ext_vals(ExtensionValues {
                        audio_level: Some(level),
                        voice_activity: Some(level > -50),
                        ..Default::default()
                    });
                }
                tx.write_rtp(write);
            }
        }
    }
}

/// RTP fields of one packet.
struct RtpInfo {
    mid: Option<Mid>,
    rid: Option<Rid>,
    pt: Pt,
    time: u32,
    marker: bool,
    picture_id: u16,
    audio_level: Option<i8>,
}

/// One simulcast layer of a publisher's camera (or its only one).
pub(super) struct LayerSource {
    /// The layer's rid; `None` without simulcast.
    rid: Option<Rid>,
    /// Share of the frame's bytes, parts of [`SIMULCAST`]'s total.
    share: u32,
    width: u16,
    height: u16,
    /// Next sequence number (of our payload label).
    pub(super) seq: u64,
    /// Sequence number at the start of the measurement window.
    pub(super) window_seq: u64,
    keyframe_asked: bool,
    last_keyframe: Option<Instant>,
    /// VP8 picture id of the next frame (15 bits), counted per layer as a browser does.
    picture_id: u16,
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
    /// Video layers, lowest first.
    pub(super) layers: Vec<LayerSource>,
    pub(super) audio_seq: u64,
    /// Audio sequence number at the start of the measurement window.
    pub(super) window_audio: u64,
    /// The load generator's index of the publisher, to take turns speaking.
    publisher: u32,
}

impl Source {
    pub(super) fn new(
        publisher: u32,
        audio_mid: Option<Mid>,
        video_mid: Option<Mid>,
        profile: &MediaProfile,
        now: Instant,
    ) -> Source {
        let layer = |rid: Option<&str>, share: u32, (width, height): (u16, u16)| LayerSource {
            rid: rid.map(Rid::from),
            share,
            width,
            height,
            seq: 0,
            window_seq: 0,
            keyframe_asked: false,
            last_keyframe: None,
            // Browsers start at a random picture id; so does each layer here.
            picture_id: (publisher.wrapping_mul(7919) as u16).wrapping_add(share as u16) & 0x7fff,
        };
        let layers = if profile.fps == 0 {
            Vec::new()
        } else if profile.layers > 1 {
            SIMULCAST
                .iter()
                .map(|&(rid, share, w, h)| layer(Some(rid), share, (w, h)))
                .collect()
        } else {
            vec![layer(None, 1, SINGLE)]
        };
        Source {
            audio_mid,
            video_mid,
            vp8: None,
            opus: None,
            running: false,
            started: now,
            frames: 0,
            audio_packets: 0,
            layers,
            audio_seq: 0,
            window_audio: 0,
            publisher,
        }
    }

    /// The simulcast rids this source sends, lowest first (empty without simulcast).
    pub(super) fn rids(profile: &MediaProfile) -> Vec<&'static str> {
        if profile.layers > 1 && profile.fps > 0 {
            SIMULCAST.iter().map(|(rid, ..)| *rid).collect()
        } else {
            Vec::new()
        }
    }

    /// A keyframe was asked for on layer `rid` (`None`: on every layer).
    pub(super) fn keyframe_asked(&mut self, rid: Option<Rid>) {
        for layer in &mut self.layers {
            if rid.is_none() || layer.rid == rid {
                layer.keyframe_asked = true;
            }
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
        let total_share: u32 = self.layers.iter().map(|l| l.share).sum();
        while self
            .frame_at(profile, self.frames)
            .is_some_and(|t| t <= now)
        {
            if sent_frames == MAX_CATCH_UP {
                // Skip what we could not send in time.
                self.frames += 1;
                continue;
            }
            let time = (self.frames * 90_000 / u64::from(profile.fps)) as u32;
            for (index, layer) in self.layers.iter_mut().enumerate() {
                let key = layer.keyframe_asked
                    || layer
                        .last_keyframe
                        .is_none_or(|k| now.duration_since(k) >= profile.keyframe_interval);
                if key {
                    layer.keyframe_asked = false;
                    layer.last_keyframe = Some(now);
                }
                let bytes = profile.frame_bytes * layer.share as usize / total_share as usize;
                let mut left = bytes.max(payload::HEADER_LEN);
                let mut first = true;
                while left > 0 {
                    let size = left.min(profile.packet_size).max(payload::HEADER_LEN);
                    left = left.saturating_sub(size);
                    let part = match (first, key) {
                        (true, true) => FramePart::KeyStart {
                            width: layer.width,
                            height: layer.height,
                        },
                        (true, false) => FramePart::DeltaStart,
                        (false, _) => FramePart::Continuation,
                    };
                    first = false;
                    let rtp = RtpInfo {
                        mid: self.video_mid,
                        rid: layer.rid,
                        pt: self.vp8.unwrap_or(Pt::from(96)),
                        time,
                        marker: left == 0,
                        picture_id: layer.picture_id,
                        audio_level: None,
                    };
                    let label = Label {
                        publisher: out.publisher,
                        kind: Kind::Video,
                        layer: index as u8,
                        seq: layer.seq,
                        sent_ns: 0,
                    };
                    out.send(label, part, size, rtp);
                    layer.seq += 1;
                }
                layer.picture_id = (layer.picture_id + 1) & 0x7fff;
            }
            self.frames += 1;
            sent_frames += 1;
            wrote = true;
        }
        while self
            .audio_at(profile, self.audio_packets)
            .is_some_and(|t| t <= now)
        {
            let time = (self.audio_packets * 48_000 / u64::from(profile.audio_pps)) as u32;
            // Publishers take turns: one in five speaks (-25 dBov), the others are near
            // silent (-100 dBov), so the server's active-speaker detection has work.
            let turn = now.duration_since(self.started).as_secs() / SPEAKING_TURN_S;
            let speaking = (turn + u64::from(self.publisher)).is_multiple_of(5);
            let rtp = RtpInfo {
                mid: self.audio_mid,
                rid: None,
                pt: self.opus.unwrap_or(Pt::from(111)),
                time,
                marker: false,
                picture_id: 0,
                audio_level: Some(if speaking { -25 } else { -100 }),
            };
            let label = Label {
                publisher: out.publisher,
                kind: Kind::Audio,
                layer: 0,
                seq: self.audio_seq,
                sent_ns: 0,
            };
            out.send(label, FramePart::Audio, profile.audio_size, rtp);
            self.audio_seq += 1;
            self.audio_packets += 1;
            wrote = true;
        }
        wrote
    }
}
