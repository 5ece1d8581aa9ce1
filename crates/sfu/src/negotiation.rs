//! What a subscribe connection offers, and when it must start afresh.
//!
//! Every media section of an SDP offer repeats the codecs and header extensions of its
//! connection, and a stopped section keeps its place (and its codecs) for good: str0m
//! appends new sections and never recycles a stopped one in its own offers. With every
//! codec str0m knows (VP8, seven H.264 profiles, two VP9, each with RTX) a video
//! section cost about 2.5 KB, and a room of 10 publishers already made a 47 KB offer.
//! So a subscribe connection offers Opus, VP8 and otherwise only the codecs its tracks
//! are sent in, and only the header extensions the SFU uses; and it is replaced by a new
//! connection when it holds too many stopped sections, lacks a codec a new track needs,
//! or its last answer was refused (docs/large-meetings.md, "Offers that fit").

use std::fmt::Display;

use str0m::change::SdpOffer;
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{Direction, Mid};
use str0m::rtp::{Extension, ExtensionMap};

/// Stopped sections a subscribe connection may hold before it is replaced, at least.
const DEAD_SECTIONS_MIN: usize = 16;
/// ... and as a share of its live sections: it is replaced once the stopped ones are
/// a quarter of the live ones (and at least [`DEAD_SECTIONS_MIN`]).
const DEAD_SECTIONS_SHARE: usize = 4;
/// Refused answers in a row after which the SFU stops offering at once, and offers
/// again only when the subscriber's tracks change.
pub(crate) const MAX_ANSWER_RETRIES: u32 = 2;

/// Every codec the SFU forwards, in order of preference: the publish connection
/// accepts these, and a subscribe connection offers the subset its tracks need.
pub(crate) fn all_codecs() -> CodecConfig {
    let mut c = CodecConfig::empty();
    c.enable_opus(true, false);
    c.enable_vp8(true);
    c.enable_h264(true);
    c.enable_vp9(true);
    c
}

/// The codecs a subscribe connection offers for tracks sent in `sent` (the publishers'
/// parameters, any payload types): for each, the matching entry of [`all_codecs`], with
/// its RTX; Opus and VP8 always. A codec costs only the sections of its kind, and every
/// browser sends these two, so having them from the start spares a new connection when
/// the first camera follows the first microphone. In [`all_codecs`] order, without REMB
/// feedback (the SFU estimates bandwidth from transport-wide feedback, never REMB).
pub(crate) fn subscribe_codecs(sent: &[PayloadParams]) -> Vec<PayloadParams> {
    let all = all_codecs();
    let always: Vec<_> = [Codec::Opus, Codec::Vp8]
        .iter()
        .filter_map(|c| all.find(|p| p.spec().codec == *c))
        .map(|p| p.pt())
        .collect();
    let matched = sent.iter().filter_map(|s| all.match_params(*s));
    let mut out: Vec<PayloadParams> = Vec::new();
    for p in all.params() {
        let wanted = always.contains(&p.pt()) || matched.clone().any(|m| m.pt() == p.pt());
        if wanted {
            let mut p = *p;
            p.set_fb_remb(false);
            out.push(p);
        }
    }
    out
}

/// Whether a connection offering `offered` can carry every codec of `needed` (both
/// from [`subscribe_codecs`]).
pub(crate) fn covers(offered: &[PayloadParams], needed: &[PayloadParams]) -> bool {
    needed
        .iter()
        .all(|n| offered.iter().any(|o| o.pt() == n.pt()))
}

/// The header extensions of a subscribe connection: what the SFU writes or needs.
/// Audio level (forwarded from the publisher), the MID (lets the browser bind a new
/// SSRC to its section), video orientation (forwarded), and, with bandwidth estimation,
/// transport-wide sequence numbers and the absolute send time. Not RID and repaired RID
/// (one stream per section, never simulcast). The absolute send time is not needed by
/// str0m's estimator, but str0m stamps it on every packet, and without those 4 bytes the
/// simulated 110 kbit/s squeeze (`tests/layers.rs`) let paused video through for
/// seconds: the scenario sits at the edge of what fits, so dropping it is left for a
/// change of its own.
pub(crate) fn subscribe_extensions(bandwidth_estimation: bool) -> ExtensionMap {
    let standard = ExtensionMap::standard();
    let mut exts = ExtensionMap::empty();
    for (id, ext) in standard.iter() {
        let used = match ext {
            Extension::AudioLevel | Extension::RtpMid | Extension::VideoOrientation => true,
            Extension::TransportSequenceNumber | Extension::AbsoluteSendTime => {
                bandwidth_estimation
            }
            _ => false,
        };
        if used {
            exts.set(id, ext.clone());
        }
    }
    exts
}

/// The longest SDP problem shown to a user: str0m's messages can quote the SDP.
const MAX_SDP_PROBLEM_CHARS: usize = 160;

/// What the user is told about an SDP that could not be used: `what` ("the offer", "the
/// answer") and, for an inconsistency, str0m's reason, cut to one short line. A parse
/// error says only that the text is not SDP: the parser's dump (the offending input and
/// every alternative it tried) is for the log, not for a person.
pub(crate) fn sdp_problem(what: &str, error: &dyn Display) -> String {
    let text = error.to_string();
    if text.starts_with("SDP parse") {
        return format!("{what} is not valid SDP");
    }
    let first = text.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(MAX_SDP_PROBLEM_CHARS).collect();
    if short.len() < first.len() {
        short.push('\u{2026}');
    }
    format!("{what} was refused: {short}")
}

/// Checks a publish offer against what the publish connection can be: every media
/// section only sends (or is inactive or rejected: a stopped screen), and every mid the
/// `tracks` list names is a section of the offer. The error is the text for the client.
pub(crate) fn check_publish_offer(offer: &SdpOffer, tracks: &[&str]) -> Result<(), String> {
    let mut mids = Vec::new();
    for (index, line) in offer.media_lines.iter().enumerate() {
        if let Some(problem) = line.check_consistent() {
            return Err(sdp_problem(
                &format!("media section {index} of the offer"),
                &problem.lines().next().unwrap_or_default(),
            ));
        }
        let mid = line.mid();
        let direction = line.direction();
        if !line.disabled && matches!(direction, Direction::SendRecv | Direction::RecvOnly) {
            return Err(format!(
                "Section {mid} of the publish offer is {direction}: a publish connection only \
                 sends (sendonly), and the server sends on the subscribe connection. The \
                 offer is refused."
            ));
        }
        mids.push(mid.to_string());
    }
    if let Some(missing) = tracks.iter().find(|t| !mids.iter().any(|m| m == *t)) {
        return Err(format!(
            "The tracks list names section {missing:?}, which the publish offer does not \
             have (its sections: {}). The offer is refused.",
            mids.join(", ")
        ));
    }
    Ok(())
}

/// Where a subscriber's subscribe connection stands in its negotiations.
#[derive(Debug, Default)]
pub(crate) struct Negotiation {
    /// The codecs the current connection offers.
    pub codecs: Vec<PayloadParams>,
    /// An offer went out on the current connection. Before that, it can be replaced
    /// without the client noticing.
    pub offered: bool,
    /// The client has been sent an offer, so it has a connection to replace.
    pub client_has_connection: bool,
    /// Stopped sections in the current connection.
    pub dead_sections: usize,
    /// The client's connection no longer matches ours (its answer was refused, so it
    /// applied an offer we did not): the next offer must be on a new connection.
    pub desynced: bool,
    /// Answers refused in a row.
    pub failures: u32,
    /// The first section of the current connection: the one that tags its BUNDLE
    /// group, whose transport every other section shares. It is never stopped, only
    /// made inactive (see `Peer::make_subscribe_offer`).
    pub first_mid: Option<Mid>,
}

/// What the next subscribe offer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// No offer.
    Nothing,
    /// An offer on the current connection.
    Offer,
    /// A new connection first; `told`: the client must be told to replace its own.
    Replace {
        /// Whether the offer says `new_connection`.
        told: bool,
    },
}

impl Negotiation {
    /// What to do, given whether any section must be opened or stopped (`changes`),
    /// how many tracks the subscriber wants (`live`), and the codecs they need.
    pub(crate) fn plan(&self, changes: bool, live: usize, needed: &[PayloadParams]) -> Plan {
        let resync = self.desynced && live > 0;
        if !(changes || resync) {
            return Plan::Nothing;
        }
        let fits = covers(&self.codecs, needed);
        if !self.offered {
            return if fits {
                Plan::Offer
            } else {
                Plan::Replace {
                    told: self.client_has_connection,
                }
            };
        }
        let crowded = self.dead_sections >= DEAD_SECTIONS_MIN.max(live / DEAD_SECTIONS_SHARE);
        if self.desynced || !fits || crowded {
            Plan::Replace { told: true }
        } else {
            Plan::Offer
        }
    }

    /// A new connection offering `codecs` replaced the old one.
    pub(crate) fn replaced(&mut self, codecs: Vec<PayloadParams>) {
        self.codecs = codecs;
        self.offered = false;
        self.dead_sections = 0;
        self.desynced = false;
        self.first_mid = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec_names(params: &[PayloadParams]) -> Vec<(Codec, Option<u8>)> {
        params
            .iter()
            .map(|p| (p.spec().codec, p.resend().map(|r| *r)))
            .collect()
    }

    /// A browser's VP8 and H.264 under its own payload types.
    fn browser(codec: Codec, pt: u8) -> PayloadParams {
        let all = all_codecs();
        let p = all
            .find(|p| p.spec().codec == codec)
            .expect("a codec the SFU knows");
        PayloadParams::new(pt.into(), Some((pt + 1).into()), p.spec())
    }

    #[test]
    fn a_vp8_room_offers_opus_and_vp8_with_rtx_only() {
        let offered = subscribe_codecs(&[browser(Codec::Opus, 111), browser(Codec::Vp8, 96)]);
        let names = codec_names(&offered);
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0].0, Codec::Opus);
        assert_eq!(names[1].0, Codec::Vp8);
        assert!(names[1].1.is_some(), "VP8 keeps its RTX");
        assert!(offered.iter().all(|p| !p.fb_remb()));
        // Nothing sent yet, or only audio: Opus and VP8 all the same.
        assert_eq!(codec_names(&subscribe_codecs(&[])), names);
        assert_eq!(
            codec_names(&subscribe_codecs(&[browser(Codec::Opus, 109)])),
            names
        );
    }

    #[test]
    fn an_h264_publisher_adds_exactly_its_profile() {
        let all = all_codecs();
        let profile = all
            .params()
            .iter()
            .filter(|p| p.spec().codec == Codec::H264)
            .nth(2)
            .expect("several H.264 profiles");
        let sent = PayloadParams::new(102.into(), Some(103.into()), profile.spec());
        let offered = subscribe_codecs(&[browser(Codec::Vp8, 96), sent]);
        let h264: Vec<_> = offered
            .iter()
            .filter(|p| p.spec().codec == Codec::H264)
            .collect();
        assert_eq!(h264.len(), 1, "{:?}", codec_names(&offered));
        assert_eq!(h264[0].pt(), profile.pt());
        let vp8_only = subscribe_codecs(&[browser(Codec::Vp8, 96)]);
        assert!(!covers(&vp8_only, &offered));
        assert!(covers(&offered, &vp8_only));
    }

    #[test]
    fn extensions_are_the_used_ones() {
        let with = subscribe_extensions(true);
        let ids: Vec<_> = with.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert!(with.id_of(Extension::TransportSequenceNumber).is_some());
        assert!(with.id_of(Extension::RtpStreamId).is_none());
        assert!(with.id_of(Extension::RepairedRtpStreamId).is_none());
        let without = subscribe_extensions(false);
        assert!(without.id_of(Extension::TransportSequenceNumber).is_none());
        assert!(without.id_of(Extension::AbsoluteSendTime).is_none());
    }

    #[test]
    fn a_connection_is_replaced_when_crowded_desynced_or_short_of_a_codec() {
        let vp8 = subscribe_codecs(&[browser(Codec::Vp8, 96)]);
        let mut n = Negotiation::default();
        assert_eq!(n.plan(false, 0, &vp8), Plan::Nothing);
        // The first offer: the connection made at join offers nothing yet.
        assert_eq!(n.plan(true, 2, &vp8), Plan::Replace { told: false });
        n.replaced(vp8.clone());
        assert_eq!(n.plan(true, 2, &vp8), Plan::Offer);
        n.offered = true;
        n.client_has_connection = true;
        assert_eq!(n.plan(true, 2, &vp8), Plan::Offer);
        // 15 stopped sections are fine, 16 are too many next to 2 live ones...
        n.dead_sections = 15;
        assert_eq!(n.plan(true, 2, &vp8), Plan::Offer);
        n.dead_sections = 16;
        assert_eq!(n.plan(true, 2, &vp8), Plan::Replace { told: true });
        // ... but not next to 100.
        assert_eq!(n.plan(true, 100, &vp8), Plan::Offer);
        assert_eq!(n.plan(true, 64, &vp8), Plan::Replace { told: true });
        // Nothing to change: no offer, however crowded.
        assert_eq!(n.plan(false, 2, &vp8), Plan::Nothing);
        n.dead_sections = 0;
        // A codec the connection lacks.
        let more = subscribe_codecs(&[browser(Codec::Vp8, 96), browser(Codec::Vp9, 98)]);
        assert_eq!(n.plan(true, 2, &more), Plan::Replace { told: true });
        // A refused answer: a new connection even without other changes.
        n.desynced = true;
        assert_eq!(n.plan(false, 2, &vp8), Plan::Replace { told: true });
        assert_eq!(n.plan(false, 0, &vp8), Plan::Nothing);
    }
}
