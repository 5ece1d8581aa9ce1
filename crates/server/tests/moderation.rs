//! Roles and moderation over real sockets: the first member is the moderator and hands
//! the role on when leaving; a moderator's mute, block, role change, removal and ban,
//! raised hands, mute-all, lock with its lobby, and ending the meeting; and every
//! forged or replayed request (a participant acting as moderator, a made-up target, a
//! target in another room, a waiting joiner admitting itself, a removed session's token)
//! gets a clear error and changes nothing.

mod common;

use common::*;
use lanmeet_proto::{
    ClientMessage, ErrorCode, LeaveReason, ModerateAction, Participant, ParticipantId,
    RemovedReason, Role, RoomAction, ServerMessage, TrackSource,
};

fn room() -> String {
    format!("mod{}", rand_suffix())
}

/// The next `participant_updated` about `id`.
async fn updated(ws: &mut Ws, id: ParticipantId) -> Participant {
    let msg =
        until!(ws, ServerMessage::ParticipantUpdated { participant } if participant.id == id).await;
    let ServerMessage::ParticipantUpdated { participant } = msg else {
        unreachable!()
    };
    participant
}

/// The text of the next moderation notice in the chat.
async fn notice(ws: &mut Ws) -> String {
    let msg = until!(ws, ServerMessage::Chat { message } if message.notice).await;
    let ServerMessage::Chat { message } = msg else {
        unreachable!()
    };
    message.text
}

/// Asserts that nothing reached `ws` since it last read: a ping's pong comes first.
async fn nothing_new(ws: &mut Ws) {
    send(ws, &ClientMessage::Ping { id: 4242 }).await;
    let next = recv(ws).await.expect("socket open");
    assert_eq!(
        next,
        ServerMessage::Pong { id: 4242 },
        "nothing else came first"
    );
}

/// A moderator's mute of `source`, blocking it from being switched on again if `block`.
fn mute(source: TrackSource, block: bool) -> ModerateAction {
    ModerateAction::Mute { source, block }
}

/// A moderator's role change to `role`.
fn set_role(role: Role) -> ModerateAction {
    ModerateAction::SetRole { role }
}

/// Expects `removed` with `reason` on `ws`, and then the socket to close.
async fn expect_removed(ws: &mut Ws, reason: RemovedReason) {
    let msg = until!(ws, ServerMessage::Removed { .. }).await;
    assert!(
        matches!(&msg, ServerMessage::Removed { reason: got, .. } if *got == reason),
        "expected removal for {reason:?}: {msg:?}"
    );
    assert_eq!(recv(ws).await, None, "the socket closes after removed");
}

async fn moderate(m: &mut Member, target: ParticipantId, action: ModerateAction) {
    send(&mut m.ws, &ClientMessage::Moderate { target, action }).await;
}

async fn control(m: &mut Member, action: RoomAction) {
    send(&mut m.ws, &ClientMessage::RoomControl { action }).await;
}

async fn media_state(m: &mut Member, camera: bool, microphone: bool) {
    send(&mut m.ws, &ClientMessage::MediaState { camera, microphone }).await;
}

#[tokio::test]
async fn the_first_member_moderates_and_the_longest_present_takes_over() {
    let server = server().await;
    let room = room();
    let (ann_ws, reply) = join(&server, &room, "Ann").await;
    assert_eq!(role_of(&reply), Role::Moderator);
    let (mut bob_ws, reply) = join(&server, &room, "Bob").await;
    assert_eq!(role_of(&reply), Role::Participant);
    let ServerMessage::Joined {
        you: bob,
        participants,
        ..
    } = reply
    else {
        unreachable!()
    };
    assert_eq!(
        participants[0].role,
        Role::Moderator,
        "Bob sees Ann is moderator"
    );
    let mut carol = member(&server, &room, "Carol").await;
    drop(ann_ws);
    // Bob has been there longest: he is the moderator now, and everyone sees it.
    let p = updated(&mut carol.ws, bob).await;
    assert_eq!(p.role, Role::Moderator);
    assert_eq!(notice(&mut carol.ws).await, "Bob is now a moderator");
    assert_eq!(updated(&mut bob_ws, bob).await.role, Role::Moderator);
    // A late joiner sees Bob as moderator (the hand-over is not a moderator's action:
    // shown, not kept in the history).
    let (_, reply, history) = join_with_history(&server, &room, "Dan").await;
    let ServerMessage::Joined { participants, .. } = reply else {
        unreachable!()
    };
    assert!(participants
        .iter()
        .any(|p| p.id == bob && p.role == Role::Moderator));
    assert!(history.iter().all(|m| !m.notice), "{history:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_participant_cannot_moderate_and_forged_targets_change_nothing() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    let mut carol = member(&server, &room, "Carol").await;
    let other_room = format!("{room}x");
    let mut zed = member(&server, &other_room, "Zed").await;
    // Bob is no moderator: every moderator message is refused.
    let actions = [
        mute(TrackSource::Microphone, true),
        set_role(Role::Moderator),
        ModerateAction::Remove { ban: true },
        ModerateAction::LowerHand {},
    ];
    for action in actions {
        moderate(&mut bob, carol.id, action.clone()).await;
        expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
        // Not even on himself (making himself moderator).
        let me = bob.id;
        moderate(&mut bob, me, action).await;
        expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    }
    for action in [RoomAction::MuteAll, RoomAction::Lock, RoomAction::End] {
        control(&mut bob, action).await;
        expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    }
    send(
        &mut bob.ws,
        &ClientMessage::Admit {
            ids: vec![],
            admit: true,
        },
    )
    .await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    // The moderator names someone who does not exist, or who is in another room.
    let mute_microphone = mute(TrackSource::Microphone, false);
    moderate(&mut ann, ParticipantId(u64::MAX), mute_microphone.clone()).await;
    expect_error(&mut ann.ws, ErrorCode::UnknownParticipant).await;
    moderate(&mut ann, zed.id, mute_microphone.clone()).await;
    expect_error(&mut ann.ws, ErrorCode::UnknownParticipant).await;
    moderate(&mut ann, zed.id, ModerateAction::Remove { ban: true }).await;
    expect_error(&mut ann.ws, ErrorCode::UnknownParticipant).await;
    // Nothing happened to anyone.
    for ws in [&mut ann.ws, &mut bob.ws, &mut carol.ws, &mut zed.ws] {
        nothing_new(ws).await;
    }
    // Bad shapes are bad messages, not panics.
    expect_bad_message(
        &mut ann.ws,
        r#"{"type":"moderate","target":"x","action":{"do":"mute"}}"#,
    )
    .await;
    expect_bad_message(
        &mut ann.ws,
        r#"{"type":"moderate","target":1,"action":{"do":"explode"}}"#,
    )
    .await;
    expect_bad_message(&mut ann.ws, r#"{"type":"room_control","action":"nuke"}"#).await;
    nothing_new(&mut carol.ws).await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_mute_is_announced_and_may_be_undone_unless_blocked() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    let mut carol = member(&server, &room, "Carol").await;
    moderate(&mut ann, bob.id, mute(TrackSource::Microphone, false)).await;
    // Bob is told who muted him; everyone sees his microphone off and the notice.
    let told = until!(&mut bob.ws, ServerMessage::Moderated { .. }).await;
    let ServerMessage::Moderated { by, action } = told else {
        unreachable!()
    };
    assert_eq!((by.id, by.name.as_str()), (ann.id, "Ann"));
    assert_eq!(action, mute(TrackSource::Microphone, false));
    assert!(!updated(&mut carol.ws, bob.id).await.microphone);
    assert_eq!(notice(&mut carol.ws).await, "Ann muted Bob's microphone");
    // He may unmute himself.
    media_state(&mut bob, true, true).await;
    assert!(updated(&mut carol.ws, bob.id).await.microphone);

    // Mute and block: unmuting is refused and nobody hears of it.
    moderate(&mut ann, bob.id, mute(TrackSource::Camera, true)).await;
    assert!(!updated(&mut carol.ws, bob.id).await.camera);
    assert_eq!(
        notice(&mut carol.ws).await,
        "Ann muted and blocked Bob's camera"
    );
    media_state(&mut bob, true, true).await;
    let message = expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    assert!(message.contains("camera"), "{message}");
    nothing_new(&mut carol.ws).await;
    // Until Ann allows it.
    moderate(
        &mut ann,
        bob.id,
        ModerateAction::Allow {
            source: TrackSource::Camera,
        },
    )
    .await;
    assert_eq!(
        notice(&mut carol.ws).await,
        "Ann allowed Bob to use their camera again"
    );
    media_state(&mut bob, true, true).await;
    assert!(updated(&mut carol.ws, bob.id).await.camera);

    // Screen share: stopped, and blocked from starting again.
    send(&mut bob.ws, &ClientMessage::ScreenShare { active: true }).await;
    assert!(updated(&mut carol.ws, bob.id).await.screen);
    moderate(&mut ann, bob.id, mute(TrackSource::Screen, true)).await;
    assert!(!updated(&mut carol.ws, bob.id).await.screen);
    assert_eq!(
        notice(&mut carol.ws).await,
        "Ann muted and blocked Bob's screen share"
    );
    send(&mut bob.ws, &ClientMessage::ScreenShare { active: true }).await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    nothing_new(&mut carol.ws).await;

    // Everyone: Bob and Carol muted, Ann (moderator) not.
    control(&mut ann, RoomAction::MuteAll).await;
    assert!(!updated(&mut ann.ws, bob.id).await.microphone);
    assert!(!updated(&mut ann.ws, carol.id).await.microphone);
    assert_eq!(notice(&mut carol.ws).await, "Ann muted everyone");
    let history = join_with_history(&server, &room, "Dan").await.2;
    let notices: Vec<&str> = history
        .iter()
        .filter(|m| m.notice)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        notices,
        [
            "Ann muted Bob's microphone",
            "Ann muted and blocked Bob's camera",
            "Ann allowed Bob to use their camera again",
            "Ann muted and blocked Bob's screen share",
            "Ann muted everyone"
        ],
        "kept in the room's history"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn roles_change_and_a_viewer_cannot_publish() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    moderate(&mut ann, bob.id, set_role(Role::Viewer)).await;
    let p = updated(&mut bob.ws, bob.id).await;
    assert_eq!(
        (p.role, p.camera, p.microphone),
        (Role::Viewer, false, false)
    );
    assert_eq!(updated(&mut ann.ws, bob.id).await.role, Role::Viewer);
    assert_eq!(notice(&mut ann.ws).await, "Ann made Bob a viewer");
    media_state(&mut bob, true, false).await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    send(&mut bob.ws, &ClientMessage::ScreenShare { active: true }).await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    nothing_new(&mut ann.ws).await;
    // Chat still works for a viewer.
    send(
        &mut bob.ws,
        &ClientMessage::Chat {
            text: "hi".into(),
            to: vec![],
        },
    )
    .await;
    until!(&mut ann.ws, ServerMessage::Chat { message } if message.text == "hi").await;

    // Back to participant, then moderator; the only moderator cannot step down.
    moderate(&mut ann, bob.id, set_role(Role::Participant)).await;
    assert_eq!(updated(&mut bob.ws, bob.id).await.role, Role::Participant);
    assert_eq!(updated(&mut ann.ws, bob.id).await.role, Role::Participant);
    media_state(&mut bob, true, true).await;
    assert!(updated(&mut ann.ws, bob.id).await.camera);
    let me = ann.id;
    moderate(&mut ann, me, set_role(Role::Participant)).await;
    expect_error(&mut ann.ws, ErrorCode::Forbidden).await;
    moderate(&mut ann, bob.id, set_role(Role::Moderator)).await;
    assert_eq!(updated(&mut bob.ws, bob.id).await.role, Role::Moderator);
    assert_eq!(notice(&mut bob.ws).await, "Ann made Bob a moderator");
    // Now Bob may moderate Ann.
    moderate(&mut bob, ann.id, set_role(Role::Participant)).await;
    assert_eq!(updated(&mut ann.ws, ann.id).await.role, Role::Participant);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn removal_and_ban_by_name_and_session() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    let mut carol = member(&server, &room, "Carol").await;
    // A plain removal: told why, the socket closes, others see him go; he may return.
    moderate(&mut ann, bob.id, ModerateAction::Remove { ban: false }).await;
    let removed = until!(&mut bob.ws, ServerMessage::Removed { .. }).await;
    let ServerMessage::Removed {
        reason,
        by,
        message,
    } = removed
    else {
        unreachable!()
    };
    assert_eq!(reason, RemovedReason::Removed);
    assert_eq!(by.map(|b| b.name), Some("Ann".into()));
    assert!(message.contains("Ann removed you"), "{message}");
    assert_eq!(recv(&mut bob.ws).await, None, "the socket closes");
    // Announced before he goes, so the history reads in order.
    assert_eq!(notice(&mut carol.ws).await, "Ann removed Bob");
    let left = until!(&mut carol.ws, ServerMessage::ParticipantLeft { .. }).await;
    assert_eq!(
        left,
        ServerMessage::ParticipantLeft {
            id: bob.id,
            reason: LeaveReason::Removed
        }
    );
    // Replaying the removed session's token is refused…
    let (_, reply, _) = join_resuming(&server, &room, "Bobby", Some(&bob.token)).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::Banned,
                fatal: true,
                ..
            }
        ),
        "{reply:?}"
    );
    // …and so is its HTTP token.
    let url = format!("http://{}/files", server.addr);
    let status = reqwest::Client::new()
        .post(url)
        .bearer_auth(&bob.token)
        .header("x-file-name", "a.txt")
        .body("hello")
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    // A fresh join is fine after a removal without a ban.
    let mut bob = member(&server, &room, "Bob").await;

    // Removed and banned: neither the name nor the session comes back.
    moderate(&mut ann, bob.id, ModerateAction::Remove { ban: true }).await;
    expect_removed(&mut bob.ws, RemovedReason::Banned).await;
    assert_eq!(notice(&mut carol.ws).await, "Ann removed and banned Bob");
    until!(&mut carol.ws, ServerMessage::ParticipantLeft { .. }).await;
    for name in ["Bob", "bob", "ＢＯＢ"] {
        let (_, reply) = join(&server, &room, name).await;
        assert!(
            matches!(
                reply,
                ServerMessage::Error {
                    code: ErrorCode::Banned,
                    fatal: true,
                    ..
                }
            ),
            "{name}: {reply:?}"
        );
    }
    let (_, reply, _) = join_resuming(&server, &room, "Robert", Some(&bob.token)).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::Banned,
                ..
            }
        ),
        "{reply:?}"
    );
    // In another room he is welcome.
    member(&server, &format!("{room}x"), "Bob").await;
    // A moderator cannot remove themselves (they leave instead).
    let me = ann.id;
    moderate(&mut ann, me, ModerateAction::Remove { ban: false }).await;
    expect_error(&mut ann.ws, ErrorCode::BadMessage).await;
    nothing_new(&mut carol.ws).await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn raised_hands_in_order_lowered_by_a_moderator() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    let mut carol = member(&server, &room, "Carol").await;
    send(&mut carol.ws, &ClientMessage::RaiseHand { raised: true }).await;
    let c = updated(&mut ann.ws, carol.id)
        .await
        .hand
        .expect("Carol's hand up");
    send(&mut bob.ws, &ClientMessage::RaiseHand { raised: true }).await;
    let b = updated(&mut ann.ws, bob.id)
        .await
        .hand
        .expect("Bob's hand up");
    assert!(c < b, "Carol raised hers first: {c} < {b}");
    // Bob cannot lower Carol's hand; Ann can.
    moderate(&mut bob, carol.id, ModerateAction::LowerHand {}).await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    moderate(&mut ann, carol.id, ModerateAction::LowerHand {}).await;
    until!(&mut carol.ws, ServerMessage::ParticipantUpdated { participant } if participant.id == carol.id && participant.hand.is_none()).await;
    assert_eq!(notice(&mut bob.ws).await, "Ann lowered Carol's hand");
    // Bob lowers his own.
    send(&mut bob.ws, &ClientMessage::RaiseHand { raised: false }).await;
    assert_eq!(updated(&mut ann.ws, bob.id).await.hand, None);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_locked_room_keeps_joiners_in_the_lobby_until_admitted() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    control(&mut ann, RoomAction::Lock).await;
    let state = until!(&mut bob.ws, ServerMessage::RoomState { .. }).await;
    assert!(matches!(
        state,
        ServerMessage::RoomState { locked: true, .. }
    ));
    assert_eq!(notice(&mut bob.ws).await, "Ann locked the room");

    // Carol waits; Ann (moderator) sees her, Bob does not.
    let (mut carol, reply) = join(&server, &room, "Carol").await;
    assert!(matches!(reply, ServerMessage::Waiting { .. }), "{reply:?}");
    let lobby = until!(&mut ann.ws, ServerMessage::Lobby { .. }).await;
    let ServerMessage::Lobby { waiting } = lobby else {
        unreachable!()
    };
    assert_eq!(waiting.len(), 1);
    let carol_id = waiting[0].id;
    // She cannot admit herself, nor act in the room, nor join again on the socket.
    for msg in [
        ClientMessage::Admit {
            ids: vec![carol_id],
            admit: true,
        },
        ClientMessage::Chat {
            text: "let me in".into(),
            to: vec![],
        },
        ClientMessage::Join {
            version: 1,
            room: room.clone(),
            name: "Carol2".into(),
            resume: None,
            password: None,
        },
    ] {
        send(&mut carol, &msg).await;
        let message = expect_error(&mut carol, ErrorCode::WrongState).await;
        assert!(message.contains("Waiting"), "{message}");
    }
    // Bob (no moderator) cannot admit her.
    send(
        &mut bob.ws,
        &ClientMessage::Admit {
            ids: vec![carol_id],
            admit: true,
        },
    )
    .await;
    expect_error(&mut bob.ws, ErrorCode::Forbidden).await;
    nothing_new(&mut carol).await;
    nothing_new(&mut bob.ws).await;
    // A name in the lobby is taken.
    let (_, reply) = join(&server, &room, "carol").await;
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

    // A waiting joiner who goes away leaves the list.
    let (dan, reply) = join(&server, &room, "Dan").await;
    assert!(matches!(reply, ServerMessage::Waiting { .. }));
    let lobby = until!(&mut ann.ws, ServerMessage::Lobby { .. }).await;
    assert!(
        matches!(&lobby, ServerMessage::Lobby { waiting } if waiting.len() == 2),
        "{lobby:?}"
    );
    drop(dan);
    let lobby = until!(&mut ann.ws, ServerMessage::Lobby { .. }).await;
    assert!(
        matches!(&lobby, ServerMessage::Lobby { waiting } if waiting.len() == 1),
        "{lobby:?}"
    );

    // Ann admits Carol: she gets `joined`, the others see her arrive.
    send(
        &mut ann.ws,
        &ClientMessage::Admit {
            ids: vec![carol_id],
            admit: true,
        },
    )
    .await;
    let joined = until!(&mut carol, ServerMessage::Joined { .. }).await;
    let ServerMessage::Joined {
        you, participants, ..
    } = joined
    else {
        unreachable!()
    };
    assert_eq!(you, carol_id);
    assert_eq!(participants.len(), 2);
    until!(&mut carol, ServerMessage::ChatHistory { .. }).await;
    until!(&mut bob.ws, ServerMessage::ParticipantJoined { participant } if participant.id == carol_id).await;
    assert_eq!(notice(&mut bob.ws).await, "Ann let Carol in");

    // Two more wait; denying all tells them.
    let (mut eve, _) = join(&server, &room, "Eve").await;
    let (mut fay, _) = join(&server, &room, "Fay").await;
    until!(&mut ann.ws, ServerMessage::Lobby { waiting } if waiting.len() == 2).await;
    send(
        &mut ann.ws,
        &ClientMessage::Admit {
            ids: vec![],
            admit: false,
        },
    )
    .await;
    for ws in [&mut eve, &mut fay] {
        expect_removed(ws, RemovedReason::Denied).await;
    }
    // Unlocked, joiners come straight in.
    control(&mut ann, RoomAction::Unlock).await;
    let (_, reply) = join(&server, &room, "Gus").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn ending_the_meeting_removes_everyone() {
    let server = server().await;
    let room = room();
    let mut ann = member(&server, &room, "Ann").await;
    let mut bob = member(&server, &room, "Bob").await;
    control(&mut ann, RoomAction::Lock).await;
    let (mut waiter, _) = join(&server, &room, "Cy").await;
    control(&mut ann, RoomAction::End).await;
    for ws in [&mut ann.ws, &mut bob.ws, &mut waiter] {
        expect_removed(ws, RemovedReason::Ended).await;
    }
    // The room is gone: the next joiner opens a new one and moderates it.
    let (_, reply) = join(&server, &room, "Bob").await;
    assert_eq!(role_of(&reply), Role::Moderator);
    server.shutdown().await.expect("clean shutdown");
}
