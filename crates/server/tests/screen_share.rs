//! Screen sharing on the signaling side, over real sockets: who may present, who hears
//! about it, and that a presenter's slot frees when it stops or goes.

mod common;

use common::*;
use lanmeet_proto::{
    ClientMessage, ErrorCode, LeaveReason, Participant, ParticipantId, ServerMessage,
};

fn id_of(joined: &ServerMessage) -> ParticipantId {
    match joined {
        ServerMessage::Joined { you, .. } => *you,
        other => panic!("expected joined, got {other:?}"),
    }
}

async fn share(ws: &mut Ws, active: bool) {
    send(ws, &ClientMessage::ScreenShare { active }).await;
}

/// The next message must be `participant_updated` for `id`; returns the participant.
async fn expect_updated(ws: &mut Ws, id: ParticipantId) -> Participant {
    match recv(ws).await {
        Some(ServerMessage::ParticipantUpdated { participant }) if participant.id == id => {
            participant
        }
        other => panic!("expected participant_updated for {id}, got {other:?}"),
    }
}

/// The next message must be a non-fatal `presenter_busy`; returns its text.
async fn expect_busy(ws: &mut Ws) -> String {
    match recv(ws).await {
        Some(ServerMessage::Error {
            code: ErrorCode::PresenterBusy,
            message,
            fatal: false,
        }) => message,
        other => panic!("expected presenter_busy, got {other:?}"),
    }
}

async fn expect_joined_event(ws: &mut Ws, id: ParticipantId) {
    match recv(ws).await {
        Some(ServerMessage::ParticipantJoined { participant }) if participant.id == id => {}
        other => panic!("expected participant_joined for {id}, got {other:?}"),
    }
}

/// Makes `ws` announce a camera switch and checks that this is the next thing each of
/// `watchers` hears: proof that nothing else reached them in between.
async fn nothing_else_reached(from: &mut Ws, id: ParticipantId, watchers: &mut [&mut Ws]) {
    send(
        from,
        &ClientMessage::MediaState {
            camera: false,
            microphone: true,
        },
    )
    .await;
    for w in watchers.iter_mut() {
        let p = expect_updated(w, id).await;
        assert!(!p.camera, "the marker update, not another message");
    }
    send(
        from,
        &ClientMessage::MediaState {
            camera: true,
            microphone: true,
        },
    )
    .await;
    for w in watchers.iter_mut() {
        expect_updated(w, id).await;
    }
}

#[tokio::test]
async fn one_presenter_at_a_time_and_the_slot_frees_on_stop_and_leave() {
    let server = server().await;
    let (mut ada, reply) = join(&server, "lab", "Ada").await;
    let ada_id = id_of(&reply);
    let (mut bob, reply) = join(&server, "lab", "Bob").await;
    let bob_id = id_of(&reply);
    expect_joined_event(&mut ada, bob_id).await;

    // Ada shares: both hear it, Ada's copy is her confirmation.
    share(&mut ada, true).await;
    for ws in [&mut ada, &mut bob] {
        let p = expect_updated(ws, ada_id).await;
        assert!(p.screen && p.camera && p.microphone, "{p:?}");
    }

    // Bob tries: only Bob hears, and the refusal names Ada.
    share(&mut bob, true).await;
    let message = expect_busy(&mut bob).await;
    assert_eq!(message, "Ada is presenting. Ask them to stop, or wait.");
    nothing_else_reached(&mut bob, bob_id, &mut [&mut ada]).await;

    // A camera switch keeps the screen flag.
    send(
        &mut ada,
        &ClientMessage::MediaState {
            camera: false,
            microphone: false,
        },
    )
    .await;
    let p = expect_updated(&mut bob, ada_id).await;
    assert!(p.screen && !p.camera && !p.microphone, "{p:?}");

    // Ada stops: both hear it; stopping again changes nothing and says nothing.
    share(&mut ada, false).await;
    for ws in [&mut ada, &mut bob] {
        assert!(!expect_updated(ws, ada_id).await.screen);
    }
    share(&mut ada, false).await;
    nothing_else_reached(&mut ada, ada_id, &mut [&mut bob]).await;

    // Now Bob may.
    share(&mut bob, true).await;
    for ws in [&mut ada, &mut bob] {
        assert!(expect_updated(ws, bob_id).await.screen);
    }

    // A joiner sees who presents.
    let (mut cleo, reply) = join(&server, "lab", "Cleo").await;
    let cleo_id = id_of(&reply);
    let ServerMessage::Joined { participants, .. } = &reply else {
        unreachable!()
    };
    let flags: Vec<(ParticipantId, bool)> = participants.iter().map(|p| (p.id, p.screen)).collect();
    assert_eq!(flags, vec![(ada_id, false), (bob_id, true)]);
    for ws in [&mut ada, &mut bob] {
        expect_joined_event(ws, cleo_id).await;
    }

    // Ada (not presenting) leaves: the others hear that, and that Bob (there longest)
    // is the moderator now (moderation.rs); Bob still holds the slot.
    send(&mut ada, &ClientMessage::Leave {}).await;
    assert_eq!(recv(&mut ada).await, None);
    for ws in [&mut bob, &mut cleo] {
        assert_eq!(
            recv(ws).await,
            Some(ServerMessage::ParticipantLeft {
                id: ada_id,
                reason: LeaveReason::Left
            })
        );
        let p = expect_updated(ws, bob_id).await;
        assert!(
            p.screen && p.role == lanmeet_proto::Role::Moderator,
            "{p:?}"
        );
        let notice = recv(ws).await;
        assert!(
            matches!(&notice, Some(ServerMessage::Chat { message }) if message.notice),
            "{notice:?}"
        );
    }
    share(&mut cleo, true).await;
    assert_eq!(
        expect_busy(&mut cleo).await,
        "Bob is presenting. Ask them to stop, or wait."
    );

    // Once Bob stops, Cleo may present.
    share(&mut bob, false).await;
    for ws in [&mut bob, &mut cleo] {
        assert!(!expect_updated(ws, bob_id).await.screen);
    }
    share(&mut cleo, true).await;
    for ws in [&mut bob, &mut cleo] {
        assert!(expect_updated(ws, cleo_id).await.screen);
    }

    // The presenter's socket drops: participant_left is all the others get, and the
    // slot is free at once.
    drop(cleo);
    let msg = recv(&mut bob).await;
    assert!(
        matches!(msg, Some(ServerMessage::ParticipantLeft { id, .. }) if id == cleo_id),
        "{msg:?}"
    );
    share(&mut bob, true).await;
    assert!(expect_updated(&mut bob, bob_id).await.screen);

    // Asking again while presenting confirms again.
    share(&mut bob, true).await;
    assert!(expect_updated(&mut bob, bob_id).await.screen);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn rooms_do_not_share_presenter_slots_and_the_limit_is_configurable() {
    let server = server_with(|c| c.max_presenters = 2).await;
    let (mut ada, reply) = join(&server, "lab", "Ada").await;
    let ada_id = id_of(&reply);
    let (mut bob, reply) = join(&server, "lab", "Bob").await;
    let bob_id = id_of(&reply);
    let (mut cleo, reply) = join(&server, "lab", "Cleo").await;
    let cleo_id = id_of(&reply);
    expect_joined_event(&mut ada, bob_id).await;
    expect_joined_event(&mut ada, cleo_id).await;
    expect_joined_event(&mut bob, cleo_id).await;
    let (mut elsewhere, reply) = join(&server, "other", "Dan").await;
    let dan_id = id_of(&reply);

    share(&mut ada, true).await;
    assert!(expect_updated(&mut ada, ada_id).await.screen);
    assert!(expect_updated(&mut bob, ada_id).await.screen);
    share(&mut bob, true).await;
    assert!(expect_updated(&mut bob, bob_id).await.screen);
    for _ in 0..2 {
        recv_until(&mut cleo, |m| {
            matches!(m, ServerMessage::ParticipantUpdated { .. })
        })
        .await;
    }
    share(&mut cleo, true).await;
    assert_eq!(
        expect_busy(&mut cleo).await,
        "Ada and Bob are presenting. Ask them to stop, or wait."
    );

    // Another room is unaffected and heard nothing.
    share(&mut elsewhere, true).await;
    assert!(expect_updated(&mut elsewhere, dan_id).await.screen);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn screen_share_and_view_garbage_is_refused_and_the_session_survives() {
    let server = server().await;
    let mut ws = connect(&server).await;
    send(&mut ws, &ClientMessage::ScreenShare { active: true }).await;
    assert!(
        matches!(
            recv(&mut ws).await,
            Some(ServerMessage::Error {
                code: ErrorCode::WrongState,
                fatal: false,
                ..
            })
        ),
        "screen_share before join"
    );
    send(&mut ws, &ClientMessage::View { tracks: Vec::new() }).await;
    assert!(matches!(
        recv(&mut ws).await,
        Some(ServerMessage::Error {
            code: ErrorCode::WrongState,
            fatal: false,
            ..
        })
    ));

    let (mut ada, reply) = join(&server, "lab", "Ada").await;
    let ada_id = id_of(&reply);
    let garbage = [
        r#"{"type":"view"}"#,
        r#"{"type":"view","tracks":"all"}"#,
        r#"{"type":"view","tracks":[{"mid":"0","width":-1,"height":10}]}"#,
        r#"{"type":"view","tracks":[{"mid":"0","width":1.5,"height":10}]}"#,
        r#"{"type":"view","tracks":[{"mid":"0","width":4294967296,"height":10}]}"#,
        r#"{"type":"view","tracks":[{"mid":0,"width":640,"height":360}]}"#,
        r#"{"type":"view","tracks":[{"mid":"0","width":640}]}"#,
        r#"{"type":"view","tracks":[{"mid":"0","width":640,"height":360,"z":1}]}"#,
        r#"{"type":"view","tracks":[null]}"#,
        r#"{"type":"screen_share"}"#,
        r#"{"type":"screen_share","active":"yes"}"#,
        r#"{"type":"screen_share","active":true,"source":"tab"}"#,
    ];
    for g in garbage {
        expect_bad_message(&mut ada, g).await;
    }
    // Well-formed views of tracks that do not exist are not errors.
    let tracks = (0..500)
        .map(|i| lanmeet_proto::TrackView {
            mid: format!("m{i}"),
            width: u32::MAX,
            height: if i % 2 == 0 { 0 } else { u32::MAX },
        })
        .collect();
    send(&mut ada, &ClientMessage::View { tracks }).await;
    send(&mut ada, &ClientMessage::View { tracks: Vec::new() }).await;

    // The session still works.
    share(&mut ada, true).await;
    assert!(expect_updated(&mut ada, ada_id).await.screen);
    server.shutdown().await.expect("clean shutdown");
}
