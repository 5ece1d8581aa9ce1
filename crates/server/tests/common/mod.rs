//! Helpers shared by the server tests: a server on 127.0.0.1:0 and a WebSocket client
//! speaking the protocol.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanmeet_proto::{
    ChatMessage, ClientMessage, ErrorCode, ParticipantId, Role, ServerMessage, PROTOCOL_VERSION,
};
use lanmeet_server::config::Config;
use lanmeet_server::RunningServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for any single expected event; tests wait on events, not on this.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub async fn server_with(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    let dir = std::env::temp_dir().join(format!(
        "lanmeet-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir,
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 2,
        // Every test client joins from 127.0.0.1: the per-address join limit is for
        // tests that are about it (hardening_bounds.rs) to set.
        join_burst: 1000,
        join_rate: 1000.0,
        ..Config::default()
    };
    adjust(&mut config);
    lanmeet_server::start(config).await.expect("server starts")
}

pub async fn server() -> RunningServer {
    server_with(|_| {}).await
}

pub fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub async fn connect(server: &RunningServer) -> Ws {
    let url = format!("ws://{}/ws", server.addr);
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    ws
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    let json = serde_json::to_string(msg).expect("serializes");
    ws.send(Message::Text(json.into())).await.expect("sends");
}

/// The next server message, skipping pings; None when the socket closes.
pub async fn recv(ws: &mut Ws) -> Option<ServerMessage> {
    tokio::time::timeout(PATIENCE, next_message(ws))
        .await
        .expect("a message in time")
}

/// The next server message without a time limit, skipping pings; None when the socket
/// closes.
async fn next_message(ws: &mut Ws) -> Option<ServerMessage> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => {
                return Some(serde_json::from_str(t.as_str()).expect("server sends valid JSON"))
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Sends raw text `g` and expects a non-fatal `bad_message` reply.
pub async fn expect_bad_message(ws: &mut Ws, g: &str) {
    ws.send(Message::Text(g.into())).await.expect("sends");
    let reply = recv(ws).await.expect("a reply");
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::BadMessage,
                fatal: false,
                ..
            }
        ),
        "{g:?}: {reply:?}"
    );
}

/// The first message matching `pred`, skipping others; panics naming `what` (and what
/// came instead) if the socket closes or [`PATIENCE`] passes first. The server's pings
/// keep a socket busy, so only a deadline for the whole wait ends it.
pub async fn recv_matching(
    ws: &mut Ws,
    what: &str,
    pred: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut skipped = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, next_message(ws)).await {
            Ok(Some(msg)) if pred(&msg) => return msg,
            Ok(Some(msg)) => skipped.push(kind_of(&msg)),
            Ok(None) => panic!(
                "the socket closed while waiting for {what}; it received before: [{}]",
                skipped.join(", ")
            ),
            Err(_) => panic!(
                "waited {PATIENCE:?} in vain for {what}; received instead: [{}]",
                skipped.join(", ")
            ),
        }
    }
}

/// The protocol name of a server message (its `type`), for failure messages.
fn kind_of(msg: &ServerMessage) -> String {
    match serde_json::to_value(msg) {
        Ok(v) => v["type"].as_str().unwrap_or("?").to_owned(),
        Err(_) => format!("{msg:?}"),
    }
}

/// The first message matching `pred` within [`PATIENCE`]; a failure names the caller's
/// line. Prefer [`until!`] where a pattern will do: its failure names the pattern.
#[track_caller]
pub fn recv_until<'a>(
    ws: &'a mut Ws,
    pred: impl Fn(&ServerMessage) -> bool + 'a,
) -> impl std::future::Future<Output = ServerMessage> + 'a {
    let at = std::panic::Location::caller();
    async move { recv_matching(ws, &format!("the message awaited at {at}"), pred).await }
}

/// `until!(ws, Pattern)`: a future of the first message on `ws` (a `&mut Ws`) matching
/// `Pattern` (with an optional `if` guard, as in `matches!`), skipping others, within
/// [`PATIENCE`]; a failure names the pattern and the line.
macro_rules! until {
    ($ws:expr, $($pattern:tt)+) => {
        $crate::common::recv_matching(
            $ws,
            concat!("`", stringify!($($pattern)+), "` (", file!(), ":", line!(), ")"),
            |m: &lanmeet_proto::ServerMessage| matches!(m, $($pattern)+),
        )
    };
}
#[allow(unused_imports)]
pub(crate) use until;

/// Waits for the next error on `ws` (skipping other messages) and expects `code`, not
/// fatal; returns its message.
pub async fn expect_error(ws: &mut Ws, code: ErrorCode) -> String {
    let reply = until!(ws, ServerMessage::Error { .. }).await;
    refused(&reply, code)
}

/// Asserts that `reply` is the error `code` with a message, not fatal unless the code
/// is one that ends the session (the room is closed or full); returns the message.
pub fn refused(reply: &ServerMessage, code: ErrorCode) -> String {
    match reply {
        ServerMessage::Error {
            code: got,
            message,
            fatal,
        } => {
            assert_eq!(*got, code, "{message}");
            assert!(!message.is_empty());
            assert!(
                !*fatal || matches!(code, ErrorCode::RoomClosed | ErrorCode::RoomFull),
                "{code:?} is not fatal"
            );
            message.clone()
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// The role a `joined` reply gives; panics on any other reply.
pub fn role_of(reply: &ServerMessage) -> Role {
    match reply {
        ServerMessage::Joined { role, .. } => *role,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// A `join` for `room` as `name`, resuming the session of `resume` and giving
/// `password` where set.
pub fn join_request(
    room: &str,
    name: &str,
    resume: Option<&str>,
    password: Option<&str>,
) -> ClientMessage {
    ClientMessage::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: name.into(),
        resume: resume.map(String::from),
        password: password.map(String::from),
    }
}

/// Sends `join` for `room` as `name` with `password` on `ws`; returns the reply
/// (`joined`, `waiting` or an error).
pub async fn try_join(
    ws: &mut Ws,
    room: &str,
    name: &str,
    password: Option<&str>,
) -> ServerMessage {
    send(ws, &join_request(room, name, None, password)).await;
    recv(ws).await.expect("a reply to join")
}

pub async fn join(server: &RunningServer, room: &str, name: &str) -> (Ws, ServerMessage) {
    let (ws, reply, _) = join_with_history(server, room, name).await;
    (ws, reply)
}

/// Joins; on success also returns the chat history that follows `joined`.
pub async fn join_with_history(
    server: &RunningServer,
    room: &str,
    name: &str,
) -> (Ws, ServerMessage, Vec<ChatMessage>) {
    join_resuming(server, room, name, None).await
}

/// Joins as a client rejoining with `resume` (the token of its lost session), or as a
/// new one; on success also returns the chat history that follows `joined`.
pub async fn join_resuming(
    server: &RunningServer,
    room: &str,
    name: &str,
    resume: Option<&str>,
) -> (Ws, ServerMessage, Vec<ChatMessage>) {
    let mut ws = connect(server).await;
    send(&mut ws, &join_request(room, name, resume, None)).await;
    let reply = recv(&mut ws).await.expect("a reply to join");
    let mut history = Vec::new();
    if matches!(reply, ServerMessage::Joined { .. }) {
        match recv(&mut ws).await {
            Some(ServerMessage::ChatHistory { messages }) => history = messages,
            other => panic!("expected chat_history after joined, got {other:?}"),
        }
    }
    (ws, reply, history)
}

/// A joined participant's socket, id and session token.
pub struct Member {
    pub ws: Ws,
    pub id: ParticipantId,
    pub token: String,
}

/// Joins `room` as `name`; panics if refused.
pub async fn member(server: &RunningServer, room: &str, name: &str) -> Member {
    let (ws, reply) = join(server, room, name).await;
    let ServerMessage::Joined { you, token, .. } = reply else {
        panic!("{name} could not join: {reply:?}")
    };
    Member { ws, id: you, token }
}
