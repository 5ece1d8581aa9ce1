//! `/admin/api/stations`: the admin's stations (`crate::stations::directory`).
//!
//! - `GET /admin/api/stations`: `{"stations": [...], "media_files": [...],
//!   "max_bytes": n}`: every station (and conversion) with its state, and the files in
//!   the data directory's `media/` folder a station can play.
//! - `POST /admin/api/stations` with `{"name", "description", "source": "file", "file"}`
//!   or `{"name", "description", "source": "live"}`: 201.
//! - `POST /admin/api/stations/{name}/upload`, the file as the body, its name in
//!   `X-File-Name` and the description in `X-Description` (both percent-encoded UTF-8):
//!   201 when it plays as it is, 202 while it is converted in the background.
//! - `PATCH /admin/api/stations/{name}` with `{"description"}`: 204.
//! - `POST /admin/api/stations/{name}/move` with `{"direction": "up" | "down"}`: 204.
//! - `POST /admin/api/stations/{name}/token`: a live station's new token, `{"token"}`.
//! - `DELETE /admin/api/stations/{name}`: 204 (a failed conversion: dismissed).
//!
//! Errors are `{"error": code, "message": text}` with a fitting status. All behind the
//! admin session or password ([`Authorized`]).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::{no_store, AdminState, Authorized};
use crate::stations::directory::{Created, NewSource, Refused};

/// The stations' routes.
pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/api/stations", get(list).post(create))
        .route(
            "/admin/api/stations/{name}",
            axum::routing::patch(edit).delete(delete),
        )
        .route(
            "/admin/api/stations/{name}/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/admin/api/stations/{name}/move", post(move_station))
        .route("/admin/api/stations/{name}/token", post(token))
}

fn refused(e: Refused) -> Response {
    let body = serde_json::json!({ "error": e.code, "message": e.message });
    (e.status, Json(body)).into_response()
}

fn bad(message: impl Into<String>) -> Response {
    refused(Refused {
        status: StatusCode::BAD_REQUEST,
        code: "bad_request",
        message: message.into(),
    })
}

async fn list(_: Authorized, State(state): State<AdminState>) -> Response {
    let body = serde_json::json!({
        "stations": state.stations.admin_list(Instant::now()),
        "media_files": state.stations.media_files(),
        "max_bytes": state.files.max_bytes(),
    });
    no_store(Json(body).into_response())
}

/// A new station that plays a file in `media/` or is live.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStation {
    name: String,
    #[serde(default)]
    description: String,
    /// `file` or `live`.
    source: String,
    #[serde(default)]
    file: Option<String>,
}

async fn create(
    _: Authorized,
    State(state): State<AdminState>,
    body: Result<Json<NewStation>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(new)) = body else {
        return bad("Send a JSON object with name, description, source and file.");
    };
    let source = match (new.source.as_str(), new.file) {
        ("live", _) => NewSource::Live,
        ("file", Some(file)) => NewSource::DataFile(file),
        ("file", None) => return bad("Name the file in the media folder (\"file\")."),
        _ => return bad("The source is \"file\" or \"live\" (uploads go to …/upload)."),
    };
    match state
        .stations
        .create(&new.name, &new.description, source)
        .await
    {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => refused(e),
    }
}

/// A percent-encoded header as text; the refusal's message otherwise.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let raw = value
        .to_str()
        .map_err(|_| format!("{name} must be percent-encoded."))?;
    percent_decode_str(raw)
        .decode_utf8()
        .map(|t| Some(t.into_owned()))
        .map_err(|_| format!("{name} is not valid UTF-8."))
}

async fn upload(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let file_name = match header_text(&headers, "x-file-name") {
        Ok(Some(n)) if !n.trim().is_empty() && n.chars().count() <= 255 => n.trim().to_string(),
        Ok(_) => {
            return bad("The upload needs the file's name in X-File-Name (1 to 255 characters).")
        }
        Err(e) => return bad(e),
    };
    if file_name.chars().any(char::is_control) {
        return bad("The file name must be printable.");
    }
    let description = match header_text(&headers, "x-description") {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => return bad(e),
    };
    // A name in use or a bad description is refused before the bytes come.
    if let Err(e) = state.stations.check_new(&name, &description) {
        return refused(e);
    }
    let announced: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let incoming = match state.files.receive(body, announced).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    match state
        .stations
        .create_uploaded(&name, &description, &file_name, incoming)
        .await
    {
        Ok(Created::OnAir) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "state": "on_air" })),
        )
            .into_response(),
        Ok(Created::Converting) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "state": "converting" })),
        )
            .into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    description: String,
}

async fn edit(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Edit>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(edit)) = body else {
        return bad("Send a JSON object with the description.");
    };
    match state.stations.set_description(&name, &edit.description) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    direction: String,
}

async fn move_station(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Move>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let up = match body.as_ref().map(|Json(m)| m.direction.as_str()) {
        Ok("up") => true,
        Ok("down") => false,
        _ => return bad("Send {\"direction\": \"up\"} or {\"direction\": \"down\"}."),
    };
    match state.stations.move_station(&name, up).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

async fn token(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Response {
    match state.stations.regenerate_token(&name) {
        Ok(token) => no_store(Json(serde_json::json!({ "token": token })).into_response()),
        Err(e) => refused(e),
    }
}

async fn delete(
    _: Authorized,
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Response {
    match state.stations.delete(&name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}
