//! One client must not exhaust the server (issue 14, findings 1–3), over real sockets: a
//! participant that stops reading is removed while the others keep receiving; a socket
//! that never joins, an oversized frame, too many connections from one address and an
//! unfinished HTTP header are each closed; floods of any message type are refused with
//! `rate_limited` while another room is still answered at once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use lanmeet_proto::{ClientMessage, ErrorCode, LeaveReason, ParticipantId, ServerMessage};
use lanmeet_server::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn id_of(joined: &ServerMessage) -> ParticipantId {
    match joined {
        ServerMessage::Joined { you, .. } => *you,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// A browser-like publish offer (audio and video, sendonly), made with str0m.
fn publish_offer_sdp() -> String {
    use str0m::media::{Direction, MediaKind};
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(crypto)
        .build(Instant::now());
    let candidate =
        str0m::Candidate::host("127.0.0.1:40000".parse().expect("addr"), "udp").expect("host");
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().expect("a change");
    offer.to_sdp_string()
}

/// Reads until the close frame; returns its code and reason (None if the connection
/// just ended).
async fn close_frame(ws: &mut Ws, within: Duration) -> Option<(CloseCode, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server closes the socket in time");
        match msg {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (f.code, f.reason.to_string()));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Whether the server closes `stream` (EOF or reset) within `within`, reading and
/// discarding whatever it sends first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A WebSocket from `source` (a loopback address) whose receive buffer is tiny.
async fn connect_from(server: &RunningServer, source: &str, recv_buffer: Option<u32>) -> Ws {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("buffer size");
    }
    socket
        .bind(format!("{source}:0").parse().expect("addr"))
        .expect("bind");
    let stream = socket.connect(server.addr).await.expect("connects");
    let url = format!("ws://{}/ws", server.addr);
    let (ws, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
    ws
}

#[tokio::test]
async fn a_participant_that_stops_reading_is_removed_while_the_others_keep_receiving() {
    let server = server_with(|c| {
        // Only the outbound bounds may remove it, not the heartbeat.
        c.peer_timeout_ms = 120_000;
        c.ping_interval_ms = 60_000;
        c.send_timeout_ms = 2_000;
        c.outbound_queue = 64;
        c.chat_burst = 100_000;
        c.chat_rate = 100_000.0;
    })
    .await;
    let (ada, _) = join(&server, "lab", "Ada").await;
    let (mut grace, _) = join(&server, "lab", "Grace").await;
    // Mallory joins and never reads again.
    let mut mallory = connect_from(&server, "127.0.0.1", Some(4096)).await;
    send(&mut mallory, &join_request("lab", "Mallory", None, None)).await;
    // Grace joined after Ada: the first newcomer she hears of is Mallory.
    let mallory_id = match recv_until(&mut grace, |m| {
        matches!(m, ServerMessage::ParticipantJoined { .. })
    })
    .await
    {
        ServerMessage::ParticipantJoined { participant } => participant.id,
        _ => unreachable!(),
    };

    // Ada chats in 4 KB messages; Grace reads each promptly; Mallory's share piles up
    // until the server gives up on it. Ada reads too (her own messages come back).
    let (mut ada_tx, mut ada_rx) = ada.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = ada_rx.next().await {} });
    let chat = serde_json::to_string(&ClientMessage::Chat {
        text: "x".repeat(4000),
        to: Vec::new(),
    })
    .expect("serializes");
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut removed_after = None;
    let mut left = None;
    for _ in 0..3000 {
        let sent = Instant::now();
        ada_tx
            .send(Message::Text(chat.clone().into()))
            .await
            .expect("Ada's socket stays open");
        loop {
            match recv(&mut grace).await.expect("Grace's socket stays open") {
                ServerMessage::Chat { .. } => break,
                m @ ServerMessage::ParticipantLeft { .. } => left = Some(m),
                _ => {}
            }
        }
        worst = worst.max(sent.elapsed());
        if server.registry.counts().1 == 2 {
            removed_after = Some(started.elapsed());
            break;
        }
    }
    let removed_after = match removed_after {
        Some(t) => t,
        // Traffic no longer needed: only the send timeout has to fire now.
        None => {
            let until = Instant::now() + PATIENCE;
            while server.registry.counts().1 != 2 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(server.registry.counts().1, 2, "Mallory was removed");
            started.elapsed()
        }
    };
    println!("removed after {removed_after:?}; Grace's worst chat latency {worst:?}");
    let left = match left {
        Some(left) => left,
        None => {
            recv_until(&mut grace, |m| {
                matches!(m, ServerMessage::ParticipantLeft { .. })
            })
            .await
        }
    };
    assert_eq!(
        left,
        ServerMessage::ParticipantLeft {
            id: mallory_id,
            reason: LeaveReason::Timeout
        }
    );
    assert!(
        worst < Duration::from_secs(1),
        "Grace waited {worst:?} for a chat message"
    );
    drop(mallory);
    drop(ada_tx);
    drain.abort();
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_socket_that_never_joins_is_closed_after_the_deadline_pings_or_not() {
    let server = server_with(|c| c.join_timeout_ms = 600).await;
    let mut idle = connect(&server).await;
    let mut pinging = connect(&server).await;
    let opened = Instant::now();
    // Pings, WebSocket pings and pongs keep nothing alive before `join`.
    let keep_pinging = async {
        for id in 0.. {
            if send_raw(&mut pinging, &ClientMessage::Ping { id })
                .await
                .is_err()
            {
                break;
            }
            let _ = pinging.send(Message::Ping(Vec::new().into())).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if opened.elapsed() > PATIENCE {
                break;
            }
        }
        pinging
    };
    let (closed, mut pinging) = tokio::join!(close_frame(&mut idle, PATIENCE), keep_pinging);
    let (code, reason) = closed.expect("a close frame");
    assert_eq!(code, CloseCode::Policy);
    assert_eq!(reason, "no join in time");
    assert!(
        opened.elapsed() < Duration::from_secs(5),
        "{:?}",
        opened.elapsed()
    );
    let closed = close_frame(&mut pinging, Duration::from_secs(2)).await;
    assert_eq!(closed.map(|c| c.0), Some(CloseCode::Policy));
    // Joining in time is unaffected, and a joined socket outlives the deadline.
    let (mut ada, reply) = join(&server, "lab", "Ada").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    send(&mut ada, &ClientMessage::Ping { id: 7 }).await;
    assert_eq!(recv(&mut ada).await, Some(ServerMessage::Pong { id: 7 }));
    server.shutdown().await.expect("clean shutdown");
}

async fn send_raw(ws: &mut Ws, msg: &ClientMessage) -> Result<(), ()> {
    let json = serde_json::to_string(msg).expect("serializes");
    ws.send(Message::Text(json.into())).await.map_err(|_| ())
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_that_socket_only() {
    let server = server().await;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    let (mut mallory, _) = join(&server, "lab", "Mallory").await;
    recv_until(&mut ada, |m| {
        matches!(m, ServerMessage::ParticipantJoined { .. })
    })
    .await;
    // 1,000 KiB: four times the largest SDP message.
    let huge = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(1000 * 1024));
    let _ = mallory.send(Message::Text(huge.into())).await;
    let (code, reason) = close_frame(&mut mallory, PATIENCE)
        .await
        .expect("a close frame");
    assert_eq!(code, CloseCode::Size);
    assert!(reason.starts_with("message too big"), "{reason}");
    let left = recv_until(&mut ada, |m| {
        matches!(m, ServerMessage::ParticipantLeft { .. })
    })
    .await;
    assert!(matches!(left, ServerMessage::ParticipantLeft { .. }));
    // Ada is unaffected.
    send(
        &mut ada,
        &ClientMessage::Chat {
            text: "still here".into(),
            to: Vec::new(),
        },
    )
    .await;
    recv_until(&mut ada, |m| matches!(m, ServerMessage::Chat { .. })).await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_total() {
    let server = server_with(|c| {
        c.max_connections_per_ip = 2;
        c.max_connections = 3;
    })
    .await;
    let connect_from_ip = |ip: &'static str| async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{ip}:0").parse().expect("addr"))
            .expect("bind");
        socket.connect(server.addr).await.expect("TCP connects")
    };
    let mut a1 = connect_from_ip("127.0.0.1").await;
    let mut a2 = connect_from_ip("127.0.0.1").await;
    let mut a3 = connect_from_ip("127.0.0.1").await;
    assert!(
        closed_within(&mut a3, PATIENCE).await,
        "a third connection from one address is closed"
    );
    let mut b1 = connect_from_ip("127.0.0.2").await;
    let mut b2 = connect_from_ip("127.0.0.2").await;
    assert!(
        closed_within(&mut b2, PATIENCE).await,
        "a fourth connection in all is closed"
    );
    // The admitted ones are served.
    for s in [&mut a1, &mut a2, &mut b1] {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("writes");
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .expect("an answer")
            .expect("reads");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    }
    // A closed one gives its place back.
    drop(a1);
    let mut a4 = connect_from_ip("127.0.0.1").await;
    a4.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut buf = [0u8; 256];
    let mut answered = false;
    // The slot comes back when the server notices the close: retry briefly.
    for _ in 0..50 {
        match tokio::time::timeout(PATIENCE, a4.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                answered = buf[..n].starts_with(b"HTTP/1.1 200");
                break;
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                a4 = connect_from_ip("127.0.0.1").await;
                a4.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .expect("writes");
            }
        }
    }
    assert!(answered, "a freed place is taken again");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_unfinished_header_and_an_idle_keep_alive_are_closed_after_the_header_timeout() {
    let server = server_with(|c| c.header_timeout_ms = 500).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connects");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("writes");
    let started = Instant::now();
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    println!("unfinished header closed after {:?}", started.elapsed());

    let mut idle = TcpStream::connect(server.addr).await.expect("connects");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    println!("idle keep-alive closed after {:?}", started.elapsed());
    server.shutdown().await.expect("clean shutdown");
}

/// Reads `ws` until a message matching `pred`, counting the `rate_limited` errors on
/// the way; fails after `within`.
async fn until_counting_rate_limited(
    ws: &mut Ws,
    within: Duration,
    pred: impl Fn(&ServerMessage) -> bool,
) -> (usize, Vec<String>) {
    let deadline = tokio::time::Instant::now() + within;
    let (mut n, mut messages) = (0, Vec::new());
    loop {
        let msg = tokio::time::timeout_at(deadline, recv(ws))
            .await
            .expect("in time")
            .expect("socket stays open");
        if let ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message,
            fatal: false,
        } = &msg
        {
            n += 1;
            if messages.len() < 3 {
                messages.push(message.clone());
            }
        }
        if pred(&msg) {
            return (n, messages);
        }
    }
}

#[tokio::test]
async fn floods_are_rate_limited_and_another_room_is_still_answered_at_once() {
    let server = server().await;
    let sdp = publish_offer_sdp();
    let (mut mallory, _) = join(&server, "a", "Mallory").await;
    let (mut bob, _) = join(&server, "a", "Bob").await;
    recv_until(&mut mallory, |m| {
        matches!(m, ServerMessage::ParticipantJoined { .. })
    })
    .await;
    let (mut victim, _) = join(&server, "b", "Victim").await;

    // 300 offers at once: the first few are taken, the rest refused.
    let offer = serde_json::to_string(&ClientMessage::PublishOffer {
        sdp: sdp.clone(),
        tracks: Vec::new(),
    })
    .expect("serializes");
    for _ in 0..300 {
        mallory
            .send(Message::Text(offer.clone().into()))
            .await
            .expect("sends");
    }
    // Another room's offer is answered promptly.
    let asked = Instant::now();
    send(
        &mut victim,
        &ClientMessage::PublishOffer {
            sdp,
            tracks: Vec::new(),
        },
    )
    .await;
    recv_until(&mut victim, |m| {
        matches!(m, ServerMessage::PublishAnswer { .. })
    })
    .await;
    let answered = asked.elapsed();
    println!("the other room's answer came after {answered:?}");
    assert!(answered < Duration::from_secs(2), "{answered:?}");
    send(&mut mallory, &ClientMessage::Ping { id: 1 }).await;
    let (refused, messages) = until_counting_rate_limited(&mut mallory, PATIENCE, |m| {
        matches!(m, ServerMessage::Pong { id: 1 })
    })
    .await;
    assert!(
        (290..=296).contains(&refused),
        "{refused} offers refused; the first 5 (and what refilled meanwhile) pass"
    );
    assert!(
        messages[0].contains("publish_offer") && messages[0].contains("per second"),
        "{messages:?}"
    );

    // 2,000 media_state messages: Bob hears of a handful, Mallory is told.
    for i in 0..2000 {
        let state = ClientMessage::MediaState {
            camera: i % 2 == 0,
            microphone: true,
        };
        send(&mut mallory, &state).await;
    }
    send(
        &mut mallory,
        &ClientMessage::Chat {
            text: "done".into(),
            to: Vec::new(),
        },
    )
    .await;
    let mut updates = 0;
    loop {
        match recv(&mut bob).await.expect("open") {
            ServerMessage::ParticipantUpdated { .. } => updates += 1,
            ServerMessage::Chat { .. } => break,
            _ => {}
        }
    }
    assert!(
        (20..=40).contains(&updates),
        "Bob heard {updates} of 2000 media_state changes"
    );
    let (refused, messages) = until_counting_rate_limited(&mut mallory, PATIENCE, |m| {
        matches!(m, ServerMessage::Chat { .. })
    })
    .await;
    assert!(refused >= 1900, "{refused} media_state refused");
    assert!(messages[0].contains("media_state"), "{messages:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn joins_are_rate_limited_per_address() {
    let server = server_with(|c| {
        c.join_burst = 3;
        c.join_rate = 0.5;
    })
    .await;
    let mut kept = Vec::new();
    for i in 0..3 {
        let (ws, reply) = join(&server, "lab", &format!("P{i}")).await;
        assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
        kept.push(ws);
    }
    let (_, reply) = join(&server, "lab", "P3").await;
    match reply {
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message,
            fatal: true,
        } => assert!(message.contains("joins"), "{message}"),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Another address is not affected.
    let mut other = connect_from(&server, "127.0.0.2", None).await;
    send(&mut other, &join_request("lab", "Q", None, None)).await;
    let reply = recv(&mut other).await.expect("a reply");
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    let _ = id_of(&reply);
    server.shutdown().await.expect("clean shutdown");
}
