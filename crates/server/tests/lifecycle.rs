//! The server's lifecycle as participants see it: a graceful shutdown tells everyone
//! and closes cleanly, a restarted server takes them back with their chat history, a
//! client that lost its connection rejoins under its own name, and pings are answered.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use lanmeet_proto::{ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn token_of(joined: &ServerMessage) -> String {
    match joined {
        ServerMessage::Joined { token, .. } => token.clone(),
        other => panic!("expected joined, got {other:?}"),
    }
}

fn id_of(joined: &ServerMessage) -> lanmeet_proto::ParticipantId {
    match joined {
        ServerMessage::Joined { you, .. } => *you,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// Reads until the socket closes; returns the `server_closing` text seen on the way and
/// the close frame's code.
async fn closing_notice_and_code(ws: &mut Ws) -> (Option<String>, Option<CloseCode>) {
    let mut notice = None;
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("the server closes in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMessage::ServerClosing { message }) =
                    serde_json::from_str(t.as_str())
                {
                    notice = Some(message);
                }
            }
            Some(Ok(Message::Close(frame))) => return (notice, frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (notice, None),
        }
    }
}

#[tokio::test]
async fn shutdown_tells_everyone_closes_cleanly_and_a_restart_takes_them_back() {
    let data_dir = std::env::temp_dir().join(format!(
        "lanmeet-restart-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let server = server_with(|c| c.data_dir = data_dir.clone()).await;
    let addr = server.addr;
    let (mut ada, _) = join(&server, "lab", "Ada").await;
    let (mut bob, _) = join(&server, "lab", "Bob").await;
    recv_until(&mut ada, |m| {
        matches!(m, ServerMessage::ParticipantJoined { .. })
    })
    .await;
    send(
        &mut ada,
        &ClientMessage::Chat {
            text: "before the restart".into(),
            to: vec![],
        },
    )
    .await;
    recv_until(&mut bob, |m| matches!(m, ServerMessage::Chat { .. })).await;

    // Something still holding the database (as a slow download's task might) must not
    // keep it open: shutting down closes it explicitly.
    let lingering = server.files.clone();
    let started = Instant::now();
    server.shutdown().await.expect("clean shutdown");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    for (who, ws) in [("Ada", &mut ada), ("Bob", &mut bob)] {
        let (notice, code) = closing_notice_and_code(ws).await;
        assert_eq!(
            notice.as_deref(),
            Some("The server is restarting."),
            "{who} is told"
        );
        assert_eq!(
            code,
            Some(CloseCode::Restart),
            "{who}'s socket closes with 1012"
        );
    }
    let wal = data_dir.join("lanmeet.sqlite-wal");
    assert!(
        !wal.exists(),
        "the database was closed: no {}",
        wal.display()
    );
    drop(lingering);

    // The same address and data directory, as a restart would.
    let again = server_with(|c| {
        c.listen = addr;
        c.data_dir = data_dir.clone();
    })
    .await;
    let (_ada, joined, history) = join_with_history(&again, "lab", "Ada").await;
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["before the restart"], "history is intact, once");
    let (_bob, joined) = join(&again, "lab", "Bob").await;
    match joined {
        ServerMessage::Joined { participants, .. } => {
            let names: Vec<&str> = participants.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["Ada"]);
        }
        other => panic!("Bob rejoins: {other:?}"),
    }
    again.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_rejoin_with_its_token_replaces_the_lost_session() {
    let server = server().await;
    let (mut lost, first) = join(&server, "lab", "Ada").await;
    let (mut bob, _) = join(&server, "lab", "Bob").await;
    let old_id = id_of(&first);

    // Without the token, or with someone else's, the name is still taken.
    let (_, reply, _) = join_resuming(&server, "lab", "Ada", Some("not-a-token")).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::NameTaken,
                ..
            }
        ),
        "{reply:?}"
    );
    let (_other_room, elsewhere) = join(&server, "annex", "Cy").await;
    let (_, reply, _) = join_resuming(&server, "lab", "Ada", Some(&token_of(&elsewhere))).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::NameTaken,
                ..
            }
        ),
        "a token of another room does not free a name: {reply:?}"
    );

    let (_ada, second, _) = join_resuming(&server, "lab", "Ada", Some(&token_of(&first))).await;
    let new_id = id_of(&second);
    assert_ne!(new_id, old_id, "a new session gets a new id");
    let left = recv_until(&mut bob, |m| {
        matches!(m, ServerMessage::ParticipantLeft { .. })
    })
    .await;
    assert_eq!(
        left,
        ServerMessage::ParticipantLeft {
            id: old_id,
            reason: LeaveReason::Disconnected
        }
    );
    let joined = recv_until(&mut bob, |m| {
        matches!(m, ServerMessage::ParticipantJoined { .. })
    })
    .await;
    assert!(
        matches!(&joined, ServerMessage::ParticipantJoined { participant } if participant.id == new_id && participant.name == "Ada"),
        "{joined:?}"
    );
    // The old socket is closed at once, without waiting for its heartbeat timeout.
    while recv(&mut lost).await.is_some() {}
    assert_eq!(server.registry.counts(), (2, 3));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn pings_are_answered_before_and_after_join() {
    let server = server().await;
    let mut ws = connect(&server).await;
    send(&mut ws, &ClientMessage::Ping { id: 7 }).await;
    assert_eq!(recv(&mut ws).await, Some(ServerMessage::Pong { id: 7 }));
    drop(ws);
    let (mut ws, _) = join(&server, "lab", "Ada").await;
    send(&mut ws, &ClientMessage::Ping { id: 8 }).await;
    assert_eq!(
        recv_until(&mut ws, |m| matches!(m, ServerMessage::Pong { .. })).await,
        ServerMessage::Pong { id: 8 }
    );
    server.shutdown().await.expect("clean shutdown");
}
