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
//!
//! Modules:
//! - this file: the engine thread's loop: socket reads, commands, timers and pacing.
//! - `handle`: [`EngineHandle`], the signaling side, and the commands it sends.
//! - `signaling`: the engine's side of those commands: connections opened and closed,
//!   offers and answers applied, relay registration.
//! - `conn`: one connection (socket and str0m `Rtc` or relay link) and driving str0m.
//! - `source`: a publisher's synthetic camera and microphone and their packets.
//! - `measure`: the measurement window, and what subscribers receive in it.

mod conn;
mod handle;
mod measure;
mod signaling;
mod source;

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use str0m::config::CryptoProvider;
use tokio::sync::mpsc::UnboundedSender;

use conn::Conn;
use handle::Command;
pub use handle::{EngineConfig, EngineEvent, EngineHandle, Leg};
pub use source::MediaProfile;
use source::{PacketOut, Source};

use crate::stats::EngineStats;

const WAKER: Token = Token(0);
/// str0m may ask to be woken at the time it was just given; waking it again at once
/// would spin, so such connections wait this long. Timers this close are also run
/// together, which keeps the thread from waking for each of hundreds of connections.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Largest datagram we expect.
const RECV_BUF: usize = 2048;

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
    /// Media payloads received since the start, window or not.
    received_total: u64,
    /// When each participant's first media payload arrived, nanoseconds since the epoch.
    first_media: HashMap<u32, u64>,
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
    fn new(poll: Poll, commands: Receiver<Command>, config: EngineConfig) -> Engine {
        Engine {
            poll,
            commands,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            conns: Vec::new(),
            free: Vec::new(),
            state: State {
                config,
                participants: HashMap::new(),
                stats: EngineStats::default(),
                measuring: false,
                received_total: 0,
                first_media: HashMap::new(),
                media_on: true,
            },
            next_timer: Instant::now(),
        }
    }

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
            if let Some(timeout) = conn.receive(&mut self.state, &buf[..n], from, now) {
                self.next_timer = self.next_timer.min(timeout);
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
                    let _ = reply.send(self.publish_answer(participant, &sdp, now));
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
                Command::StartWindow => self.state.start_window(),
                Command::StopMedia => self.state.stop_media(),
                Command::Collect { reply } => {
                    let _ = reply.send(self.state.collect());
                }
            }
            // New connections and answers want to run at once.
            self.next_timer = self.next_timer.min(now);
        }
    }

    /// Wakes every connection whose timer is due and sends every due media packet.
    fn run_timers(&mut self, now: Instant) {
        let mut next = now + Duration::from_millis(100);
        for conn in self.conns.iter_mut().flatten() {
            if let Some(timeout) = conn.handle_timeout(&mut self.state, now) {
                next = next.min(timeout);
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
                    if let Some(timeout) = conn.drive(&mut self.state, now, false) {
                        next = next.min(timeout);
                    }
                }
            }
        }
        self.next_timer = next;
    }
}

/// `now` in nanoseconds since `epoch`: the clock of send and receive timestamps.
fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_nanos() as u64
}
