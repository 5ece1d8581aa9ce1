//! One participant on the media side: a publish connection (its camera and microphone
//! come in), a subscribe connection (everyone else's tracks go out), and the
//! subscriptions that say which track goes on which media section.

use std::time::Instant;

use lanmeet_proto::{ParticipantId, TrackInfo, TrackKind, TrackSource};
use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use crate::forward::{SubState, Subscription};
use crate::layers::{Layers, RateMeter};
use crate::negotiation::Negotiation;

/// Which of a participant's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Leg {
    /// Browser → server.
    Publish,
    /// Server → browser.
    Subscribe,
}

/// A str0m connection and the time it next wants to be woken.
pub(crate) struct Connection {
    pub rtc: Rtc,
    pub timeout: Instant,
    /// Set once the connection died and that was reported.
    pub dead: bool,
}

impl Connection {
    pub(crate) fn new(rtc: Rtc, now: Instant) -> Self {
        Connection {
            rtc,
            timeout: now,
            dead: false,
        }
    }
}

/// A track this participant publishes.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Camera, microphone or screen, as the browser declared it.
    pub source: TrackSource,
    /// The simulcast layers (one without simulcast), their rates and sizes.
    pub layers: Layers,
    /// The codecs it is sent in: the one negotiated first, and any other its packets
    /// arrived in. Subscribe connections offer these.
    pub codecs: Vec<PayloadParams>,
}

/// The SSRCs a publish stream (mid, rid) last arrived on in a packet that passed SRTP
/// authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoundSsrc {
    pub mid: Mid,
    pub rid: Option<Rid>,
    pub ssrc: Ssrc,
    pub rtx: Option<Ssrc>,
}

/// The two latest loss reports of a subscriber (share of packets lost, the worst of its
/// streams in each report), and when the latest came.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LossReports {
    pub at: Option<Instant>,
    pub latest: f32,
    pub previous: f32,
}

impl LossReports {
    /// A stream's report at `now` (str0m reports every stream at the same instant).
    pub(crate) fn add(&mut self, now: Instant, loss: f32) {
        if self.at == Some(now) {
            self.latest = self.latest.max(loss);
        } else {
            self.previous = self.latest;
            self.latest = loss;
            self.at = Some(now);
        }
    }

    /// Whether the two latest reports, the latest no older than `fresh`, both exceed
    /// `threshold`. One report alone is not enough: the first report after a link
    /// recovered still covers the time it was short.
    pub(crate) fn sustained(
        &self,
        now: Instant,
        fresh: std::time::Duration,
        threshold: f32,
    ) -> bool {
        self.at.is_some_and(|at| now < at + fresh)
            && self.latest > threshold
            && self.previous > threshold
    }
}

/// A downlink estimate from loss reports alone, for a subscriber whose browser sends no
/// transport-wide congestion feedback (so str0m has no estimate): unlimited until it
/// first reports loss; then, at each report of more than [`LossEstimate::LOSS`], what
/// arrived (what was sent, less what was lost) with a margin, and between such reports
/// a growth of 8% a second (the loss-based controller of libwebrtc's GCC works so).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LossEstimate {
    /// The estimate, bits per second, and when it was last set or grown; `None` until
    /// the first loss.
    bps: Option<(u64, Instant)>,
    /// The loss report last acted on.
    report: Option<Instant>,
}

impl LossEstimate {
    /// Share of packets lost in a report that lowers the estimate.
    const LOSS: f32 = 0.02;
    /// Share of what arrived that the estimate is set to.
    const SHARE: f64 = 0.85;
    /// Growth per second without loss.
    const GROWTH: f64 = 1.08;

    /// The estimate at `now`, having seen `loss` reports while `sent_bps` was sent.
    pub(crate) fn update(&mut self, now: Instant, loss: &LossReports, sent_bps: u64) -> u64 {
        let fresh = loss.at.filter(|at| Some(*at) != self.report);
        if let Some(at) = fresh {
            self.report = Some(at);
            if loss.latest > Self::LOSS {
                let arrived = sent_bps as f64 * (1.0 - f64::from(loss.latest));
                let lowered = (arrived * Self::SHARE) as u64;
                let bps = self.bps.map_or(lowered, |(b, _)| b.min(lowered));
                self.bps = Some((bps, now));
            }
        }
        match &mut self.bps {
            None => u64::MAX / 4,
            Some((bps, since)) => {
                let secs = now.saturating_duration_since(*since).as_secs_f64();
                if secs >= 0.1 {
                    *bps = (*bps as f64 * Self::GROWTH.powf(secs)) as u64;
                    *since = now;
                }
                *bps
            }
        }
    }
}

/// The highest bandwidth estimate of the last [`EstimatePeak::WINDOW`]: an estimate
/// clearly below it is falling, which str0m's estimator does when it sees queues grow
/// (delay) or packets lost on the way, well before the loss reports come back.
#[derive(Debug, Default, Clone)]
pub(crate) struct EstimatePeak {
    /// Estimates with when they came, each larger than every later one (so the front is
    /// the window's highest).
    recent: std::collections::VecDeque<(Instant, u64)>,
}

impl EstimatePeak {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

    /// A new estimate at `now`.
    pub(crate) fn add(&mut self, now: Instant, bps: u64) {
        while self.recent.back().is_some_and(|(_, b)| *b <= bps) {
            self.recent.pop_back();
        }
        self.recent.push_back((now, bps));
    }

    /// The highest estimate since `now - WINDOW`, if any.
    pub(crate) fn peak(&mut self, now: Instant) -> Option<u64> {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| *at + Self::WINDOW < now)
            && self.recent.len() > 1
        {
            self.recent.pop_front();
        }
        self.recent.front().map(|(_, b)| *b)
    }
}

/// A participant's media state.
pub(crate) struct Peer {
    pub room: std::sync::Arc<str>,
    pub publish: Option<Connection>,
    pub subscribe: Connection,
    pub tracks: Vec<PublishedTrack>,
    /// The authenticated SSRC of every publish stream, to undo rebinding by forged
    /// headers (see `Sfu::undo_forged_rebinds`).
    pub bound_ssrcs: Vec<BoundSsrc>,
    pub subscriptions: Vec<Subscription>,
    /// The subscribe offer awaiting the browser's answer.
    pub pending_offer: Option<SdpPendingOffer>,
    /// What the subscribe connection offers, and whether it must be replaced.
    pub negotiation: Negotiation,
    /// Parameters of each incoming payload type, cached from the publish connection.
    pub params_by_pt: Vec<(u8, PayloadParams)>,
    /// What the browser said each publish mid carries.
    pub declared: Vec<(Mid, TrackSource)>,
    /// The subscribe connection's latest bandwidth estimate, bits per second.
    pub estimate: Option<u64>,
    /// The recent highest of those estimates.
    pub estimate_peak: EstimatePeak,
    /// Whether its layers may go up and its link be probed.
    pub growth: crate::growth::Growth,
    /// What the subscribe connection is sent.
    pub sent: RateMeter,
    /// The loss the subscriber reported lately.
    pub loss: LossReports,
    /// Whether the subscribe connection negotiated transport-wide congestion control
    /// feedback (which str0m's estimate needs); `None` before the first answer.
    pub twcc: Option<bool>,
    /// Its downlink estimated from loss reports, used when it has no TWCC.
    pub loss_estimate: LossEstimate,
}

impl Peer {
    pub(crate) fn connection(&mut self, leg: Leg) -> Option<&mut Connection> {
        match leg {
            Leg::Publish => self.publish.as_mut(),
            Leg::Subscribe => Some(&mut self.subscribe),
        }
    }

    /// Whether a subscribe offer would open or stop a section, and how many tracks the
    /// subscriber wants.
    pub(crate) fn subscribe_changes(&self) -> (bool, usize) {
        let changes = self
            .subscriptions
            .iter()
            .any(|s| matches!(s.state, SubState::ToOpen | SubState::ToStop(_)));
        let live = self.subscriptions.iter().filter(|s| s.is_wanted()).count();
        (changes, live)
    }

    /// Replaces the subscribe connection with `conn`, which offers `codecs`: every
    /// wanted track is to be opened on it afresh (with new sequence numbers and a key
    /// frame to start on), stopped ones are forgotten, and what was learnt about the
    /// old connection's link (estimates, loss) starts over.
    pub(crate) fn replace_subscribe(&mut self, conn: Connection, codecs: Vec<PayloadParams>) {
        let mut old = std::mem::replace(&mut self.subscribe, conn);
        old.rtc.disconnect();
        self.pending_offer = None;
        self.negotiation.replaced(codecs);
        self.subscriptions = self
            .subscriptions
            .iter()
            .filter(|s| s.is_wanted())
            .map(|s| {
                let mut fresh = Subscription::new(s.source, s.source_mid, s.kind, s.track_source);
                fresh.view = s.view;
                fresh
            })
            .collect();
        self.estimate = None;
        self.estimate_peak = EstimatePeak::default();
        self.loss = LossReports::default();
        self.twcc = None;
        self.loss_estimate = LossEstimate::default();
    }

    /// Starts a new subscribe offer if a section must be opened or stopped.
    /// `new_connection` says whether the client must answer on a new connection.
    /// Returns the offer's SDP and the track map to send to the browser.
    pub(crate) fn make_subscribe_offer(
        &mut self,
        new_connection: bool,
    ) -> Option<(String, Vec<TrackInfo>, bool)> {
        if self.pending_offer.is_some() {
            // One offer at a time: the answer triggers the next one.
            return None;
        }
        let mut change = self.subscribe.rtc.sdp_api();
        for sub in &mut self.subscriptions {
            match sub.state {
                SubState::ToOpen => {
                    // The track id names the source: a presenter's camera and screen
                    // share one stream (the participant), and a browser refuses two
                    // sections with the same stream and track id.
                    let kind = match sub.track_source {
                        TrackSource::Microphone => "audio",
                        TrackSource::Camera => "video",
                        TrackSource::Screen => "screen",
                    };
                    let mid = change.add_media(
                        sub.kind,
                        Direction::SendOnly,
                        Some(sub.source.0.to_string()),
                        Some(format!("{}-{kind}", sub.source.0)),
                        None,
                    );
                    sub.state = SubState::Negotiating(mid);
                }
                SubState::ToStop(mid) => {
                    change.stop_media(mid);
                    sub.state = SubState::Stopping(mid);
                }
                _ => {}
            }
        }
        let (offer, pending) = change.apply()?;
        self.pending_offer = Some(pending);
        self.negotiation.offered = true;
        self.negotiation.client_has_connection = true;
        let tracks = self
            .subscriptions
            .iter()
            .filter(|s| s.is_wanted())
            .filter_map(|s| {
                Some(TrackInfo {
                    mid: s.mid()?.to_string(),
                    participant: s.source,
                    kind: match s.kind {
                        MediaKind::Audio => TrackKind::Audio,
                        MediaKind::Video => TrackKind::Video,
                    },
                    source: s.track_source,
                })
            })
            .collect();
        Some((offer.to_sdp_string(), tracks, new_connection))
    }

    /// The browser accepted the outstanding offer: negotiated sections go live, stopped
    /// ones are forgotten (their sections stay in the SDP for good, counted as dead).
    pub(crate) fn offer_answered(&mut self) {
        for sub in &mut self.subscriptions {
            if let SubState::Negotiating(mid) = sub.state {
                sub.state = SubState::Active(mid);
            }
        }
        let before = self.subscriptions.len();
        self.subscriptions
            .retain(|s| !matches!(s.state, SubState::Stopping(_)));
        self.negotiation.dead_sections += before - self.subscriptions.len();
        self.negotiation.failures = 0;
    }

    /// Stops every subscription to `source`'s tracks. Returns whether an offer is needed.
    pub(crate) fn unsubscribe_from(&mut self, source: ParticipantId) -> bool {
        let mut changed = false;
        self.subscriptions.retain_mut(|s| {
            if s.source != source {
                return true;
            }
            match s.state {
                SubState::ToOpen => false,
                SubState::Negotiating(mid) | SubState::Active(mid) => {
                    s.state = SubState::ToStop(mid);
                    changed = true;
                    true
                }
                SubState::ToStop(_) | SubState::Stopping(_) => true,
            }
        });
        changed
    }

    /// The parameters of incoming payload type `pt`, looked up once per payload type.
    pub(crate) fn params_of(&mut self, pt: u8) -> Option<PayloadParams> {
        if let Some((_, params)) = self.params_by_pt.iter().find(|(p, _)| *p == pt) {
            return Some(*params);
        }
        let rtc = &self.publish.as_ref()?.rtc;
        let params = *rtc.codec_config().find(|p| *p.pt() == pt)?;
        self.params_by_pt.push((pt, params));
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn a_loss_estimate_is_unlimited_until_loss_then_follows_what_arrives() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut e = LossEstimate::default();
        let mut loss = LossReports::default();
        assert_eq!(e.update(at(0), &loss, 2_000_000), u64::MAX / 4);
        // A report without loss changes nothing.
        loss.add(at(1000), 0.0);
        assert_eq!(e.update(at(1000), &loss, 2_000_000), u64::MAX / 4);
        // 20% lost of 2 Mbit/s: 1.6 Mbit/s arrived, the estimate is 85% of that.
        loss.add(at(2000), 0.2);
        let lowered = e.update(at(2000), &loss, 2_000_000);
        assert!(lowered.abs_diff(1_360_000) < 10, "{lowered}");
        // The same report again lowers nothing, even though less is sent now.
        assert_eq!(e.update(at(2050), &loss, 500_000), lowered);
        // Without new loss it grows 8% a second.
        loss.add(at(3000), 0.0);
        let grown = e.update(at(3000), &loss, 500_000);
        assert!((1_460_000..1_480_000).contains(&grown), "{grown}");
        // A new lossy report never raises it.
        loss.add(at(4000), 0.1);
        let lowered = e.update(at(4000), &loss, 3_000_000);
        assert!(lowered <= grown && lowered < 2_300_000, "{lowered}");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn the_peak_is_the_highest_estimate_of_the_last_two_seconds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = EstimatePeak::default();
        assert_eq!(p.peak(t0), None);
        p.add(at(0), 1_000);
        p.add(at(500), 3_000);
        p.add(at(1000), 2_000);
        p.add(at(1500), 500);
        assert_eq!(p.peak(at(1500)), Some(3_000));
        // 3000 ages out after two seconds; 2000 is then the highest.
        assert_eq!(p.peak(at(2600)), Some(2_000));
        assert_eq!(p.peak(at(3100)), Some(500));
        // The latest estimate is kept however old: it is still the estimate.
        assert_eq!(p.peak(at(60_000)), Some(500));
    }
}
