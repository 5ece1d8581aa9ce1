//! A station: a file played on a clock, as RTP packets a viewer's decoder takes like a
//! participant's track (docs/stations.md).
//!
//! [`StationMedia`] is the file, read into memory ([`media`]). A `Station` is its
//! playback: a clock that started at a given instant and loops over the file, one
//! output per track that packetizes the frames falling due (RFC 7741 VP8 and RFC 7587
//! Opus with str0m's packetizers, VP9 with a one-byte descriptor), with sequence
//! numbers and timestamps that go on across the loop point, and the packets since the
//! last video key frame, from which a new viewer starts at once.
//!
//! A station without viewers is idle: no output, nothing packetized; its clock is only
//! an instant. The first viewer starts it at the clock's position.

pub mod media;

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::unversioned::{OpusPacketizer, Packetizer, Vp8Packetizer};

use media::ticks_to_duration;
pub use media::{MediaError, MediaFrame, MediaTrack, StationMedia};

/// Largest RTP payload a station sends, as browsers do (below a 1200-byte datagram
/// with SRTP and header extensions).
const MTU: usize = 1100;

/// One RTP packet a station produced.
#[derive(Debug, Clone)]
pub(crate) struct StationPacket {
    /// Extended sequence number, going on across loops.
    pub seq: u64,
    /// RTP timestamp, going on across loops.
    pub ts: u32,
    /// Last packet of its frame.
    pub marker: bool,
    /// First packet of a video key frame (every audio packet).
    pub keyframe: bool,
    /// The RTP payload.
    pub payload: Arc<[u8]>,
}

/// Which track of a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StationTrack {
    Video,
    Audio,
}

/// Where a track's output is in the file: the next frame to send, in which pass.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    pass: u64,
    index: usize,
}

/// One track's packetizing state.
struct TrackOutput {
    track: StationTrack,
    /// One pass through the file in this track's clock ticks.
    loop_ticks: u64,
    /// Added to every timestamp, so streams do not all start at zero.
    ts_base: u32,
    /// The next sequence number.
    next_seq: u64,
    /// The next frame due; `None` while idle.
    cursor: Option<Cursor>,
    vp8: Vp8Packetizer,
    opus: OpusPacketizer,
    /// Video: the packets from the last key frame on, each with its frame's index.
    since_keyframe: Vec<StationPacket>,
    /// Packets produced so far.
    produced: u64,
}

/// A file played on a clock.
pub(crate) struct Station {
    media: Arc<StationMedia>,
    /// When the file's first pass began.
    started: Instant,
    outputs: Vec<TrackOutput>,
}

impl Station {
    /// A station whose clock starts at `now`, idle.
    pub(crate) fn new(media: Arc<StationMedia>, now: Instant, ts_base: u32) -> Self {
        let mut outputs = Vec::new();
        for (track, t) in [
            (StationTrack::Video, media.video.as_ref()),
            (StationTrack::Audio, media.audio.as_ref()),
        ] {
            let Some(t) = t else { continue };
            let loop_ticks =
                (media.duration.as_nanos() * u128::from(t.clock_rate) / 1_000_000_000) as u64;
            outputs.push(TrackOutput {
                track,
                loop_ticks,
                ts_base,
                next_seq: 1,
                cursor: None,
                vp8: Vp8Packetizer::default(),
                opus: OpusPacketizer,
                since_keyframe: Vec::new(),
                produced: 0,
            });
        }
        Station {
            media,
            started: now,
            outputs,
        }
    }

    /// The file.
    pub(crate) fn media(&self) -> &Arc<StationMedia> {
        &self.media
    }

    /// Where the clock is in the file at `now`.
    pub(crate) fn position(&self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.started).as_nanos();
        let pass = self.media.duration.as_nanos().max(1);
        Duration::from_nanos((elapsed % pass) as u64)
    }

    /// Whether it is producing packets (it has viewers).
    pub(crate) fn is_running(&self) -> bool {
        self.outputs.iter().any(|o| o.cursor.is_some())
    }

    /// Packets produced since the station was made.
    pub(crate) fn produced(&self) -> u64 {
        self.outputs.iter().map(|o| o.produced).sum()
    }

    /// No viewers left: stop producing and forget the key frame cache.
    pub(crate) fn stop(&mut self) {
        for o in &mut self.outputs {
            o.cursor = None;
            o.since_keyframe.clear();
        }
    }

    /// When the next frame falls due, if running.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.outputs
            .iter()
            .filter_map(|o| {
                let c = o.cursor?;
                let t = self.track(o.track)?;
                Some(self.frame_time(o, t, c))
            })
            .min()
    }

    /// The packets from the last video key frame to the latest video packet: what a
    /// new viewer starts from.
    pub(crate) fn since_keyframe(&self) -> &[StationPacket] {
        self.outputs
            .iter()
            .find(|o| o.track == StationTrack::Video)
            .map_or(&[], |o| o.since_keyframe.as_slice())
    }

    /// Produces every packet due at `now` (starting at the clock's position if idle),
    /// in time order per track, into `out`.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut Vec<(StationTrack, StationPacket)>) {
        let elapsed = now.saturating_duration_since(self.started);
        let media = self.media.clone();
        for o in &mut self.outputs {
            let Some(t) = (match o.track {
                StationTrack::Video => media.video.as_ref(),
                StationTrack::Audio => media.audio.as_ref(),
            }) else {
                continue;
            };
            if o.cursor.is_none() {
                o.start(t, elapsed, media.duration);
            }
            while let Some(c) = o.cursor {
                let Some(frame) = t.frames.get(c.index) else {
                    o.cursor = None;
                    break;
                };
                let due = c.pass * o.loop_ticks + frame.ticks;
                if ticks_to_duration(due, t.clock_rate) > elapsed {
                    break;
                }
                for p in o.packetize(t, c) {
                    out.push((o.track, p));
                }
                o.advance(t);
            }
        }
    }

    fn track(&self, track: StationTrack) -> Option<&MediaTrack> {
        match track {
            StationTrack::Video => self.media.video.as_ref(),
            StationTrack::Audio => self.media.audio.as_ref(),
        }
    }

    fn frame_time(&self, o: &TrackOutput, t: &MediaTrack, c: Cursor) -> Instant {
        let ticks = c.pass * o.loop_ticks + t.frames.get(c.index).map_or(0, |f| f.ticks);
        self.started + ticks_to_duration(ticks, t.clock_rate)
    }
}

impl TrackOutput {
    /// Starts at `elapsed` on the station's clock: audio at the next frame; video at
    /// the last key frame at or before it, packetizing from there to the clock's
    /// position at once into the key frame cache (those frames are already due; a new
    /// viewer gets them as its start). Without a key frame yet in this pass, the last
    /// one of the previous pass.
    fn start(&mut self, t: &MediaTrack, elapsed: Duration, duration: Duration) {
        let pass_ns = duration.as_nanos().max(1);
        let pass = (elapsed.as_nanos() / pass_ns) as u64;
        let pos_ticks =
            ((elapsed.as_nanos() % pass_ns) * u128::from(t.clock_rate) / 1_000_000_000) as u64;
        let next = t.frames.partition_point(|f| f.ticks <= pos_ticks);
        if self.track == StationTrack::Audio {
            self.cursor = Some(Cursor { pass, index: next });
            if next >= t.frames.len() {
                self.cursor = Some(Cursor {
                    pass: pass + 1,
                    index: 0,
                });
            }
            return;
        }
        let key_here = t.frames[..next].iter().rposition(|f| f.keyframe);
        let start = match key_here {
            Some(i) => Cursor { pass, index: i },
            None => match (
                pass.checked_sub(1),
                t.frames.iter().rposition(|f| f.keyframe),
            ) {
                (Some(prev), Some(i)) => Cursor {
                    pass: prev,
                    index: i,
                },
                // The first pass, before the first key frame: wait for it.
                _ => Cursor { pass, index: next },
            },
        };
        self.cursor = Some(start);
        self.since_keyframe.clear();
        let stop = Cursor { pass, index: next };
        while let Some(c) = self.cursor {
            if (c.pass, c.index) >= (stop.pass, stop.index) {
                break;
            }
            let _ = self.packetize(t, c);
            self.advance(t);
        }
    }

    /// Moves to the next frame, into the next pass after the last.
    fn advance(&mut self, t: &MediaTrack) {
        if let Some(c) = self.cursor.as_mut() {
            c.index += 1;
            if c.index >= t.frames.len() {
                c.index = 0;
                c.pass += 1;
            }
        }
    }

    /// The RTP packets of frame `c`, noted in the key frame cache for video.
    fn packetize(&mut self, t: &MediaTrack, c: Cursor) -> Vec<StationPacket> {
        let Some(frame) = t.frames.get(c.index) else {
            return Vec::new();
        };
        let ticks = c.pass * self.loop_ticks + frame.ticks;
        let ts = self.ts_base.wrapping_add(ticks as u32);
        let payloads = match t.codec {
            Codec::Vp8 => self.vp8.packetize(MTU, &frame.data).unwrap_or_default(),
            Codec::Vp9 => vp9_payloads(&frame.data, frame.keyframe),
            _ => self.opus.packetize(MTU, &frame.data).unwrap_or_default(),
        };
        let count = payloads.len();
        let packets: Vec<StationPacket> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let seq = self.next_seq;
                self.next_seq += 1;
                StationPacket {
                    seq,
                    ts,
                    marker: i + 1 == count,
                    keyframe: i == 0 && frame.keyframe,
                    payload: payload.into(),
                }
            })
            .collect();
        self.produced += packets.len() as u64;
        if self.track == StationTrack::Video {
            if frame.keyframe {
                self.since_keyframe.clear();
            }
            self.since_keyframe.extend(packets.iter().cloned());
        }
        packets
    }
}

/// A VP9 frame in RTP payloads (draft-ietf-payload-vp9, non-flexible mode without
/// picture id): a one-byte descriptor with P (inter-predicted), B (begins the frame)
/// and E (ends it).
fn vp9_payloads(data: &[u8], keyframe: bool) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = data.chunks(MTU - 1).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut d = 0u8;
            if !keyframe {
                d |= 0x40;
            }
            if i == 0 {
                d |= 0x08;
            }
            if i == last {
                d |= 0x04;
            }
            let mut p = Vec::with_capacity(chunk.len() + 1);
            p.push(d);
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}
