//! A synthetic participant speaking the lanmeet signaling protocol over a WebSocket.
//!
//! The task joins, offers its publish connection (if it publishes), answers every
//! subscribe offer, reports when its media is up, and leaves when told to. The media
//! itself runs on an engine thread ([`crate::engine`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use lanmeet_proto::{ClientMessage, ServerMessage, TrackKind, TrackView, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::engine::{EngineEvent, EngineHandle, Leg};
use crate::session::{finish, Ready, Spec};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A small tile in device pixels (a gallery of many): the lowest layer (180 px) fits.
pub const SMALL_TILE: (u32, u32) = (320, 180);
/// A large tile (the stage, or a gallery of few): only the top layer (720 px) fits.
pub const LARGE_TILE: (u32, u32) = (1280, 720);

/// Turns the `--server` URL into the signaling WebSocket URL: `http://h:p` becomes
/// `ws://h:p/ws`; a `ws://` URL is used as given.
pub fn ws_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    if server.starts_with("ws://") || server.starts_with("wss://") {
        return Ok(server.to_string());
    }
    if let Some(rest) = server.strip_prefix("http://") {
        return Ok(format!("ws://{rest}/ws"));
    }
    if server.starts_with("https://") {
        bail!("the load generator speaks plain ws:// only: start the server with --http");
    }
    Ok(format!("ws://{server}/ws"))
}

/// Runs one participant until `shutdown` turns true. `ready` gets the outcome of the
/// join (signaling and media up) as soon as it is known.
pub async fn participant(
    url: String,
    spec: Spec,
    engine: Arc<EngineHandle>,
    join_timeout: Duration,
    ready: Ready,
    shutdown: watch::Receiver<bool>,
) {
    let (events_tx, events) = mpsc::unbounded_channel();
    engine.add(spec.index, events_tx);
    let mut ready = Some(ready);
    let result = session(
        &url,
        &spec,
        &engine,
        join_timeout,
        &mut ready,
        events,
        shutdown,
    )
    .await;
    finish(&engine, &spec, ready, result, "lanmeet");
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> anyhow::Result<()> {
    let json = serde_json::to_string(msg)?;
    ws.send(Message::Text(json.into()))
        .await
        .context("sending on the WebSocket")
}

async fn session(
    url: &str,
    spec: &Spec,
    engine: &EngineHandle,
    join_timeout: Duration,
    ready: &mut Option<Ready>,
    mut events: mpsc::UnboundedReceiver<EngineEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + join_timeout;
    let (mut ws, _) = tokio::time::timeout(join_timeout, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| anyhow!("connecting timed out"))?
        .with_context(|| format!("connecting to {url}"))?;
    let opened = std::time::Instant::now();
    let hello = match &spec.station {
        Some(station) => ClientMessage::Watch {
            station: station.clone(),
        },
        None => ClientMessage::Join {
            version: PROTOCOL_VERSION,
            room: spec.room.clone(),
            name: spec.name.clone(),
            resume: None,
            password: None,
        },
    };
    send(&mut ws, &hello).await?;
    let mut publish_up = false;
    let mut subscribe_up = false;
    loop {
        let is_ready = (!spec.publisher || publish_up) && (!spec.expects_media || subscribe_up);
        if is_ready {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(opened));
            }
        }
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => bail!("the server closed the socket"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("WebSocket error: {e}"),
                };
                let Ok(msg) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
                    tracing::warn!("unreadable server message: {}", text.as_str());
                    continue;
                };
                handle(&mut ws, spec, engine, msg, ready.is_some()).await?;
            }
            event = events.recv() => match event {
                Some(EngineEvent::Connected(leg)) => {
                    tracing::debug!(name = %spec.name, ?leg, after = ?opened.elapsed(), "connected");
                    match leg {
                        Leg::Publish => publish_up = true,
                        Leg::Subscribe => subscribe_up = true,
                    }
                }
                Some(EngineEvent::Failed(leg, e)) => bail!("{leg:?} connection failed: {e}"),
                None => bail!("media engine stopped"),
            },
            _ = tokio::time::sleep_until(deadline), if ready.is_some() => {
                bail!(
                    "not up after {join_timeout:?} (publish connected: {publish_up}, \
                     subscribe connected: {subscribe_up})"
                );
            }
            _ = shutdown.changed() => {
                let _ = send(&mut ws, &ClientMessage::Leave {}).await;
                let _ = ws.close(None).await;
                return Ok(());
            }
        }
    }
}

async fn handle(
    ws: &mut Ws,
    spec: &Spec,
    engine: &EngineHandle,
    msg: ServerMessage,
    joining: bool,
) -> anyhow::Result<()> {
    match msg {
        ServerMessage::Joined { .. } if spec.publisher => {
            let sdp = engine.publish_offer(spec.index).await?;
            send(
                ws,
                &ClientMessage::PublishOffer {
                    sdp,
                    tracks: Vec::new(),
                },
            )
            .await?;
        }
        ServerMessage::PublishAnswer { sdp } => engine.publish_answer(spec.index, sdp).await?,
        ServerMessage::SubscribeOffer {
            sdp,
            tracks,
            new_connection,
        } => {
            let sdp = engine
                .subscribe_offer(spec.index, sdp, new_connection)
                .await?;
            send(ws, &ClientMessage::SubscribeAnswer { sdp }).await?;
            // Like the client's ViewReporter after each offer: every video shown, as a
            // small or a large tile.
            let (width, height) = if spec.small_tiles {
                SMALL_TILE
            } else {
                LARGE_TILE
            };
            let tracks = tracks
                .into_iter()
                .filter(|t| t.kind == TrackKind::Video)
                .map(|t| TrackView {
                    mid: t.mid,
                    width,
                    height,
                })
                .collect();
            send(ws, &ClientMessage::View { tracks }).await?;
        }
        ServerMessage::Stations { watching, .. }
            if joining && spec.station.is_some() && watching != spec.station =>
        {
            bail!("the server says this viewer watches {watching:?}");
        }
        ServerMessage::Error {
            code,
            message,
            fatal,
        } => {
            // A refused watch (`unknown_station`, `rate_limited`) is not fatal to the
            // socket, but the viewer would never get media: fail now, saying why.
            if fatal || (joining && spec.station.is_some()) {
                bail!("server error {code:?}: {message}");
            }
            tracing::warn!(name = %spec.name, ?code, "server error: {message}");
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080/").ok().as_deref(),
            Some("ws://127.0.0.1:8080/ws")
        );
        assert_eq!(ws_url("ws://h:1/ws").ok().as_deref(), Some("ws://h:1/ws"));
        assert_eq!(ws_url("h:1").ok().as_deref(), Some("ws://h:1/ws"));
        assert!(ws_url("https://h:1").is_err());
    }
}
