//! A media engine: one thread driving the media connections of many participants.
//!
//! Each connection has its own UDP socket (the server tells connections apart by source
//! address), but one thread waits on all of them with `mio`, so a few hundred
//! participants cost one core, not hundreds of threads. Signaling tasks talk to the
//! engine through [`EngineHandle`]: commands in, SDP and connection events out.
//!
//! Two kinds of connection: a str0m `Rtc` in RTP mode (full ICE, DTLS-SRTP), as a
//! browser would have, or a plain UDP socket for the no-crypto relay that measures the
//! machine's ceiling. Publishers write RTP directly (`write_rtp`) with payloads from
//! [`crate::payload`]; subscribers decode them and record [`crate::stats`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use mio::{Events, Interest, Poll, Token, Waker};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

use crate::payload::{self, FramePart, Kind, Label};
use crate::stats::EngineStats;

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

/// Which of a participant's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// Our media to the server.
    Publish,
    /// Everyone else's media from the server.
    Subscribe,
}

/// What the engine tells a participant's signaling task.
#[derive(Debug)]
pub enum EngineEvent {
    /// ICE and DTLS finished on this connection; media flows.
    Connected(Leg),
    /// The connection failed.
    Failed(Leg, String),
}

type Reply<T> = oneshot::Sender<anyhow::Result<T>>;

enum Command {
    Add {
        participant: u32,
        events: UnboundedSender<EngineEvent>,
    },
    PublishOffer {
        participant: u32,
        reply: Reply<String>,
    },
    PublishAnswer {
        participant: u32,
        sdp: String,
        reply: Reply<()>,
    },
    SubscribeOffer {
        participant: u32,
        sdp: String,
        new_connection: bool,
        reply: Reply<String>,
    },
    JoinRelay {
        participant: u32,
        relay: SocketAddr,
        room: String,
        publisher: bool,
        reply: Reply<()>,
    },
    Remove {
        participant: u32,
    },
    StartWindow,
    StopMedia,
    Collect {
        reply: oneshot::Sender<EngineStats>,
    },
}

/// Settings shared by every engine of a run.
#[derive(Clone)]
pub struct EngineConfig {
    /// Local address the connections bind to (their host candidate).
    pub bind_ip: IpAddr,
    /// What publishers send.
    pub profile: MediaProfile,
    /// Time zero for send timestamps; shared by all engines of the process.
    pub epoch: Instant,
}

/// The signaling side's handle on an engine thread.
pub struct EngineHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts engine thread number `index`.
    pub fn spawn(index: usize, config: EngineConfig) -> anyhow::Result<EngineHandle> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let engine = Engine {
            poll,
            commands: rx,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            conns: Vec::new(),
            free: Vec::new(),
            state: State {
                config,
                participants: HashMap::new(),
                stats: EngineStats::default(),
                measuring: false,
                media_on: true,
            },
            next_timer: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("loadgen-media-{index}"))
            .spawn(move || engine.run())
            .context("starting a media engine thread")?;
        Ok(EngineHandle {
            commands: tx,
            waker,
            thread: Some(thread),
        })
    }

    fn send(&self, command: Command) -> anyhow::Result<()> {
        self.commands
            .send(command)
            .map_err(|_| anyhow!("media engine stopped"))?;
        // A failed wake only delays the command to the engine's next timer.
        let _ = self.waker.wake();
        Ok(())
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| anyhow!("media engine stopped"))?
    }

    /// Registers a participant; connection events go to `events`.
    pub fn add(&self, participant: u32, events: UnboundedSender<EngineEvent>) {
        let _ = self.send(Command::Add {
            participant,
            events,
        });
    }

    /// Creates the publish connection (sendonly audio and video) and returns its offer.
    pub async fn publish_offer(&self, participant: u32) -> anyhow::Result<String> {
        self.ask(|reply| Command::PublishOffer { participant, reply })
            .await
    }

    /// Applies the server's answer to the publish offer.
    pub async fn publish_answer(&self, participant: u32, sdp: String) -> anyhow::Result<()> {
        self.ask(|reply| Command::PublishAnswer {
            participant,
            sdp,
            reply,
        })
        .await
    }

    /// Applies an offer on the subscribe connection (creating it on the first, or
    /// replacing it when the offer is for a `new_connection`) and returns the answer.
    pub async fn subscribe_offer(
        &self,
        participant: u32,
        sdp: String,
        new_connection: bool,
    ) -> anyhow::Result<String> {
        self.ask(|reply| Command::SubscribeOffer {
            participant,
            sdp,
            new_connection,
            reply,
        })
        .await
    }

    /// Relay mode: opens a plain UDP socket registered with the relay in `room`.
    pub async fn join_relay(
        &self,
        participant: u32,
        relay: SocketAddr,
        room: String,
        publisher: bool,
    ) -> anyhow::Result<()> {
        self.ask(|reply| Command::JoinRelay {
            participant,
            relay,
            room,
            publisher,
            reply,
        })
        .await
    }

    /// Drops a participant's connections.
    pub fn remove(&self, participant: u32) {
        let _ = self.send(Command::Remove { participant });
    }

    /// Starts the measurement window: clears what was measured so far.
    pub fn start_window(&self) {
        let _ = self.send(Command::StartWindow);
    }

    /// Publishers stop sending; subscribers keep counting late arrivals.
    pub fn stop_media(&self) {
        let _ = self.send(Command::StopMedia);
    }

    /// Returns what was measured since [`EngineHandle::start_window`].
    pub async fn collect(&self) -> anyhow::Result<EngineStats> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Collect { reply: tx })?;
        rx.await.map_err(|_| anyhow!("media engine stopped"))
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // Closing the channel stops the thread at its next wake-up.
        let (dead, _) = mpsc::channel();
        self.commands = dead;
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const WAKER: Token = Token(0);
/// str0m may ask to be woken at the time it was just given; waking it again at once
/// would spin, so such connections wait this long. Timers this close are also run
/// together, which keeps the thread from waking for each of hundreds of connections.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// A late engine sends at most this many overdue video frames at once and skips the
/// rest, as a real encoder would.
const MAX_CATCH_UP: u32 = 3;
/// Largest datagram we expect.
const RECV_BUF: usize = 2048;
/// Socket buffers: deep enough for bursts of a few hundred packets.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// First byte of a relay registration datagram (never the first byte of a payload).
pub const RELAY_JOIN: u8 = b'J';

enum Link {
    Rtc {
        rtc: Box<Rtc>,
        timeout: Instant,
        pending: Option<SdpPendingOffer>,
        connected: bool,
        dead: bool,
    },
    Plain {
        relay: SocketAddr,
    },
}

struct Conn {
    participant: u32,
    leg: Leg,
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    link: Link,
}

/// A publisher's synthetic camera and microphone.
struct Source {
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    vp8: Option<Pt>,
    opus: Option<Pt>,
    /// Sending: set once the connection is up.
    running: bool,
    started: Instant,
    frames: u64,
    audio_packets: u64,
    video_seq: u64,
    audio_seq: u64,
    /// Sequence numbers at the start of the measurement window.
    window_video: u64,
    window_audio: u64,
    keyframe_asked: bool,
    last_keyframe: Option<Instant>,
}

struct Participant {
    events: UnboundedSender<EngineEvent>,
    publish: Option<usize>,
    subscribe: Option<usize>,
    source: Option<Source>,
}

/// Everything but the connections, so a connection and the rest borrow apart.
struct State {
    config: EngineConfig,
    participants: HashMap<u32, Participant>,
    stats: EngineStats,
    measuring: bool,
    media_on: bool,
}

struct Engine {
    poll: Poll,
    commands: Receiver<Command>,
    crypto: Arc<CryptoProvider>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    state: State,
    next_timer: Instant,
}

impl Engine {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let now = Instant::now();
            let wait = self.next_timer.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("media engine poll failed: {e}");
                    return;
                }
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.read_socket(event.token().0 - 1, &mut buf);
                }
            }
            if !self.handle_commands() {
                return;
            }
            let now = Instant::now();
            if now + TIMER_SLACK >= self.next_timer {
                self.run_timers(now);
            }
        }
    }

    /// Reads every datagram waiting on connection `idx`'s socket.
    fn read_socket(&mut self, idx: usize, buf: &mut [u8]) {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        loop {
            let (n, from) = match conn.socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors (port unreachable) and the like: nothing to read now.
                Err(_) => break,
            };
            let now = Instant::now();
            let data = &buf[..n];
            match &mut conn.link {
                Link::Plain { .. } => {
                    if self.state.measuring {
                        match payload::decode(data) {
                            Some(label) => {
                                let ns = self.state.now_ns(now);
                                self.state.stats.record(conn.participant, label, ns);
                            }
                            None => self.state.stats.foreign_packets += 1,
                        }
                    }
                }
                Link::Rtc { rtc, dead, .. } => {
                    if *dead {
                        continue;
                    }
                    let Ok(contents) = data.try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: from,
                            destination: conn.local,
                            contents,
                        },
                    );
                    // Like a browser, drop what cannot be used.
                    let _ = rtc.handle_input(input);
                    drive(conn, &mut self.state, now, false);
                    if let Link::Rtc { timeout, .. } = &conn.link {
                        self.next_timer = self.next_timer.min(*timeout);
                    }
                }
            }
        }
    }

    /// Applies every queued command; returns false when the handle is gone.
    fn handle_commands(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            let now = Instant::now();
            match command {
                Command::Add {
                    participant,
                    events,
                } => {
                    self.state.participants.insert(
                        participant,
                        Participant {
                            events,
                            publish: None,
                            subscribe: None,
                            source: None,
                        },
                    );
                }
                Command::PublishOffer { participant, reply } => {
                    let _ = reply.send(self.publish_offer(participant, now));
                }
                Command::PublishAnswer {
                    participant,
                    sdp,
                    reply,
                } => {
                    let _ = reply.send(self.publish_answer(participant, &sdp));
                }
                Command::SubscribeOffer {
                    participant,
                    sdp,
                    new_connection,
                    reply,
                } => {
                    if new_connection {
                        self.close_subscribe(participant);
                    }
                    let _ = reply.send(self.subscribe_offer(participant, &sdp, now));
                }
                Command::JoinRelay {
                    participant,
                    relay,
                    room,
                    publisher,
                    reply,
                } => {
                    let _ = reply.send(self.join_relay(participant, relay, &room, publisher, now));
                }
                Command::Remove { participant } => self.remove(participant),
                Command::StartWindow => self.start_window(),
                Command::StopMedia => self.stop_media(),
                Command::Collect { reply } => {
                    self.state.measuring = false;
                    let _ = reply.send(std::mem::take(&mut self.state.stats));
                }
            }
            // New connections and answers want to run at once.
            self.next_timer = self.next_timer.min(now);
        }
    }

    fn new_conn(&mut self, participant: u32, leg: Leg, link: Link) -> anyhow::Result<usize> {
        let socket = bind_socket(self.state.config.bind_ip)?;
        let local = socket.local_addr()?;
        let mut socket = mio::net::UdpSocket::from_std(socket);
        let idx = self.free.pop().unwrap_or(self.conns.len());
        self.poll
            .registry()
            .register(&mut socket, Token(idx + 1), Interest::READABLE)?;
        let mut link = link;
        if let Link::Rtc { rtc, .. } = &mut link {
            let candidate = Candidate::host(local, "udp").context("host candidate")?;
            rtc.add_local_candidate(candidate);
        }
        let conn = Conn {
            participant,
            leg,
            socket,
            local,
            link,
        };
        if idx == self.conns.len() {
            self.conns.push(Some(conn));
        } else {
            self.conns[idx] = Some(conn);
        }
        Ok(idx)
    }

    fn new_rtc(&self, now: Instant) -> Link {
        let rtc = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        Link::Rtc {
            rtc: Box::new(rtc),
            timeout: now,
            pending: None,
            connected: false,
            dead: false,
        }
    }

    fn publish_offer(&mut self, participant: u32, now: Instant) -> anyhow::Result<String> {
        let p = self
            .state
            .participants
            .get(&participant)
            .context("unknown participant")?;
        if p.publish.is_some() {
            anyhow::bail!("already publishing");
        }
        let link = self.new_rtc(now);
        let idx = self.new_conn(participant, Leg::Publish, link)?;
        let profile = self.state.config.profile;
        let Some(Some(Conn {
            link: Link::Rtc { rtc, pending, .. },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("connection vanished");
        };
        let stream = format!("lg{participant}");
        let mut change = rtc.sdp_api();
        let audio_mid = (profile.audio_pps > 0).then(|| {
            change.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(stream.clone()),
                Some(format!("{stream}-mic")),
                None,
            )
        });
        let video_mid = (profile.fps > 0).then(|| {
            change.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(stream.clone()),
                Some(format!("{stream}-cam")),
                None,
            )
        });
        let (offer, pend) = change.apply().context("nothing to offer")?;
        *pending = Some(pend);
        if let Some(p) = self.state.participants.get_mut(&participant) {
            p.publish = Some(idx);
            p.source = Some(Source::new(audio_mid, video_mid, now));
        }
        Ok(offer.to_sdp_string())
    }

    fn publish_answer(&mut self, participant: u32, sdp: &str) -> anyhow::Result<()> {
        let p = self
            .state
            .participants
            .get_mut(&participant)
            .context("unknown participant")?;
        let idx = p.publish.context("no publish offer")?;
        let Some(Some(Conn {
            link: Link::Rtc { rtc, pending, .. },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("no publish connection");
        };
        let pend = pending.take().context("no offer outstanding")?;
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer")?;
        rtc.sdp_api()
            .accept_answer(pend, answer)
            .context("applying the answer")?;
        let pt_of = |codec: Codec| {
            rtc.codec_config()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt())
        };
        if let Some(source) = p.source.as_mut() {
            source.vp8 = pt_of(Codec::Vp8);
            source.opus = pt_of(Codec::Opus);
        }
        Ok(())
    }

    fn subscribe_offer(
        &mut self,
        participant: u32,
        sdp: &str,
        now: Instant,
    ) -> anyhow::Result<String> {
        let existing = self
            .state
            .participants
            .get(&participant)
            .context("unknown participant")?
            .subscribe;
        let idx = match existing {
            Some(idx) => idx,
            None => {
                let link = self.new_rtc(now);
                let idx = self.new_conn(participant, Leg::Subscribe, link)?;
                if let Some(p) = self.state.participants.get_mut(&participant) {
                    p.subscribe = Some(idx);
                }
                idx
            }
        };
        let Some(Some(Conn {
            link: Link::Rtc { rtc, .. },
            ..
        })) = self.conns.get_mut(idx)
        else {
            anyhow::bail!("no subscribe connection");
        };
        let offer = SdpOffer::from_sdp_string(sdp).context("parsing the offer")?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .context("applying the offer")?;
        Ok(answer.to_sdp_string())
    }

    /// Closes `participant`'s subscribe connection, so the next offer makes a new one.
    fn close_subscribe(&mut self, participant: u32) {
        let Some(p) = self.state.participants.get_mut(&participant) else {
            return;
        };
        let Some(idx) = p.subscribe.take() else {
            return;
        };
        self.close_conn(idx);
    }

    fn close_conn(&mut self, idx: usize) {
        if let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut conn.socket);
            if let Link::Rtc { rtc, .. } = &mut conn.link {
                rtc.disconnect();
            }
            self.free.push(idx);
        }
    }

    fn join_relay(
        &mut self,
        participant: u32,
        relay: SocketAddr,
        room: &str,
        publisher: bool,
        now: Instant,
    ) -> anyhow::Result<()> {
        let idx = self.new_conn(participant, Leg::Subscribe, Link::Plain { relay })?;
        let mut hello = vec![RELAY_JOIN];
        hello.extend_from_slice(room.as_bytes());
        if let Some(Some(conn)) = self.conns.get(idx) {
            // Registration is repeated by nothing: on a LAN or loopback it arrives; a
            // lost one shows up as a silent stream in the report.
            conn.socket
                .send_to(&hello, relay)
                .context("registering with the relay")?;
        }
        let p = self
            .state
            .participants
            .get_mut(&participant)
            .context("unknown participant")?;
        p.subscribe = Some(idx);
        if publisher {
            p.publish = Some(idx);
            let mut source = Source::new(None, None, now);
            source.running = true;
            p.source = Some(source);
        }
        Ok(())
    }

    fn remove(&mut self, participant: u32) {
        let Some(p) = self.state.participants.remove(&participant) else {
            return;
        };
        let mut idxs = vec![p.publish, p.subscribe];
        idxs.dedup();
        for idx in idxs.into_iter().flatten() {
            self.close_conn(idx);
        }
    }

    fn start_window(&mut self) {
        let state = &mut self.state;
        state.stats = EngineStats::default();
        state.measuring = true;
        for source in state
            .participants
            .values_mut()
            .filter_map(|p| p.source.as_mut())
        {
            source.window_video = source.video_seq;
            source.window_audio = source.audio_seq;
        }
    }

    fn stop_media(&mut self) {
        let state = &mut self.state;
        state.media_on = false;
        for (id, p) in &state.participants {
            let Some(s) = p.source.as_ref() else { continue };
            if !s.running {
                continue;
            }
            if s.audio_seq > 0 || s.audio_mid.is_some() {
                state
                    .stats
                    .sent
                    .insert((*id, Kind::Audio), (s.window_audio, s.audio_seq));
            }
            if s.video_seq > 0 || s.video_mid.is_some() {
                state
                    .stats
                    .sent
                    .insert((*id, Kind::Video), (s.window_video, s.video_seq));
            }
        }
    }

    /// Wakes every connection whose timer is due and sends every due media packet.
    fn run_timers(&mut self, now: Instant) {
        let horizon = now + TIMER_SLACK;
        let mut next = now + Duration::from_millis(100);
        for conn in self.conns.iter_mut().flatten() {
            let Link::Rtc {
                rtc, timeout, dead, ..
            } = &mut conn.link
            else {
                continue;
            };
            if *dead {
                continue;
            }
            if *timeout <= horizon {
                let _ = rtc.handle_input(Input::Timeout(now));
                drive(conn, &mut self.state, now, true);
            }
            if let Link::Rtc { timeout, .. } = &conn.link {
                next = next.min(*timeout);
            }
        }
        if self.state.media_on {
            let profile = self.state.config.profile;
            let epoch = self.state.config.epoch;
            let ids: Vec<u32> = self.state.participants.keys().copied().collect();
            for id in ids {
                let Some(p) = self.state.participants.get_mut(&id) else {
                    continue;
                };
                let (Some(source), Some(idx)) = (p.source.as_mut(), p.publish) else {
                    continue;
                };
                if !source.running {
                    continue;
                }
                let Some(Some(conn)) = self.conns.get_mut(idx) else {
                    continue;
                };
                let mut sender = PacketOut {
                    conn,
                    now,
                    epoch,
                    publisher: id,
                    errors: 0,
                };
                let wrote = source.send_due(&mut sender, &profile);
                let errors = sender.errors;
                if let Some(due) = source.next_due(&profile) {
                    next = next.min(due);
                }
                self.state.stats.send_errors += errors;
                if wrote {
                    drive(conn, &mut self.state, now, false);
                    if let Link::Rtc { timeout, .. } = &conn.link {
                        next = next.min(*timeout);
                    }
                }
            }
        }
        self.next_timer = next;
    }
}

impl State {
    fn now_ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.config.epoch).as_nanos() as u64
    }
}

/// Where a source's packets go: a str0m stream, or straight to the relay.
struct PacketOut<'a> {
    conn: &'a mut Conn,
    now: Instant,
    epoch: Instant,
    publisher: u32,
    errors: u64,
}

impl PacketOut<'_> {
    fn send(&mut self, kind: Kind, seq: u64, part: FramePart, size: usize, rtp: RtpInfo) {
        let label = Label {
            publisher: self.publisher,
            kind,
            seq,
            sent_ns: self.now.saturating_duration_since(self.epoch).as_nanos() as u64,
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
    fn new(audio_mid: Option<Mid>, video_mid: Option<Mid>, now: Instant) -> Source {
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

    fn start(&mut self, now: Instant) {
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

    fn next_due(&self, profile: &MediaProfile) -> Option<Instant> {
        let v = self.frame_at(profile, self.frames);
        let a = self.audio_at(profile, self.audio_packets);
        [v, a].into_iter().flatten().min()
    }

    /// Sends every frame and audio packet that is due. Returns whether it sent any.
    fn send_due(&mut self, out: &mut PacketOut<'_>, profile: &MediaProfile) -> bool {
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

/// Binds a UDP socket on `ip` with deep buffers.
fn bind_socket(ip: IpAddr) -> anyhow::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .with_context(|| format!("binding a UDP socket on {ip}"))?;
    socket.set_nonblocking(true)?;
    set_buffers(&socket);
    Ok(socket)
}

/// Asks for deep socket buffers; the kernel caps them at `net.core.[rw]mem_max`.
fn set_buffers(socket: &std::net::UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
}

/// Polls connection `conn` until str0m has nothing more to say, sending its datagrams
/// and acting on its events.
fn drive(conn: &mut Conn, state: &mut State, now: Instant, after_timeout: bool) {
    let Link::Rtc {
        rtc,
        timeout,
        connected,
        dead,
        ..
    } = &mut conn.link
    else {
        return;
    };
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                *timeout = if after_timeout && t <= now {
                    now + TIMER_SLACK
                } else {
                    t
                };
                return;
            }
            Ok(Output::Transmit(t)) => {
                if conn.socket.send_to(&t.contents, t.destination).is_err() {
                    state.stats.send_errors += 1;
                }
            }
            Ok(Output::Event(event)) => match event {
                Event::RtpPacket(packet) => {
                    if !state.measuring {
                        continue;
                    }
                    match payload::decode(&packet.payload) {
                        Some(label) => {
                            let ns = state.now_ns(now);
                            state.stats.record(conn.participant, label, ns);
                        }
                        None => state.stats.foreign_packets += 1,
                    }
                }
                Event::Connected => {
                    *connected = true;
                    if let Some(p) = state.participants.get_mut(&conn.participant) {
                        let _ = p.events.send(EngineEvent::Connected(conn.leg));
                        if conn.leg == Leg::Publish {
                            if let Some(source) = p.source.as_mut() {
                                source.start(now);
                            }
                        }
                    }
                }
                Event::KeyframeRequest(_) => {
                    if let Some(source) = state
                        .participants
                        .get_mut(&conn.participant)
                        .and_then(|p| p.source.as_mut())
                    {
                        source.keyframe_asked = true;
                    }
                }
                Event::IceConnectionStateChange(str0m::IceConnectionState::Disconnected) => {
                    if let Some(p) = state.participants.get(&conn.participant) {
                        let _ = p.events.send(EngineEvent::Failed(
                            conn.leg,
                            "ICE disconnected".to_string(),
                        ));
                    }
                }
                _ => {}
            },
            Err(e) => {
                *dead = true;
                *timeout = now + Duration::from_secs(3600);
                if let Some(p) = state.participants.get(&conn.participant) {
                    let _ = p.events.send(EngineEvent::Failed(conn.leg, e.to_string()));
                }
                return;
            }
        }
    }
}
