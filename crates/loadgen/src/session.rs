//! What every kind of synthetic participant shares: who it is, how it reports that it
//! is up, and the trivial relay-mode participant.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::engine::EngineHandle;

/// One synthetic participant.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Index within the run; written into every payload it publishes.
    pub index: u32,
    /// Room name.
    pub room: String,
    /// Display name.
    pub name: String,
    /// Publishes audio and video (otherwise only watches).
    pub publisher: bool,
    /// Someone else in the room publishes, so a subscribe connection must come up.
    pub expects_media: bool,
    /// Reports its videos as small tiles (the lowest simulcast layer fits); otherwise
    /// as large ones (the top layer fits).
    pub small_tiles: bool,
    /// Watches this station instead of joining `room` (`--station`).
    pub station: Option<String>,
}

/// Where a participant reports whether it joined: `Ok` once its media is up, with the
/// time its signaling connection opened (join times count from there), `Err` with the
/// reason otherwise.
pub type Ready = oneshot::Sender<Result<Instant, String>>;

/// Ends a participant's run: reports a failure to join through `ready` if it is still
/// pending (otherwise logs it, naming the `server` kind), and unregisters it from the
/// media engine.
pub fn finish(
    engine: &EngineHandle,
    spec: &Spec,
    ready: Option<Ready>,
    result: anyhow::Result<()>,
    server: &str,
) {
    if let Err(e) = result {
        match ready {
            Some(r) => {
                let _ = r.send(Err(format!("{}: {e:#}", spec.name)));
            }
            None => tracing::warn!(name = %spec.name, "{server} participant ended: {e:#}"),
        }
    }
    engine.remove(spec.index);
}

/// A participant of the no-crypto relay: one plain UDP socket registered in its room.
pub async fn relay_participant(
    relay: SocketAddr,
    spec: Spec,
    engine: Arc<EngineHandle>,
    ready: Ready,
    mut shutdown: watch::Receiver<bool>,
) {
    let (events_tx, _events) = tokio::sync::mpsc::unbounded_channel();
    engine.add(spec.index, events_tx);
    let opened = Instant::now();
    let joined = engine
        .join_relay(spec.index, relay, spec.room.clone(), spec.publisher)
        .await
        .map(|()| opened)
        .map_err(|e| format!("{}: {e:#}", spec.name));
    let ok = joined.is_ok();
    let _ = ready.send(joined);
    if ok {
        let _ = shutdown.changed().await;
    }
    engine.remove(spec.index);
}
