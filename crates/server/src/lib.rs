//! The lanmeet server: HTTPS with the embedded client, WebSocket signaling, media workers.
//!
//! Modules:
//! - [`config`]: settings from flags and an optional TOML file.
//! - [`net`]: host name and local addresses.
//! - [`tls`]: the given or generated HTTPS certificate.
//! - [`media`]: media worker threads driving the sans-IO SFU over UDP.
//! - [`rooms`]: the room registry on the signaling side.
//! - [`chat`]: room and private chat, history.
//! - [`files`]: file upload and download, retention.
//! - [`signaling`]: the per-participant WebSocket actor.
//! - [`web`]: HTTP routes and embedded assets.
//!
//! [`start`] brings everything up and returns a [`RunningServer`]; `main` is a thin
//! wrapper around it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub mod chat;
pub mod config;
pub mod files;
pub mod media;
pub mod net;
pub mod rooms;
pub mod signaling;
pub mod tls;
pub mod web;

use config::Config;
use rooms::Registry;
use signaling::Heartbeat;

/// A started server.
pub struct RunningServer {
    /// The bound HTTP(S) address.
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The media UDP ports, one per worker.
    pub udp_ports: Vec<u16>,
    /// Rooms and workers, for inspection.
    pub registry: Arc<Registry>,
    /// Shared files, for inspection and retention runs.
    pub files: Arc<files::Files>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections, closes sockets and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server ends (after [`RunningServer::shutdown`] or an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task panicked")?
    }

    /// Asks the server to stop without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the server described by `config`: data directory, certificate, media workers
/// and the HTTP(S) listener.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let candidate_ips = net::candidate_ips(&config.public_ips);
    let mut workers = Vec::new();
    for i in 0..config.worker_count() {
        let port = if config.udp_port == 0 {
            0
        } else {
            // `Config::check` guarantees this fits.
            config.udp_port + i as u16
        };
        workers.push(media::spawn_worker(
            i,
            port,
            &candidate_ips,
            config.audio_top_n,
            config.bandwidth_estimation,
        )?);
    }
    let udp_ports = workers.iter().map(|w| w.port).collect();
    let registry = Arc::new(Registry::new(workers, config.max_presenters));
    let db = config.data_dir.join("lanmeet.sqlite");
    let store = Arc::new(
        lanmeet_store::Store::open(&db).with_context(|| format!("opening {}", db.display()))?,
    );
    let chat = Arc::new(chat::Chat::new(
        registry.clone(),
        store.clone(),
        chat::ChatLimits {
            max_bytes: config.chat_max_bytes,
            history: config.chat_history,
            burst: config.chat_burst,
            rate: config.chat_rate,
        },
    ));
    let files = Arc::new(files::Files::new(
        &config.data_dir,
        store,
        registry.clone(),
        files::FileLimits {
            max_bytes: config.max_file_mib * 1024 * 1024,
            quota_bytes: config.storage_quota_mib * 1024 * 1024,
            retention: std::time::Duration::from_secs(config.file_retention_hours * 3600),
        },
    )?);
    let retention = files.clone();
    let retention_task = tokio::spawn(async move {
        // Hourly is plenty for a retention counted in hours; the first run is at start.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let files = retention.clone();
            let result = tokio::task::spawn_blocking(move || files.expire(chat::now_ms())).await;
            match result {
                Ok(Err(e)) => tracing::warn!("file retention: {e:#}"),
                Err(e) => tracing::warn!("file retention: {e}"),
                Ok(Ok(_)) => {}
            }
        }
    });
    let state = web::AppState {
        registry: registry.clone(),
        heartbeat: Heartbeat {
            interval: config.ping_interval(),
            timeout: config.peer_timeout(),
        },
        chat,
        files: files.clone(),
    };
    let app = web::router(state);
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (scheme, task) = if config.http {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown_rx.await;
                })
                .await
                .context("HTTP server failed")
        });
        ("http", task)
    } else {
        let files = tls::ensure_certificate(&config)?;
        // Both rustls users (axum-server here, str0m for DTLS) agree on aws-lc-rs; an
        // already installed provider is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
            .await
            .with_context(|| format!("loading certificate {}", files.cert.display()))?;
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            let _ = shutdown_rx.await;
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        });
        let task = tokio::spawn(async move {
            axum_server::from_tcp_rustls(listener, tls)
                .handle(handle)
                .serve(app.into_make_service())
                .await
                .context("HTTPS server failed")
        });
        ("https", task)
    };
    let task = tokio::spawn(async move {
        let result = task.await.context("server task panicked");
        retention_task.abort();
        result?
    });
    info!(%addr, scheme, ?udp_ports, "listening");
    Ok(RunningServer {
        addr,
        scheme,
        udp_ports,
        registry,
        files,
        shutdown: Some(shutdown_tx),
        task,
    })
}
