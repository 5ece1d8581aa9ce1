//! Helpers shared by the server tests: a server on 127.0.0.1:0 and a WebSocket client
//! speaking the protocol.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanmeet_proto::{ChatMessage, ClientMessage, ErrorCode, ParticipantId, ServerMessage};
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
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message in time")?;
        match msg {
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

/// Waits for the first message matching `pred`, failing if the socket closes first.
pub async fn recv_until(ws: &mut Ws, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
    loop {
        let msg = recv(ws).await.expect("socket stays open");
        if pred(&msg) {
            return msg;
        }
    }
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
    send(
        &mut ws,
        &ClientMessage::Join {
            version: 1,
            room: room.into(),
            name: name.into(),
            resume: resume.map(String::from),
            password: None,
        },
    )
    .await;
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
