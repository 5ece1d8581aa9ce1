//! Media workers: one thread each, owning a UDP socket and an [`Sfu`] with the rooms
//! assigned to it. Signaling talks to a worker only through its command channel; the
//! worker answers through each participant's outbound channel.
//!
//! The loop waits on the socket and a waker with `mio`, reads datagrams in batches with
//! `quinn-udp` (which also tells the destination address, needed because the socket is
//! bound to the wildcard address, and the kernel's receive time), feeds the [`Sfu`], and
//! sends what it outputs.
//!
//! Each datagram reaches the [`Sfu`] with the instant the kernel received it, not the
//! instant the worker read it: a batch read after the worker was kept off the CPU would
//! otherwise arrive all at one instant, and the transport-wide feedback built from
//! those instants tells a browser its bandwidth probe arrived in no time. libwebrtc
//! discards such a probe (zero receive interval, or a receive rate over twice the send
//! rate), so its estimate creeps up by 8% a second from 300 kbit/s, and a simulcast
//! camera's top layer, which it sends only once the estimate covers every layer, stayed
//! off for the first 20 to 30 seconds in about a third of the browser tests' joins.
//!
//! Sending is the expensive part (one system call and one trip through the kernel's UDP
//! stack per datagram), so the worker collects every datagram the SFU outputs after a
//! batch of reads, groups them by destination (keeping each destination's order) and
//! sends runs of equal-sized datagrams to one destination as one UDP GSO message
//! (`UDP_SEGMENT`): a publisher's video frame, forwarded to a subscriber, is one system
//! call instead of six.
//!
//! A room that outgrew one worker has members on several (`rooms.rs` places them): the
//! [`Sfu`]'s relay outputs ([`Output::Relay`], [`Output::RelayControl`]) are collected
//! per destination worker during a turn and handed over once per turn and destination
//! through that worker's [`RelayInbox`] (docs/media.md, "Cross-worker fan-out").

use std::collections::{HashMap, HashSet};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lanmeet_proto::{MediaSignal, ParticipantId, ServerMessage, TrackSource};
use lanmeet_sfu::{
    Datagram, Flow, Output, ParticipantStats, RelayControl, RelayPacket, Sfu, SfuConfig, SfuStats,
    WorkerId,
};
use mio::{Events, Interest, Poll, Token, Waker};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use str0m::net::Transmit;
use tracing::{debug, info, info_span, warn};

use crate::metrics::latency::LatencyHistogram;
use crate::outbound::Outbound;

/// What a worker tells a participant's signaling task.
#[derive(Debug)]
pub enum ToParticipant {
    /// A message to send on the WebSocket.
    Message(ServerMessage),
    /// The media connection died; the participant should be removed.
    MediaFailed,
    /// The participant rejoined on another socket (`join` with `resume`): this one is
    /// already out of the room and closes.
    Replaced,
    /// A moderator let this joiner in from the lobby: it is a member now.
    Admitted(Box<crate::rooms::Joined>),
    /// A moderator removed this participant (or denied it entry, or ended the meeting):
    /// it is already out of the room, was told why, and closes.
    Removed,
}

/// A request from signaling to a worker. Leaving has a channel of its own (see
/// [`WorkerHandle::leave`]).
#[derive(Debug)]
pub enum WorkerCommand {
    /// A participant joined a room on this worker.
    Join {
        /// The room.
        room: String,
        /// Who.
        id: ParticipantId,
        /// Where to send its signaling messages.
        outbound: Outbound,
        /// The other workers that carry members of the room (`Sfu::join_across`).
        others: Vec<WorkerId>,
    },
    /// Every worker's relay inbox, by index: where this worker hands packets and
    /// control messages of rooms spread over several workers.
    Peers(Vec<RelayInbox>),
    /// Signaling gave the participant a presenter's seat or took it back
    /// ([`Sfu::set_presenting`]).
    Presenter {
        /// Who.
        id: ParticipantId,
        /// Whether it may share a screen now.
        presenting: bool,
    },
    /// A moderator muted or un-muted one of the participant's sources
    /// ([`Sfu::set_blocked`]): forwarding stops or may resume at once.
    Block {
        /// Whose.
        id: ParticipantId,
        /// Which source.
        source: TrackSource,
        /// Held back (`true`) or let through.
        blocked: bool,
    },
    /// The participant became a viewer (`false`) or may publish again
    /// ([`Sfu::set_may_publish`]).
    MayPublish {
        /// Who.
        id: ParticipantId,
        /// Whether it may publish.
        may_publish: bool,
    },
    /// Start playing a station ([`Sfu::start_station`]).
    StartStation {
        /// Its id in the SFU.
        id: ParticipantId,
        /// Its room there.
        room: String,
        /// Its file, read.
        media: Arc<lanmeet_sfu::StationMedia>,
    },
    /// Stop playing a station ([`Sfu::stop_station`]): its viewers' subscriptions stop.
    StopStation {
        /// Its id in the SFU.
        id: ParticipantId,
    },
    /// Move viewer `viewer` to station `to` on this worker ([`Sfu::switch_station`]);
    /// when the two stations' tracks differ, it leaves the old station's room and
    /// joins `room` (a new subscribe offer).
    SwitchStation {
        /// The viewer.
        viewer: ParticipantId,
        /// The station it moves to.
        to: ParticipantId,
        /// That station's room.
        room: String,
    },
    /// A broadcaster's offer (WHIP): `id` joins `room` with a publish connection only
    /// ([`Sfu::broadcast_offer`]). The answer, or why the offer was refused, goes back
    /// on `reply`; when nobody waits for it any more (the HTTP client went away), the
    /// broadcaster is removed again, so nothing is left half-created.
    Broadcast {
        /// The broadcaster's id.
        id: ParticipantId,
        /// The live station's room.
        room: String,
        /// The SDP offer.
        sdp: String,
        /// Where the worker reports that its connection died.
        outbound: Outbound,
        /// The SDP answer, or the reason for the refusal.
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
    /// A media message from the participant (or about it: a refused answer).
    Signal {
        /// Whose.
        id: ParticipantId,
        /// What.
        signal: MediaSignal,
    },
}

/// What a worker reports about itself, copied out every [`STATS_INTERVAL`].
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    /// The SFU's counters.
    pub sfu: SfuStats,
    /// UDP datagrams (and their bytes, UDP payload) read from the socket.
    pub datagrams_in: Flow,
    /// UDP datagrams (and their bytes) handed to the socket successfully.
    pub datagrams_out: Flow,
    /// Time from a datagram batch's arrival to the sending of what the SFU answered.
    ///
    /// Arrival is the instant the worker read the batch (the `now` it passes to
    /// [`Sfu::handle_datagram`]); forwarding is the instant the worker has handed all
    /// datagrams of its next send round to the socket, so the figure includes the SFU's
    /// work, later batches read before that round, and the sending itself. It is taken
    /// here rather than inside the SFU because the SFU never reads the clock: it sees one
    /// `now` for a whole batch. The worker counts, per batch, how many datagrams the SFU
    /// produced for it (mostly forwarded RTP; also RTCP and STUN answers) and records them
    /// all at the round's one clock reading: two clock reads per batch, none per packet.
    /// Datagrams str0m sends on a timer (held by its pacer, RTCP reports) are not
    /// counted.
    pub forward_delay: LatencyHistogram,
    /// Time spent working (not waiting for the socket or a timer) since start.
    pub busy: Duration,
    /// How each participant's connections are doing.
    pub participants: Vec<(ParticipantId, ParticipantStats)>,
    /// Batches of relayed packets dropped because the other worker's inbox was full.
    pub relay_batches_dropped: u64,
}

/// Where other workers hand a worker the media of rooms spread over several workers:
/// packets in batches on a bounded channel (std's `sync_channel`, since Rust 1.67 the
/// crossbeam channel: lock-free on the fast path), control messages on an unbounded
/// one (rare, and never to be lost), and the worker's waker, woken once per batch.
#[derive(Debug, Clone)]
pub struct RelayInbox {
    packets: SyncSender<(WorkerId, Vec<RelayPacket>)>,
    controls: Sender<(WorkerId, RelayControl)>,
    waker: Arc<Waker>,
}

/// Batches of relayed packets a worker's inbox holds at most; beyond, the sender drops
/// the batch (a worker must never wait for another) and the subscribers repair the
/// loss with NACKs as on a lossy link.
const RELAY_QUEUE: usize = 1024;

/// Tells every worker where the others' relay inboxes are. Called once, after all
/// workers started.
pub fn connect_workers(workers: &[WorkerHandle]) -> anyhow::Result<()> {
    let inboxes: Vec<RelayInbox> = workers.iter().map(|w| w.relay.clone()).collect();
    for w in workers {
        w.try_send(WorkerCommand::Peers(inboxes.clone()))
            .context("telling a media worker of the others")?;
    }
    Ok(())
}

/// How often a worker copies its [`WorkerStats`] out.
const STATS_INTERVAL: Duration = Duration::from_millis(500);

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// Kernel buffer asked for each media socket, each way.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Datagrams read per system call.
const BATCH: usize = 32;
/// Receive buffer per datagram slot; room for GRO-coalesced segments.
const SLOT: usize = 64 * 1024;
/// Largest UDP GSO message: the UDP length field's limit, less headers.
const GSO_BYTES: usize = 65_000;
/// Commands (joins and media messages) waiting for a worker, at most. A flood from
/// clients fills it and further commands are refused ([`WorkerBusy`]) instead of
/// queueing without bound; the per-participant rate limits keep real clients far below.
pub const COMMAND_QUEUE: usize = 1024;
/// The longest a worker spends on commands before it reads its socket again: an offer
/// costs about a millisecond, and media waiting in the kernel must not wait for a
/// thousand of them.
const COMMAND_BUDGET: Duration = Duration::from_millis(5);

/// A command refused because the worker's queue is full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The media server is busy; try again in a moment.")]
pub struct WorkerBusy;

/// The signaling side's handle on a worker.
pub struct WorkerHandle {
    commands: SyncSender<WorkerCommand>,
    /// Leaves are never refused (a refused leave would keep a participant's media
    /// alive), so they have an unbounded channel: it holds at most one leave per
    /// participant that joined.
    leaves: Sender<ParticipantId>,
    waker: Arc<Waker>,
    /// The worker's UDP address (the bound port).
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<std::sync::Mutex<WorkerStats>>,
    /// Where the other workers hand it relayed media.
    relay: RelayInbox,
}

impl WorkerHandle {
    /// Queues a command without waiting; refused when the worker's queue is full. A
    /// stopped worker drops it (the server is shutting down).
    pub fn try_send(&self, command: WorkerCommand) -> Result<(), WorkerBusy> {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(WorkerBusy),
            Err(TrySendError::Disconnected(_)) => return Ok(()),
        }
        // A failed wake only delays the command until the worker's next timeout.
        let _ = self.waker.wake();
        Ok(())
    }

    /// Tells the worker that participant `id` left.
    pub fn leave(&self, id: ParticipantId) {
        if self.leaves.send(id).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Counters of the worker's SFU, as of its last copy (at most [`STATS_INTERVAL`]
    /// old).
    pub fn stats(&self) -> SfuStats {
        self.stats.lock().map(|s| s.sfu).unwrap_or_default()
    }

    /// Everything the worker reports, as of its last copy.
    pub fn worker_stats(&self) -> WorkerStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the thread and waits for it; idempotent.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or_default();
        if let Some(t) = thread {
            if t.join().is_err() {
                warn!("a media worker panicked");
            }
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts worker `index`, binding UDP `bind` (port 0: any) and offering
/// `candidate_ips` with the bound port. Each subscriber gets at most
/// `audio_top_n` audio streams, the loudest; with `bandwidth_estimation`, its layers
/// follow its estimated downlink.
pub fn spawn_worker(
    index: usize,
    bind: SocketAddr,
    candidate_ips: &[IpAddr],
    audio_top_n: usize,
    bandwidth_estimation: bool,
) -> anyhow::Result<WorkerHandle> {
    let std_socket = std::net::UdpSocket::bind(bind)
        .with_context(|| format!("binding media UDP address {bind}"))?;
    let port = std_socket.local_addr()?.port();
    // A burst from one publisher becomes one send per subscriber; while the worker sends,
    // arriving datagrams wait in the kernel. The default buffer (~200 KiB, ~90 video
    // packets) overflows under load, and every drop costs a NACK or a keyframe.
    let sock = socket2::SockRef::from(&std_socket);
    if let Err(e) = sock.set_recv_buffer_size(SOCKET_BUFFER) {
        warn!("cannot enlarge the media receive buffer: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(SOCKET_BUFFER) {
        warn!("cannot enlarge the media send buffer: {e}");
    }
    let granted = sock.recv_buffer_size().unwrap_or(0);
    if granted < SOCKET_BUFFER {
        info!(
            granted,
            wanted = SOCKET_BUFFER,
            "the kernel capped the media receive buffer; raise net.core.rmem_max for large meetings"
        );
    }
    let state = UdpSocketState::new(UdpSockRef::from(&std_socket))
        .context("configuring the media socket")?;
    std_socket.set_nonblocking(true)?;
    let mut socket = mio::net::UdpSocket::from_std(std_socket);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::sync_channel(COMMAND_QUEUE);
    let (leave_tx, leave_rx) = mpsc::channel();
    let (relay_packets_tx, relay_packets) = mpsc::sync_channel(RELAY_QUEUE);
    let (relay_controls_tx, relay_controls) = mpsc::channel();
    let relay = RelayInbox {
        packets: relay_packets_tx,
        controls: relay_controls_tx,
        waker: waker.clone(),
    };
    let candidates: Vec<SocketAddr> = candidate_ips
        .iter()
        .map(|ip| SocketAddr::new(*ip, port))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(std::sync::Mutex::new(WorkerStats::default()));
    let mut sfu_config = SfuConfig::new(candidates.clone());
    sfu_config.audio_top_n = audio_top_n;
    sfu_config.bandwidth_estimation = bandwidth_estimation;
    let worker = Worker {
        index,
        sfu: Sfu::new(sfu_config, Instant::now()),
        socket,
        state,
        poll,
        commands: rx,
        leaves: leave_rx,
        left_early: HashSet::new(),
        outbound: HashMap::new(),
        port,
        default_ip: candidate_ips
            .first()
            .copied()
            .unwrap_or(IpAddr::from([127, 0, 0, 1])),
        stop: stop.clone(),
        stats: stats.clone(),
        own: WorkerStats::default(),
        arrivals: Vec::new(),
        clock: Instant::now(),
        pending: Vec::new(),
        gso_buf: Vec::with_capacity(GSO_BYTES),
        relay_packets,
        relay_controls,
        peers: Vec::new(),
        relay_out: Vec::new(),
        relay_controls_out: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || {
            let _span = info_span!("worker", index).entered();
            info!(port, ?candidates, "media worker started");
            if let Err(e) = worker.run() {
                warn!("media worker stopped: {e:#}");
            }
        })?;
    Ok(WorkerHandle {
        commands: tx,
        leaves: leave_tx,
        waker,
        port,
        stop,
        thread: std::sync::Mutex::new(Some(thread)),
        stats,
        relay,
    })
}

struct Worker {
    /// Its index among the workers (its [`WorkerId`]).
    index: usize,
    sfu: Sfu,
    socket: mio::net::UdpSocket,
    state: UdpSocketState,
    poll: Poll,
    commands: Receiver<WorkerCommand>,
    leaves: Receiver<ParticipantId>,
    /// Participants whose leave came before their join (the two travel on different
    /// channels): their join is ignored when it arrives. Ids never repeat.
    left_early: HashSet<ParticipantId>,
    outbound: HashMap<ParticipantId, Outbound>,
    port: u16,
    /// Destination address assumed when the kernel does not say (no pktinfo).
    default_ip: IpAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<std::sync::Mutex<WorkerStats>>,
    /// The worker's own counters (the SFU keeps its own), copied out with the SFU's.
    own: WorkerStats,
    /// Arrival instants of datagram batches whose answers wait to be sent, with how
    /// many datagrams each produced (see [`WorkerStats::forward_delay`]).
    arrivals: Vec<(Instant, u64)>,
    /// The latest instant handed to the SFU: a datagram's arrival instant never goes back
    /// past it, so the SFU sees time go forward only.
    clock: Instant,
    /// Datagrams output by the SFU, not yet sent.
    pending: Vec<Transmit>,
    /// Where a GSO message's segments are put end to end.
    gso_buf: Vec<u8>,
    /// Packets other workers handed this one, in batches.
    relay_packets: Receiver<(WorkerId, Vec<RelayPacket>)>,
    /// Control messages other workers sent this one.
    relay_controls: Receiver<(WorkerId, RelayControl)>,
    /// Every worker's relay inbox, by index (empty until `WorkerCommand::Peers`).
    peers: Vec<RelayInbox>,
    /// Packets for each worker (by index), collected during a turn.
    relay_out: Vec<Vec<RelayPacket>>,
    /// Control messages for other workers, collected during a turn.
    relay_controls_out: Vec<(WorkerId, RelayControl)>,
}

impl Worker {
    fn run(mut self) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut buf = vec![0u8; BATCH * SLOT];
        let mut meta = vec![RecvMeta::default(); BATCH];
        let mut last_stats = Instant::now();
        let mut woke = Instant::now();
        loop {
            // Woken at least every STATS_INTERVAL, so an idle worker's counters still
            // follow its last commands (a leave, a station started).
            let deadline = self.flush_outputs().min(last_stats + STATS_INTERVAL);
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let idle_from = Instant::now();
            self.own.busy += idle_from.saturating_duration_since(woke);
            let wait = deadline.saturating_duration_since(idle_from);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
            woke = Instant::now();
            // Commands and datagrams take turns: at most COMMAND_BUDGET of commands,
            // then the socket, so a flood of offers cannot starve the media.
            let mut turn = woke;
            loop {
                let more = match self.handle_commands(turn + COMMAND_BUDGET) {
                    Some(more) => more,
                    None => return Ok(()),
                };
                self.read_socket(&mut buf, &mut meta);
                self.take_relayed();
                if !more || self.stop.load(Ordering::SeqCst) {
                    break;
                }
                self.flush_outputs();
                turn = Instant::now();
            }
            let now = self.now();
            self.sfu.handle_timeout(now);
            if now.duration_since(last_stats) > STATS_INTERVAL {
                last_stats = now;
                self.publish_stats();
            }
        }
    }

    /// The time now, noted as the latest instant handed to the SFU.
    fn now(&mut self) -> Instant {
        self.clock = Instant::now();
        self.clock
    }

    /// Applies leaves, then queued commands until `until`. Returns whether commands are
    /// left over, or None when signaling has gone away.
    fn handle_commands(&mut self, until: Instant) -> Option<bool> {
        while let Ok(id) = self.leaves.try_recv() {
            if self.outbound.remove(&id).is_none() {
                self.left_early.insert(id);
            }
            let now = self.now();
            self.sfu.leave(now, id);
        }
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return Some(false),
                Err(TryRecvError::Disconnected) => return None,
            };
            let now = self.now();
            match command {
                WorkerCommand::Join {
                    room,
                    id,
                    outbound,
                    others,
                } => {
                    if !self.left_early.remove(&id) {
                        self.outbound.insert(id, outbound);
                        self.sfu.join_across(now, &room, id, &others);
                    }
                }
                WorkerCommand::Peers(peers) => {
                    self.relay_out = peers.iter().map(|_| Vec::new()).collect();
                    self.peers = peers;
                }
                WorkerCommand::Presenter { id, presenting } => {
                    self.sfu.set_presenting(id, presenting)
                }
                WorkerCommand::Block {
                    id,
                    source,
                    blocked,
                } => self.sfu.set_blocked(now, id, source, blocked),
                WorkerCommand::MayPublish { id, may_publish } => {
                    self.sfu.set_may_publish(now, id, may_publish)
                }
                WorkerCommand::Signal { id, signal } => self.sfu.signal(now, id, signal),
                WorkerCommand::Broadcast {
                    id,
                    room,
                    sdp,
                    outbound,
                    reply,
                } => {
                    let result = self.sfu.broadcast_offer(now, id, &room, &sdp);
                    let accepted = result.is_ok();
                    if reply.send(result).is_ok() {
                        if accepted {
                            self.outbound.insert(id, outbound);
                        }
                    } else if accepted {
                        self.sfu.leave(now, id);
                    }
                }
                WorkerCommand::StartStation { id, room, media } => {
                    self.sfu.start_station(now, id, &room, media)
                }
                WorkerCommand::StopStation { id } => self.sfu.stop_station(now, id),
                WorkerCommand::SwitchStation { viewer, to, room } => {
                    if !self.sfu.switch_station(now, viewer, to)
                        && self.outbound.contains_key(&viewer)
                    {
                        self.sfu.leave(now, viewer);
                        self.sfu.join(now, &room, viewer);
                        self.sfu.set_may_publish(now, viewer, false);
                    }
                }
            }
            if Instant::now() >= until {
                return Some(true);
            }
        }
    }

    /// Reads every waiting datagram into the SFU.
    fn read_socket(&mut self, buf: &mut [u8], meta: &mut [RecvMeta]) {
        let mut slices: Vec<IoSliceMut> = buf.chunks_mut(SLOT).map(IoSliceMut::new).collect();
        loop {
            let n = match self
                .state
                .recv(UdpSockRef::from(&self.socket), &mut slices, meta)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors from a vanished peer land here on Linux; they say
                    // nothing about the socket itself.
                    debug!("media socket read error: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok();
            let before = self.sfu.queued_outputs();
            let (default_ip, port) = (self.default_ip, self.port);
            let (clock, counter) = (&mut self.clock, &mut self.own.datagrams_in);
            let batch = meta
                .iter()
                .zip(slices.iter())
                .take(n)
                .flat_map(|(m, slot)| {
                    let destination = SocketAddr::new(m.dst_ip.unwrap_or(default_ip), port);
                    let source = normalize(m.addr);
                    let arrived = arrival(now, wall, m.timestamp).max(*clock);
                    *clock = arrived;
                    slot[..m.len]
                        .chunks(m.stride.max(1))
                        .map(move |contents| Datagram {
                            arrived,
                            source,
                            destination,
                            contents,
                        })
                });
            let batch = batch.inspect(|d| {
                counter.packets += 1;
                counter.bytes += d.contents.len() as u64;
            });
            self.sfu.handle_datagrams(batch);
            let produced = self.sfu.queued_outputs().saturating_sub(before) as u64;
            if produced > 0 {
                self.arrivals.push((now, produced));
            }
            // What this batch produced leaves before the next batch is read: under
            // load the socket may never run dry, and nothing may wait behind it.
            self.flush_outputs();
        }
    }

    /// Hands the SFU what other workers relayed: control messages first (a track's
    /// announcement before its packets), then the packet batches.
    fn take_relayed(&mut self) {
        let now = Instant::now();
        while let Ok((from, control)) = self.relay_controls.try_recv() {
            self.sfu.handle_relay_control(now, from, control);
        }
        let before = self.sfu.queued_outputs();
        while let Ok((from, batch)) = self.relay_packets.try_recv() {
            self.sfu.handle_relay(now, from, &batch);
        }
        let produced = self.sfu.queued_outputs().saturating_sub(before) as u64;
        if produced > 0 {
            self.arrivals.push((now, produced));
        }
    }

    /// Hands each other worker what the SFU relayed to it this turn: one batch per
    /// worker, one wake-up per batch.
    fn send_relayed(&mut self) {
        let me = self.index;
        for (to, control) in self.relay_controls_out.drain(..) {
            if let Some(peer) = self.peers.get(to.0) {
                if peer.controls.send((WorkerId(me), control)).is_ok() {
                    let _ = peer.waker.wake();
                }
            }
        }
        for (to, batch) in self.relay_out.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let Some(peer) = self.peers.get(to) else {
                batch.clear();
                continue;
            };
            let full = std::mem::take(batch);
            match peer.packets.try_send((WorkerId(me), full)) {
                Ok(()) => {
                    let _ = peer.waker.wake();
                }
                Err(TrySendError::Full(_)) => {
                    self.own.relay_batches_dropped += 1;
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Copies the SFU's and the worker's counters to where signaling reads them.
    fn publish_stats(&mut self) {
        self.own.sfu = self.sfu.stats();
        self.own.participants = self.sfu.participant_stats();
        if let Ok(mut s) = self.stats.lock() {
            s.clone_from(&self.own);
        }
    }

    /// Sends everything the SFU has to say; returns when it next wants to be woken.
    fn flush_outputs(&mut self) -> Instant {
        let deadline = self.collect_outputs();
        // The other workers first: they send to their subscribers while this one sends
        // to its own.
        self.send_relayed();
        self.send_pending();
        deadline
    }

    /// Takes the SFU's outputs: datagrams into `pending`, messages to their
    /// participants. Returns when the SFU next wants to be woken.
    fn collect_outputs(&mut self) -> Instant {
        loop {
            match self.sfu.poll_output() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => self.pending.push(t),
                Output::Signal(id, msg) => {
                    if let Some(tx) = self.outbound.get(&id) {
                        tx.message(msg);
                    }
                }
                Output::MediaFailed(id) => {
                    if let Some(tx) = self.outbound.get(&id) {
                        tx.send(ToParticipant::MediaFailed);
                    }
                }
                Output::Relay { to, packet } => {
                    if let Some(batch) = self.relay_out.get_mut(to.0) {
                        batch.push(packet);
                    }
                }
                Output::RelayControl { to, control } => {
                    self.relay_controls_out.push((to, control));
                }
            }
        }
    }
}

impl Worker {
    /// Sends the collected datagrams: grouped by destination (a stable sort keeps each
    /// destination's order), each run of equal-sized datagrams to one destination (the
    /// last may be shorter) as one GSO message.
    fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|t| (t.destination, t.source));
        let max_segments = self.state.max_gso_segments();
        let mut i = 0;
        while i < pending.len() {
            let first = &pending[i];
            let size = first.contents.len();
            let limit = max_segments.min(GSO_BYTES / size.max(1)).max(1);
            let mut j = i + 1;
            while j < pending.len() && j - i < limit {
                let t = &pending[j];
                let len = t.contents.len();
                if t.destination != first.destination || t.source != first.source || len > size {
                    break;
                }
                j += 1;
                if len < size {
                    break; // only the last segment may be shorter
                }
            }
            if j - i == 1 {
                self.send_one(first);
            } else {
                self.send_gso(&pending[i..j], size);
            }
            i = j;
        }
        pending.clear();
        self.pending = pending;
        let sent = Instant::now();
        for (arrived, n) in self.arrivals.drain(..) {
            self.own
                .forward_delay
                .record(sent.saturating_duration_since(arrived), n);
        }
    }

    fn send_one(&mut self, t: &Transmit) {
        let transmit = quinn_udp::Transmit {
            destination: t.destination,
            ecn: None,
            contents: &t.contents,
            segment_size: None,
            src_ip: Some(t.source.ip()),
        };
        if let Err(e) = self
            .state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
        {
            // A full send buffer drops the datagram, as a congested link would; RTP
            // recovers through NACK and keyframe requests.
            debug!(to = %t.destination, "media send failed: {e}");
        } else {
            self.own.datagrams_out.packets += 1;
            self.own.datagrams_out.bytes += t.contents.len() as u64;
        }
    }

    /// `run`: datagrams to one destination, all `size` bytes but the last.
    fn send_gso(&mut self, run: &[Transmit], size: usize) {
        self.gso_buf.clear();
        for t in run {
            self.gso_buf.extend_from_slice(&t.contents);
        }
        let first = &run[0];
        let transmit = quinn_udp::Transmit {
            destination: first.destination,
            ecn: None,
            contents: &self.gso_buf,
            segment_size: Some(size),
            src_ip: Some(first.source.ip()),
        };
        match self
            .state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
        {
            Ok(()) => {
                self.own.datagrams_out.packets += run.len() as u64;
                self.own.datagrams_out.bytes += self.gso_buf.len() as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                debug!(to = %first.destination, "media send failed: {e}");
            }
            Err(e) => {
                // Some devices refuse GSO (EIO, EINVAL); quinn-udp then stops offering it
                // (max_gso_segments becomes 1), and this run goes out one by one.
                debug!(to = %first.destination, "GSO send failed, sending singly: {e}");
                for t in run {
                    self.send_one(t);
                }
            }
        }
    }
}

/// Datagrams whose kernel receive time says they waited longer than this are taken to
/// have arrived this long ago: the wall clock may have been stepped since.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// When a datagram arrived: `now` less how long ago the kernel received it (its receive
/// time `received` against the wall clock `wall`, both since the Unix epoch), or `now`
/// when the kernel did not say.
fn arrival(now: Instant, wall: Option<Duration>, received: Option<Duration>) -> Instant {
    let (Some(wall), Some(received)) = (wall, received) else {
        return now;
    };
    let waited = wall.saturating_sub(received).min(MAX_WAIT);
    now.checked_sub(waited).unwrap_or(now)
}

/// Turns IPv4-mapped IPv6 source addresses into plain IPv4 ones.
fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_is_the_kernel_receive_time() {
        let now = Instant::now();
        let wall = Duration::from_secs(1_700_000_000);
        let ms = Duration::from_millis;
        // Read 30 ms after the kernel received it.
        assert_eq!(arrival(now, Some(wall), Some(wall - ms(30))), now - ms(30));
        // No receive time, or no wall clock: read time.
        assert_eq!(arrival(now, Some(wall), None), now);
        assert_eq!(arrival(now, None, Some(wall)), now);
        // A receive time after the wall clock (stepped back since): read time.
        assert_eq!(arrival(now, Some(wall), Some(wall + ms(5))), now);
        // A wait longer than any real one (stepped forward since): at most MAX_WAIT.
        assert_eq!(
            arrival(now, Some(wall), Some(wall - ms(60_000))),
            now - MAX_WAIT
        );
    }
}
