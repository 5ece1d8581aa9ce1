//! The [`Sfu`]: every room of one media worker, driven by inputs that carry `now`.
//!
//! Inputs: [`Sfu::join`], [`Sfu::leave`], [`Sfu::publish_offer`],
//! [`Sfu::subscribe_answer`] from signaling; [`Sfu::handle_datagram`] from the socket;
//! [`Sfu::handle_timeout`] from the clock. Outputs: [`Sfu::poll_output`] until it returns
//! [`Output::Timeout`].
//!
//! Each input feeds one or more str0m connections; every connection touched is then
//! polled until it has nothing more to say. Its events may touch other connections (a
//! packet from a publisher is written to each subscriber), which are polled in turn.

mod allocation;
mod broadcast;
mod counters;
mod relay;
mod stations;

pub use relay::{RelayControl, RelayPacket, RelayedTrack, WorkerId};
pub use stations::StationStatus;

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanmeet_proto::{ErrorCode, MediaSignal, ParticipantId, ServerMessage, TrackSource, TrackView};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::CryptoProvider;
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, Transmit};

use str0m::rtp::{Extension, ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor, Vp8Patch};
use str0m::{Candidate, Event, Input, Rtc, RtcConfig};
use tracing::{debug, info, warn};

use crate::downlink::{Downlink, LOSS_INTERVAL};
use crate::forward::{Incoming, SubState, Subscription, Verdict, Vp8Ids};
use crate::keyframe::starts_keyframe;
use crate::layers::{Layers, RATE_WINDOW};
use crate::negotiation::{self, Negotiation, Plan};
use crate::peer::{BoundSsrc, Connection, Leg, Peer, PublishedTrack};
use crate::room::Room;
use crate::speaker::EVALUATION_INTERVAL;
use crate::stats::{MediaClass, ParticipantStats, SfuStats};
use crate::vp8;

/// How many times in a row one connection is woken at once while it is polled: enough
/// for a burst of forwarded packets, bounded so a connection that keeps asking to be
/// woken now cannot starve the others.
const MAX_IMMEDIATE: u32 = 512;

/// A connection's timeout this close to now counts as due while it is polled. str0m's
/// pacer asks to be woken one microsecond after each packet it hands out by itself ("so
/// time advances"); handled here, that wake-up costs no turn of the worker.
const IMMEDIATE_SLACK: Duration = Duration::from_micros(20);

/// Settings of one [`Sfu`].
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Host candidates offered to browsers: the addresses this worker's socket is reachable
    /// at.
    pub candidates: Vec<SocketAddr>,
    /// Least time between two keyframe requests to one publisher track. Browsers answer
    /// every request with an expensive keyframe, so bursts of requests are merged.
    pub keyframe_request_interval: Duration,
    /// In rooms with more audio publishers than this, each subscriber gets only this many
    /// of the loudest audio streams.
    pub audio_top_n: usize,
    /// Bandwidth assumed towards a subscriber before its estimate arrives, bits per
    /// second.
    pub initial_bandwidth_bps: u64,
    /// Estimate each subscriber's bandwidth (TWCC) and fit its layers to it. Off, every
    /// subscriber gets the layer its view asks for.
    pub bandwidth_estimation: bool,
}

impl SfuConfig {
    /// A config offering `candidates`, with default tuning.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        SfuConfig {
            candidates,
            keyframe_request_interval: Duration::from_millis(300),
            audio_top_n: 8,
            initial_bandwidth_bps: 800_000,
            bandwidth_estimation: true,
        }
    }
}

/// Something the [`Sfu`] wants done.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Send a signaling message to a participant.
    Signal(ParticipantId, ServerMessage),
    /// A participant's media connection died (ICE or DTLS failure); signaling should
    /// remove the participant.
    MediaFailed(ParticipantId),
    /// Hand a publisher's packet to another worker of its room
    /// ([`Sfu::handle_relay`] there). One per packet and worker: the caller batches
    /// them per worker.
    Relay {
        /// The worker that gets it.
        to: WorkerId,
        /// The packet.
        packet: RelayPacket,
    },
    /// A control message for another worker of a room ([`Sfu::handle_relay_control`]
    /// there).
    RelayControl {
        /// The worker that gets it.
        to: WorkerId,
        /// The message.
        control: RelayControl,
    },
    /// Nothing more to do until this time (or the next input).
    Timeout(Instant),
}

/// One datagram read from the worker's socket, for [`Sfu::handle_datagrams`].
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// When it arrived (the kernel's receive time where there is one).
    pub arrived: Instant,
    /// The remote address it came from.
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub destination: SocketAddr,
    /// Its bytes.
    pub contents: &'a [u8],
}

/// A media worker's rooms.
pub struct Sfu {
    config: SfuConfig,
    crypto: Arc<CryptoProvider>,
    peers: HashMap<ParticipantId, Peer>,
    /// The rooms, by name.
    rooms: HashMap<Arc<str>, Room>,
    /// Which connection a remote address belongs to, learned from the first accepted
    /// datagram, so most datagrams skip the scan over all connections.
    by_source: HashMap<SocketAddr, (ParticipantId, Leg)>,
    /// Connections that got input and must be polled.
    dirty: Vec<(ParticipantId, Leg)>,
    /// Inside [`Sfu::handle_datagrams`]: subscribe connections are polled once the batch
    /// is in rather than once per packet (see there).
    batching: bool,
    /// Subscribe connections that got packets to send during the batch (kept between
    /// batches for its capacity: one allocation per worker, not per batch).
    deferred: Vec<(ParticipantId, Leg)>,
    /// The participant whose subscribe connection is handling a datagram: not deferred.
    receiving: Option<ParticipantId>,
    outputs: VecDeque<Output>,
    stats: SfuStats,
    /// The latest `now` seen, for the timeout of an idle worker.
    last_now: Instant,
    /// When speakers are next evaluated.
    next_speaker_evaluation: Instant,
    /// When layer rates are next measured and bandwidth reallocated.
    next_layer_tick: Instant,
    /// The stations playing here, by their participant id (`stations.rs`).
    stations: HashMap<ParticipantId, stations::StationSource>,
    /// Participants whose publish connection came from outside signaling (WHIP) and
    /// who receive nothing (`broadcast.rs`).
    broadcasters: HashSet<ParticipantId>,
    /// Publishers of other workers whose tracks are relayed here (proxies: members of
    /// a room without connections), and their worker (`relay.rs`).
    relayed: HashMap<ParticipantId, WorkerId>,
}

/// Video packets kept per subscriber stream to answer NACKs (about 3 s of 720p).
const RTX_CACHE_PACKETS: usize = 2000;
/// Oldest packet a NACK may still recover.
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);
/// Largest share of retransmitted bytes before str0m stops resending.
const RTX_RATIO_CAP: f32 = 0.3;

/// Bytes each packet costs on the wire beyond its payload (RTP, SRTP, UDP, IPv4).
const PACKET_OVERHEAD: usize = 60;

/// How long an Sfu without connections sleeps.
const IDLE_WAKEUP: Duration = Duration::from_secs(3600);

impl Sfu {
    /// An empty worker, created at `now`.
    pub fn new(config: SfuConfig, now: Instant) -> Self {
        Sfu {
            config,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            peers: HashMap::new(),
            rooms: HashMap::new(),
            by_source: HashMap::new(),
            dirty: Vec::new(),
            batching: false,
            deferred: Vec::new(),
            receiving: None,
            outputs: VecDeque::new(),
            stats: SfuStats::default(),
            last_now: now,
            next_speaker_evaluation: now,
            next_layer_tick: now,
            stations: HashMap::new(),
            broadcasters: HashSet::new(),
            relayed: HashMap::new(),
        }
    }

    /// How many outputs wait to be polled: lets a caller see what an input produced
    /// without polling (which also works out the next timeout over every connection).
    pub fn queued_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Number of participants on this worker (not counting other workers' publishers
    /// relayed here).
    pub fn participant_count(&self) -> usize {
        self.peers.len() - self.relayed.len()
    }

    /// Whether participant `id` has been sent a subscribe offer it has not answered.
    pub fn is_negotiating(&self, id: ParticipantId) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.pending_offer.is_some())
    }

    /// Number of rooms on this worker.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// A new connection. A publish connection accepts every codec the SFU forwards; a
    /// subscribe connection offers `codecs` only, and only the header extensions the
    /// SFU uses (`negotiation.rs`).
    fn new_rtc(&self, now: Instant, leg: Leg, codecs: &[PayloadParams]) -> Rtc {
        let mut config = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true);
        *config.codec_config() = match leg {
            Leg::Publish => negotiation::all_codecs(),
            Leg::Subscribe => CodecConfig::new_from_payload_params(codecs.to_vec()),
        };
        if leg == Leg::Subscribe {
            config = config.set_extension_map(negotiation::subscribe_extensions(
                self.config.bandwidth_estimation,
            ));
        }
        if leg == Leg::Subscribe && self.config.bandwidth_estimation {
            // The subscriber's bandwidth, estimated from its transport-wide congestion
            // control feedback, decides which layers it gets.
            config = config
                .enable_bwe(Some(Bitrate::bps(self.config.initial_bandwidth_bps)))
                .set_stats_interval(Some(LOSS_INTERVAL));
        }
        if leg == Leg::Publish {
            // The publisher's loss and byte counts for the admin dashboard; once a second
            // per connection costs next to nothing (docs/monitoring.md).
            config = config.set_stats_interval(Some(counters::PUBLISH_STATS_INTERVAL));
        }
        let mut rtc = config.build(now);
        for addr in &self.config.candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => warn!(%addr, "unusable candidate address: {e}"),
            }
        }
        rtc
    }

    /// The codecs subscriber `id`'s wanted tracks are sent in, as its subscribe
    /// connection would offer them.
    fn codecs_for(&self, id: ParticipantId) -> Vec<PayloadParams> {
        let Some(peer) = self.peers.get(&id) else {
            return Vec::new();
        };
        let mut sent: Vec<PayloadParams> = Vec::new();
        for sub in peer.subscriptions.iter().filter(|s| s.is_wanted()) {
            let track = self
                .peers
                .get(&sub.source)
                .and_then(|p| p.tracks.iter().find(|t| t.mid == sub.source_mid));
            for codec in track.map(|t| t.codecs.as_slice()).unwrap_or_default() {
                if !sent.iter().any(|c| c.spec() == codec.spec()) {
                    sent.push(*codec);
                }
            }
        }
        negotiation::subscribe_codecs(&sent)
    }

    /// A participant's media state in `room`, with `subscriptions` and a subscribe
    /// connection that offers nothing yet.
    fn new_peer(&self, now: Instant, room: Arc<str>, subscriptions: Vec<Subscription>) -> Peer {
        // No codec yet: the first offer makes the connection that offers what the
        // room's tracks need.
        let subscribe = Connection::new(self.new_rtc(now, Leg::Subscribe, &[]), now);
        Peer {
            room,
            publish: None,
            subscribe,
            tracks: Vec::new(),
            bound_ssrcs: Vec::new(),
            subscriptions,
            pending_offer: None,
            negotiation: Negotiation::default(),
            params_by_pt: Vec::new(),
            declared: Vec::new(),
            presenting: false,
            blocked: Vec::new(),
            may_publish: true,
            downlink: Downlink::new(
                now,
                self.config.bandwidth_estimation,
                self.config.initial_bandwidth_bps,
            ),
            report: ParticipantStats::default(),
        }
    }

    /// Adds participant `id` to `room`, subscribing it to every track already published
    /// there.
    pub fn join(&mut self, now: Instant, room: &str, id: ParticipantId) {
        if self.peers.contains_key(&id) {
            warn!(%id, "join for a participant already present");
            return;
        }
        let room: Arc<str> = Arc::from(room);
        let members = &mut self.rooms.entry(room.clone()).or_default().members;
        let mut subscriptions = Vec::new();
        for other in members.iter() {
            if let Some(p) = self.peers.get(other) {
                for t in &p.tracks {
                    subscriptions.push(Subscription::new(*other, t.mid, t.kind, t.source));
                }
            }
        }
        members.push(id);
        // No codec yet: the first offer makes the connection that offers what the
        // room's tracks need.
        let peer = self.new_peer(now, room.clone(), subscriptions);
        self.peers.insert(id, peer);
        info!(%id, %room, "participant joined media");
        self.offer_if_needed(now, id);
        self.drive(now);
    }

    /// Removes participant `id`; everyone else stops receiving its tracks.
    pub fn leave(&mut self, now: Instant, id: ParticipantId) {
        let Some(mut peer) = self.peers.remove(&id) else {
            return;
        };
        self.broadcasters.remove(&id);
        peer.subscribe.rtc.disconnect();
        if let Some(p) = peer.publish.as_mut() {
            p.rtc.disconnect();
        }
        self.by_source.retain(|_, (p, _)| *p != id);
        self.dirty.retain(|(p, _)| *p != id);
        let mut speaker_change = None;
        let mut others = Vec::new();
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            speaker_change = room.speakers.remove(id);
            room.members.retain(|p| *p != id);
            others = room.members.clone();
        }
        // Also removes the room once no member of it is left here.
        self.relay_after_leave(id, &peer.room);
        if let Some(speaker) = speaker_change {
            self.announce_speaker(&others, speaker);
        }
        for other in others {
            let changed = self
                .peers
                .get_mut(&other)
                .is_some_and(|p| p.unsubscribe_from(id));
            if changed {
                self.offer_if_needed(now, other);
            }
        }
        info!(%id, room = %peer.room, "participant left media");
        self.drive(now);
    }

    /// A media message from participant `id`'s client (or, for a refused subscribe
    /// answer, from signaling on its behalf): the one entry point for negotiation and
    /// views. Answers and offers come out of [`Sfu::poll_output`] as signals.
    pub fn signal(&mut self, now: Instant, id: ParticipantId, signal: MediaSignal) {
        match signal {
            MediaSignal::PublishOffer { sdp, tracks } => self.publish_offer(now, id, &sdp, &tracks),
            MediaSignal::SubscribeAnswer { sdp } => self.subscribe_answer(now, id, &sdp),
            MediaSignal::SubscribeAnswerRefused => self.subscribe_answer_refused(now, id),
            MediaSignal::View { tracks } => self.set_view(now, id, &tracks),
        }
    }

    /// The browser's offer for its publish connection. Answers with
    /// [`ServerMessage::PublishAnswer`] or an error.
    fn publish_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sdp: &str,
        tracks: &[lanmeet_proto::PublishedTrack],
    ) {
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => {
                debug!(%id, "publish offer unparsable: {e}");
                let message = negotiation::sdp_problem("The publish offer", &e);
                return self.signal_error(id, ErrorCode::BadSdp, message);
            }
        };
        let mids: Vec<&str> = tracks.iter().map(|t| t.mid.as_str()).collect();
        if let Err(message) = negotiation::check_publish_offer(&offer, &mids) {
            return self.signal_error(id, ErrorCode::BadSdp, message);
        }
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        if !peer.may_publish {
            let message = "Viewers do not publish: the offer is refused.".to_string();
            return self.signal_error(id, ErrorCode::Forbidden, message);
        }
        if let Err(message) = peer.screens_allowed(tracks) {
            return self.signal_error(id, ErrorCode::WrongState, message);
        }
        // A renegotiation (screen share on or off, a camera back) goes to the existing
        // connection; only the first offer builds one. Building costs a fresh DTLS
        // certificate, so it is not done just in case.
        let rtc = match peer.publish {
            Some(_) => None,
            None => Some(self.new_rtc(now, Leg::Publish, &[])),
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.declared = tracks
            .iter()
            .map(|t| (Mid::from(t.mid.as_str()), t.source))
            .collect();
        if let Some(rtc) = rtc {
            self.stats.publish_connections_built += 1;
            peer.publish = Some(Connection::new(rtc, now));
        }
        let Some(conn) = peer.publish.as_mut() else {
            return;
        };
        match conn.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                peer.params_by_pt.clear();
                self.outputs.push_back(Output::Signal(
                    id,
                    ServerMessage::PublishAnswer {
                        sdp: answer.to_sdp_string(),
                    },
                ));
                self.dirty.push((id, Leg::Publish));
            }
            Err(e) => {
                debug!(%id, "publish offer refused: {e}");
                let message = negotiation::sdp_problem("The publish offer", &e);
                self.signal_error(id, ErrorCode::BadSdp, message);
            }
        }
        self.drive(now);
    }

    /// The browser's answer to our latest subscribe offer. An answer that cannot be
    /// used gets [`ErrorCode::BadSdp`] and a new offer on a new connection (see
    /// [`Sfu::subscribe_answer_refused`]).
    fn subscribe_answer(&mut self, now: Instant, id: ParticipantId, sdp: &str) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(pending) = peer.pending_offer.take() else {
            return self.signal_error(
                id,
                ErrorCode::WrongState,
                "subscribe_answer without an outstanding offer".into(),
            );
        };
        let accepted = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| {
                (
                    e.to_string(),
                    negotiation::sdp_problem("The subscribe answer", &e),
                )
            })
            .and_then(|answer| {
                peer.subscribe
                    .rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| {
                        (
                            e.to_string(),
                            negotiation::sdp_problem("The subscribe answer", &e),
                        )
                    })
            });
        if let Err((detail, e)) = accepted {
            warn!(%id, "subscribe answer refused: {detail}");
            let retry = peer.negotiation.failures < negotiation::MAX_ANSWER_RETRIES;
            let next = if retry {
                "Sending a new offer for a new connection."
            } else {
                "Giving up until the room changes."
            };
            self.signal_error(id, ErrorCode::BadSdp, format!("{e}. {next}"));
            return self.answer_failed(now, id);
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // New video subscriptions need a keyframe to start; ask now rather than waiting
        // for the first packet to arrive. Running ones need none: asking would make every
        // publisher send a costly keyframe on every join and leave in the room.
        let mut wanted: Vec<(ParticipantId, Mid)> = Vec::new();
        for sub in &peer.subscriptions {
            let SubState::Negotiating(mid) = sub.state else {
                continue;
            };
            if sub.kind != MediaKind::Video {
                continue;
            }
            wanted.push((sub.source, sub.source_mid));
            if let Some(tx) = peer.subscribe.rtc.direct_api().stream_tx_by_mid(mid, None) {
                // str0m drops queued retransmissions once they pass 15% of a stream's
                // bytes; a short burst of loss on a LAN link crosses that and freezes the
                // picture until the next keyframe. Allow more, with a deeper cache.
                tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                // Forwarded video never waits in str0m's pacer (audio never does): a
                // late packet is worse than a lower layer, and layers are what follow
                // the estimate (docs/bandwidth.md, "Pacing: forwarded media never waits").
                tx.set_unpaced(true);
            }
        }
        peer.offer_answered();
        self.check_answered_codecs(id);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let rtc = &peer.subscribe.rtc;
        let mut mids = peer.subscriptions.iter().filter_map(|s| s.mid()).peekable();
        if mids.peek().is_some() {
            peer.downlink.set_twcc(mids.any(|mid| {
                rtc.media(mid).is_some_and(|m| {
                    m.remote_extmap()
                        .id_of(Extension::TransportSequenceNumber)
                        .is_some()
                })
            }));
        }
        self.allocate(now, id);
        for (source, mid) in wanted {
            self.request_keyframe(now, source, mid, None);
        }
        self.dirty.push((id, Leg::Subscribe));
        self.offer_if_needed(now, id);
        self.drive(now);
    }

    /// Marks each video subscription of `id` whose section's answer accepted none of the
    /// codecs its publisher sends in (`Subscription::codec_refused`), and tells the
    /// subscriber with `video_state` paused `codec` (or that it resumed): the server
    /// forwards a track only in a codec the subscriber accepted, and does not transcode.
    /// A browser accepts VP8, which every browser sends; a client that decodes only
    /// H.264, say, gets no VP8 track and this reason instead of a black tile.
    fn check_answered_codecs(&mut self, id: ParticipantId) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let sources: Vec<(usize, Vec<PayloadParams>)> = peer
            .subscriptions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == MediaKind::Video && s.mid().is_some())
            .map(|(i, s)| {
                let codecs = self
                    .peers
                    .get(&s.source)
                    .and_then(|p| p.tracks.iter().find(|t| t.mid == s.source_mid))
                    .map(|t| t.codecs.clone())
                    .unwrap_or_default();
                (i, codecs)
            })
            .collect();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let rtc = &peer.subscribe.rtc;
        for (i, codecs) in sources {
            let sub = &mut peer.subscriptions[i];
            let Some(mid) = sub.mid() else {
                continue;
            };
            let accepted = rtc
                .media(mid)
                .map(|m| m.remote_pts().to_vec())
                .unwrap_or_default();
            // A track whose codec is not known yet (no packet so far) is not judged.
            let refused = !codecs.is_empty()
                && !codecs.iter().any(|c| {
                    rtc.codec_config()
                        .match_params(*c)
                        .is_some_and(|p| accepted.contains(&p.pt()))
                });
            if refused != sub.codec_refused {
                sub.codec_refused = refused;
                if refused {
                    info!(%id, source = %sub.source, %mid, "the answer accepts none of the track's codecs");
                }
                if let Some(msg) = video_state_change(sub) {
                    self.outputs.push_back(Output::Signal(id, msg));
                }
            }
        }
    }

    /// The answer to participant `id`'s outstanding subscribe offer was refused: by
    /// [`Sfu::subscribe_answer`], or by signaling before it got here (too large). The
    /// client applied an offer we now drop, so its connection no longer matches ours:
    /// the next offer is for a new connection. It goes out at once for the first
    /// [`negotiation::MAX_ANSWER_RETRIES`] refusals in a row; after that only when the
    /// subscriber's tracks change, so a client whose answers always fail cannot make
    /// offers loop.
    fn subscribe_answer_refused(&mut self, now: Instant, id: ParticipantId) {
        let outstanding = self
            .peers
            .get_mut(&id)
            .and_then(|p| p.pending_offer.take())
            .is_some();
        if outstanding {
            self.answer_failed(now, id);
        }
    }

    /// The outstanding subscribe offer of `id` (already dropped) got no usable answer.
    fn answer_failed(&mut self, now: Instant, id: ParticipantId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let n = &mut peer.negotiation;
        n.desynced = true;
        n.failures += 1;
        if n.failures <= negotiation::MAX_ANSWER_RETRIES {
            self.offer_if_needed(now, id);
        } else {
            warn!(%id, failures = n.failures, "subscribe answers keep failing; waiting for a change");
        }
        self.drive(now);
    }

    /// The subscriber `id` now shows its video tracks at these sizes (device pixels;
    /// 0×0 or not listed: not visible).
    fn set_view(&mut self, now: Instant, id: ParticipantId, tracks: &[TrackView]) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        for sub in &mut peer.subscriptions {
            if sub.kind != MediaKind::Video {
                continue;
            }
            let mid = sub.mid();
            let shown = tracks
                .iter()
                .find(|t| mid.is_some_and(|m| *m == *t.mid))
                .map_or((0, 0), |t| (t.width, t.height));
            sub.view = Some(shown);
        }
        self.allocate(now, id);
        self.drive(now);
    }

    /// A datagram arrived on the worker's socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        self.handle_datagrams(std::iter::once(Datagram {
            arrived: now,
            source,
            destination,
            contents,
        }));
    }

    /// Datagrams read together from the worker's socket, in arrival order.
    ///
    /// Each publisher's packets are forwarded as they come (written to the subscribers'
    /// send queues), but the subscribe connections are polled for what to send once,
    /// after the whole batch: a subscriber that got eight packets of a batch then costs
    /// one `handle_timeout` of its str0m session (RTCP scheduling, the pacer's queue
    /// snapshot, the estimator) instead of eight, and its datagrams leave together (one
    /// GSO send). The batch's last arrival time is the time they are polled at.
    pub fn handle_datagrams<'a>(&mut self, batch: impl IntoIterator<Item = Datagram<'a>>) {
        self.batching = true;
        let mut last = None;
        for d in batch {
            last = Some(d.arrived);
            self.receive(d.arrived, d.source, d.destination, d.contents);
        }
        self.batching = false;
        if let Some(now) = last {
            self.deferred.sort_unstable_by_key(|(id, _)| *id);
            self.deferred.dedup();
            self.dirty.append(&mut self.deferred);
            self.drive(now);
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        // Our own address as the source is a reflection or a forgery, never a browser:
        // str0m would take our own packets for the peer's and its bandwidth estimate and
        // pacing would go astray.
        if source == destination || self.config.candidates.contains(&source) {
            self.stats.datagrams_dropped += 1;
            return;
        }
        let Ok(contents) = contents.try_into() else {
            self.stats.datagrams_dropped += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let known = self.by_source.get(&source).copied().filter(|(id, leg)| {
            self.peers
                .get(id)
                .and_then(|p| match leg {
                    Leg::Publish => p.publish.as_ref(),
                    Leg::Subscribe => Some(&p.subscribe),
                })
                .is_some_and(|c| c.rtc.accepts(&input))
        });
        let target = known.or_else(|| {
            self.peers.iter().find_map(|(id, p)| {
                if p.subscribe.rtc.accepts(&input) {
                    Some((*id, Leg::Subscribe))
                } else if p.publish.as_ref().is_some_and(|c| c.rtc.accepts(&input)) {
                    Some((*id, Leg::Publish))
                } else {
                    None
                }
            })
        });
        let Some((id, leg)) = target else {
            self.stats.datagrams_dropped += 1;
            return;
        };
        if known.is_none() {
            self.by_source.insert(source, (id, leg));
        }
        if let Some(conn) = self.peers.get_mut(&id).and_then(|p| p.connection(leg)) {
            if let Err(e) = conn.rtc.handle_input(input) {
                debug!(%id, ?leg, "datagram refused: {e}");
            }
        }
        self.dirty.push((id, leg));
        self.receiving = (leg == Leg::Subscribe).then_some(id);
        self.drive(now);
        self.receiving = None;
    }

    /// Time passed: wake every connection whose timeout is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_speaker_evaluation {
            self.next_speaker_evaluation = now + EVALUATION_INTERVAL;
            self.evaluate_speakers(now);
        }
        if now >= self.next_layer_tick {
            self.next_layer_tick = now + RATE_WINDOW;
            self.tick_layers(now);
        }
        if !self.stations.is_empty() {
            self.tick_stations(now);
        }
        for (id, peer) in &mut self.peers {
            for leg in [Leg::Publish, Leg::Subscribe] {
                let Some(conn) = peer.connection(leg) else {
                    continue;
                };
                if conn.timeout <= now && !conn.dead {
                    if let Err(e) = conn.rtc.handle_input(Input::Timeout(now)) {
                        debug!(%id, ?leg, "timeout refused: {e}");
                    }
                    self.dirty.push((*id, leg));
                }
            }
        }
        self.drive(now);
    }

    /// The next thing to do. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.outputs.pop_front() {
            return o;
        }
        let far = self.peers.values().fold(None::<Instant>, |acc, p| {
            let mut t = acc;
            for c in std::iter::once(&p.subscribe).chain(p.publish.as_ref()) {
                if !c.dead {
                    t = Some(t.map_or(c.timeout, |t| t.min(c.timeout)));
                }
            }
            t
        });
        let speakers_busy = self.rooms.values().any(|r| !r.speakers.is_idle());
        let far = match far {
            Some(t) if speakers_busy => Some(t.min(self.next_speaker_evaluation)),
            other => other,
        };
        let far = match far {
            Some(t) => Some(t.min(self.next_layer_tick)),
            other => other,
        };
        let far = match (far, self.stations_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match far {
            Some(t) => Output::Timeout(t),
            // No connection: nothing to wake for until the next input.
            None => Output::Timeout(self.last_now + IDLE_WAKEUP),
        }
    }

    fn signal_error(&mut self, id: ParticipantId, code: ErrorCode, message: String) {
        self.outputs.push_back(Output::Signal(
            id,
            ServerMessage::Error {
                code,
                message,
                fatal: false,
            },
        ));
    }

    /// Sends participant `id` a subscribe offer if a section must be opened or stopped
    /// and none is outstanding, on a new connection when the current one cannot carry
    /// it well (`negotiation::Negotiation::plan`).
    fn offer_if_needed(&mut self, now: Instant, id: ParticipantId) {
        let Some(peer) = self.peers.get(&id).filter(|_| !self.is_relayed(id)) else {
            return;
        };
        if peer.pending_offer.is_some() {
            // One offer at a time: the answer triggers the next one.
            return;
        }
        let (changes, live) = peer.subscribe_changes();
        let needed = self.codecs_for(id);
        let plan = peer.negotiation.plan(changes, live, &needed);
        let new_connection = match plan {
            Plan::Nothing => return,
            Plan::Offer => false,
            Plan::Replace { told } => {
                let conn = Connection::new(self.new_rtc(now, Leg::Subscribe, &needed), now);
                self.by_source
                    .retain(|_, (p, leg)| !(*p == id && *leg == Leg::Subscribe));
                if told {
                    info!(%id, "subscribe connection replaced by a new one");
                }
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                peer.replace_subscribe(conn, needed);
                told
            }
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some((sdp, tracks, new_connection)) = peer.make_subscribe_offer(new_connection) {
            debug!(%id, tracks = tracks.len(), bytes = sdp.len(), new_connection, "subscribe offer");
            self.outputs.push_back(Output::Signal(
                id,
                ServerMessage::SubscribeOffer {
                    sdp,
                    tracks,
                    new_connection,
                },
            ));
            self.dirty.push((id, Leg::Subscribe));
        }
    }

    /// Polls every dirty connection until it is quiet, handling the events it yields.
    fn drive(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        let mut events = Vec::new();
        while let Some((id, leg)) = self.dirty.pop() {
            // A connection that just got a datagram is polled at once: what it says
            // (connected, a keyframe request) may change how the rest of the batch is
            // forwarded. One that only got packets to send waits for the batch's end.
            if self.batching && leg == Leg::Subscribe && self.receiving != Some(id) {
                self.deferred.push((id, leg));
                continue;
            }
            let Some(conn) = self.peers.get_mut(&id).and_then(|p| p.connection(leg)) else {
                continue;
            };
            if conn.dead {
                continue;
            }
            // str0m's pacer sends one packet per poll and then asks to be woken at once
            // (even for unpaced media); doing that here, rather than through the
            // worker's next loop, sends a whole frame in one go. Only while it sends:
            // a wake-up that sent nothing is left to the worker, or a timer that stays
            // due would spin here.
            let mut immediate = 0;
            let mut sent = true;
            loop {
                if !conn.rtc.is_alive() {
                    conn.dead = true;
                    info!(%id, ?leg, "media connection closed");
                    self.outputs.push_back(Output::MediaFailed(id));
                    break;
                }
                match conn.rtc.poll_output() {
                    Ok(str0m::Output::Timeout(t))
                        if t <= now + IMMEDIATE_SLACK && sent && immediate < MAX_IMMEDIATE =>
                    {
                        immediate += 1;
                        sent = false;
                        if let Err(e) = conn.rtc.handle_input(Input::Timeout(t.max(now))) {
                            debug!(%id, ?leg, "timeout refused: {e}");
                        }
                    }
                    Ok(str0m::Output::Timeout(t)) => {
                        conn.timeout = t;
                        break;
                    }
                    Ok(str0m::Output::Transmit(t)) => {
                        sent = true;
                        self.outputs.push_back(Output::Transmit(t));
                    }
                    Ok(str0m::Output::Event(e)) => events.push(e),
                    Err(e) => {
                        warn!(%id, ?leg, "media connection failed: {e}");
                        conn.rtc.disconnect();
                    }
                }
            }
            for e in events.drain(..) {
                self.handle_event(now, id, leg, e);
            }
            if leg == Leg::Publish {
                self.undo_forged_rebinds(id);
            }
        }
    }

    /// Puts every publish stream of `id` back on the SSRC it last arrived on in an
    /// authenticated packet, if an unauthenticated one moved it.
    ///
    /// str0m binds an RTP packet's SSRC to a receive stream by the packet's MID (and RID)
    /// header extension *before* SRTP authentication (`Session::handle_rtp` calls
    /// `map_dynamic` before `unprotect_rtp`), and then renames the stream that had that
    /// MID to the new SSRC (`Streams::change_stream_rx_ssrc`). One datagram from the
    /// publisher's address with a valid-looking header — a replayed early packet with one
    /// bit of the SSRC flipped does — so moves the stream onto an SSRC nothing is sent
    /// on. The browser's real packets no longer match it and, since browsers (and str0m)
    /// stop sending the MID once a receiver report acknowledged the SSRC, they cannot
    /// bind again (`StreamRx::change_ssrc` also refuses to go back to the previous SSRC):
    /// the track is silent for good. A genuine SSRC change authenticates, reaches
    /// `forward_rtp` and updates the binding first, so it is left alone.
    fn undo_forged_rebinds(&mut self, id: ParticipantId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(conn) = peer.publish.as_mut() else {
            return;
        };
        let mut api = conn.rtc.direct_api();
        for b in &peer.bound_ssrcs {
            if api.stream_rx(&b.ssrc).is_some() {
                continue;
            }
            // The stream is gone from its SSRC. Renamed: it still holds the mid and rid.
            let Some(forged) = api.stream_rx_by_mid(b.mid, b.rid).map(|s| s.ssrc()) else {
                continue;
            };
            debug!(%id, mid = %b.mid, ssrc = %b.ssrc, %forged, "undoing an unauthenticated SSRC rebind");
            api.remove_stream_rx(forged);
            api.expect_stream_rx(b.ssrc, b.rtx, b.mid, b.rid)
                .suppress_nack(b.rtx.is_none());
            self.stats.forged_rebinds_undone += 1;
        }
    }

    fn handle_event(&mut self, now: Instant, id: ParticipantId, leg: Leg, event: Event) {
        match (leg, event) {
            (Leg::Publish, Event::RtpPacket(packet)) => self.forward_rtp(now, id, packet),
            (Leg::Publish, Event::MediaAdded(added)) => {
                self.track_published(now, id, added.mid, added.kind)
            }
            (Leg::Subscribe, Event::KeyframeRequest(req)) => {
                let source = self.peers.get(&id).and_then(|p| {
                    p.subscriptions
                        .iter()
                        .find(|s| s.mid() == Some(req.mid))
                        .map(|s| (s.source, s.source_mid, s.current))
                });
                match source {
                    Some((source, mid, _)) if self.stations.contains_key(&source) => {
                        self.restart_station_viewer(now, id, source, mid)
                    }
                    Some((source, mid, layer)) => self.request_keyframe(now, source, mid, layer),
                    None => {}
                }
            }
            (_, Event::PeerStats(stats)) => self.note_peer_stats(id, leg, &stats),
            (Leg::Subscribe, Event::MediaEgressStats(stats)) => {
                self.count_egress(id, &stats);
                if let (Some(loss), Some(p)) = (stats.loss, self.peers.get_mut(&id)) {
                    p.downlink.on_loss(now, loss);
                }
            }
            (Leg::Subscribe, Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. })) => {
                let changed = self
                    .peers
                    .get_mut(&id)
                    .is_some_and(|p| p.downlink.on_estimate(now, estimate.as_u64()));
                if changed {
                    self.allocate(now, id);
                }
            }
            (_, Event::IceConnectionStateChange(state)) => {
                debug!(%id, ?leg, ?state, "ice state");
                if leg == Leg::Publish {
                    self.broadcaster_ice(id, state);
                }
            }
            (_, Event::Connected) => debug!(%id, ?leg, "connected"),
            _ => {}
        }
    }

    fn track_published(&mut self, now: Instant, id: ParticipantId, mid: Mid, kind: MediaKind) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.tracks.iter().any(|t| t.mid == mid) {
            return;
        }
        let source = peer
            .declared
            .iter()
            .find(|(m, _)| *m == mid)
            .map(|(_, s)| *s)
            .filter(|s| (*s == TrackSource::Microphone) == (kind == MediaKind::Audio))
            .unwrap_or(match kind {
                MediaKind::Audio => TrackSource::Microphone,
                MediaKind::Video => TrackSource::Camera,
            });
        // The browser sends the first codec of our answer it offered; our answer lists
        // them in our order of preference.
        let codec = peer.publish.as_ref().and_then(|c| {
            let pts = c.rtc.media(mid)?.remote_pts().to_vec();
            c.rtc
                .codec_config()
                .find(|p| p.spec().codec.kind() == kind && pts.contains(&p.pt()))
                .copied()
        });
        debug!(%id, %mid, ?kind, ?source, codec = ?codec.map(|c| c.spec().codec), "track published");
        peer.tracks.push(PublishedTrack {
            mid,
            kind,
            source,
            layers: Layers::new(now),
            codecs: codec.into_iter().collect(),
        });
        let others: Vec<ParticipantId> = self
            .rooms
            .get(&peer.room)
            .map(|r| r.others(id))
            .unwrap_or_default();
        for other in others {
            if self.is_relayed(other) {
                continue;
            }
            if let Some(p) = self.peers.get_mut(&other) {
                p.subscriptions
                    .push(Subscription::new(id, mid, kind, source));
            }
            self.offer_if_needed(now, other);
        }
        self.announce_track(id, mid);
    }

    /// Asks `source` for a keyframe on track `mid`, on simulcast layer `layer` (`None`:
    /// the only or the lowest layer), at most once per
    /// [`SfuConfig::keyframe_request_interval`] per layer.
    fn request_keyframe(
        &mut self,
        now: Instant,
        source: ParticipantId,
        mid: Mid,
        layer: Option<usize>,
    ) {
        let interval = self.config.keyframe_request_interval;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        let Some(track) = peer.tracks.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let index = layer.unwrap_or(0);
        let (rid, last) = match track.layers.list.get_mut(index) {
            Some(l) => (l.rid, &mut l.last_keyframe_request),
            // No packet has arrived yet, so no layer is known: ask the plain stream.
            None => (None, &mut None),
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
            return;
        }
        if self.relayed.contains_key(&source) {
            // Another worker's publisher: its worker asks, under its own limit too.
            *last = Some(now);
            self.relay_keyframe_request(source, mid, rid);
            return;
        }
        let Some(conn) = peer.publish.as_mut() else {
            return;
        };
        let mut api = conn.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
            return;
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        *last = Some(now);
        self.stats.keyframe_requests += 1;
        self.dirty.push((source, Leg::Publish));
    }

    fn evaluate_speakers(&mut self, now: Instant) {
        let mut changes = Vec::new();
        // One more than each subscriber may hear, since nobody hears itself.
        let ranked = self.config.audio_top_n + 1;
        for room in self.rooms.values_mut() {
            if let Some(speaker) = room.speakers.evaluate(now) {
                changes.push((room.members.clone(), speaker));
            }
            room.speakers.rank_audible(now, ranked);
        }
        for (members, speaker) in changes {
            self.announce_speaker(&members, speaker);
        }
    }

    fn announce_speaker(&mut self, members: &[ParticipantId], speaker: Option<ParticipantId>) {
        debug!(?speaker, "active speaker");
        // Other workers' publishers relayed here hear it from their own worker.
        let here: Vec<ParticipantId> = members
            .iter()
            .copied()
            .filter(|m| self.peers.contains_key(m) && !self.is_relayed(*m))
            .collect();
        for member in &here {
            self.outputs.push_back(Output::Signal(
                *member,
                ServerMessage::ActiveSpeaker { id: speaker },
            ));
        }
    }

    /// Signaling gave participant `id` a presenter's seat (`true`) or took it back: the
    /// server's own record of who shares a screen, so that neither a label in a publish
    /// offer nor a screen track kept from an earlier share can get around
    /// `--max-presenters`.
    pub fn set_presenting(&mut self, id: ParticipantId, presenting: bool) {
        if let Some(peer) = self.peers.get_mut(&id) {
            debug!(%id, presenting, "presenter seat");
            peer.presenting = presenting;
        }
    }

    /// A moderator muted (`blocked`) or un-muted participant `id`'s `source`: while
    /// blocked, nothing of it is forwarded (from the next packet on) and its audio does
    /// not count for the active speaker. A camera or screen let through again gets a
    /// keyframe request, so subscribers see it at once.
    pub fn set_blocked(
        &mut self,
        now: Instant,
        id: ParticipantId,
        source: TrackSource,
        blocked: bool,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let was = peer.blocked.contains(&source);
        debug!(%id, ?source, blocked, "moderator block");
        if blocked && !was {
            peer.blocked.push(source);
            self.interrupt_forwarding(id, |s| s == source);
        } else if !blocked && was {
            peer.blocked.retain(|s| *s != source);
            self.resume_video(now, id, |t| t.source == source);
        }
    }

    /// Signaling made participant `id` a viewer (`false`) or let it publish again: a
    /// viewer's publish offers are refused and nothing it sends is forwarded.
    pub fn set_may_publish(&mut self, now: Instant, id: ParticipantId, may_publish: bool) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let was = peer.may_publish;
        debug!(%id, may_publish, "publishing allowed");
        peer.may_publish = may_publish;
        if !may_publish {
            self.interrupt_forwarding(id, |_| true);
        }
        if may_publish && !was {
            self.resume_video(now, id, |_| true);
        }
    }

    /// Ends the running segment of every subscription to `id`'s tracks of the sources
    /// `which` picks: when forwarding resumes, the subscriber's stream goes on without
    /// a gap in its sequence numbers (a gap would be taken for loss and waited for).
    fn interrupt_forwarding(&mut self, id: ParticipantId, which: impl Fn(TrackSource) -> bool) {
        for peer in self.peers.values_mut() {
            for sub in &mut peer.subscriptions {
                if sub.source == id && which(sub.track_source) {
                    sub.interrupt();
                }
            }
        }
    }

    /// Asks `id` for a keyframe on each of its video tracks that `which` picks.
    fn resume_video(
        &mut self,
        now: Instant,
        id: ParticipantId,
        which: impl Fn(&PublishedTrack) -> bool,
    ) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let mids: Vec<Mid> = peer
            .tracks
            .iter()
            .filter(|t| t.kind == MediaKind::Video && which(t))
            .map(|t| t.mid)
            .collect();
        for mid in mids {
            self.request_keyframe(now, id, mid, None);
        }
        self.drive(now);
    }

    /// Whether a packet of `class` from `source` is held back: a viewer's, or of a
    /// source a moderator blocked.
    fn held_back(&self, source: ParticipantId, class: MediaClass) -> bool {
        let Some(peer) = self.peers.get(&source) else {
            return true;
        };
        let src = match class {
            MediaClass::Audio => TrackSource::Microphone,
            MediaClass::Camera => TrackSource::Camera,
            MediaClass::Screen => TrackSource::Screen,
        };
        !peer.may_publish || peer.blocked.contains(&src)
    }

    /// Writes one publisher packet to every subscriber of its track.
    fn forward_rtp(&mut self, now: Instant, source: ParticipantId, packet: RtpPacket) {
        let Some(ingress) = self.ingress(now, source, &packet) else {
            // Of no known track (yet): counted as camera video, the usual case.
            self.stats
                .received
                .get_mut(MediaClass::Camera)
                .add(packet.payload.len());
            return;
        };
        self.stats
            .received
            .get_mut(ingress.class)
            .add(packet.payload.len());
        if ingress.class == MediaClass::Screen
            && !self.peers.get(&source).is_some_and(|p| p.presenting)
        {
            // A screen kept on the connection after its share ended: nobody sees it.
            return;
        }
        if self.held_back(source, ingress.class) {
            // Muted by a moderator, or a viewer's: nobody gets it.
            return;
        }
        // Other workers of the room first: they send to their subscribers in parallel.
        self.relay_out(source, &ingress);
        if let Some(layer) = self.fan_out(now, source, &ingress) {
            self.request_keyframe(now, source, ingress.mid, Some(layer));
        }
        if ingress.new_codec {
            for other in self.room_members_of(source) {
                if other != source {
                    self.offer_if_needed(now, other);
                }
            }
        }
    }

    /// The publisher's side of a packet: binds the SSRC it came on to its stream (it
    /// passed SRTP authentication), notes a codec not seen on the track before, meters
    /// the layer, and hands the audio level to the room's speaker detector. Returns what
    /// the subscribers' side needs, or `None` for a packet of no known track.
    fn ingress(
        &mut self,
        now: Instant,
        source: ParticipantId,
        packet: &RtpPacket,
    ) -> Option<Ingress> {
        let peer = self.peers.get_mut(&source)?;
        let conn = peer.publish.as_mut()?;
        let ssrc = packet.header.ssrc;
        let (mid, rid, rtx) = conn
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid(), s.rtx()))?;
        let bound = BoundSsrc {
            mid,
            rid,
            ssrc,
            rtx,
        };
        match peer
            .bound_ssrcs
            .iter_mut()
            .find(|b| b.mid == mid && b.rid == rid)
        {
            Some(b) => *b = bound,
            None => peer.bound_ssrcs.push(bound),
        }
        let params = peer.params_of(*packet.header.payload_type)?;
        let track = peer.tracks.iter_mut().find(|t| t.mid == mid)?;
        let new_codec = !track.codecs.iter().any(|c| c.pt() == params.pt());
        if new_codec {
            // Not the codec negotiated first: subscribe connections that lack it need
            // a new one that offers it.
            debug!(%source, %mid, codec = ?params.spec().codec, "track sent in another codec");
            track.codecs.push(params);
        }
        let kind = track.kind;
        let class = MediaClass::of(kind, track.source);
        let codec = params.spec().codec;
        // The VP8 descriptor is read here, once per arriving packet: keyframe start,
        // picture size and the ids every subscriber's mapping needs.
        let vp8 = (kind == MediaKind::Video && codec == Codec::Vp8)
            .then(|| vp8::parse(&packet.payload))
            .flatten();
        let keyframe = match &vp8 {
            Some(d) => d.keyframe,
            None => kind == MediaKind::Video && starts_keyframe(codec, &packet.payload),
        };
        let (index, shifted) = track.layers.index_of(rid);
        let size = vp8
            .as_ref()
            .filter(|d| d.keyframe)
            .and_then(|d| vp8::keyframe_size_at(&packet.payload, &d.descriptor));
        let bytes = packet.payload.len() + PACKET_OVERHEAD;
        track.layers.on_packet(index, now, bytes, size);
        let muted = !peer.may_publish || peer.blocked.contains(&TrackSource::Microphone);
        if let (MediaKind::Audio, Some(level), false) =
            (kind, packet.header.ext_vals.audio_level, muted)
        {
            if let Some(room) = self.rooms.get_mut(&peer.room) {
                room.speakers.on_audio(source, now, level);
            }
        }
        Some(Ingress {
            mid,
            rid,
            kind,
            class,
            params,
            vp8,
            vp8_patchable: OnceCell::new(),
            size,
            index,
            shifted,
            new_codec,
            incoming: Incoming {
                layer: if kind == MediaKind::Video { index } else { 0 },
                seq: *packet.seq_no,
                ts: packet.header.timestamp,
                at: now,
                keyframe: kind == MediaKind::Audio || keyframe,
                clock_rate: params.spec().clock_rate.get(),
            },
            exts: ExtensionValues {
                audio_level: packet.header.ext_vals.audio_level,
                voice_activity: packet.header.ext_vals.voice_activity,
                video_orientation: packet.header.ext_vals.video_orientation,
                ..Default::default()
            },
            payload: packet.payload.clone(),
            marker: packet.header.marker,
            arrived: packet.timestamp,
        })
    }

    /// Writes the packet to every other member of the source's room who subscribes to
    /// its track. Returns the layer a subscriber waits for a key frame of, if any.
    fn fan_out(&mut self, now: Instant, source: ParticipantId, ingress: &Ingress) -> Option<usize> {
        // Disjoint borrows: the room's member list is read while subscribers change.
        let Sfu {
            config,
            peers,
            rooms,
            dirty,
            outputs,
            stats,
            ..
        } = self;
        let room = peers.get(&source).and_then(|p| rooms.get(&p.room))?;
        let mut need_keyframe = None;
        for &other in &room.members {
            if other == source {
                continue;
            }
            let Some(Peer {
                subscriptions,
                subscribe,
                downlink,
                ..
            }) = peers.get_mut(&other)
            else {
                continue;
            };
            let Some(sub) = subscriptions
                .iter_mut()
                .find(|s| s.source == source && s.source_mid == ingress.mid)
            else {
                continue;
            };
            if ingress.shifted {
                // A layer appeared below others (layers start in any order): the indices
                // subscriptions hold must follow, or they would forward the wrong layer.
                sub.layer_inserted(ingress.index);
            }
            if ingress.kind == MediaKind::Audio
                && !room.speakers.is_audible(other, source, config.audio_top_n)
            {
                sub.interrupt();
                continue;
            }
            let (seq, ts, switched) = match sub.verdict(&ingress.incoming) {
                Verdict::Forward { seq, ts, switched } => (seq, ts, switched),
                Verdict::NeedKeyframe(l) => {
                    need_keyframe = Some(l);
                    continue;
                }
                Verdict::Drop => continue,
            };
            if sub.mid().is_none() {
                continue;
            }
            if switched && ingress.kind == MediaKind::Video {
                stats.layer_switches += 1;
                if let Some(msg) = video_state_change(sub) {
                    outputs.push_back(Output::Signal(other, msg));
                }
            }
            let conn = (&mut subscribe.rtc, downlink);
            if write_to_subscriber(now, conn, sub, ingress, (seq, ts, switched), stats) {
                dirty.push((other, Leg::Subscribe));
            }
        }
        need_keyframe
    }
    /// Everyone in `id`'s room (`id` too).
    fn room_members_of(&self, id: ParticipantId) -> Vec<ParticipantId> {
        self.peers
            .get(&id)
            .and_then(|p| self.rooms.get(&p.room))
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }
}

/// What the subscribers' side of forwarding needs to know about a publisher packet.
struct Ingress {
    /// The publisher's media section it belongs to.
    mid: Mid,
    /// Its simulcast layer's rid, if any.
    rid: Option<Rid>,
    kind: MediaKind,
    /// Audio, camera or screen, for the counters.
    class: MediaClass,
    /// Its payload type's parameters on the publish connection.
    params: PayloadParams,
    /// A VP8 packet's descriptor, whose picture ids are rewritten per subscriber.
    vp8: Option<vp8::Parsed>,
    /// The same descriptor as str0m reads it, for a patch applied while str0m
    /// serializes the packet; read at the first subscriber that needs one.
    vp8_patchable: OnceCell<Option<Vp8Descriptor>>,
    /// A VP8 key frame's picture size.
    size: Option<(u32, u32)>,
    /// Its layer's index among the track's layers.
    index: usize,
    /// Its layer appeared below others: subscriptions' indices must follow.
    shifted: bool,
    /// The track is sent in a codec not seen on it before.
    new_codec: bool,
    /// What a subscription decides on.
    incoming: Incoming,
    /// The header extensions passed on.
    exts: ExtensionValues,
    /// The RTP payload.
    payload: Arc<[u8]>,
    /// The RTP marker bit (last packet of a frame).
    marker: bool,
    /// When the packet arrived (or a station produced it).
    arrived: Instant,
}

/// Writes one forwarded packet to a subscriber's connection (`rtc`), with the sequence
/// number and timestamp its subscription `sub` gave it, and whether its layer just
/// switched. Returns whether it was written.
fn write_to_subscriber(
    now: Instant,
    (rtc, downlink): (&mut Rtc, &mut Downlink),
    sub: &mut Subscription,
    ingress: &Ingress,
    (seq, ts, switched): (u64, u32, bool),
    stats: &mut SfuStats,
) -> bool {
    let Some(out_mid) = sub.mid() else {
        return false;
    };
    let video = ingress.kind == MediaKind::Video;
    // Shared, not copied: str0m copies the payload once, into the datagram it builds.
    let mut payload = ingress.payload.clone();
    let mut patch = None;
    if let Some(d) = &ingress.vp8 {
        if let Some(ids) = sub.map_vp8(d, seq, switched) {
            // After a layer switch the subscriber's picture ids differ from the
            // publisher's: str0m writes ours while it serializes the packet. Should
            // str0m not read the descriptor as we do, the subscriber gets its own copy.
            patch = vp8_patch(ingress, &payload, &ids);
            if patch.is_none() {
                let mut own = payload.to_vec();
                ids.write(&mut own);
                payload = own.into();
            }
        }
    }
    let Some(pt) = rtc
        .codec_config()
        .match_params(ingress.params)
        .map(|p| p.pt())
    else {
        return false;
    };
    let mut api = rtc.direct_api();
    let Some(tx) = api.stream_tx_by_mid(out_mid, None) else {
        return false;
    };
    stats.forwarded.get_mut(ingress.class).add(payload.len());
    downlink.on_sent(now, payload.len() + PACKET_OVERHEAD);
    let mut write = RtpWrite::new(pt, seq.into(), ts, ingress.arrived, payload)
        .marker(ingress.marker)
        .ext_vals(ingress.exts.clone())
        .nackable(video);
    if let Some(patch) = patch {
        write = write.vp8_patch(patch);
    }
    tx.write_rtp(write);
    true
}

/// str0m's patch that writes `ids` into `payload` as it is serialized (and in every
/// retransmission), or `None` if str0m cannot express it.
fn vp8_patch(ingress: &Ingress, payload: &[u8], ids: &Vp8Ids) -> Option<Vp8Patch> {
    let d = ingress
        .vp8_patchable
        .get_or_init(|| Vp8Descriptor::parse(payload).ok())
        .as_ref()?;
    let mut b = d.patch();
    if let Some(id) = ids.picture_id() {
        b = b.picture_id(id);
    }
    if let Some(tl0) = ids.tl0() {
        b = b.tl0_pic_idx(tl0);
    }
    b.build().ok()
}

/// A `video_state` message for `sub` if what it forwards changed since the subscriber
/// was last told.
fn video_state_change(sub: &mut Subscription) -> Option<ServerMessage> {
    let state = sub.video_state();
    if sub.reported == Some(state) {
        return None;
    }
    // Nothing to say about a track that has not started: the client shows it loading.
    if sub.reported.is_none() && state == (None, None) {
        return None;
    }
    sub.reported = Some(state);
    let mid = sub.mid()?;
    Some(ServerMessage::VideoState {
        mid: mid.to_string(),
        participant: sub.source,
        layer: state.0,
        paused: state.1,
    })
}
