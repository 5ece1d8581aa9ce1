//! A subscription: one participant receiving one track of another, and the rewriting
//! that turns the publisher's RTP stream into a stream the subscriber can start on.

use lanmeet_proto::ParticipantId;
use str0m::media::{MediaKind, Mid};

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

/// One participant's subscription to one track of another participant.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The publishing participant.
    pub source: ParticipantId,
    /// The track's mid in the publisher's publish connection.
    pub source_mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// Negotiation state, with the mid in the subscriber's subscribe connection.
    pub state: SubState,
    /// Rewrites sequence numbers; `None` until the first packet is forwarded.
    seq: Option<SeqRewrite>,
    /// A video subscription forwards nothing until the first packet of a keyframe.
    waiting_keyframe: bool,
}

/// Decision for one incoming packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send with this outgoing sequence number.
    Forward(u64),
    /// Drop; the subscriber needs a keyframe first, so ask the publisher for one.
    NeedKeyframe,
    /// Drop silently (not negotiated yet, or a packet from before the start).
    Drop,
}

/// The subscriber must see sequence numbers that start small (str0m cannot tell a new
/// receiver the rollover counter of a long-running source) and have no holes where we
/// skipped packets before the first keyframe. `out = in + offset` keeps every later
/// publisher loss visible as a hole, so the subscriber's NACKs still mean something.
#[derive(Debug, Clone, Copy)]
struct SeqRewrite {
    first_in: u64,
    offset: u64,
}

/// The first outgoing sequence number of a subscription. Not zero: some receivers treat
/// zero specially, and a little headroom lets late retransmissions of packets just before
/// the start still map to valid numbers.
const FIRST_OUT_SEQ: u64 = 1000;

/// How far before the first forwarded packet a late retransmission may still be mapped.
const LATE_WINDOW: u64 = FIRST_OUT_SEQ - 1;

impl Subscription {
    pub(crate) fn new(source: ParticipantId, source_mid: Mid, kind: MediaKind) -> Self {
        Subscription {
            source,
            source_mid,
            kind,
            state: SubState::ToOpen,
            seq: None,
            waiting_keyframe: kind == MediaKind::Video,
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

    /// Decides what to do with an incoming packet with extended sequence number `seq`.
    pub(crate) fn verdict(&mut self, seq: u64, starts_keyframe: bool) -> Verdict {
        if !matches!(self.state, SubState::Active(_)) {
            return Verdict::Drop;
        }
        if self.waiting_keyframe {
            if !starts_keyframe {
                return Verdict::NeedKeyframe;
            }
            self.waiting_keyframe = false;
        }
        let rewrite = *self.seq.get_or_insert(SeqRewrite {
            first_in: seq,
            offset: FIRST_OUT_SEQ.wrapping_sub(seq),
        });
        if seq + LATE_WINDOW < rewrite.first_in {
            return Verdict::Drop;
        }
        Verdict::Forward(seq.wrapping_add(rewrite.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(kind: MediaKind) -> Subscription {
        let mut s = Subscription::new(ParticipantId(1), Mid::from("0"), kind);
        s.state = SubState::Active(Mid::from("1"));
        s
    }

    #[test]
    fn video_waits_for_keyframe_then_keeps_holes() {
        let mut s = active(MediaKind::Video);
        assert_eq!(s.verdict(70_000, false), Verdict::NeedKeyframe);
        assert_eq!(s.verdict(70_001, true), Verdict::Forward(FIRST_OUT_SEQ));
        assert_eq!(
            s.verdict(70_002, false),
            Verdict::Forward(FIRST_OUT_SEQ + 1)
        );
        // 70_003 lost upstream: the hole stays, so the subscriber can NACK it.
        assert_eq!(
            s.verdict(70_004, false),
            Verdict::Forward(FIRST_OUT_SEQ + 3)
        );
        // A late retransmission of a packet before the start still maps below it.
        assert_eq!(
            s.verdict(70_000, false),
            Verdict::Forward(FIRST_OUT_SEQ - 1)
        );
        // Ancient packets are dropped, never mapped to huge numbers.
        assert_eq!(s.verdict(10, false), Verdict::Drop);
    }

    #[test]
    fn audio_starts_at_once_and_inactive_drops() {
        let mut s = active(MediaKind::Audio);
        assert_eq!(s.verdict(5, false), Verdict::Forward(FIRST_OUT_SEQ));
        let mut n = Subscription::new(ParticipantId(1), Mid::from("0"), MediaKind::Audio);
        assert_eq!(n.verdict(5, false), Verdict::Drop);
    }
}
