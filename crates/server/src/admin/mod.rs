//! The operator's side: `/metrics` and `/admin` behind the admin password.
//!
//! - `GET /metrics`: Prometheus text, for `Authorization: Bearer <password>` or HTTP basic
//!   auth as `admin` (or without credentials on `--metrics-listen`, see [`metrics_router`]).
//! - `GET /admin/login` (the form), `POST /admin/login` (sets the `lanmeet_admin`
//!   session cookie), `POST /admin/logout`.
//! - `GET /admin/api/history`, `/admin/api/live` (server-sent events), `/admin/api/rooms`:
//!   for a session cookie or the password as for `/metrics`.
//! - `GET /admin/api/persistent-rooms`, `PUT` and `DELETE
//!   /admin/api/persistent-rooms/{name}`: the persistent rooms ([`persistent`]).
//! - `/admin/api/stations…`: the stations ([`stations`]); `GET /admin/api/live-stations`:
//!   every live station's WHIP token, for the Go live page (`/admin/golive`).
//!
//! Anything else under `/admin` without a session: 401 for `/admin/api/*`, a redirect to
//! the login form for pages. Wrong passwords are limited per address ([`auth`]).
//! docs/monitoring.md describes every endpoint.

pub mod auth;
mod persistent;
mod rooms;
mod stations;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use futures_util::Stream;
use serde::Deserialize;

use crate::lifecycle::Lifecycle;
use crate::metrics::history::Sample;
use crate::metrics::{Monitor, EXPOSITION_CONTENT_TYPE};
use auth::{AdminAuth, Refusal};

/// The session cookie's name.
pub const COOKIE: &str = "lanmeet_admin";
/// Largest login form body; larger gets 413.
pub const LOGIN_BODY_LIMIT: usize = 4096;

/// What the operator's routes need.
#[derive(Clone)]
pub struct AdminState {
    /// The password check and sessions.
    pub auth: Arc<AdminAuth>,
    /// Counters, history, rooms.
    pub monitor: Arc<Monitor>,
    /// Whether the server speaks HTTPS (session cookies are then `Secure`).
    pub secure: bool,
    /// Live feeds end when the server shuts down.
    pub lifecycle: Lifecycle,
    /// The stations the admin manages.
    pub stations: Arc<crate::stations::StationDirectory>,
    /// Storage for uploaded station media (limits and quota of shared files).
    pub files: Arc<crate::files::Files>,
}

/// The operator's routes on the main listener.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/admin/login",
            get(login_page)
                .post(login)
                .layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/admin/logout", post(logout))
        .route("/admin/api/history", get(history))
        .route("/admin/api/live", get(live))
        .route("/admin/api/rooms", get(rooms::rooms))
        .route("/admin/api/persistent-rooms", get(persistent::list))
        .route(
            "/admin/api/persistent-rooms/{name}",
            axum::routing::put(persistent::put).delete(persistent::delete),
        )
        .merge(stations::routes())
        .route("/admin/api/live-stations", get(live_stations))
        .route("/admin/api/{*rest}", get(api_unknown))
        .route("/admin/golive", get(golive))
        .route("/admin", get(dashboard))
        .route("/admin/{*rest}", get(dashboard))
        .with_state(state)
}

/// `/metrics` without authentication, for the separate `--metrics-listen` address.
pub fn metrics_router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Monitor>>| async move { exposition(&m) }),
        )
        .with_state(monitor)
}

fn exposition(monitor: &Arc<Monitor>) -> Response {
    match monitor.exposition() {
        Ok(text) => ([(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The password from `Authorization: Bearer <password>` or `Basic admin:<password>`.
fn password_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return (user == "admin").then(|| password.to_string());
    }
    None
}

/// The session token from the `lanmeet_admin` cookie.
fn session_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The answer to refused credentials: 401 with a challenge, or 429 with `Retry-After`.
fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Wrong => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"lanmeet admin\", charset=\"UTF-8\"",
            )],
            "admin password required\n",
        )
            .into_response(),
        Refusal::TooMany(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            "too many wrong passwords; try again later\n",
        )
            .into_response(),
    }
}

/// Whether the request carries a valid session or the password; the refusal otherwise.
fn authorize(state: &AdminState, from: SocketAddr, headers: &HeaderMap) -> Result<(), Refusal> {
    let now = Instant::now();
    if session_from(headers).is_some_and(|t| state.auth.session_valid(&t, now)) {
        return Ok(());
    }
    let password = password_from(headers);
    state.auth.check(from.ip(), password.as_deref(), now)
}

/// A request to the admin API that carries a valid session or the password; any other
/// is answered 401 (or 429 once the address is limited) before the handler runs.
pub(super) struct Authorized;

impl axum::extract::FromRequestParts<AdminState> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let from = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| *a)
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        authorize(state, from, &parts.headers)
            .map(|()| Authorized)
            .map_err(refused)
    }
}

async fn metrics(
    State(state): State<AdminState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let password = password_from(&headers);
    match state
        .auth
        .check(from.ip(), password.as_deref(), Instant::now())
    {
        Ok(()) => exposition(&state.monitor),
        Err(r) => refused(r),
    }
}

const LOGIN_PAGE: &str = include_str!("login.html");

async fn login_page() -> Response {
    html(StatusCode::OK, LOGIN_PAGE)
}

fn html(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

async fn login(
    State(state): State<AdminState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return e.into_response(),
    };
    let now = Instant::now();
    match state.auth.check(from.ip(), Some(&form.password), now) {
        Ok(()) => {
            let token = state.auth.open_session(now);
            let secure = if state.secure { "; Secure" } else { "" };
            let max_age = auth::SESSION_LIFETIME.as_secs();
            let cookie = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age={max_age}{secure}"
            );
            let mut resp = Redirect::to("/admin").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(Refusal::Wrong) => html(
            StatusCode::UNAUTHORIZED,
            LOGIN_PAGE.replace(
                "<!--error-->",
                r#"<p class="error" role="alert" data-i18n="admin.login.wrong">Wrong password. Try again.</p>"#,
            ),
        ),
        Err(r) => refused(r),
    }
}

async fn logout(headers: HeaderMap, State(state): State<AdminState>) -> Response {
    if let Some(token) = session_from(&headers) {
        state.auth.close_session(&token);
    }
    let mut resp = Redirect::to("/admin/login").into_response();
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The dashboard page (`web/admin.js` draws it from the admin API), for any page under
/// `/admin`.
async fn dashboard(
    State(state): State<AdminState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    admin_page(&state, from, &headers, include_str!("dashboard.html"))
}

/// `page` for a signed-in admin; anyone else is sent to the login form.
fn admin_page(
    state: &AdminState,
    from: SocketAddr,
    headers: &HeaderMap,
    page: &'static str,
) -> Response {
    match authorize(state, from, headers) {
        Ok(()) => html(StatusCode::OK, page),
        Err(Refusal::Wrong) => Redirect::to("/admin/login").into_response(),
        Err(r) => refused(r),
    }
}

/// The Go live page (`web/golive.js`): broadcasts the browser's camera or screen to a
/// live station over WHIP.
async fn golive(
    State(state): State<AdminState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    admin_page(&state, from, &headers, include_str!("golive.html"))
}

#[derive(serde::Serialize)]
struct LiveStationView {
    name: String,
    token: String,
}

/// `GET /admin/api/live-stations`: each live station's name and WHIP token, the
/// configured (`--live-station`) ones and the admin's, in the directory's order.
async fn live_stations(_: Authorized, State(state): State<AdminState>) -> Response {
    let list: Vec<LiveStationView> = state
        .stations
        .live_stations()
        .into_iter()
        .map(|(name, token)| LiveStationView { name, token })
        .collect();
    no_store(Json(list).into_response())
}

async fn api_unknown(_: Authorized) -> Response {
    (StatusCode::NOT_FOUND, "no such admin API\n").into_response()
}

async fn history(_: Authorized, State(state): State<AdminState>) -> Response {
    no_store(Json(state.monitor.history.samples()).into_response())
}

async fn live(_: Authorized, State(state): State<AdminState>) -> Response {
    let samples = state.monitor.history.subscribe();
    let stream = sample_events(samples, state.lifecycle.clone());
    no_store(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

/// One `sample` event per new sample, until the client goes or the server shuts down.
/// A listener too slow for the feed skips the samples it missed.
fn sample_events(
    mut samples: tokio::sync::broadcast::Receiver<Sample>,
    lifecycle: Lifecycle,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let stop = lifecycle.clone();
    lifecycle.spawn(async move {
        loop {
            let sample = tokio::select! {
                s = samples.recv() => s,
                _ = stop.shutting_down() => return,
            };
            let sample = match sample {
                Ok(s) => s,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let Ok(event) = Event::default().event("sample").json_data(&sample) else {
                continue;
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
