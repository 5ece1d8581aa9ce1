//! A subscription: one participant receiving one track of another, and the rewriting
//! that turns the publisher's RTP streams into one stream the subscriber can decode.
//!
//! What reaches the subscriber is a series of *segments*: runs of packets from one
//! simulcast layer (or, for audio, one run between two silences the SFU imposed). Each
//! segment maps the publisher's sequence numbers, timestamps and VP8 picture ids so that
//! they go on from the previous segment's last ones: the subscriber sees one continuous
//! stream and never a jump its jitter buffer would take for loss or reordering. Inside
//! a segment the mapping is a constant offset, so every loss upstream stays visible as
//! a hole and the subscriber's NACKs still mean something.

use std::time::Instant;

use lanmeet_proto::{ParticipantId, PauseReason, TrackSource};
use str0m::media::{MediaKind, Mid};

use crate::vp8;

/// Where a subscription is in the subscribe connection's negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    /// Wanted, not yet in any offer.
    ToOpen,
    /// In an offer that awaits the answer.
    Negotiating(Mid),
    /// Negotiated: packets flow.
    Active(Mid),
    /// The source went away: to be stopped in the next offer.
    ToStop(Mid),
    /// Stopped in an offer that awaits the answer; dropped once it arrives.
    Stopping(Mid),
}

/// What the subscriber should get of the track now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// This layer (index into the published track's layers; 0 without simulcast).
    Layer(usize),
    /// Nothing.
    Paused(PauseReason),
}

/// One participant's subscription to one track of another participant.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The publishing participant.
    pub source: ParticipantId,
    /// The track's mid in the publisher's publish connection.
    pub source_mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// Camera, microphone or screen.
    pub track_source: TrackSource,
    /// Negotiation state, with the mid in the subscriber's subscribe connection.
    pub state: SubState,
    /// The size at which the subscriber shows this video, in device pixels; `None`
    /// until it says.
    pub view: Option<(u32, u32)>,
    /// What the subscriber should get (layer selection, top-N audio).
    pub target: Target,
    /// The layer being forwarded now; `None` while nothing is (before the first key
    /// frame, while paused).
    pub current: Option<usize>,
    /// What the subscriber was last told about this track (`video_state`).
    pub reported: Option<(Option<u8>, Option<PauseReason>)>,
    /// Since when the bandwidth has not covered even the lowest layer (see
    /// `Sfu::allocate`: the track is paused only once that has lasted).
    pub starved_since: Option<Instant>,
    /// The mapping of the segment being forwarded.
    segment: Option<Segment>,
    /// The latest packet forwarded, across segments.
    last: Option<Sent>,
    /// The subscriber's answer accepted none of the codecs the track is sent in: nothing
    /// is forwarded, and `video_state` says why (`Sfu::check_answered_codecs`).
    pub codec_refused: bool,
}

/// How one segment maps incoming numbers to outgoing ones.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Incoming packets below this sequence number belong to no segment.
    floor: u64,
    seq_offset: u64,
    ts_offset: u32,
    picture_id_offset: u16,
    tl0_offset: u8,
}

/// The outgoing numbers of the latest packet forwarded.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u64,
    ts: u32,
    at: Instant,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

/// One incoming packet, as far as forwarding cares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming {
    /// Layer index (0 without simulcast).
    pub layer: usize,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// Arrival.
    pub at: Instant,
    /// Starts a key frame (always true for audio).
    pub keyframe: bool,
    /// RTP clock rate.
    pub clock_rate: u32,
}

/// Decision for one incoming packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send with this outgoing sequence number and timestamp; `switched` when this
    /// packet starts a new layer.
    Forward { seq: u64, ts: u32, switched: bool },
    /// Drop; the subscriber needs a key frame of this layer first, so ask for one.
    NeedKeyframe(usize),
    /// Drop silently.
    Drop,
}

/// The first outgoing sequence number of a subscription. Not zero: some receivers treat
/// zero specially, and a little headroom lets late retransmissions of packets just before
/// the start still map to valid numbers.
const FIRST_OUT_SEQ: u64 = 1000;

/// How far before the first forwarded packet a late retransmission may still be mapped.
const LATE_WINDOW: u64 = FIRST_OUT_SEQ - 1;

/// The picture id and TL0PICIDX a forwarded VP8 packet must carry (see
/// [`Subscription::map_vp8`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vp8Ids {
    descriptor: vp8::Descriptor,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

impl Vp8Ids {
    /// The new picture id, if the packet carries one.
    pub(crate) fn picture_id(&self) -> Option<u16> {
        self.picture_id
    }

    /// The new TL0PICIDX, if the packet carries one.
    pub(crate) fn tl0(&self) -> Option<u8> {
        self.tl0
    }

    /// Writes them into `payload`, the packet they were read from.
    pub(crate) fn write(&self, payload: &mut [u8]) {
        if let Some(id) = self.picture_id {
            self.descriptor.write_picture_id(payload, id);
        }
        if let Some(tl0) = self.tl0 {
            self.descriptor.write_tl0(payload, tl0);
        }
    }
}

impl Subscription {
    pub(crate) fn new(
        source: ParticipantId,
        source_mid: Mid,
        kind: MediaKind,
        track_source: TrackSource,
    ) -> Self {
        Subscription {
            source,
            source_mid,
            kind,
            track_source,
            state: SubState::ToOpen,
            view: None,
            target: Target::Layer(0),
            current: None,
            reported: None,
            starved_since: None,
            segment: None,
            last: None,
            codec_refused: false,
        }
    }

    /// The mid in the subscriber's connection, once there is one.
    pub(crate) fn mid(&self) -> Option<Mid> {
        match self.state {
            SubState::ToOpen => None,
            SubState::Negotiating(m)
            | SubState::Active(m)
            | SubState::ToStop(m)
            | SubState::Stopping(m) => Some(m),
        }
    }

    /// Whether the subscriber still wants this track (it is not being stopped).
    pub(crate) fn is_wanted(&self) -> bool {
        matches!(
            self.state,
            SubState::ToOpen | SubState::Negotiating(_) | SubState::Active(_)
        )
    }

    /// What to tell the subscriber about this video track: the layer forwarded, and
    /// why nothing is.
    pub(crate) fn video_state(&self) -> (Option<u8>, Option<PauseReason>) {
        if self.codec_refused {
            return (None, Some(PauseReason::Codec));
        }
        match self.target {
            Target::Paused(reason) => (None, Some(reason)),
            Target::Layer(_) => (self.current.and_then(|l| u8::try_from(l).ok()), None),
        }
    }

    /// Decides what to do with an incoming packet.
    pub(crate) fn verdict(&mut self, p: &Incoming) -> Verdict {
        if !matches!(self.state, SubState::Active(_)) || self.codec_refused {
            return Verdict::Drop;
        }
        let target = match self.target {
            Target::Paused(_) => {
                self.current = None;
                return Verdict::Drop;
            }
            Target::Layer(t) => t,
        };
        let switched = if self.current == Some(p.layer) && self.segment.is_some() {
            false
        } else if p.layer == target {
            if !p.keyframe {
                return Verdict::NeedKeyframe(target);
            }
            self.start_segment(p);
            self.current = Some(p.layer);
            true
        } else {
            return Verdict::Drop;
        };
        let Some(seg) = self.segment else {
            return Verdict::Drop;
        };
        if p.seq < seg.floor {
            return Verdict::Drop;
        }
        let seq = p.seq.wrapping_add(seg.seq_offset);
        let ts = p.ts.wrapping_add(seg.ts_offset);
        if self.last.is_none_or(|l| seq > l.seq) {
            let picture_id = self.last.and_then(|l| l.picture_id);
            let tl0 = self.last.and_then(|l| l.tl0);
            self.last = Some(Sent {
                seq,
                ts,
                at: p.at,
                picture_id,
                tl0,
            });
        }
        Verdict::Forward { seq, ts, switched }
    }

    /// A new layer went in at index `at` of the published track's layers: indices at or
    /// above it moved up by one.
    pub(crate) fn layer_inserted(&mut self, at: usize) {
        if let Target::Layer(l) = &mut self.target {
            if *l >= at {
                *l += 1;
            }
        }
        if let Some(c) = self.current.as_mut().filter(|c| **c >= at) {
            *c += 1;
        }
    }

    /// Ends forwarding for now (top-N audio left this track out): the next packet
    /// forwarded starts a new segment.
    pub(crate) fn interrupt(&mut self) {
        self.segment = None;
        self.current = None;
    }

    /// Starts a segment at packet `p`, going on from the last packet sent.
    fn start_segment(&mut self, p: &Incoming) {
        let (out_seq, out_ts) = match self.last {
            None => (FIRST_OUT_SEQ, p.ts),
            Some(last) => {
                let elapsed = p.at.saturating_duration_since(last.at).as_secs_f64();
                let ticks = (elapsed * f64::from(p.clock_rate)) as u32;
                (last.seq + 1, last.ts.wrapping_add(ticks.max(1)))
            }
        };
        let floor = if self.last.is_none() {
            p.seq.saturating_sub(LATE_WINDOW)
        } else {
            p.seq
        };
        self.segment = Some(Segment {
            floor,
            seq_offset: out_seq.wrapping_sub(p.seq),
            ts_offset: out_ts.wrapping_sub(p.ts),
            picture_id_offset: 0,
            tl0_offset: 0,
        });
    }

    /// Maps the picture id and TL0PICIDX of a VP8 packet forwarded as `out_seq` into
    /// this subscription's numbering, so they go on from the previous segment's
    /// (`switched`: it starts a segment), and notes them as the latest sent. Every
    /// forwarded VP8 packet must pass here, rewritten or not: the next switch continues
    /// from what the subscriber last saw. `d` is the packet's descriptor, read once when
    /// it arrived. Returns what to write into the packet when it differs from what the
    /// packet carries (most subscriptions never switch layers; their packets go out as
    /// they came).
    pub(crate) fn map_vp8(
        &mut self,
        d: &vp8::Parsed,
        out_seq: u64,
        switched: bool,
    ) -> Option<Vp8Ids> {
        let (seg, last) = (self.segment.as_mut()?, self.last.as_mut()?);
        let latest = last.seq == out_seq;
        let picture_id = d.picture_id.map(|pid| {
            let modulus = d.descriptor.picture_id_modulus();
            if switched {
                seg.picture_id_offset = match last.picture_id {
                    Some(prev) => (prev + 1).wrapping_sub(pid) % modulus,
                    None => 0,
                };
            }
            let out = pid.wrapping_add(seg.picture_id_offset) % modulus;
            if latest {
                last.picture_id = Some(out);
            }
            (pid, out)
        });
        let tl0 = d.tl0.map(|tl0| {
            if switched {
                seg.tl0_offset = match last.tl0 {
                    Some(prev) => prev.wrapping_add(1).wrapping_sub(tl0),
                    None => 0,
                };
            }
            let out = tl0.wrapping_add(seg.tl0_offset);
            if latest {
                last.tl0 = Some(out);
            }
            (tl0, out)
        });
        let changed = picture_id.is_some_and(|(i, o)| i != o) || tl0.is_some_and(|(i, o)| i != o);
        changed.then_some(Vp8Ids {
            descriptor: d.descriptor,
            picture_id: picture_id.map(|(_, o)| o),
            tl0: tl0.map(|(_, o)| o),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn active(kind: MediaKind) -> Subscription {
        let source = match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        };
        let mut s = Subscription::new(ParticipantId(1), Mid::from("0"), kind, source);
        s.state = SubState::Active(Mid::from("1"));
        s
    }

    fn packet(at: Instant, layer: usize, seq: u64, ts: u32, keyframe: bool) -> Incoming {
        Incoming {
            layer,
            seq,
            ts,
            at,
            keyframe,
            clock_rate: 90_000,
        }
    }

    fn fwd(seq: u64, ts: u32, switched: bool) -> Verdict {
        Verdict::Forward { seq, ts, switched }
    }

    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn video_waits_for_keyframe_then_keeps_holes() {
        let t = origin();
        let mut s = active(MediaKind::Video);
        assert_eq!(
            s.verdict(&packet(t, 0, 70_000, 5, false)),
            Verdict::NeedKeyframe(0)
        );
        assert_eq!(
            s.verdict(&packet(t, 0, 70_001, 9, true)),
            fwd(FIRST_OUT_SEQ, 9, true)
        );
        assert_eq!(
            s.verdict(&packet(t, 0, 70_002, 9, false)),
            fwd(FIRST_OUT_SEQ + 1, 9, false)
        );
        // 70_003 lost upstream: the hole stays, so the subscriber can NACK it.
        assert_eq!(
            s.verdict(&packet(t, 0, 70_004, 12, false)),
            fwd(FIRST_OUT_SEQ + 3, 12, false)
        );
        // A late retransmission of a packet before the start still maps below it.
        assert_eq!(
            s.verdict(&packet(t, 0, 70_000, 5, false)),
            fwd(FIRST_OUT_SEQ - 1, 5, false)
        );
        // Ancient packets are dropped, never mapped to huge numbers.
        assert_eq!(s.verdict(&packet(t, 0, 10, 0, false)), Verdict::Drop);
    }

    #[test]
    fn audio_starts_at_once_and_inactive_drops() {
        let t = origin();
        let mut s = active(MediaKind::Audio);
        assert_eq!(
            s.verdict(&packet(t, 0, 5, 0, true)),
            fwd(FIRST_OUT_SEQ, 0, true)
        );
        let mut n = Subscription::new(
            ParticipantId(1),
            Mid::from("0"),
            MediaKind::Audio,
            TrackSource::Microphone,
        );
        assert_eq!(n.verdict(&packet(t, 0, 5, 0, true)), Verdict::Drop);
    }

    #[test]
    fn layer_switch_waits_for_keyframe_and_continues_numbers() {
        let t = origin();
        let mut s = active(MediaKind::Video);
        assert!(matches!(
            s.verdict(&packet(t, 0, 100, 1000, true)),
            Verdict::Forward { .. }
        ));
        assert_eq!(s.verdict(&packet(t, 2, 9000, 777, true)), Verdict::Drop);
        s.target = Target::Layer(2);
        // The old layer goes on until the new one has a key frame.
        assert_eq!(
            s.verdict(&packet(t, 0, 101, 1000, false)),
            fwd(FIRST_OUT_SEQ + 1, 1000, false)
        );
        assert_eq!(
            s.verdict(&packet(t, 2, 9001, 800, false)),
            Verdict::NeedKeyframe(2)
        );
        let later = t + Duration::from_millis(100);
        assert_eq!(
            s.verdict(&packet(later, 2, 9002, 900, true)),
            fwd(FIRST_OUT_SEQ + 2, 1000 + 9000, true)
        );
        assert_eq!(s.current, Some(2));
        assert_eq!(
            s.verdict(&packet(later, 0, 102, 4000, false)),
            Verdict::Drop
        );
        assert_eq!(
            s.verdict(&packet(later, 2, 9003, 3900, false)),
            fwd(FIRST_OUT_SEQ + 3, 1000 + 9000 + 3000, false)
        );
        // Packets from before the switch point of the new layer map to nothing.
        assert_eq!(
            s.verdict(&packet(later, 2, 9001, 800, false)),
            Verdict::Drop
        );
        // Pausing stops at once; resuming needs a key frame and goes on.
        s.target = Target::Paused(PauseReason::LowBandwidth);
        assert_eq!(
            s.verdict(&packet(later, 2, 9004, 3900, false)),
            Verdict::Drop
        );
        assert_eq!(s.video_state(), (None, Some(PauseReason::LowBandwidth)));
        s.target = Target::Layer(0);
        assert_eq!(
            s.verdict(&packet(later, 0, 110, 9000, false)),
            Verdict::NeedKeyframe(0)
        );
        assert!(matches!(
            s.verdict(&packet(later, 0, 111, 9000, true)),
            Verdict::Forward { seq, switched: true, .. } if seq == FIRST_OUT_SEQ + 4
        ));
        assert_eq!(s.video_state(), (Some(0), None));
    }

    #[test]
    fn a_layer_appearing_below_keeps_the_forwarded_layer() {
        let t = origin();
        let mut s = active(MediaKind::Video);
        // The top layer's packets came first and got index 0.
        assert!(matches!(
            s.verdict(&packet(t, 0, 100, 0, true)),
            Verdict::Forward { .. }
        ));
        // The lowest layer then arrives and takes index 0; the top one is now 1.
        s.layer_inserted(0);
        assert_eq!((s.target, s.current), (Target::Layer(1), Some(1)));
        assert_eq!(s.verdict(&packet(t, 0, 5, 0, false)), Verdict::Drop);
        assert_eq!(
            s.verdict(&packet(t, 1, 101, 0, false)),
            fwd(FIRST_OUT_SEQ + 1, 0, false)
        );
    }

    /// A VP8 payload with a 15-bit picture id and TL0PICIDX.
    fn vp8(pid: u16, tl0: u8) -> Vec<u8> {
        let [hi, lo] = pid.to_be_bytes();
        vec![0x90, 0xc0, 0x80 | hi, lo, tl0, 0, 0]
    }

    /// Forwards `p` as the server does: maps its VP8 ids, rewriting a copy if needed.
    fn map(s: &mut Subscription, p: &mut [u8], out_seq: u64, switched: bool) {
        let d = vp8::parse(p).expect("a complete descriptor");
        if let Some(ids) = s.map_vp8(&d, out_seq, switched) {
            ids.write(p);
        }
    }

    #[test]
    fn vp8_picture_ids_continue_across_a_switch() {
        let t = origin();
        let mut s = active(MediaKind::Video);
        let mut a = vp8(500, 7);
        assert_eq!(
            s.verdict(&packet(t, 0, 1, 0, true)),
            fwd(FIRST_OUT_SEQ, 0, true)
        );
        map(&mut s, &mut a, FIRST_OUT_SEQ, true);
        assert_eq!(a, vp8(500, 7));
        s.target = Target::Layer(1);
        let mut b = vp8(32_000, 200);
        assert!(matches!(
            s.verdict(&packet(t, 1, 50, 0, true)),
            Verdict::Forward { .. }
        ));
        map(&mut s, &mut b, FIRST_OUT_SEQ + 1, true);
        assert_eq!(b, vp8(501, 8));
        let mut c = vp8(32_767, 201);
        assert!(matches!(
            s.verdict(&packet(t, 1, 51, 0, false)),
            Verdict::Forward { .. }
        ));
        map(&mut s, &mut c, FIRST_OUT_SEQ + 2, false);
        assert_eq!(c, vp8(1268, 9));
    }

    #[test]
    fn a_switch_continues_from_ids_sent_unchanged() {
        // The first layer's packets go out as they came (no copy), so its ids must
        // still be noted: the switch continues from the last of them, not from where
        // the first layer started (a receiver drops frames whose ids go backwards, and
        // froze for seconds).
        let t = origin();
        let mut s = active(MediaKind::Video);
        for i in 0..100u16 {
            let Verdict::Forward { seq, switched, .. } =
                s.verdict(&packet(t, 0, 1 + u64::from(i), u32::from(i) * 3000, i == 0))
            else {
                panic!("packet {i} not forwarded");
            };
            let p = vp8(20_000 + i, (i / 4) as u8);
            let d = vp8::parse(&p).expect("a complete descriptor");
            assert_eq!(
                s.map_vp8(&d, seq, switched),
                None,
                "packet {i} needs no copy"
            );
        }
        s.target = Target::Layer(1);
        let Verdict::Forward {
            seq,
            switched: true,
            ..
        } = s.verdict(&packet(t, 1, 7000, 400_000, true))
        else {
            panic!("the key frame of layer 1 was not forwarded");
        };
        let mut k = vp8(3, 250);
        map(&mut s, &mut k, seq, true);
        assert_eq!(
            k,
            vp8(20_100, 25),
            "layer 1 starts right after picture 20099, TL0 24"
        );
    }
}
