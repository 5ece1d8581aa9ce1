//! One participant on the media side: a publish connection (its camera and microphone
//! come in), a subscribe connection (everyone else's tracks go out), and the
//! subscriptions that say which track goes on which media section.

use std::collections::HashMap;
use std::time::Instant;

use lanmeet_proto::{ParticipantId, TrackInfo, TrackKind, TrackSource};
use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use crate::downlink::Downlink;
use crate::forward::{SubState, Subscription};
use crate::layers::Layers;
use crate::negotiation::Negotiation;
use crate::stats::{EgressSeen, ParticipantStats};

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
    /// What str0m last reported for each stream sent on it (subscribe connections).
    pub egress_seen: HashMap<(Mid, Option<Rid>), EgressSeen>,
}

impl Connection {
    pub(crate) fn new(rtc: Rtc, now: Instant) -> Self {
        Connection {
            rtc,
            timeout: now,
            dead: false,
            egress_seen: HashMap::new(),
        }
    }
}

/// A track this participant publishes.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Camera, microphone or screen, as the browser declared it when it was added (a
    /// screen only while presenting: see `Sfu::publish_offer`).
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
    /// Whether signaling gave it a presenter's seat (`screen_share`): only then may it
    /// add a screen track, and only then is its screen forwarded.
    pub presenting: bool,
    /// Sources a moderator muted (`Sfu::set_blocked`): nothing of them is forwarded.
    pub blocked: Vec<TrackSource>,
    /// False for a viewer (`Sfu::set_may_publish`): its publish offers are refused and
    /// nothing it sends is forwarded.
    pub may_publish: bool,
    /// The subscribe connection's downlink: its estimate, loss and budget.
    pub downlink: Downlink,
    /// How its connections are doing, as str0m last reported.
    pub report: ParticipantStats,
}

impl Peer {
    /// Whether a publish offer declaring `tracks` may go ahead as far as screens go: a
    /// screen track new to the connection needs the presenter's seat (signaling's
    /// `screen_share`, see `Sfu::set_presenting`), and one connection carries at most one
    /// screen, ever. A screen section kept from an earlier share may stay declared: it is
    /// not forwarded while the seat is not held. The error is the text for the client.
    pub(crate) fn screens_allowed(
        &self,
        tracks: &[lanmeet_proto::PublishedTrack],
    ) -> Result<(), String> {
        let screens: Vec<&str> = tracks
            .iter()
            .filter(|t| t.source == TrackSource::Screen)
            .map(|t| t.mid.as_str())
            .collect();
        if screens.len() > 1 {
            return Err(format!(
                "A publish offer may carry one screen, not {}: the offer is refused.",
                screens.len()
            ));
        }
        let Some(mid) = screens.first() else {
            return Ok(());
        };
        let kept = self
            .tracks
            .iter()
            .find(|t| t.source == TrackSource::Screen)
            .map(|t| t.mid.to_string());
        match kept {
            Some(kept) if kept != *mid => Err(format!(
                "This connection already carries a screen (section {kept}); a second one \
                 (section {mid}) is refused."
            )),
            Some(_) => Ok(()),
            None if self.presenting => Ok(()),
            None => Err(
                "A screen track needs the presenter's seat: send screen_share first \
                 and wait for the confirmation. The offer is refused."
                    .into(),
            ),
        }
    }

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
        self.downlink.new_connection();
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
                    self.negotiation.first_mid.get_or_insert(mid);
                    sub.state = SubState::Negotiating(mid);
                }
                SubState::ToStop(mid) if self.negotiation.first_mid == Some(mid) => {
                    // The first section tags the BUNDLE group. Stopping it takes its mid
                    // out of the group, and Chromium then sometimes closed the whole
                    // transport (DTLS close_notify; seen in one churn of 20 in five
                    // with 40 publishers), and the participant dropped out. Made
                    // inactive, it stays the tag, carrying nothing.
                    change.set_direction(mid, Direction::Inactive);
                    sub.state = SubState::Stopping(mid);
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
