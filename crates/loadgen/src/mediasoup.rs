//! A participant of mediasoup, through our small signaling server for it
//! (`bench/mediasoup/server.mjs`), so the same load runs against mediasoup for comparison.
//!
//! The server speaks HTTP with JSON bodies: a publisher posts its offer to `/publish`
//! and gets mediasoup's answer; a subscriber posts to `/subscribe` with how many
//! publishers its room will have and whether it shows small tiles, and gets one offer
//! with a consumer for every track of them once they all publish (mediasoup prefers the
//! lowest simulcast layer for small tiles, the top one otherwise, as lanmeet's `view`
//! makes it do); it answers on `/answer`. `/leave` closes its transports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::engine::{EngineEvent, EngineHandle, Leg};
use crate::session::{finish, Ready, Spec};

/// Where the mediasoup signaling server is, and what every room holds.
#[derive(Debug, Clone)]
pub struct Mediasoup {
    base: String,
    http: reqwest::Client,
    /// Publishers per room: a subscriber's offer waits until all others publish.
    publishers: u32,
}

impl Mediasoup {
    /// The server at `url` (`http://HOST:PORT`), with `publishers` per room.
    pub fn new(url: &str, publishers: u32) -> Mediasoup {
        Mediasoup {
            base: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            publishers,
        }
    }

    /// Posts `body` to `path` and returns the JSON reply; an `error` in it is an error.
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let reply = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("posting to {url}"))?;
        let status = reply.status();
        let text = reply.text().await.context("reading the reply")?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {status} with no JSON: {text}"))?;
        if let Some(e) = value.get("error") {
            bail!("{url}: {e}");
        }
        Ok(value)
    }
}

/// The `sdp` field of a reply.
fn sdp_of(reply: &Value) -> anyhow::Result<String> {
    reply["sdp"]
        .as_str()
        .map(str::to_string)
        .context("the reply has no sdp")
}

/// Runs one participant until `shutdown`.
pub async fn participant(
    server: Mediasoup,
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
        &server,
        &spec,
        &engine,
        join_timeout,
        &mut ready,
        events,
        shutdown,
    )
    .await;
    // The transports go whatever happened; a failure to say so changes nothing here.
    let _ = server
        .post("/leave", json!({"peer": peer_name(&spec)}))
        .await;
    finish(&engine, &spec, ready, result, "mediasoup");
}

/// Unique across rooms: several rooms' participants share names.
fn peer_name(spec: &Spec) -> String {
    format!("{}/{}", spec.room, spec.name)
}

async fn session(
    server: &Mediasoup,
    spec: &Spec,
    engine: &EngineHandle,
    join_timeout: Duration,
    ready: &mut Option<Ready>,
    mut events: mpsc::UnboundedReceiver<EngineEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + join_timeout;
    let opened = std::time::Instant::now();
    let peer = peer_name(spec);
    let signaling = async {
        if spec.publisher {
            let offer = engine.publish_offer(spec.index).await?;
            let reply = server
                .post(
                    "/publish",
                    json!({"room": spec.room, "peer": peer, "sdp": offer}),
                )
                .await?;
            engine.publish_answer(spec.index, sdp_of(&reply)?).await?;
        }
        if spec.expects_media {
            let others = server.publishers - u32::from(spec.publisher);
            let reply = server
                .post(
                    "/subscribe",
                    json!({"room": spec.room, "peer": peer, "publishers": others,
                           "small": spec.small_tiles}),
                )
                .await?;
            let answer = engine
                .subscribe_offer(spec.index, sdp_of(&reply)?, true)
                .await?;
            server
                .post("/answer", json!({"peer": peer, "sdp": answer}))
                .await?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout_at(deadline, signaling)
        .await
        .map_err(|_| anyhow!("signaling not done after {join_timeout:?}"))??;
    let mut publish_up = false;
    let mut subscribe_up = false;
    loop {
        if (!spec.publisher || publish_up) && (!spec.expects_media || subscribe_up) {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(opened));
            }
        }
        tokio::select! {
            event = events.recv() => match event {
                Some(EngineEvent::Connected(Leg::Publish)) => publish_up = true,
                Some(EngineEvent::Connected(Leg::Subscribe)) => subscribe_up = true,
                Some(EngineEvent::Failed(leg, e)) => bail!("{leg:?} connection failed: {e}"),
                None => bail!("media engine stopped"),
            },
            _ = tokio::time::sleep_until(deadline), if ready.is_some() => {
                bail!("not up after {join_timeout:?} (publish connected: {publish_up}, \
                       subscribe connected: {subscribe_up})");
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_named_per_room() {
        let spec = |room: &str| Spec {
            index: 0,
            room: room.to_string(),
            name: "pub0".to_string(),
            publisher: true,
            expects_media: true,
            small_tiles: false,
            station: None,
        };
        assert_ne!(peer_name(&spec("a-0")), peer_name(&spec("a-1")));
        assert_eq!(sdp_of(&json!({"sdp": "v=0"})).ok().as_deref(), Some("v=0"));
        assert!(sdp_of(&json!({})).is_err());
    }
}
