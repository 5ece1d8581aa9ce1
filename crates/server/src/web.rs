//! HTTP routes: the embedded browser client, the signaling WebSocket, health, and the
//! operator's `/metrics` and `/admin` (see [`crate::admin`]).

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rust_embed::RustEmbed;
use tracing::info;

use crate::admin::{self, AdminState};
use crate::files::{self, Files};
use crate::origin::OriginPolicy;
use crate::signaling;

/// The browser client, embedded at build time so the binary is the whole server.
#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// What the signaling WebSocket's actors need.
    pub signaling: signaling::Context,
    /// Shared files.
    pub files: Arc<Files>,
    /// Which pages may open `/ws`.
    pub origins: Arc<OriginPolicy>,
    /// `/metrics` and `/admin`.
    pub admin: AdminState,
    /// `/whip`: live stations' broadcasters.
    pub whip: crate::whip::WhipState,
}

impl FromRef<AppState> for Arc<Files> {
    fn from_ref(state: &AppState) -> Self {
        state.files.clone()
    }
}

/// Largest frame (and message) the WebSocket layer accepts at all: the largest SDP
/// message ([`lanmeet_proto::MAX_SDP_MESSAGE_BYTES`]) plus room for its JSON around it.
/// The type is known only once the message is parsed, so this is the one WebSocket
/// limit; a message of another type over [`lanmeet_proto::MAX_MESSAGE_BYTES`] gets a
/// polite `too_large`, and a frame over this limit closes the socket (code 1009).
pub const WS_FRAME_LIMIT: usize = lanmeet_proto::MAX_SDP_MESSAGE_BYTES + 4 * 1024;

/// All routes.
pub fn router(state: AppState) -> Router {
    let admin = admin::router(state.admin.clone());
    let whip = crate::whip::router(state.whip.clone());
    Router::new()
        .route("/", get(index))
        .route("/r/{room}", get(index))
        .route("/stations", get(stations_page))
        .route("/stations/{station}", get(stations_page))
        // The admin's session cookie is for /admin only: the page lives there.
        .route(
            "/golive",
            get(|| async { axum::response::Redirect::to("/admin/golive") }),
        )
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        // Uploads stream to disk with their own limit, checked as bytes arrive.
        .route(
            "/files",
            post(files::upload_handler).layer(DefaultBodyLimit::disable()),
        )
        .route("/files/{token}", get(files::download_handler))
        .fallback(get(asset))
        .with_state(state)
        .merge(admin)
        .merge(whip)
        .layer(axum::middleware::map_response(security_headers))
}

/// What pages may load and who may frame them, on every response.
///
/// The client and the admin pages are ES modules and style sheets from this server;
/// they need no inline script or style (uPlot and the views set styles through the
/// CSSOM, which CSP does not govern). Beyond `'self'`: `data:` images (the page's empty
/// favicon) and `blob:` images and media (files a user downloads or previews). The
/// signaling WebSocket is `'self'` (CSP 3 matches `ws:`/`wss:` to the page's own
/// origin). Nobody may frame a page (clickjacking), no plugin runs, and no URL with a
/// room name leaks as a referrer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

async fn index() -> Response {
    serve_asset("index.html")
}

/// The stations page; `/stations/<name>` opens that station (the page reads the path).
async fn stations_page() -> Response {
    serve_asset("stations.html")
}

async fn asset(uri: Uri) -> Response {
    serve_asset(uri.path().trim_start_matches('/'))
}

fn serve_asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The client is tiny and changes with the binary: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = state.origins.check(&headers, &uri) {
        info!(%remote, origin = ?headers.get(header::ORIGIN), "cross-origin WebSocket refused");
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    let remote = Some(remote);
    upgrade
        .max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT)
        .on_upgrade(move |socket| signaling::serve(socket, state.signaling, remote))
}
