//! One task per participant WebSocket: a small actor selecting over socket reads, the
//! participant's outbound queue (fed by the registry and the media worker), the
//! heartbeat timer and the server's shutdown signal. It never blocks a media worker:
//! workers only push into its bounded queue, and a participant whose queue fills up or
//! whose socket takes longer than the send timeout to accept a message is removed
//! (`timeout`). Every message type has a rate limit ([`crate::limits`]).
//!
//! Signaling needs only a [`Context`] (registry, chat, heartbeat, lifecycle), not the
//! HTTP layer's state: `web` calls [`serve`], never the other way round.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use lanmeet_proto::{
    ClientMessage, ErrorCode, LeaveReason, MediaSignal, ParticipantId, ServerMessage, StationEnd,
    MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use tokio::time::Instant;
use tracing::{debug, field, info, info_span, warn, Instrument, Span};

use crate::chat::{Chat, RateLimiter};
use crate::lifecycle::Lifecycle;
use crate::limits::{self, JoinRates, MessageRates, SignalingLimits};
use crate::media::{ToParticipant, WorkerCommand};
use crate::metrics::Counters;
use crate::outbound::{self, Inbox, Outbound};
use crate::persistent::Access;
use crate::rooms::{Entry, Joined, Refused, Registry};
use crate::stations::{self, RunningStation, Station, StationDirectory};
use tokio_util::sync::CancellationToken;

/// Heartbeat timing.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// How often to ping.
    pub interval: Duration,
    /// Silence after which the participant is removed.
    pub timeout: Duration,
}

/// What a participant's actor needs from the rest of the server.
#[derive(Clone)]
pub struct Context {
    /// Rooms and media workers.
    pub registry: Arc<Registry>,
    /// Chat.
    pub chat: Arc<Chat>,
    /// Heartbeat timing.
    pub heartbeat: Heartbeat,
    /// The shutdown signal; actors are tracked until they end.
    pub lifecycle: Lifecycle,
    /// Connections, messages and bytes, for metrics.
    pub counters: Arc<Counters>,
    /// Queue size, send timeout and join deadline.
    pub limits: SignalingLimits,
    /// Joins per client address.
    pub joins: Arc<JoinRates>,
    /// Wrong room passwords per client address.
    pub passwords: Arc<JoinRates>,
    /// The stations viewers can watch.
    pub stations: Arc<StationDirectory>,
}

/// WebSocket close code 1012, "service restart" (RFC 6455 registry): sent after
/// `server_closing`.
const CLOSE_RESTART: u16 = 1012;
/// The longest the actor waits to hand its last messages to a client that does not
/// read, while the server shuts down.
const CLOSING_SEND_LIMIT: Duration = Duration::from_millis(500);
/// What a client is told when the server shuts down.
const CLOSING_MESSAGE: &str = "The server is restarting.";
/// WebSocket close code 1008, "policy violation": no `join` in time, or too slow to
/// read what the server sends.
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code 1009, "message too big": a frame over the WebSocket limit.
const CLOSE_TOO_BIG: u16 = 1009;

struct Session {
    id: ParticipantId,
    room: String,
}

/// A viewer of a station: its id in the SFU, the station, where it plays, and the
/// token cancelled when it stops (deleted, or off air).
struct Watching {
    id: ParticipantId,
    station: Arc<Station>,
    running: RunningStation,
    ended: CancellationToken,
}

/// What the loop does after a message.
enum Flow {
    Continue,
    Close(LeaveReason),
}

/// Why the actor's loop ended.
enum End {
    /// The participant is gone for this reason.
    Leave(LeaveReason),
    /// It rejoined on another socket and is already out of the room.
    Replaced,
    /// The server is shutting down.
    ServerClosing,
    /// The server closes the socket with this close code and reason; a participant
    /// leaves for `leave`.
    Refused {
        code: u16,
        why: String,
        leave: LeaveReason,
    },
}

struct Actor {
    socket: WebSocket,
    registry: Arc<Registry>,
    chat: Arc<Chat>,
    chat_rate: RateLimiter,
    rates: MessageRates,
    joins: Arc<JoinRates>,
    passwords: Arc<JoinRates>,
    outbound_tx: Outbound,
    session: Option<Session>,
    /// Set while waiting in a locked room's lobby.
    waiting: Option<Session>,
    /// The stations.
    stations: Arc<StationDirectory>,
    /// Set while watching a station.
    watching: Option<Watching>,
    /// Set once the client asked for the station list or watched: a stations page,
    /// which needs no `join`.
    station_client: bool,
    send_timeout: Duration,
    /// Set when a write to the socket took longer than `send_timeout`.
    send_timed_out: bool,
    /// Where the socket comes from (shown to the admin only).
    remote: Option<SocketAddr>,
    counters: Arc<Counters>,
}

/// Serves one participant until it leaves, disconnects, goes silent or the server shuts
/// down. Counted by the lifecycle, so shutting down waits for it. `remote` is the
/// socket's peer address, if known.
pub async fn serve(socket: WebSocket, context: Context, remote: Option<SocketAddr>) {
    let span = info_span!("participant", room = field::Empty, id = field::Empty);
    let (outbound_tx, inbox) = outbound::queue(context.limits.outbound_queue);
    let chat_limits = context.chat.limits();
    let now = std::time::Instant::now();
    let actor = Actor {
        socket,
        registry: context.registry,
        chat: context.chat,
        chat_rate: RateLimiter::new(chat_limits.burst, chat_limits.rate, now),
        rates: MessageRates::new(now),
        joins: context.joins,
        passwords: context.passwords,
        outbound_tx,
        session: None,
        waiting: None,
        stations: context.stations,
        watching: None,
        station_client: false,
        send_timeout: context.limits.send_timeout,
        send_timed_out: false,
        remote,
        counters: context.counters.clone(),
    };
    let counters = context.counters;
    Counters::add(&counters.ws_accepted, 1);
    counters.ws_open.fetch_add(1, Ordering::Relaxed);
    let lifecycle = context.lifecycle.clone();
    let run = actor.run(
        inbox,
        context.heartbeat,
        context.limits.join_timeout,
        context.lifecycle,
    );
    lifecycle.track(run).instrument(span).await;
    counters.ws_open.fetch_sub(1, Ordering::Relaxed);
}

impl Actor {
    async fn run(
        mut self,
        inbox: Inbox,
        heartbeat: Heartbeat,
        join_timeout: Duration,
        lifecycle: Lifecycle,
    ) {
        let Inbox {
            queue: mut outbound,
            overflow,
        } = inbox;
        let mut ping =
            tokio::time::interval_at(Instant::now() + heartbeat.interval, heartbeat.interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Removal comes exactly `timeout` after the last sign of life, not at the next
        // ping tick, so a frozen participant is gone `timeout` after it froze.
        let silence = tokio::time::sleep(heartbeat.timeout);
        tokio::pin!(silence);
        // Only `join` counts here: pings and pongs before it keep nothing alive.
        let join_deadline = tokio::time::sleep(join_timeout);
        tokio::pin!(join_deadline);
        let end = loop {
            if lifecycle.is_shutting_down() {
                break End::ServerClosing;
            }
            // Never cancelled while not watching.
            let ended = self
                .watching
                .as_ref()
                .map(|w| w.ended.clone())
                .unwrap_or_default();
            tokio::select! {
                _ = ended.cancelled() => {
                    if let Flow::Close(reason) = self.station_ended().await {
                        break End::Leave(reason);
                    }
                }
                incoming = self.socket.recv() => {
                    let msg = match incoming {
                        Some(Ok(msg)) => msg,
                        Some(Err(e)) => break read_failed(e),
                        None => break End::Leave(LeaveReason::Disconnected),
                    };
                    silence.as_mut().reset(Instant::now() + heartbeat.timeout);
                    let flow = match msg {
                        Message::Text(text) => {
                            Counters::add(&self.counters.signaling_in, text.len() as u64);
                            self.on_text(text.as_str()).await
                        }
                        Message::Binary(_) => {
                            self.error(ErrorCode::BadMessage, "Messages must be JSON text.", false).await
                        }
                        Message::Ping(_) | Message::Pong(_) => Flow::Continue,
                        Message::Close(_) => Flow::Close(LeaveReason::Left),
                    };
                    if let Flow::Close(reason) = flow {
                        break End::Leave(reason);
                    }
                }
                out = outbound.recv() => {
                    // The actor holds a sender itself, so the queue never closes.
                    let Some(out) = out else { break End::Leave(LeaveReason::Disconnected) };
                    match out {
                        ToParticipant::Message(msg) => {
                            if !self.send(&msg).await {
                                break End::Leave(self.lost());
                            }
                        }
                        ToParticipant::MediaFailed => {
                            info!("media connection failed");
                            break End::Leave(LeaveReason::Disconnected);
                        }
                        ToParticipant::Replaced => {
                            info!("replaced by a rejoin");
                            break End::Replaced;
                        }
                        ToParticipant::Removed => {
                            info!("removed by a moderator");
                            self.waiting = None;
                            break End::Replaced;
                        }
                        ToParticipant::Admitted(joined) => {
                            self.waiting = None;
                            if let Flow::Close(reason) = self.entered(*joined).await {
                                break End::Leave(reason);
                            }
                        }
                    }
                }
                _ = &mut silence => {
                    info!("heartbeat timeout");
                    break End::Leave(LeaveReason::Timeout);
                }
                _ = &mut join_deadline, if self.session.is_none() && self.waiting.is_none() && !self.station_client => {
                    info!(?join_timeout, "no join in time");
                    break End::Refused {
                        code: CLOSE_POLICY,
                        why: "no join in time".into(),
                        leave: LeaveReason::Timeout,
                    };
                }
                _ = overflow.cancelled() => {
                    info!("removed: does not read what the server sends");
                    break End::Refused {
                        code: CLOSE_POLICY,
                        why: "too slow to read".into(),
                        leave: LeaveReason::Timeout,
                    };
                }
                _ = ping.tick() => {
                    if !self.write(Message::Ping(Default::default())).await {
                        break End::Leave(self.lost());
                    }
                }
                _ = lifecycle.shutting_down() => break End::ServerClosing,
            }
        };
        self.finish(end).await;
    }

    /// Leaves the room (unless already out) and closes the socket, telling the client
    /// first when the server is shutting down.
    async fn finish(mut self, end: End) {
        let (code, why, leave) = match end {
            End::ServerClosing => {
                let notice = ServerMessage::ServerClosing {
                    message: CLOSING_MESSAGE.into(),
                };
                let _ = tokio::time::timeout(CLOSING_SEND_LIMIT, self.send(&notice)).await;
                (
                    CLOSE_RESTART,
                    "server restarting".to_string(),
                    Some(LeaveReason::Disconnected),
                )
            }
            End::Leave(reason) => (1000, "bye".to_string(), Some(reason)),
            End::Replaced => (1000, "bye".to_string(), None),
            End::Refused { code, why, leave } => (code, why, Some(leave)),
        };
        if let (Some(s), Some(reason)) = (self.session.take(), leave) {
            self.registry.leave(&s.room, s.id, reason);
        }
        if let Some(w) = self.waiting.take() {
            self.registry.leave_lobby(&w.room, w.id);
        }
        self.stop_watching();
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: why.into(),
        }));
        let _ = tokio::time::timeout(CLOSING_SEND_LIMIT, self.socket.send(close)).await;
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        // Messages carrying SDP may be larger than the others (they grow with the room),
        // so the limit depends on the type, known once parsed. Parsing first is cheap:
        // the WebSocket layer already holds the whole frame (at most 1 MiB).
        let now = std::time::Instant::now();
        let msg: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                if let Err(limited) = self.rates.allow("invalid", now) {
                    return self.rate_limited(&limited).await;
                }
                if text.len() > MAX_MESSAGE_BYTES {
                    return self.too_large(text.len(), MAX_MESSAGE_BYTES, false).await;
                }
                debug!("bad message: {e}");
                let message = format!("Not a valid message: {e}");
                return self.error(ErrorCode::BadMessage, &message, false).await;
            }
        };
        if let Err(limited) = self.rates.allow(limits::kind_of(&msg), now) {
            // A dropped answer leaves the client's connection out of step, as a
            // refused one does (see `too_large`).
            let answer = matches!(msg, ClientMessage::SubscribeAnswer { .. });
            let flow = self.rate_limited(&limited).await;
            if let (true, Some(s)) = (answer, &self.session) {
                let refused = MediaSignal::SubscribeAnswerRefused;
                let _ = self.registry.media_signal(&s.room, s.id, refused);
            }
            return flow;
        }
        let limit = msg.size_limit();
        if text.len() > limit {
            let answer = matches!(msg, ClientMessage::SubscribeAnswer { .. });
            return self.too_large(text.len(), limit, answer).await;
        }
        if let ClientMessage::Ping { id } = msg {
            return self.reply(&ServerMessage::Pong { id }).await;
        }
        let msg = match msg.into_media() {
            Ok(signal) => return self.media(signal).await,
            Err(msg) => msg,
        };
        match msg {
            ClientMessage::ListStations {}
            | ClientMessage::Watch { .. }
            | ClientMessage::StopWatching {}
                if self.session.is_some() || self.waiting.is_some() =>
            {
                let message = "Stations are watched on their own connection, not from a meeting.";
                return self.error(ErrorCode::WrongState, message, false).await;
            }
            ClientMessage::ListStations {} => {
                self.station_client = true;
                return self.send_stations().await;
            }
            ClientMessage::Watch { station } => return self.watch(&station).await,
            ClientMessage::StopWatching {} => {
                self.stop_watching();
                return self.send_stations().await;
            }
            ClientMessage::Leave {} if self.watching.is_some() => {
                return Flow::Close(LeaveReason::Left)
            }
            _ => {}
        }
        if self.watching.is_some() {
            let message = "Stop watching before joining a room.";
            return self.error(ErrorCode::WrongState, message, false).await;
        }
        if let Some(w) = &self.waiting {
            let message = format!("Waiting for a moderator of room {} to let you in.", w.room);
            return match msg {
                ClientMessage::Leave {} => Flow::Close(LeaveReason::Left),
                _ => self.error(ErrorCode::WrongState, &message, false).await,
            };
        }
        match (msg, &self.session) {
            (
                ClientMessage::Join {
                    version,
                    room,
                    name,
                    resume,
                    password,
                },
                None,
            ) => {
                self.join(version, &room, &name, resume.as_deref(), password)
                    .await
            }
            (ClientMessage::Join { .. }, Some(_)) => {
                self.error(ErrorCode::WrongState, "Already joined.", false)
                    .await
            }
            (_, None) => {
                self.error(ErrorCode::WrongState, "Join a room first.", false)
                    .await
            }
            (ClientMessage::MediaState { camera, microphone }, Some(s)) => {
                let result = self
                    .registry
                    .set_media_state(&s.room, s.id, camera, microphone);
                self.refused(result).await
            }
            (ClientMessage::ScreenShare { active }, Some(s)) => {
                let result = self.registry.set_screen(&s.room, s.id, active);
                self.refused(result).await
            }
            (ClientMessage::RaiseHand { raised }, Some(s)) => {
                self.registry.raise_hand(&s.room, s.id, raised);
                Flow::Continue
            }
            (ClientMessage::Moderate { target, action }, Some(s)) => {
                let result = self.registry.moderate(&s.room, s.id, target, action);
                self.refused(result).await
            }
            (ClientMessage::RoomControl { action }, Some(s)) => {
                let result = self.registry.room_control(&s.room, s.id, action);
                self.refused(result).await
            }
            (ClientMessage::Admit { ids, admit }, Some(s)) => {
                let result = self.registry.admit(&s.room, s.id, &ids, admit);
                self.refused(result).await
            }
            (ClientMessage::Chat { text, to }, Some(s)) => {
                if !self.chat_rate.allow(std::time::Instant::now()) {
                    let message = "You are sending messages too fast; wait a moment.";
                    return self.error(ErrorCode::RateLimited, message, false).await;
                }
                let (room, id) = (s.room.clone(), s.id);
                match self.chat.post(&room, id, &text, &to) {
                    Ok(()) => {
                        Counters::add(&self.counters.chat_messages, 1);
                        Flow::Continue
                    }
                    Err(e) => self.error(e.code, &e.message, false).await,
                }
            }
            (ClientMessage::Leave {}, Some(_)) => Flow::Close(LeaveReason::Left),
            // Answered above.
            (
                ClientMessage::Ping { .. }
                | ClientMessage::PublishOffer { .. }
                | ClientMessage::SubscribeAnswer { .. }
                | ClientMessage::View { .. }
                | ClientMessage::ListStations {}
                | ClientMessage::Watch { .. }
                | ClientMessage::StopWatching {},
                Some(_),
            ) => Flow::Continue,
        }
    }

    /// Answers a refused request with its error; a granted one needs no answer.
    async fn refused(&mut self, result: Result<(), Refused>) -> Flow {
        match result {
            Ok(()) => Flow::Continue,
            Err(e) => self.error(e.code, &e.message, false).await,
        }
    }

    /// Passes a media message to the room's worker.
    async fn media(&mut self, signal: MediaSignal) -> Flow {
        if let Some(w) = &self.watching {
            let command = WorkerCommand::Signal { id: w.id, signal };
            let sent = self
                .registry
                .workers()
                .get(w.running.worker)
                .map_or(Ok(()), |h| h.try_send(command));
            return match sent {
                Ok(()) => Flow::Continue,
                Err(busy) => {
                    let message = busy.to_string();
                    self.error(ErrorCode::Unavailable, &message, false).await
                }
            };
        }
        match &self.session {
            Some(s) => match self.registry.media_signal(&s.room, s.id, signal) {
                Ok(()) => Flow::Continue,
                Err(busy) => {
                    let message = busy.to_string();
                    self.error(ErrorCode::Unavailable, &message, false).await
                }
            },
            // A station page's answer to an offer sent before its station ended (or it
            // stopped watching) arrives late: nothing to do.
            None if self.station_client => Flow::Continue,
            None => {
                self.error(ErrorCode::WrongState, "Join a room first.", false)
                    .await
            }
        }
    }

    /// Sends the station list, naming the one watched.
    async fn send_stations(&mut self) -> Flow {
        let watching = self.watching.as_ref().map(|w| w.station.name.clone());
        let msg = ServerMessage::Stations {
            stations: self.stations.list(std::time::Instant::now()),
            watching,
        };
        self.reply(&msg).await
    }

    /// Watches station `name`: joins its room as a viewer (subscribe offer follows),
    /// or, while watching another, switches to it on the same connection.
    async fn watch(&mut self, name: &str) -> Flow {
        self.station_client = true;
        let Some((station, (running, ended))) = self
            .stations
            .find(name)
            .and_then(|s| s.on_air().map(|on| (s, on)))
        else {
            let message = format!("There is no station called {name:?} on air.");
            return self.error(ErrorCode::UnknownStation, &message, false).await;
        };
        let (to, room, worker) = (running.id, running.room.clone(), running.worker);
        let Some(handle) = self.registry.workers().get(worker) else {
            let message = "The station's media worker is gone.";
            return self.error(ErrorCode::Unavailable, message, false).await;
        };
        let current = self
            .watching
            .as_ref()
            .map(|w| (w.id, w.station.clone(), w.running.id));
        let result = match current {
            Some((_, _, from)) if from == running.id => Ok(()),
            Some((viewer, from, _)) => handle
                .try_send(WorkerCommand::SwitchStation { viewer, to, room })
                .map(|()| {
                    from.count_viewer(false);
                    station.count_viewer(true);
                    self.watching = Some(Watching {
                        id: viewer,
                        station,
                        running,
                        ended,
                    });
                }),
            None => {
                // A viewer costs the worker what a participant does: joins' rate limit.
                if let Some(address) = self.remote.map(|r| r.ip()) {
                    if let Err(rate) = self.joins.allow(address, std::time::Instant::now()) {
                        let message = format!(
                            "Too many joins from your address: at most {rate} per second. Wait a moment."
                        );
                        return self.error(ErrorCode::RateLimited, &message, false).await;
                    }
                }
                let id = match self.registry.reserve_id() {
                    Ok(id) => id,
                    Err(e) => return self.error(e.code, &e.message, false).await,
                };
                let outbound = self.outbound_tx.clone();
                handle
                    .try_send(WorkerCommand::Join {
                        room,
                        id,
                        outbound,
                        others: Vec::new(),
                    })
                    .and_then(|()| {
                        handle.try_send(WorkerCommand::MayPublish {
                            id,
                            may_publish: false,
                        })
                    })
                    .map(|()| {
                        Span::current().record("id", field::display(id));
                        Span::current().record("room", stations::room_of(name).as_str());
                        info!(%id, station = name, "watching");
                        station.count_viewer(true);
                        self.watching = Some(Watching {
                            id,
                            station,
                            running,
                            ended,
                        });
                    })
                    .inspect_err(|_| handle.leave(id))
            }
        };
        match result {
            Ok(()) => self.send_stations().await,
            Err(busy) => {
                let message = busy.to_string();
                self.error(ErrorCode::Unavailable, &message, false).await
            }
        }
    }

    /// Stops watching, if watching: the viewer leaves the station's room.
    fn stop_watching(&mut self) {
        let Some(w) = self.watching.take() else {
            return;
        };
        if let Some(handle) = self.registry.workers().get(w.running.worker) {
            handle.leave(w.id);
        }
        w.station.count_viewer(false);
        info!(id = %w.id, "stopped watching");
    }

    /// The watched station was deleted or went off air: the viewer leaves its room and
    /// is told, with the list.
    async fn station_ended(&mut self) -> Flow {
        let Some(name) = self.watching.as_ref().map(|w| w.station.name.clone()) else {
            return Flow::Continue;
        };
        self.stop_watching();
        let (reason, message) = if self.stations.find(&name).is_some() {
            (StationEnd::OffAir, format!("Station {name} went off air."))
        } else {
            (StationEnd::Removed, format!("Station {name} was removed."))
        };
        let notice = ServerMessage::StationRemoved {
            station: name,
            reason,
            message,
        };
        if let Flow::Close(reason) = self.reply(&notice).await {
            return Flow::Close(reason);
        }
        self.send_stations().await
    }

    async fn join(
        &mut self,
        version: u32,
        room: &str,
        name: &str,
        resume: Option<&str>,
        password: Option<String>,
    ) -> Flow {
        if version != PROTOCOL_VERSION {
            let message = format!(
                "This server speaks protocol version {PROTOCOL_VERSION}, the page {version}. Reload the page."
            );
            self.join_failed(ErrorCode::UnsupportedVersion);
            return self
                .error(ErrorCode::UnsupportedVersion, &message, true)
                .await;
        }
        if let Some(address) = self.remote.map(|r| r.ip()) {
            if let Err(rate) = self.joins.allow(address, std::time::Instant::now()) {
                let message = format!(
                    "Too many joins from your address: at most {rate} per second. Wait a moment and reload."
                );
                self.join_failed(ErrorCode::RateLimited);
                return self.error(ErrorCode::RateLimited, &message, true).await;
            }
        }
        let access = match self.room_password(room, password).await {
            Ok(access) => access,
            Err(flow) => return flow,
        };
        match self.registry.join(
            room,
            name,
            resume,
            self.remote,
            self.outbound_tx.clone(),
            access,
        ) {
            Ok(Entry::Joined(joined)) => self.entered(joined).await,
            Ok(Entry::Waiting { id, room }) => {
                let span = Span::current();
                span.record("room", room.as_str());
                span.record("id", field::display(id));
                let message = "Waiting for a moderator to let you in.".to_string();
                let reply = ServerMessage::Waiting {
                    room: room.clone(),
                    message,
                };
                self.waiting = Some(Session { id, room });
                self.reply(&reply).await
            }
            Err(e) => {
                self.join_failed(e.code);
                self.error(e.code, &e.message, true).await
            }
        }
    }

    /// What `password` admits to in `room`: a participant in a room without one. A
    /// missing or wrong password, or too many wrong ones from this address, is refused
    /// without closing the socket, so that the page can ask and `join` again.
    async fn room_password(
        &mut self,
        room: &str,
        password: Option<String>,
    ) -> Result<Access, Flow> {
        let Some(settings) = self.registry.settings(room) else {
            return Ok(Access::Participant);
        };
        if !settings.has_password() || (password.is_none() && settings.password.is_none()) {
            return Ok(Access::Participant);
        }
        let address = self.remote.map(|r| r.ip());
        if let Some(address) = address {
            if let Err(rate) = self.passwords.check(address, std::time::Instant::now()) {
                let message = format!(
                    "Too many wrong passwords from your address: at most one every {:.0} seconds. Wait a moment.",
                    1.0 / rate
                );
                self.join_failed(ErrorCode::RateLimited);
                return Err(self.error(ErrorCode::RateLimited, &message, false).await);
            }
        }
        let checked =
            tokio::task::spawn_blocking(move || settings.check(password.as_deref())).await;
        let code = match checked {
            Ok(Ok(access)) => return Ok(access),
            Ok(Err(code)) => code,
            Err(e) => {
                warn!("checking a room password: {e}");
                ErrorCode::Unavailable
            }
        };
        let message = match code {
            ErrorCode::PasswordRequired => format!("Room {room} needs a password."),
            ErrorCode::WrongPassword => {
                if let Some(address) = address {
                    let _ = self.passwords.allow(address, std::time::Instant::now());
                }
                "Wrong password.".to_string()
            }
            _ => "The server cannot check passwords right now; please try again.".to_string(),
        };
        self.join_failed(code);
        Err(self.error(code, &message, false).await)
    }

    /// Now a member of the room (at once, or admitted from the lobby): `joined` and the
    /// chat history.
    async fn entered(&mut self, joined: Joined) -> Flow {
        let span = Span::current();
        span.record("room", joined.room.as_str());
        span.record("id", field::display(joined.id));
        self.session = Some(Session {
            id: joined.id,
            room: joined.room.clone(),
        });
        let history = ServerMessage::ChatHistory {
            messages: self.chat.history(&joined.room),
        };
        let reply = ServerMessage::Joined {
            you: joined.id,
            room: joined.room,
            participants: joined.others,
            token: joined.token,
            role: joined.role,
            locked: joined.locked,
        };
        if self.send(&reply).await && self.send(&history).await {
            Flow::Continue
        } else {
            Flow::Close(self.lost())
        }
    }

    /// Counts a refused join under its error code.
    fn join_failed(&self, code: ErrorCode) {
        let reason = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "other".into());
        self.counters.join_failed(&reason);
    }

    /// Refuses a message of `size` bytes over `limit` with `too_large`. A refused
    /// subscribe answer (`answer`) leaves the client's connection out of step with the
    /// server's, and only a new offer gets media flowing again: the media worker is told
    /// (docs/PROTOCOL.md, `subscribe_answer`).
    async fn too_large(&mut self, size: usize, limit: usize, answer: bool) -> Flow {
        let message = format!("Message too large: {size} bytes, at most {limit}.");
        let flow = self.error(ErrorCode::TooLarge, &message, false).await;
        if let (true, Some(s)) = (answer, &self.session) {
            let refused = MediaSignal::SubscribeAnswerRefused;
            let _ = self.registry.media_signal(&s.room, s.id, refused);
        }
        flow
    }

    /// Refuses a message over its type's rate limit with `rate_limited`.
    async fn rate_limited(&mut self, limited: &limits::RateLimited) -> Flow {
        debug!(kind = limited.kind, "rate limited");
        self.error(ErrorCode::RateLimited, &limited.message(), false)
            .await
    }

    /// Sends `msg`; a failed send ends the session.
    async fn reply(&mut self, msg: &ServerMessage) -> Flow {
        if self.send(msg).await {
            Flow::Continue
        } else {
            Flow::Close(self.lost())
        }
    }

    /// Sends an error; a fatal one ends the session.
    async fn error(&mut self, code: ErrorCode, message: &str, fatal: bool) -> Flow {
        let msg = ServerMessage::Error {
            code,
            message: message.to_string(),
            fatal,
        };
        if !self.send(&msg).await {
            Flow::Close(self.lost())
        } else if fatal {
            Flow::Close(LeaveReason::Left)
        } else {
            Flow::Continue
        }
    }

    async fn send(&mut self, msg: &ServerMessage) -> bool {
        let json = match serde_json::to_string(msg) {
            Ok(j) => j,
            Err(e) => {
                debug!("cannot serialize {msg:?}: {e}");
                return true;
            }
        };
        Counters::add(&self.counters.signaling_out, json.len() as u64);
        self.write(Message::Text(json.into())).await
    }

    /// Writes `msg` to the socket within the send timeout; false if it failed or took
    /// longer (then [`Actor::lost`] says `timeout`).
    async fn write(&mut self, msg: Message) -> bool {
        match tokio::time::timeout(self.send_timeout, self.socket.send(msg)).await {
            Ok(result) => result.is_ok(),
            Err(_) => {
                info!(timeout = ?self.send_timeout, "removed: a send timed out");
                self.send_timed_out = true;
                false
            }
        }
    }

    /// Why the participant is gone after a failed write.
    fn lost(&self) -> LeaveReason {
        if self.send_timed_out {
            LeaveReason::Timeout
        } else {
            LeaveReason::Disconnected
        }
    }
}

/// How the loop ends after a failed read: a frame or message over the WebSocket limit
/// is refused with close code 1009 and says so; anything else is a lost connection.
fn read_failed(error: axum::Error) -> End {
    use tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast::<Error>().map(|e| *e) {
        Ok(Error::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
            info!(size, max_size, "frame over the limit");
            End::Refused {
                code: CLOSE_TOO_BIG,
                why: format!("message too big: {size} bytes, at most {max_size}"),
                leave: LeaveReason::Disconnected,
            }
        }
        Ok(Error::Capacity(e)) => End::Refused {
            code: CLOSE_TOO_BIG,
            why: e.to_string(),
            leave: LeaveReason::Disconnected,
        },
        _ => End::Leave(LeaveReason::Disconnected),
    }
}
