//! A participant of Janus's videoroom plugin (Janus 1.x, multistream), over Janus's
//! WebSocket API (`janus-protocol`), so the same load runs against Janus for comparison.
//!
//! Every participant opens a session with two handles: one joins the room as a
//! publisher (publishers then `configure` with their SDP offer; watchers never publish
//! but learn who does from the same handle's events), the other subscribes to every
//! other publisher's feed (Janus offers, we answer with `start`). Rooms are created on
//! demand by whoever comes first; the videoroom refuses the second `create`, which is
//! fine.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::engine::{EngineEvent, EngineHandle, Leg};
use crate::session::{finish, Ready, Spec};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Janus sessions time out after 60 s of silence.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// Where Janus is.
#[derive(Debug, Clone)]
pub struct Janus {
    url: String,
}

impl Janus {
    /// Janus's WebSocket API at `url` (e.g. `ws://10.0.0.1:8188`). `rooms` is unused
    /// beyond naming; rooms are created on demand.
    pub fn new(url: &str, _rooms: u32) -> Janus {
        Janus {
            url: url.to_string(),
        }
    }
}

/// Janus rooms are numbers: a stable hash of the room name.
fn room_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // JavaScript-safe integer, never 0.
    (h >> 12) | 1
}

struct Conn {
    ws: Ws,
    session: u64,
    next_tx: u64,
    /// Messages read while waiting for a specific reply, handled later.
    stash: Vec<Value>,
}

impl Conn {
    async fn send(&mut self, mut msg: Value) -> anyhow::Result<String> {
        self.next_tx += 1;
        let tx = format!("t{}", self.next_tx);
        msg["transaction"] = json!(tx);
        if self.session != 0 {
            msg["session_id"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .context("sending to Janus")?;
        Ok(tx)
    }

    async fn read(&mut self) -> anyhow::Result<Value> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).context("Janus sent bad JSON")
                }
                Some(Ok(Message::Close(_))) | None => bail!("Janus closed the socket"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("WebSocket error: {e}"),
            }
        }
    }

    /// Sends `msg` and waits for its final reply (`success`, `error`, or the plugin's
    /// `event`), stashing everything else.
    async fn call(&mut self, msg: Value) -> anyhow::Result<Value> {
        let tx = self.send(msg).await?;
        loop {
            let reply = self.read().await?;
            let kind = reply["janus"].as_str().unwrap_or("");
            if reply["transaction"].as_str() == Some(tx.as_str()) && kind != "ack" {
                if kind == "error" {
                    bail!("Janus error: {}", reply["error"]);
                }
                return Ok(reply);
            }
            if kind != "ack" {
                self.stash.push(reply);
            }
        }
    }

    async fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut msg = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        self.call(msg).await
    }
}

/// The plugin's data in a reply, checking for a plugin-level error.
fn plugin_data(reply: &Value) -> anyhow::Result<&Value> {
    let data = &reply["plugindata"]["data"];
    if let Some(e) = data.get("error") {
        bail!("videoroom error {}: {e}", data["error_code"]);
    }
    Ok(data)
}

/// Runs one participant until `shutdown`.
pub async fn participant(
    janus: Janus,
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
        &janus,
        &spec,
        &engine,
        join_timeout,
        &mut ready,
        events,
        shutdown,
    )
    .await;
    finish(&engine, &spec, ready, result, "Janus");
}

async fn connect(url: &str) -> anyhow::Result<Conn> {
    let mut request = url.into_client_request().context("Janus URL")?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("janus-protocol"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let mut conn = Conn {
        ws,
        session: 0,
        next_tx: 0,
        stash: Vec::new(),
    };
    let created = conn.call(json!({"janus": "create"})).await?;
    conn.session = created["data"]["id"]
        .as_u64()
        .context("no session id from Janus")?;
    Ok(conn)
}

async fn attach(conn: &mut Conn) -> anyhow::Result<u64> {
    let reply = conn
        .call(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))
        .await?;
    reply["data"]["id"]
        .as_u64()
        .context("no handle id from Janus")
}

/// Publisher ids listed in a videoroom message.
fn publishers(data: &Value) -> Vec<u64> {
    data["publishers"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default()
}

struct Subscriber {
    handle: u64,
    joined: bool,
    negotiating: bool,
    feeds: HashSet<u64>,
    pending: Vec<u64>,
}

async fn session(
    janus: &Janus,
    spec: &Spec,
    engine: &EngineHandle,
    join_timeout: Duration,
    ready: &mut Option<Ready>,
    mut events: mpsc::UnboundedReceiver<EngineEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + join_timeout;
    let mut conn = tokio::time::timeout(join_timeout, connect(&janus.url))
        .await
        .map_err(|_| anyhow!("connecting timed out"))??;
    let opened = std::time::Instant::now();
    let room = room_id(&spec.room);
    let pub_handle = attach(&mut conn).await?;
    let create = json!({"request": "create", "room": room, "publishers": 2000,
        "bitrate": 0, "audiocodec": "opus", "videocodec": "vp8", "notify_joining": false});
    if let Ok(reply) = conn.message(pub_handle, create, None).await {
        // "Room already exists" (427) is expected for everyone but the first.
        let code = reply["plugindata"]["data"]["error_code"].as_u64();
        if code.is_some_and(|c| c != 427) {
            bail!("creating the room: {}", reply["plugindata"]["data"]);
        }
    }
    let join = json!({"request": "join", "ptype": "publisher", "room": room, "display": spec.name});
    let joined = conn.message(pub_handle, join, None).await?;
    let mut sub = Subscriber {
        handle: attach(&mut conn).await?,
        joined: false,
        negotiating: false,
        feeds: HashSet::new(),
        pending: Vec::new(),
    };
    let own_feed = plugin_data(&joined)?["id"].as_u64();
    sub.add(&publishers(plugin_data(&joined)?), own_feed);
    if spec.publisher {
        let offer = engine.publish_offer(spec.index).await?;
        let configure = json!({"request": "configure", "audio": true, "video": true});
        let reply = conn
            .message(
                pub_handle,
                configure,
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        plugin_data(&reply)?;
        let sdp = reply["jsep"]["sdp"]
            .as_str()
            .context("Janus sent no answer")?
            .to_string();
        engine.publish_answer(spec.index, sdp).await?;
    }
    let mut publish_up = false;
    let mut subscribe_up = false;
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    loop {
        if (!spec.publisher || publish_up) && (!spec.expects_media || subscribe_up) {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(opened));
            }
        }
        if !sub.negotiating && !sub.pending.is_empty() {
            let streams: Vec<Value> = sub.pending.drain(..).map(|f| json!({"feed": f})).collect();
            let body = if sub.joined {
                json!({"request": "subscribe", "streams": streams})
            } else {
                json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams})
            };
            sub.joined = true;
            sub.negotiating = true;
            conn.send(json!({"janus": "message", "handle_id": sub.handle, "body": body}))
                .await?;
        }
        let msg = if let Some(m) = conn.stash.pop() {
            m
        } else {
            tokio::select! {
                m = conn.read() => m?,
                event = events.recv() => {
                    match event {
                        Some(EngineEvent::Connected(Leg::Publish)) => publish_up = true,
                        Some(EngineEvent::Connected(Leg::Subscribe)) => subscribe_up = true,
                        Some(EngineEvent::Failed(leg, e)) => bail!("{leg:?} connection failed: {e}"),
                        None => bail!("media engine stopped"),
                    }
                    continue;
                }
                _ = keepalive.tick() => {
                    conn.send(json!({"janus": "keepalive"})).await?;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline), if ready.is_some() => {
                    bail!("not up after {join_timeout:?} (publish connected: {publish_up}, \
                           subscribe connected: {subscribe_up})");
                }
                _ = shutdown.changed() => {
                    let _ = conn.send(json!({"janus": "destroy"})).await;
                    let _ = conn.ws.close(None).await;
                    return Ok(());
                }
            }
        };
        handle(&mut conn, spec, engine, &mut sub, pub_handle, own_feed, msg).await?;
    }
}

impl Subscriber {
    fn add(&mut self, feeds: &[u64], own: Option<u64>) {
        for &f in feeds {
            if Some(f) != own && self.feeds.insert(f) {
                self.pending.push(f);
            }
        }
    }
}

async fn handle(
    conn: &mut Conn,
    spec: &Spec,
    engine: &EngineHandle,
    sub: &mut Subscriber,
    pub_handle: u64,
    own_feed: Option<u64>,
    msg: Value,
) -> anyhow::Result<()> {
    let sender = msg["sender"].as_u64();
    match msg["janus"].as_str().unwrap_or("") {
        "event" if sender == Some(pub_handle) => {
            sub.add(&publishers(&msg["plugindata"]["data"]), own_feed);
        }
        "event" if sender == Some(sub.handle) => {
            let data = &msg["plugindata"]["data"];
            if let Some(e) = data.get("error") {
                tracing::warn!(name = %spec.name, "Janus subscriber error: {e}");
                sub.negotiating = false;
            }
            if let Some(sdp) = msg["jsep"]["sdp"].as_str() {
                let answer = engine
                    .subscribe_offer(spec.index, sdp.to_string(), false)
                    .await?;
                conn.send(json!({"janus": "message", "handle_id": sub.handle,
                    "body": {"request": "start"},
                    "jsep": {"type": "answer", "sdp": answer}}))
                    .await?;
                sub.negotiating = false;
            }
        }
        "hangup" => bail!("Janus hung up: {}", msg["reason"]),
        "error" => bail!("Janus error: {}", msg["error"]),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_stable_and_distinct() {
        assert_eq!(room_id("lecture-0"), room_id("lecture-0"));
        assert_ne!(room_id("lecture-0"), room_id("lecture-1"));
        assert!(room_id("x") < 1 << 53);
        assert_eq!(
            publishers(&json!({"publishers": [{"id": 5}, {"id": 7}]})),
            vec![5, 7]
        );
    }
}
