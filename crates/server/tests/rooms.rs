//! Persistent rooms over real sockets: `[[rooms]]` from the config, kept in the
//! database across a restart; participant and moderator passwords (missing, wrong,
//! right), wrong passwords limited per address, the participant limit, ad-hoc rooms
//! turned off, a lobby that waits for the moderator, and what participants may
//! publish and share.

mod common;

use common::*;
use lanmeet_proto::{ClientMessage, ErrorCode, ModerateAction, Role, ServerMessage};
use lanmeet_server::config::{Config, FileSharing, RoomConfig, Secret};

fn room(name: &str) -> RoomConfig {
    RoomConfig {
        name: name.into(),
        ..RoomConfig::default()
    }
}

/// Asks to publish camera and microphone.
async fn publish_all(ws: &mut Ws) {
    let all = ClientMessage::MediaState {
        camera: true,
        microphone: true,
    };
    send(ws, &all).await;
}

fn with_passwords(c: &mut Config) {
    c.rooms = vec![RoomConfig {
        password: Some(Secret("learn".into())),
        moderator_password: Some(Secret("teach".into())),
        ..room("Physics")
    }];
}

#[tokio::test]
async fn a_password_room_asks_refuses_a_wrong_one_and_admits_the_right_ones() {
    let server = server_with(with_passwords).await;
    // First comes a participant: in a room with a moderator password, being first does
    // not make it a moderator.
    let mut ada = connect(&server).await;
    refused(
        &try_join(&mut ada, "physics", "Ada", None).await,
        ErrorCode::PasswordRequired,
    );
    refused(
        &try_join(&mut ada, "physics", "Ada", Some("Learn")).await,
        ErrorCode::WrongPassword,
    );
    // The same socket joins with the right password.
    let reply = try_join(&mut ada, "physics", "Ada", Some("learn")).await;
    assert_eq!(role_of(&reply), Role::Participant);
    let ServerMessage::Joined { room, .. } = &reply else {
        unreachable!()
    };
    assert_eq!(room, "Physics", "the configured name");
    let mut bob = connect(&server).await;
    let reply = try_join(&mut bob, "Physics", "Bob", Some("teach")).await;
    assert_eq!(role_of(&reply), Role::Moderator, "the moderator password");
    // An open room next to it needs nothing.
    let mut cy = connect(&server).await;
    let reply = try_join(&mut cy, "chemistry", "Cy", None).await;
    assert_eq!(role_of(&reply), Role::Moderator, "an ad-hoc room as before");
}

#[tokio::test]
async fn wrong_passwords_are_limited_per_address_and_right_ones_are_not_counted() {
    let server = server_with(|c| {
        with_passwords(c);
        c.password_burst = 2;
        c.password_rate = 0.01;
    })
    .await;
    // Right passwords take nothing from the bucket.
    for name in ["A1", "A2", "A3"] {
        let mut ws = connect(&server).await;
        let reply = try_join(&mut ws, "Physics", name, Some("learn")).await;
        assert_eq!(role_of(&reply), Role::Participant);
    }
    let mut eve = connect(&server).await;
    for guess in ["a", "b"] {
        refused(
            &try_join(&mut eve, "Physics", "Eve", Some(guess)).await,
            ErrorCode::WrongPassword,
        );
    }
    // The burst is spent: even the right password is not checked now, from this
    // address, on any socket.
    refused(
        &try_join(&mut eve, "Physics", "Eve", Some("learn")).await,
        ErrorCode::RateLimited,
    );
    let mut again = connect(&server).await;
    refused(
        &try_join(&mut again, "Physics", "Eve", Some("learn")).await,
        ErrorCode::RateLimited,
    );
}

#[tokio::test]
async fn a_full_room_refuses_and_frees_a_seat_when_someone_leaves() {
    let server = server_with(|c| {
        c.rooms = vec![RoomConfig {
            max_participants: 2,
            ..room("Small")
        }]
    })
    .await;
    let mut ada = member(&server, "Small", "Ada").await;
    let mut bob = member(&server, "Small", "Bob").await;
    let mut cy = connect(&server).await;
    refused(
        &try_join(&mut cy, "Small", "Cy", None).await,
        ErrorCode::RoomFull,
    );
    send(&mut bob.ws, &ClientMessage::Leave {}).await;
    until!(&mut ada.ws, ServerMessage::ParticipantLeft { id, .. } if *id == bob.id).await;
    let mut cy = connect(&server).await;
    let reply = try_join(&mut cy, "Small", "Cy", None).await;
    assert_eq!(role_of(&reply), Role::Participant, "a seat is free again");
}

#[tokio::test]
async fn without_ad_hoc_rooms_only_persistent_ones_open() {
    let server = server_with(|c| {
        c.adhoc_rooms = false;
        c.rooms = vec![room("Lab")];
    })
    .await;
    let mut ws = connect(&server).await;
    refused(
        &try_join(&mut ws, "Kitchen", "Ada", None).await,
        ErrorCode::RoomClosed,
    );
    let mut ws = connect(&server).await;
    let reply = try_join(&mut ws, "lab", "Ada", None).await;
    assert_eq!(
        role_of(&reply),
        Role::Moderator,
        "the first of a room without moderator password"
    );
}

#[tokio::test]
async fn a_restart_keeps_the_room_and_its_password() {
    let dir = std::env::temp_dir().join(format!(
        "lanmeet-test-rooms-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let d = dir.clone();
    let server = server_with(move |c| {
        with_passwords(c);
        c.data_dir = d;
    })
    .await;
    server.shutdown().await.expect("shuts down");
    // Started again without any [[rooms]]: the room comes from the database.
    let d = dir.clone();
    let server = server_with(move |c| {
        c.data_dir = d;
        c.adhoc_rooms = false;
    })
    .await;
    let mut ws = connect(&server).await;
    refused(
        &try_join(&mut ws, "Physics", "Ada", None).await,
        ErrorCode::PasswordRequired,
    );
    let reply = try_join(&mut ws, "Physics", "Ada", Some("teach")).await;
    assert_eq!(role_of(&reply), Role::Moderator);
    server.shutdown().await.expect("shuts down");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_lobby_room_waits_for_its_moderator_who_goes_straight_in() {
    let server = server_with(|c| {
        c.rooms = vec![RoomConfig {
            moderator_password: Some(Secret("teach".into())),
            lobby: true,
            ..room("Exam")
        }]
    })
    .await;
    let mut ada = connect(&server).await;
    let reply = try_join(&mut ada, "Exam", "Ada", None).await;
    assert!(matches!(reply, ServerMessage::Waiting { .. }), "{reply:?}");
    let mut tess = connect(&server).await;
    let reply = try_join(&mut tess, "Exam", "Tess", Some("teach")).await;
    assert_eq!(role_of(&reply), Role::Moderator);
    let lobby = until!(&mut tess, ServerMessage::Lobby { .. }).await;
    let ServerMessage::Lobby { waiting } = lobby else {
        unreachable!()
    };
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].name, "Ada");
}

#[tokio::test]
async fn participants_publish_and_share_only_what_the_room_allows() {
    let server = server_with(|c| {
        c.rooms = vec![RoomConfig {
            moderator_password: Some(Secret("teach".into())),
            video: false,
            screen: false,
            files: FileSharing::Moderators,
            ..room("Lecture")
        }]
    })
    .await;
    let mut tess = connect(&server).await;
    let ServerMessage::Joined {
        token: tess_token, ..
    } = try_join(&mut tess, "Lecture", "Tess", Some("teach")).await
    else {
        panic!("the moderator joins")
    };
    let mut ada = connect(&server).await;
    let reply = try_join(&mut ada, "Lecture", "Ada", None).await;
    let ServerMessage::Joined { token, you, .. } = reply else {
        panic!("Ada joins: {reply:?}")
    };
    // The others see Ada without a camera from the start.
    let joined = until!(&mut tess, ServerMessage::ParticipantJoined { participant } if participant.id == you).await;
    let ServerMessage::ParticipantJoined { participant } = joined else {
        unreachable!()
    };
    assert!(!participant.camera && participant.microphone);
    publish_all(&mut ada).await;
    expect_error(&mut ada, ErrorCode::Forbidden).await;
    send(&mut ada, &ClientMessage::ScreenShare { active: true }).await;
    expect_error(&mut ada, ErrorCode::Forbidden).await;
    // The moderator may do all of it.
    send(&mut tess, &ClientMessage::ScreenShare { active: true }).await;
    let update =
        until!(&mut ada, ServerMessage::ParticipantUpdated { participant } if participant.screen)
            .await;
    assert!(matches!(update, ServerMessage::ParticipantUpdated { .. }));
    // Files: moderators only.
    let base = format!("http://{}", server.addr);
    let upload = |token: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/files"))
                .bearer_auth(token)
                .header("x-file-name", "notes.txt")
                .header("content-type", "text/plain")
                .body("hello")
                .send()
                .await
                .expect("upload request")
                .status()
        }
    };
    assert_eq!(upload(token).await, reqwest::StatusCode::FORBIDDEN);
    assert!(upload(tess_token).await.is_success());

    // Made moderator, Ada may switch her camera on; made participant again, the room's
    // rule holds her camera back again.
    let camera_of_ada = |on: bool| {
        move |m: &ServerMessage| {
            matches!(m, ServerMessage::ParticipantUpdated { participant }
                if participant.id == you && participant.camera == on)
        }
    };
    let set_role = |role: Role| ClientMessage::Moderate {
        target: you,
        action: ModerateAction::SetRole { role },
    };
    send(&mut tess, &set_role(Role::Moderator)).await;
    until!(&mut ada, ServerMessage::ParticipantUpdated { participant } if participant.id == you && participant.role == Role::Moderator).await;
    publish_all(&mut ada).await;
    recv_until(&mut tess, camera_of_ada(true)).await;
    send(&mut tess, &set_role(Role::Participant)).await;
    recv_until(&mut tess, camera_of_ada(false)).await;
    publish_all(&mut ada).await;
    expect_error(&mut ada, ErrorCode::Forbidden).await;
}

#[tokio::test]
async fn a_room_allowing_no_publishing_makes_viewers() {
    let server = server_with(|c| {
        c.rooms = vec![RoomConfig {
            video: false,
            audio: false,
            screen: false,
            ..room("Talk")
        }]
    })
    .await;
    // The first member moderates (no moderator password) and may publish; the next
    // only watches and listens.
    let _host = member(&server, "Talk", "Host").await;
    let mut viewer = connect(&server).await;
    let reply = try_join(&mut viewer, "Talk", "Ada", None).await;
    assert_eq!(role_of(&reply), Role::Viewer);
}

#[tokio::test]
async fn the_admin_api_creates_lists_edits_and_deletes_rooms_and_refuses_strangers() {
    let server = server_with(|c| c.admin_password = Some(Secret("admin-pw".into()))).await;
    let base = format!("http://{}/admin/api/persistent-rooms", server.addr);
    let http = reqwest::Client::new();
    // Without the admin password: 401, and nothing changes.
    let body = serde_json::json!({"password": "learn", "max_participants": 1});
    for resp in [
        http.get(&base).send().await.expect("get"),
        http.put(format!("{base}/Physics"))
            .json(&body)
            .send()
            .await
            .expect("put"),
        http.put(format!("{base}/Physics"))
            .bearer_auth("guess")
            .json(&body)
            .send()
            .await
            .expect("put"),
        http.delete(format!("{base}/Physics"))
            .send()
            .await
            .expect("delete"),
    ] {
        assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
    }
    let mut ws = connect(&server).await;
    let reply = try_join(&mut ws, "Physics", "Ada", None).await;
    assert_eq!(
        role_of(&reply),
        Role::Moderator,
        "still an open ad-hoc room"
    );
    drop(ws);

    let admin = |req: reqwest::RequestBuilder| req.bearer_auth("admin-pw").send();
    let list_rooms = || async {
        let resp = admin(http.get(&base)).await.expect("get");
        resp.json::<serde_json::Value>().await.expect("json")
    };
    let resp = admin(http.put(format!("{base}/Physics")).json(&body))
        .await
        .expect("put");
    assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);
    let list = list_rooms().await;
    assert_eq!(list[0]["name"], "Physics");
    assert_eq!(list[0]["has_password"], true);
    assert!(
        !list.to_string().contains("argon2"),
        "no hashes leave the server: {list}"
    );
    let mut ws = connect(&server).await;
    // Ada's old session may still be leaving: a new name.
    refused(
        &try_join(&mut ws, "physics", "Bea", None).await,
        ErrorCode::PasswordRequired,
    );
    let reply = try_join(&mut ws, "physics", "Bea", Some("learn")).await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    // Edited without a password field: the password stays, the limit changes.
    let resp = admin(
        http.put(format!("{base}/Physics"))
            .json(&serde_json::json!({"max_participants": 5})),
    )
    .await
    .expect("put");
    assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);
    let list = list_rooms().await;
    assert_eq!(
        (
            list[0]["has_password"].clone(),
            list[0]["max_participants"].clone()
        ),
        (true.into(), 5.into())
    );
    let resp = admin(http.delete(format!("{base}/Physics")))
        .await
        .expect("delete");
    assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);
    let resp = admin(http.delete(format!("{base}/Physics")))
        .await
        .expect("delete");
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
    let mut ws = connect(&server).await;
    let reply = try_join(&mut ws, "Physics", "Cy", None).await;
    assert!(
        matches!(reply, ServerMessage::Joined { .. }),
        "no password once deleted: {reply:?}"
    );
}
