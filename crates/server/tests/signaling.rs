//! Signaling over real sockets, without a browser: a test client speaks the protocol to
//! a server on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use lanmeet_proto::{
    ClientMessage, ErrorCode, LeaveReason, ServerMessage, MAX_MESSAGE_BYTES, MAX_SDP_MESSAGE_BYTES,
};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn join_sees_others_and_others_see_join_and_leave() {
    let server = server().await;
    let (mut ada, reply) = join(&server, "lab", "Ada").await;
    let ServerMessage::Joined {
        you: ada_id,
        participants,
        room,
        ..
    } = reply
    else {
        panic!("expected joined, got {reply:?}");
    };
    assert_eq!(room, "lab");
    assert!(participants.is_empty());

    let (mut grace, reply) = join(&server, "lab", "Grace").await;
    let ServerMessage::Joined {
        you: grace_id,
        participants,
        ..
    } = reply
    else {
        panic!("expected joined, got {reply:?}");
    };
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0].name, "Ada");
    assert_eq!(participants[0].id, ada_id);

    let msg = until!(&mut ada, ServerMessage::ParticipantJoined { .. }).await;
    let ServerMessage::ParticipantJoined { participant } = msg else {
        unreachable!()
    };
    assert_eq!(participant.id, grace_id);
    assert_eq!(participant.name, "Grace");

    // Someone in another room is never told about this room.
    let (mut other, _) = join(&server, "elsewhere", "Alan").await;

    send(
        &mut grace,
        &ClientMessage::MediaState {
            camera: false,
            microphone: true,
        },
    )
    .await;
    let msg = until!(&mut ada, ServerMessage::ParticipantUpdated { .. }).await;
    let ServerMessage::ParticipantUpdated { participant } = msg else {
        unreachable!()
    };
    assert!(!participant.camera && participant.microphone);

    send(&mut grace, &ClientMessage::Leave {}).await;
    assert_eq!(recv(&mut grace).await, None, "socket closes after leave");
    let msg = until!(&mut ada, ServerMessage::ParticipantLeft { .. }).await;
    assert_eq!(
        msg,
        ServerMessage::ParticipantLeft {
            id: grace_id,
            reason: LeaveReason::Left
        }
    );
    assert_eq!(server.registry.counts(), (2, 2));

    // The other room heard nothing: its next message is the answer to its own request.
    send(
        &mut other,
        &ClientMessage::PublishOffer {
            sdp: "x".into(),
            tracks: Vec::new(),
        },
    )
    .await;
    let msg = recv(&mut other).await.expect("reply");
    assert!(
        matches!(
            msg,
            ServerMessage::Error {
                code: ErrorCode::BadSdp,
                fatal: false,
                ..
            }
        ),
        "{msg:?}"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn duplicate_and_invalid_names_are_refused_clearly() {
    let server = server().await;
    let (_ada, reply) = join(&server, "lab", "Ada").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));

    let (mut dup, reply) = join(&server, "lab", "ada").await;
    let ServerMessage::Error {
        code,
        message,
        fatal,
    } = reply
    else {
        panic!("expected error, got {reply:?}");
    };
    assert_eq!(code, ErrorCode::NameTaken);
    assert!(fatal);
    assert!(
        message.contains("ada") && message.contains("already"),
        "{message}"
    );
    assert_eq!(recv(&mut dup).await, None, "refused socket is closed");

    // The same name in another room is fine.
    let (_other, reply) = join(&server, "other", "Ada").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));

    for (room, name) in [
        ("lab", ""),
        ("lab", "<b>x</b>"),
        ("a/b", "Bob"),
        ("lab", &"n".repeat(40)),
    ] {
        let (_, reply) = join(&server, room, name).await;
        assert!(
            matches!(
                reply,
                ServerMessage::Error {
                    code: ErrorCode::InvalidName,
                    fatal: true,
                    ..
                }
            ),
            "{room:?}/{name:?}: {reply:?}"
        );
    }
    assert_eq!(server.registry.counts(), (2, 2));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn malformed_messages_get_errors_and_the_session_survives() {
    let server = server().await;
    let mut ws = connect(&server).await;
    let garbage = [
        "not json",
        "{}",
        r#"{"type":"fly"}"#,
        r#"{"type":"join","version":"one","room":"r","name":"n"}"#,
        r#"{"type":"leave","extra":true}"#,
        "[1,2,3]",
        "\u{0}\u{1}",
    ];
    for g in garbage {
        expect_bad_message(&mut ws, g).await;
    }
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("sends");
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        })
    ));
    // Media before join is refused without closing.
    send(
        &mut ws,
        &ClientMessage::PublishOffer {
            sdp: "v=0".into(),
            tracks: Vec::new(),
        },
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::WrongState,
            fatal: false,
            ..
        })
    ));
    // Too large but under the frame limit: a polite error.
    let big = format!(
        r#"{{"type":"chat","text":"{}"}}"#,
        "a".repeat(MAX_MESSAGE_BYTES)
    );
    ws.send(Message::Text(big.into())).await.expect("sends");
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::TooLarge,
            fatal: false,
            ..
        })
    ));
    // SDP may be larger, up to its own limit.
    let sdp = |n: usize| format!(r#"{{"type":"publish_offer","sdp":"{}"}}"#, "a".repeat(n));
    ws.send(Message::Text(sdp(MAX_SDP_MESSAGE_BYTES + 1).into()))
        .await
        .expect("sends");
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::TooLarge,
            fatal: false,
            ..
        })
    ));
    // Wrong protocol version is fatal and says so.
    send(
        &mut ws,
        &ClientMessage::Join {
            version: 99,
            room: "r".into(),
            name: "n".into(),
            resume: None,
            password: None,
        },
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::UnsupportedVersion,
            fatal: true,
            ..
        })
    ));

    // After all that, the session works: join, then a broken SDP gets bad_sdp.
    let (mut ok, reply) = join(&server, "r", "n").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    send(
        &mut ok,
        &ClientMessage::PublishOffer {
            sdp: "v=0\r\nnonsense".into(),
            tracks: Vec::new(),
        },
    )
    .await;
    assert!(matches!(
        recv(&mut ok).await,
        Some(ServerMessage::Error {
            code: ErrorCode::BadSdp,
            fatal: false,
            ..
        })
    ));
    send(
        &mut ok,
        &ClientMessage::SubscribeAnswer { sdp: "v=0".into() },
    )
    .await;
    assert!(matches!(
        recv(&mut ok).await,
        Some(ServerMessage::Error { .. })
    ));

    // A frame beyond the WebSocket limit closes that socket cleanly, nothing else.
    let mut huge = connect(&server).await;
    let _ = huge
        .send(Message::Text("x".repeat(2 * 1024 * 1024).into()))
        .await;
    assert_eq!(recv(&mut huge).await, None);
    let (_, reply) = join(&server, "r", "m").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn silent_participant_is_removed_by_heartbeat() {
    let server = server_with(|c| {
        c.ping_interval_ms = 100;
        c.peer_timeout_ms = 400;
    })
    .await;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    // Grace joins and then never reads again, so never answers a ping: like a frozen tab.
    let (_grace, reply) = join(&server, "lab", "Grace").await;
    let ServerMessage::Joined { you: grace_id, .. } = reply else {
        panic!("{reply:?}")
    };
    // Ada keeps reading (and so answering pings) and learns Grace timed out.
    let started = std::time::Instant::now();
    let msg = until!(&mut ada, ServerMessage::ParticipantLeft { .. }).await;
    assert_eq!(
        msg,
        ServerMessage::ParticipantLeft {
            id: grace_id,
            reason: LeaveReason::Timeout
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Ada, who answers pings, is still there.
    assert_eq!(server.registry.counts(), (1, 1));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn closed_socket_leaves_at_once_and_room_is_removed() {
    let server = server().await;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    let (grace, reply) = join(&server, "lab", "Grace").await;
    let ServerMessage::Joined { you: grace_id, .. } = reply else {
        panic!("{reply:?}")
    };
    drop(grace);
    let msg = until!(&mut ada, ServerMessage::ParticipantLeft { .. }).await;
    assert!(matches!(msg, ServerMessage::ParticipantLeft { id, .. } if id == grace_id));
    send(&mut ada, &ClientMessage::Leave {}).await;
    assert_eq!(recv(&mut ada).await, None);
    // The registry updates before the socket closes.
    assert_eq!(server.registry.counts(), (0, 0));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn garbage_datagrams_do_not_disturb_the_server() {
    let server = server().await;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2000usize {
        // xorshift: deterministic junk, sometimes shaped like STUN/DTLS/RTP first bytes.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 1400) as usize + usize::from(i % 3 == 0);
        let mut buf: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8).collect();
        if let Some(b) = buf.first_mut() {
            *b = [0x00, 0x01, 0x16, 0x17, 0x80, 0x90, 0xff][i % 7];
        }
        for port in &server.udp_ports {
            socket
                .send_to(&buf, ("127.0.0.1", *port))
                .await
                .expect("send");
        }
    }
    // Signaling and media still work: a newcomer joins and Ada hears about it.
    let (_grace, reply) = join(&server, "lab", "Grace").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    until!(&mut ada, ServerMessage::ParticipantJoined { .. }).await;
    send(
        &mut ada,
        &ClientMessage::PublishOffer {
            sdp: "garbage".into(),
            tracks: Vec::new(),
        },
    )
    .await;
    assert!(matches!(
        until!(&mut ada, ServerMessage::Error { .. }).await,
        ServerMessage::Error {
            code: ErrorCode::BadSdp,
            ..
        }
    ));
    let dropped: u64 = server
        .registry
        .workers()
        .iter()
        .map(|w| w.stats().datagrams_dropped)
        .sum();
    let _ = dropped; // stats are sampled every 500 ms; liveness is what matters here.
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn sdp_messages_may_exceed_the_general_limit_others_may_not() {
    let server = server().await;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    // A `view` over 64 KiB (thousands of tracks) is refused as too large.
    let tracks: Vec<lanmeet_proto::TrackView> = (0..3000)
        .map(|i| lanmeet_proto::TrackView {
            mid: format!("{i}"),
            width: 1280,
            height: 720,
        })
        .collect();
    let view = serde_json::to_string(&ClientMessage::View { tracks }).expect("serializes");
    assert!(view.len() > MAX_MESSAGE_BYTES && view.len() < MAX_SDP_MESSAGE_BYTES);
    ada.send(Message::Text(view.into())).await.expect("sends");
    let reply = recv(&mut ada).await.expect("a reply");
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::TooLarge,
                fatal: false,
                ..
            }
        ),
        "{reply:?}"
    );

    // An SDP message of the same size is read and handed to the media worker, which
    // judges the SDP itself (here: not SDP at all).
    let sdp = format!("v=0\r\n{}", "a=x-filler\r\n".repeat(MAX_MESSAGE_BYTES / 10));
    let offer = serde_json::to_string(&ClientMessage::PublishOffer {
        sdp: sdp.clone(),
        tracks: Vec::new(),
    })
    .expect("serializes");
    assert!(offer.len() > MAX_MESSAGE_BYTES && offer.len() < MAX_SDP_MESSAGE_BYTES);
    ada.send(Message::Text(offer.into())).await.expect("sends");
    let reply = recv(&mut ada).await.expect("a reply");
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::BadSdp,
                fatal: false,
                ..
            }
        ),
        "{reply:?}"
    );

    // So is a large subscribe answer (without an outstanding offer: wrong state).
    let answer =
        serde_json::to_string(&ClientMessage::SubscribeAnswer { sdp }).expect("serializes");
    ada.send(Message::Text(answer.into())).await.expect("sends");
    let reply = recv(&mut ada).await.expect("a reply");
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::WrongState,
                fatal: false,
                ..
            }
        ),
        "{reply:?}"
    );

    // The session goes on.
    send(
        &mut ada,
        &ClientMessage::MediaState {
            camera: true,
            microphone: true,
        },
    )
    .await;
    let (_grace, reply) = join(&server, "lab", "Grace").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    until!(&mut ada, ServerMessage::ParticipantJoined { .. }).await;
    server.shutdown().await.expect("clean shutdown");
}
