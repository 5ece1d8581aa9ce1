//! Scenario harness for the SFU core: one [`Sfu`] (or several, as the server's media
//! workers, wired by the harness as the server wires them), simulated browsers
//! ([`SimClient`]) and a simulated network ([`Network`]), all on one virtual clock.
//!
//! The clock only moves in [`World::run_until`]: it jumps to the earliest of the SFU's
//! timeout, any client connection's timeout, the next datagram arrival and the next
//! frame a camera or microphone produces, and handles everything due then. Nothing
//! sleeps; a simulated minute takes a fraction of a real second. Signaling is instant
//! and lossless (it runs over a WebSocket in the real server).
//!
//! Modules:
//! - [`client`]: the simulated browser and its media source.
//! - [`net`]: the datagram queue with seeded loss and delay per link.
//! - [`payload`]: labelled frames a receiver can check byte for byte.
//! - [`check`]: comparing what a subscriber received with what a publisher sent.

// Each scenario file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod check;
pub mod client;
pub mod net;
pub mod payload;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanmeet_proto::{
    ClientMessage, MediaSignal, PublishedTrack, TrackKind, TrackSource, TrackView,
};
use lanmeet_sfu::str0m::config::CryptoProvider;
use lanmeet_sfu::{
    Datagram, Output, ParticipantId, RelayControl, RelayPacket, ServerMessage, Sfu, SfuConfig,
    WorkerId,
};

pub use check::StreamReport;
pub use client::{KeyframePolicy, Leg, SimClient};
pub use net::{Link, Network};
pub use payload::Encoding;

/// The SFU worker's address: its only host candidate.
pub const SERVER_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)), 4000);

/// At most this many datagrams reach a worker in one `handle_datagrams` call, as the
/// media worker reads at most this many per `recvmmsg`.
const WORKER_BATCH: usize = 32;

/// How long the SFU is left alone when it asks to be woken at the instant it was just
/// woken (see `client::MIN_WAKE`).
const MIN_WAKE: Duration = Duration::from_millis(1);

/// How many times the clock may stand still before the harness declares a livelock.
const MAX_STEPS_PER_INSTANT: u32 = 100_000;

/// Which way along which connection a link runs, from a client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Publisher → SFU: the client's camera and microphone packets.
    PublishUp,
    /// SFU → publisher: feedback (NACK, PLI, receiver reports).
    PublishDown,
    /// Subscriber → SFU: feedback.
    SubscribeUp,
    /// SFU → subscriber: everyone else's media.
    SubscribeDown,
}

/// One media worker: its `Sfu`, when it next wants to be woken, its address.
struct Worker {
    sfu: Sfu,
    timeout: Instant,
    addr: SocketAddr,
}

/// Something one worker hands another.
enum Relayed {
    Packet(RelayPacket),
    Control(RelayControl),
}

/// The simulated world of one scenario.
pub struct World {
    now: Instant,
    start: Instant,
    workers: Vec<Worker>,
    crypto: Arc<CryptoProvider>,
    clients: Vec<SimClient>,
    /// Each participant's room and worker.
    placement: HashMap<ParticipantId, (String, usize)>,
    /// What workers handed each other and is not delivered yet: (from, to, what).
    relay_queue: VecDeque<(usize, usize, Relayed)>,
    /// Relayed packets delivered, by (from, to) worker.
    pub relay_packets: HashMap<(usize, usize), u64>,
    /// Relay control messages delivered, in order: (from, to, message).
    pub relay_controls: Vec<(usize, usize, RelayControl)>,
    /// While set, relayed packets are dropped instead of delivered (controls still go).
    pub drop_relayed_packets: bool,
    /// The network between everyone.
    pub net: Network,
}

impl World {
    /// An empty world whose randomness (loss, fuzz input) follows `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, |_| {})
    }

    /// Like [`World::new`], with the SFU's config adjusted by `tune`.
    pub fn with_config(seed: u64, tune: impl FnOnce(&mut SfuConfig)) -> Self {
        // One worker: `tune` runs once.
        let tune = std::cell::Cell::new(Some(tune));
        Self::with_workers(seed, 1, |c| {
            if let Some(t) = tune.take() {
                t(c)
            }
        })
    }

    /// A world with `n` media workers (worker `i` at port 4000 + `i`, each with its own
    /// `Sfu` configured by `tune`), whose relay outputs the harness delivers to each
    /// other at once, batched per destination as the server's worker loop does.
    pub fn with_workers(seed: u64, n: usize, tune: impl Fn(&mut SfuConfig)) -> Self {
        init_log();
        // The only reading of the real clock: the simulation's origin. Everything after
        // is this instant plus simulated time.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let workers = (0..n)
            .map(|i| {
                let addr = SocketAddr::new(SERVER_ADDR.ip(), SERVER_ADDR.port() + i as u16);
                let mut config = SfuConfig::new(vec![addr]);
                tune(&mut config);
                Worker {
                    sfu: Sfu::new(config, start),
                    timeout: start,
                    addr,
                }
            })
            .collect();
        World {
            now: start,
            start,
            workers,
            crypto: Arc::new(lanmeet_sfu::str0m::crypto::from_feature_flags()),
            clients: Vec::new(),
            placement: HashMap::new(),
            relay_queue: VecDeque::new(),
            relay_packets: HashMap::new(),
            relay_controls: Vec::new(),
            drop_relayed_packets: false,
            net: Network::new(seed),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the world was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The SFU under test (the first worker's).
    pub fn sfu(&self) -> &Sfu {
        &self.workers[0].sfu
    }

    /// Worker `w`'s SFU.
    pub fn sfu_of(&self, w: usize) -> &Sfu {
        &self.workers[w].sfu
    }

    /// The worker participant `id` is on (0 for a station or an unknown id).
    fn worker_of(&self, id: ParticipantId) -> usize {
        self.placement.get(&id).map_or(0, |(_, w)| *w)
    }

    /// Starts a station (participant id `id`, not a client's) playing `media` in
    /// `room` now.
    pub fn start_station(
        &mut self,
        room: &str,
        id: ParticipantId,
        media: Arc<lanmeet_sfu::StationMedia>,
    ) {
        self.workers[0].sfu.start_station(self.now, id, room, media);
        self.drain_sfu(0, false);
    }

    /// Station `id` goes off the air (`Sfu::stop_station`).
    pub fn stop_station(&mut self, id: ParticipantId) {
        self.workers[0].sfu.stop_station(self.now, id);
        self.drain_sfu(0, false);
    }

    /// Viewer `name` switches to station `to` (see `Sfu::switch_station`); returns
    /// whether it could without a new negotiation.
    pub fn switch_station(&mut self, name: &str, to: ParticipantId) -> bool {
        let id = self.id(name);
        let switched = self.workers[0].sfu.switch_station(self.now, id, to);
        self.drain_sfu(0, false);
        switched
    }

    /// Participant `name` enters `room` (media side only: the SFU's `join`).
    pub fn join(&mut self, room: &str, name: &str) -> ParticipantId {
        self.join_with(room, name, true)
    }

    /// Like [`World::join`], on worker `w`: the other workers that hold members of
    /// `room` are named to it, as the server's registry does (`Sfu::join_across`).
    pub fn join_on(&mut self, w: usize, room: &str, name: &str) -> ParticipantId {
        self.join_placed(room, name, true, w)
    }

    /// Like [`World::join`], for a client whose subscribe connection does not
    /// negotiate transport-wide congestion control feedback (some WebRTC stacks do
    /// not), so the SFU never gets a bandwidth estimate for it.
    pub fn join_without_twcc(&mut self, room: &str, name: &str) -> ParticipantId {
        self.join_with(room, name, false)
    }

    /// Like [`World::join`], for a client whose subscribe connection decodes only H.264
    /// video (`SimClient::h264_only`).
    pub fn join_h264_only(&mut self, room: &str, name: &str) -> ParticipantId {
        let id = self.join_with(room, name, true);
        self.client_mut(name).h264_only = true;
        id
    }

    fn join_with(&mut self, room: &str, name: &str, twcc: bool) -> ParticipantId {
        self.join_placed(room, name, twcc, 0)
    }

    fn join_placed(&mut self, room: &str, name: &str, twcc: bool, w: usize) -> ParticipantId {
        assert!(
            self.clients.iter().all(|c| c.name != name),
            "{name} joined twice"
        );
        let n = self.clients.len() as u8 + 1;
        let id = ParticipantId(u64::from(n));
        let ip = Ipv4Addr::new(10, 0, 0, n);
        let publish = SocketAddr::new(ip.into(), 5000);
        let subscribe = SocketAddr::new(ip.into(), 5001);
        let mut client = SimClient::new(name, id, publish, subscribe);
        client.twcc = twcc;
        self.clients.push(client);
        let mut others: Vec<WorkerId> = self
            .placement
            .values()
            .filter(|(r, o)| r == room && *o != w)
            .map(|(_, o)| WorkerId(*o))
            .collect();
        others.sort_unstable();
        others.dedup();
        self.placement.insert(id, (room.to_string(), w));
        self.workers[w].sfu.join_across(self.now, room, id, &others);
        self.drain_sfu(w, false);
        id
    }

    /// `name` turns on camera and microphone: its publish connection offers them.
    pub fn publish(&mut self, name: &str, policy: KeyframePolicy) {
        self.publish_encodings(name, policy, &[payload::SINGLE]);
    }

    /// Like [`World::publish`], with the camera sent as three simulcast layers
    /// ([`payload::SIMULCAST`]).
    pub fn publish_simulcast(&mut self, name: &str, policy: KeyframePolicy) {
        self.publish_encodings(name, policy, &payload::SIMULCAST);
    }

    fn publish_encodings(&mut self, name: &str, policy: KeyframePolicy, encodings: &[Encoding]) {
        self.publish_declared(name, policy, encodings, 0, &[]);
    }

    /// `name` publishes microphone, camera (`encodings`) and `extra_videos` more video
    /// sections, and its offer's `tracks` declares the sections' sources in that order
    /// (`sources` may be shorter: the rest go undeclared). Nothing is sent on the extra
    /// sections; declaring the camera's section a screen sends "screen" video.
    pub fn publish_declared(
        &mut self,
        name: &str,
        policy: KeyframePolicy,
        encodings: &[Encoding],
        extra_videos: usize,
        sources: &[TrackSource],
    ) {
        let now = self.now;
        let crypto = self.crypto.clone();
        let client = self.client_mut(name);
        let id = client.id;
        let offer = client.publish_offer(&crypto, now, policy, encodings, extra_videos);
        let tracks = client
            .publish_mids
            .iter()
            .zip(sources)
            .map(|(mid, source)| PublishedTrack {
                mid: mid.to_string(),
                source: *source,
            })
            .collect();
        let w = self.worker_of(id);
        self.workers[w]
            .sfu
            .signal(now, id, MediaSignal::PublishOffer { sdp: offer, tracks });
        self.drain_sfu(w, false);
    }

    /// `name`'s publish offer for microphone and camera (one encoding), not sent: the
    /// SDP and its sections' mids, for a test to alter as a third-party client might.
    pub fn make_publish_offer(&mut self, name: &str) -> (String, Vec<String>) {
        let now = self.now;
        let crypto = self.crypto.clone();
        let client = self.client_mut(name);
        let sdp = client.publish_offer(
            &crypto,
            now,
            KeyframePolicy::Every(60),
            &[payload::SINGLE],
            0,
        );
        let mids = client.publish_mids.iter().map(|m| m.to_string()).collect();
        (sdp, mids)
    }

    /// Sends `signal` to the SFU as `name`'s, as it is, and delivers what follows.
    pub fn send_signal(&mut self, name: &str, signal: lanmeet_proto::MediaSignal) {
        let now = self.now;
        let id = self.id(name);
        let w = self.worker_of(id);
        self.workers[w].sfu.signal(now, id, signal);
        self.drain_sfu(w, false);
    }

    /// Signaling gives `name` a presenter's seat, or takes it back.
    pub fn set_presenting(&mut self, name: &str, presenting: bool) {
        let id = self.id(name);
        let w = self.worker_of(id);
        self.workers[w].sfu.set_presenting(id, presenting);
        self.drain_sfu(w, false);
    }

    /// A moderator muted (`blocked`) or un-muted `name`'s `source` (`Sfu::set_blocked`).
    pub fn set_blocked(&mut self, name: &str, source: lanmeet_proto::TrackSource, blocked: bool) {
        let id = self.id(name);
        let now = self.now;
        let w = self.worker_of(id);
        self.workers[w].sfu.set_blocked(now, id, source, blocked);
        self.drain_sfu(w, false);
    }

    /// `name` became a viewer (`false`) or may publish again (`Sfu::set_may_publish`).
    pub fn set_may_publish(&mut self, name: &str, may_publish: bool) {
        let id = self.id(name);
        let now = self.now;
        let w = self.worker_of(id);
        self.workers[w].sfu.set_may_publish(now, id, may_publish);
        self.drain_sfu(w, false);
    }

    /// `name` renegotiates its publish connection, adding a screen-share section.
    pub fn renegotiate_publish(&mut self, name: &str) {
        let now = self.now;
        let client = self.client_mut(name);
        let id = client.id;
        let offer = client.renegotiate_publish();
        let w = self.worker_of(id);
        self.workers[w].sfu.signal(
            now,
            id,
            MediaSignal::PublishOffer {
                sdp: offer,
                tracks: Vec::new(),
            },
        );
        self.drain_sfu(w, false);
    }

    /// `name` leaves (signaling tells the SFU). Its browser is not told: it keeps
    /// sending, as a frozen tab would, and the SFU must ignore it.
    pub fn leave(&mut self, name: &str) {
        let id = self.id(name);
        let w = self.worker_of(id);
        self.placement.remove(&id);
        self.workers[w].sfu.leave(self.now, id);
        self.drain_sfu(w, false);
    }

    /// `subscriber`'s browser asks for a key frame of `publisher`'s video (RTCP PLI).
    pub fn request_keyframe(&mut self, subscriber: &str, publisher: &str) {
        let publisher = self.id(publisher);
        let now = self.now;
        let World { clients, net, .. } = self;
        let client = clients
            .iter_mut()
            .find(|c| c.name == subscriber)
            .unwrap_or_else(|| panic!("no participant {subscriber}"));
        client.request_keyframe(now, publisher, net);
    }

    /// `subscriber`'s browser asks for a key frame of the video of `publisher`, a
    /// participant id that need not be a client's (a station's).
    pub fn request_keyframe_of(&mut self, subscriber: &str, publisher: ParticipantId) {
        let now = self.now;
        let World { clients, net, .. } = self;
        let client = clients
            .iter_mut()
            .find(|c| c.name == subscriber)
            .unwrap_or_else(|| panic!("no participant {subscriber}"));
        client.request_keyframe(now, publisher, net);
    }

    /// `name`'s microphone hears this level from now on (dBov: 0 loudest, -127 silence).
    pub fn set_audio_level(&mut self, name: &str, level: i8) {
        let source = self.client_mut(name).source.as_mut();
        source.expect("publishing").audio_level = Some(level);
    }

    /// `subscriber`'s page now shows each listed publisher's camera in a tile of this
    /// size (device pixels); publishers not listed are not visible. Panics if the
    /// subscriber has no track of a listed publisher yet.
    pub fn set_view(&mut self, subscriber: &str, tiles: &[(&str, u32, u32)]) {
        let views: Vec<TrackView> = tiles
            .iter()
            .map(|(publisher, width, height)| {
                let owner = self.id(publisher);
                let mid = self
                    .client(subscriber)
                    .tracks
                    .iter()
                    .find(|t| t.participant == owner && t.kind == TrackKind::Video)
                    .unwrap_or_else(|| panic!("{subscriber} has no video of {publisher}"))
                    .mid
                    .clone();
                TrackView {
                    mid,
                    width: *width,
                    height: *height,
                }
            })
            .collect();
        let id = self.id(subscriber);
        let w = self.worker_of(id);
        self.workers[w]
            .sfu
            .signal(self.now, id, MediaSignal::View { tracks: views });
        self.drain_sfu(w, false);
    }

    /// `name` turns camera and microphone off: no more frames are produced.
    pub fn stop_media(&mut self, name: &str) {
        self.client_mut(name).stop_media();
    }

    /// Sets the behaviour of one of `name`'s links, for datagrams sent from now on.
    pub fn set_link(&mut self, name: &str, path: Path, link: Link) {
        let c = self.client(name);
        let server = self.workers[self.worker_of(c.id)].addr;
        let (from, to) = match path {
            Path::PublishUp => (c.publish_addr, server),
            Path::PublishDown => (server, c.publish_addr),
            Path::SubscribeUp => (c.subscribe_addr, server),
            Path::SubscribeDown => (server, c.subscribe_addr),
        };
        self.net.set_link(self.now, from, to, link);
    }

    /// The id of participant `name`.
    pub fn id(&self, name: &str) -> ParticipantId {
        self.client(name).id
    }

    /// Participant `name`'s browser.
    pub fn client(&self, name: &str) -> &SimClient {
        self.clients
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no participant {name}"))
    }

    /// Participant `name`'s browser, mutably.
    pub fn client_mut(&mut self, name: &str) -> &mut SimClient {
        self.clients
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no participant {name}"))
    }

    /// What `subscriber` has received of `publisher`'s video and audio, compared with
    /// what `publisher` sent.
    pub fn report(&self, subscriber: &str, publisher: &str) -> StreamReport {
        let sub = self.client(subscriber);
        let publ = self.client(publisher);
        StreamReport::new(sub, publ)
    }

    /// Feeds an arbitrary datagram to the SFU as if it arrived now from `from`.
    pub fn inject(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.workers[0]
            .sfu
            .handle_datagram(self.now, from, SERVER_ADDR, bytes);
        self.drain_sfu(0, false);
    }

    /// Runs the world for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline);
    }

    /// Runs until `done` holds, for at most `limit` of simulated time. Returns whether
    /// `done` came true.
    pub fn run_until_cond(&mut self, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
        let deadline = self.now + limit;
        while !done(self) {
            if self.now >= deadline {
                return false;
            }
            let step = (self.now + Duration::from_millis(10)).min(deadline);
            self.run_until(step);
        }
        true
    }

    /// Runs until simulated time `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        let mut still = 0;
        loop {
            let next = self.next_wakeup().max(self.now);
            if next > deadline {
                break;
            }
            if next == self.now {
                still += 1;
                assert!(
                    still < MAX_STEPS_PER_INSTANT,
                    "livelock: the clock stands still at {:?}",
                    self.elapsed()
                );
            } else {
                still = 0;
            }
            self.now = next;
            self.step();
        }
        self.now = deadline;
    }

    fn next_wakeup(&self) -> Instant {
        let clients = self.clients.iter().filter_map(SimClient::next_wakeup);
        let net = self.net.next_arrival();
        let workers = self.workers.iter().map(|w| w.timeout);
        clients
            .chain(net)
            .chain(workers)
            .fold(self.now + Duration::from_secs(3600), |a, b| a.min(b))
    }

    /// Handles everything due at `self.now`.
    fn step(&mut self) {
        let now = self.now;
        // Consecutive datagrams from one sender to a worker at one instant (a frame's
        // packets) reach it as one batch, up to WORKER_BATCH of them, as the media
        // worker reads its socket. Not across senders: signaling here is instant, so
        // what one datagram causes (a subscription answered) must precede the next
        // sender's packets as it did before batches.
        let mut batches: Vec<Vec<net::Datagram>> = vec![Vec::new(); self.workers.len()];
        while let Some(d) = self.net.pop_due(now) {
            if let Some(w) = self.workers.iter().position(|w| w.addr == d.to) {
                if batches[w].last().is_some_and(|last| last.from != d.from) {
                    self.hand_batch(w, &mut batches[w]);
                }
                batches[w].push(d);
                if batches[w].len() == WORKER_BATCH {
                    self.hand_batch(w, &mut batches[w]);
                }
                continue;
            }
            // In the order they arrived: what a worker got before this one first.
            for (w, batch) in batches.iter_mut().enumerate() {
                self.hand_batch(w, batch);
            }
            let target = self
                .clients
                .iter_mut()
                .find_map(|c| c.leg_at(d.to).map(|leg| (c, leg)));
            if let Some((client, leg)) = target {
                client.receive(now, leg, d.from, &d.bytes, &mut self.net);
            }
        }
        for (w, batch) in batches.iter_mut().enumerate() {
            self.hand_batch(w, batch);
        }
        for w in 0..self.workers.len() {
            if self.workers[w].timeout <= now {
                self.workers[w].sfu.handle_timeout(now);
                self.drain_sfu(w, true);
            }
        }
        for client in &mut self.clients {
            client.wake(now, &mut self.net);
        }
    }

    /// Hands worker `w` the datagrams in `batch` (emptied) in one `handle_datagrams`.
    fn hand_batch(&mut self, w: usize, batch: &mut Vec<net::Datagram>) {
        if batch.is_empty() {
            return;
        }
        let now = self.now;
        self.workers[w]
            .sfu
            .handle_datagrams(batch.iter().map(|d| Datagram {
                arrived: now,
                source: d.from,
                destination: d.to,
                contents: &d.bytes,
            }));
        batch.clear();
        self.drain_sfu(w, false);
    }

    /// Takes every output of worker `w`'s SFU: datagrams go on the network, signaling
    /// goes to the clients (whose answers go straight back to their SFU), relay outputs
    /// to the other workers.
    fn drain_sfu(&mut self, w: usize, after_timeout: bool) {
        self.drain_one(w, after_timeout);
        self.deliver_relayed();
    }

    /// Delivers what workers handed each other, until none has anything more: each
    /// worker's consecutive packets from one worker go in one `handle_relay` call.
    fn deliver_relayed(&mut self) {
        let now = self.now;
        while let Some((from, to, first)) = self.relay_queue.pop_front() {
            match first {
                Relayed::Control(control) => {
                    self.relay_controls.push((from, to, control.clone()));
                    self.workers[to]
                        .sfu
                        .handle_relay_control(now, WorkerId(from), control);
                }
                Relayed::Packet(packet) => {
                    let mut batch = vec![packet];
                    while let Some((f, t, Relayed::Packet(_))) = self.relay_queue.front() {
                        if (*f, *t) != (from, to) {
                            break;
                        }
                        if let Some((_, _, Relayed::Packet(p))) = self.relay_queue.pop_front() {
                            batch.push(p);
                        }
                    }
                    if self.drop_relayed_packets {
                        continue;
                    }
                    *self.relay_packets.entry((from, to)).or_default() += batch.len() as u64;
                    self.workers[to]
                        .sfu
                        .handle_relay(now, WorkerId(from), &batch);
                }
            }
            self.drain_one(to, false);
        }
    }

    fn drain_one(&mut self, w: usize, mut after_timeout: bool) {
        let now = self.now;
        loop {
            let mut signals = Vec::new();
            loop {
                match self.workers[w].sfu.poll_output() {
                    Output::Transmit(t) => {
                        self.net
                            .send(now, t.source, t.destination, t.contents.to_vec());
                    }
                    Output::Signal(id, msg) => signals.push((id, msg)),
                    Output::MediaFailed(id) => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.id == id) {
                            c.media_failed = true;
                        }
                    }
                    Output::Relay { to, packet } => {
                        self.relay_queue
                            .push_back((w, to.0, Relayed::Packet(packet)));
                    }
                    Output::RelayControl { to, control } => {
                        self.relay_queue
                            .push_back((w, to.0, Relayed::Control(control)));
                    }
                    Output::Timeout(t) => {
                        self.workers[w].timeout = if after_timeout && t <= now {
                            now + MIN_WAKE
                        } else {
                            t
                        };
                        break;
                    }
                }
            }
            if signals.is_empty() {
                return;
            }
            for (id, msg) in signals {
                self.signal(id, msg);
            }
            after_timeout = false;
        }
    }

    /// Delivers one signaling message from the SFU to a client, like the browser's
    /// protocol module would handle it.
    fn signal(&mut self, id: ParticipantId, msg: ServerMessage) {
        let now = self.now;
        let crypto = self.crypto.clone();
        let Some(client) = self.clients.iter_mut().find(|c| c.id == id) else {
            panic!("signal for unknown participant {id}: {msg:?}");
        };
        match msg {
            ServerMessage::PublishAnswer { sdp } => {
                client.accept_publish_answer(now, &sdp);
                client.drive(now, Leg::Publish, false, &mut self.net);
            }
            ServerMessage::SubscribeOffer {
                sdp,
                tracks,
                new_connection,
            } => {
                let offer_bytes = json_len(&ServerMessage::SubscribeOffer {
                    sdp: sdp.clone(),
                    tracks: tracks.clone(),
                    new_connection,
                });
                if new_connection {
                    // Like the web client: close the old connection, answer on a new one.
                    client.new_subscribe_connections += 1;
                    if let Some(mut old) = client.subscribe.take() {
                        old.rtc.disconnect();
                    }
                }
                client.last_offer = sdp.clone();
                let mut answer = client.accept_subscribe_offer(&crypto, now, &sdp, tracks);
                if client.refuse_answers > 0 {
                    // A broken answer, as if the browser had mangled it.
                    client.refuse_answers -= 1;
                    answer = answer.replace("a=fingerprint", "a=fingerprint-broken");
                    answer.truncate(answer.len() / 2);
                }
                let answer_bytes = json_len(&ClientMessage::SubscribeAnswer {
                    sdp: answer.clone(),
                });
                client.sdp_sizes.push((offer_bytes, answer_bytes));
                client.drive(now, Leg::Subscribe, false, &mut self.net);
                if client.oversized_answers > 0 {
                    // Signaling refuses the answer as too large; the SFU hears of it.
                    client.oversized_answers -= 1;
                    let w = self.worker_of(id);
                    self.workers[w]
                        .sfu
                        .signal(now, id, MediaSignal::SubscribeAnswerRefused);
                } else {
                    let w = self.worker_of(id);
                    self.workers[w].sfu.signal(
                        now,
                        id,
                        MediaSignal::SubscribeAnswer { sdp: answer },
                    );
                }
            }
            ServerMessage::ActiveSpeaker { id } => client.speakers.push((now, id)),
            ServerMessage::VideoState {
                participant,
                layer,
                paused,
                ..
            } => client.video_states.push((now, participant, layer, paused)),
            other => client.other_signals.push(other),
        }
    }
}

/// The size of `msg` as JSON text: what it costs on the signaling socket.
fn json_len(msg: &impl serde::Serialize) -> usize {
    serde_json::to_string(msg).map_or(0, |s| s.len())
}

/// Logs to stderr when `RUST_LOG` asks for it (e.g. `RUST_LOG=lanmeet_sfu=debug`).
fn init_log() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
    // Several tests in one binary each try; the first wins.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
