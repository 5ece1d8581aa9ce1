//! `/admin/api/persistent-rooms`: list, create or edit, and delete persistent rooms.
//!
//! - `GET`: every persistent room, without its password hashes (only whether it has
//!   them).
//! - `PUT /admin/api/persistent-rooms/{name}` with a JSON body of the room's settings:
//!   creates or replaces it. `password` and `moderator_password`: absent keeps the
//!   current one, `""` removes it, anything else is the new password (hashed here).
//! - `DELETE /admin/api/persistent-rooms/{name}`: 204, or 404 when there is none.
//!
//! All behind the admin session or password ([`Authorized`]); JSON bodies only, so a
//! cross-site form cannot send one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lanmeet_proto::validate;
use serde::{Deserialize, Serialize};

use super::{no_store, AdminState, Authorized};
use crate::config::FileSharing;
use crate::persistent::{hash_secret, RoomSettings};

#[derive(Serialize)]
struct RoomView {
    name: String,
    has_password: bool,
    has_moderator_password: bool,
    lobby: bool,
    max_participants: u32,
    video: bool,
    audio: bool,
    screen: bool,
    files: FileSharing,
}

/// A room as sent by the dashboard.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomEdit {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    moderator_password: Option<String>,
    #[serde(default)]
    lobby: bool,
    #[serde(default)]
    max_participants: u32,
    #[serde(default = "yes")]
    video: bool,
    #[serde(default = "yes")]
    audio: bool,
    #[serde(default = "yes")]
    screen: bool,
    #[serde(default)]
    files: FileSharing,
}

fn yes() -> bool {
    true
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

pub(super) async fn list(_: Authorized, State(state): State<AdminState>) -> Response {
    let rooms: Vec<RoomView> = state
        .monitor
        .registry()
        .persistent_rooms()
        .iter()
        .map(|r| RoomView {
            name: r.name.clone(),
            has_password: r.password.is_some(),
            has_moderator_password: r.moderator_password.is_some(),
            lobby: r.lobby,
            max_participants: r.max_participants,
            video: r.video,
            audio: r.audio,
            screen: r.screen,
            files: r.files,
        })
        .collect();
    no_store(Json(rooms).into_response())
}

pub(super) async fn put(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Json(edit): Json<RoomEdit>,
) -> Response {
    let name = match validate::room_name(&name) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let registry = state.monitor.registry().clone();
    let old = registry.settings(&name.display);
    // Hashing is slow on purpose: off the async threads.
    let hashed = tokio::task::spawn_blocking(move || {
        let secret = |given: Option<String>, old: Option<String>| match given.as_deref() {
            None => Ok(old),
            Some("") => Ok(None),
            Some(p) => hash_secret(p).map(Some),
        };
        Ok::<_, anyhow::Error>((
            secret(edit.password, old.as_ref().and_then(|o| o.password.clone()))?,
            secret(
                edit.moderator_password,
                old.as_ref().and_then(|o| o.moderator_password.clone()),
            )?,
        ))
    })
    .await;
    let (password, moderator_password) = match hashed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "hashing failed"),
    };
    let room = RoomSettings {
        key: name.key,
        name: name.display,
        password,
        moderator_password,
        lobby: edit.lobby,
        max_participants: edit.max_participants,
        video: edit.video,
        audio: edit.audio,
        screen: edit.screen,
        files: edit.files,
    };
    match registry.put_room(room) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(super) async fn delete(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Response {
    let key = match validate::room_name(&name) {
        Ok(n) => n.key,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match state.monitor.registry().delete_room(&key) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such persistent room"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
