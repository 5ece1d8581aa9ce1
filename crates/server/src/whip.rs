//! Live stations over WHIP (RFC 9725): a broadcaster (OBS, GStreamer, the `/golive`
//! page) streams to a live station with `POST /whip/<station>`, an SDP offer and the
//! station's bearer token; the answer names its session resource
//! (`/whip/<station>/<session>`), and `DELETE` on that resource ends the broadcast.
//!
//! A live station is a station room (`station:<name>`) whose publisher is the
//! broadcaster: it joins the room on the stations' worker through
//! [`lanmeet_sfu::Sfu::broadcast_offer`], and viewers get its tracks exactly as a
//! participant's camera (docs/stations.md, "Live stations"). At most one broadcaster per
//! station: a second gets 409. When the broadcaster goes (DELETE, or its ICE connection
//! times out) the station is off air; its viewers stay in the room and get the next
//! broadcaster's tracks by themselves.
//!
//! Live stations are defined at start-up (`--live-station NAME`; each one's token is
//! kept in the data directory, [`LiveTokens`]) or by the admin (their tokens in the
//! database); both are in the [`StationDirectory`], which holds the token to check and
//! the broadcaster now.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use subtle::ConstantTimeEq;
use tracing::info;

use crate::lifecycle::Lifecycle;
use crate::media::{ToParticipant, WorkerCommand};
use crate::rooms::Registry;
use crate::stations::{Station, StationDirectory};

/// The folder of the data directory holding each live station's token
/// (`<name>.token`).
pub const TOKEN_DIR: &str = "live-stations";

/// Longest a WHIP request waits for the media worker's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages the worker may queue for a broadcaster (it is told only that its
/// connection died).
const BROADCASTER_QUEUE: usize = 16;

/// Characters of a station name left as they are in the resource URL.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The live stations' bearer tokens, by station name.
#[derive(Debug, Default)]
pub struct LiveTokens {
    tokens: Vec<(String, String)>,
}

impl LiveTokens {
    /// Each of `names`' token, read from `<data_dir>/live-stations/<name>.token`, or
    /// generated there (mode 0600) on first start.
    pub fn load_or_generate(data_dir: &Path, names: &[String]) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        if names.is_empty() {
            return Ok(LiveTokens { tokens });
        }
        let dir = data_dir.join(TOKEN_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        for name in names {
            let path = token_path(&dir, name);
            let token = load_or_generate_token(&path)
                .with_context(|| format!("live station {name}: its token in {}", path.display()))?;
            tokens.push((name.clone(), token));
        }
        Ok(LiveTokens { tokens })
    }

    /// The bearer token of `--live-station` `name`, if it is one (the WHIP endpoint
    /// asks [`StationDirectory::live_token`], which knows the admin's too).
    pub fn live_token(&self, name: &str) -> Option<String> {
        self.tokens
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    /// Every live station's name and token, for the admin.
    pub fn all(&self) -> &[(String, String)] {
        &self.tokens
    }
}

fn token_path(dir: &Path, name: &str) -> PathBuf {
    // Station names are letters, digits, `-` and `_`; anything else is encoded so the
    // file name can never leave the folder.
    let file: String = utf8_percent_encode(name, PATH_SEGMENT).to_string();
    dir.join(format!("{file}.token"))
}

fn load_or_generate_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(text.trim().to_string());
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let token = hex::encode(rand::random::<[u8; 16]>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{token}")?;
    Ok(token)
}

/// What the WHIP endpoint needs.
#[derive(Clone)]
pub struct WhipState {
    /// The stations (live ones among them), their tokens and broadcasters.
    pub stations: Arc<StationDirectory>,
    /// Ids and media workers.
    pub registry: Arc<Registry>,
    /// Session tasks end when the server shuts down.
    pub lifecycle: Lifecycle,
}

/// `POST /whip/<station>`, `DELETE /whip/<station>/<session>` (and `PATCH` on it: 405,
/// no trickle ICE: the server is ICE-lite and its answer carries its candidates).
pub fn router(state: WhipState) -> Router {
    Router::new()
        .route(
            "/whip/{station}",
            post(publish).layer(DefaultBodyLimit::max(lanmeet_proto::MAX_SDP_MESSAGE_BYTES)),
        )
        .route(
            "/whip/{station}/{session}",
            axum::routing::delete(end).patch(no_trickle),
        )
        .with_state(state)
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut text = message.into();
    text.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The bearer token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whether `headers` say the body is an SDP (`application/sdp`, parameters allowed).
fn is_sdp(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"))
}

async fn publish(
    State(state): State<WhipState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(station) = state.stations.find(&name).filter(|s| s.origin.is_live()) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("There is no live station called {name:?}."),
        );
    };
    let expected = state.stations.live_token(&name).unwrap_or_default();
    let given = bearer(&headers).unwrap_or_default();
    let matches: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if expected.is_empty() || !matches {
        let mut resp = plain(
            StatusCode::UNAUTHORIZED,
            "A broadcast needs the station's token: Authorization: Bearer <token>.",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    if !is_sdp(&headers) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The offer must be sent as Content-Type: application/sdp.",
        );
    }
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return plain(StatusCode::BAD_REQUEST, "The offer is not UTF-8 text.");
    };
    let Some((running, _)) = station.on_air() else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("There is no live station called {name:?}."),
        );
    };
    let (room, worker) = (running.room, running.worker);
    let Some(handle) = state.registry.workers().get(worker) else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The station's media worker is gone.",
        );
    };
    let id = match state.registry.reserve_id() {
        Ok(id) => id,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e.message),
    };
    let Some((session, stopped)) = station.begin_broadcast(id) else {
        return plain(
            StatusCode::CONFLICT,
            format!("Station {name} already has a broadcaster; stop that one first."),
        );
    };
    let (outbound, inbox) = crate::outbound::queue(BROADCASTER_QUEUE);
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = WorkerCommand::Broadcast {
        id,
        room,
        sdp,
        outbound,
        reply,
    };
    if let Err(busy) = handle.try_send(command) {
        station.end_broadcast(&session);
        return plain(StatusCode::SERVICE_UNAVAILABLE, busy.to_string());
    }
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(refused))) => {
            station.end_broadcast(&session);
            return plain(StatusCode::BAD_REQUEST, refused);
        }
        Ok(Err(_)) | Err(_) => {
            // The worker stopped, or is so busy the answer is moot: dropping the
            // receiver makes it undo the broadcaster if it gets there.
            if station.end_broadcast(&session).is_some() {
                handle.leave(id);
            }
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The media server did not answer; try again.",
            );
        }
    };
    if !station.is_broadcasting(&session) {
        // The station was deleted meanwhile (which ended the broadcast): the
        // broadcaster may have joined after it was told to leave.
        handle.leave(id);
        return plain(
            StatusCode::NOT_FOUND,
            format!("Station {name} was removed."),
        );
    }
    info!(station = %name, %id, %session, "broadcaster on air");
    watch_session(&state, station, session.clone(), inbox, stopped);
    let location = format!(
        "/whip/{}/{session}",
        utf8_percent_encode(&name, PATH_SEGMENT)
    );
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, location),
        ],
        answer,
    )
        .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Ends the broadcast when the worker reports the broadcaster's connection dead (or
/// drops its queue); returns at once when the broadcast ends otherwise (DELETE, which
/// does the leaving itself) or the server shuts down.
fn watch_session(
    state: &WhipState,
    station: Arc<Station>,
    session: String,
    mut inbox: crate::outbound::Inbox,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let registry = state.registry.clone();
    let stop = state.lifecycle.clone();
    state.lifecycle.spawn(async move {
        loop {
            tokio::select! {
                msg = inbox.queue.recv() => match msg {
                    Some(ToParticipant::MediaFailed) | None => break,
                    Some(_) => continue,
                },
                _ = &mut stopped => return,
                _ = stop.shutting_down() => return,
            }
        }
        end_session(&station, &registry, &session);
    });
}

/// Ends session `session` of `station` if it is current: its broadcaster leaves the
/// SFU and the station is off air. Returns whether it was current.
fn end_session(station: &Station, registry: &Registry, session: &str) -> bool {
    let Some(id) = station.end_broadcast(session) else {
        return false;
    };
    let worker = station.on_air().map_or(0, |(running, _)| running.worker);
    if let Some(handle) = registry.workers().get(worker) {
        handle.leave(id);
    }
    info!(station = station.name, %id, "broadcast ended: off air");
    true
}

async fn end(
    State(state): State<WhipState>,
    UrlPath((name, session)): UrlPath<(String, String)>,
) -> Response {
    let Some(station) = state.stations.find(&name).filter(|s| s.origin.is_live()) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("There is no live station called {name:?}."),
        );
    };
    if end_session(&station, &state.registry, &session) {
        plain(StatusCode::OK, "Broadcast ended.")
    } else {
        plain(StatusCode::NOT_FOUND, "No such broadcast: it has ended.")
    }
}

async fn no_trickle() -> Response {
    let mut resp = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "This server does not take trickled ICE candidates: its answer has all of its own.",
    );
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("DELETE"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_generated_private_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("lanmeet-whip-tokens-{}", std::process::id()));
        let names = vec!["allhands".to_string(), "news-2".to_string()];
        let first = LiveTokens::load_or_generate(&dir, &names).expect("generated");
        let a = first.live_token("allhands").expect("a token");
        assert_eq!(a.len(), 32);
        assert_ne!(Some(a.clone()), first.live_token("news-2"));
        assert_eq!(first.live_token("nope"), None);
        let file = dir.join(TOKEN_DIR).join("allhands.token");
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = LiveTokens::load_or_generate(&dir, &names).expect("read back");
        assert_eq!(again.live_token("allhands"), Some(a));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn bearer_and_content_type_are_read_leniently() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        assert!(!is_sdp(&h));
        h.insert(
            header::AUTHORIZATION,
            "bearer  abc ".parse().expect("value"),
        );
        h.insert(
            header::CONTENT_TYPE,
            "Application/SDP; charset=utf-8".parse().expect("value"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        assert!(is_sdp(&h));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("value"));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().expect("value"));
        assert_eq!(bearer(&h), None);
        assert!(!is_sdp(&h));
    }
}
