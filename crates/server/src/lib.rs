//! The lanmeet server: HTTPS with the embedded client, WebSocket signaling, media workers.
//!
//! Modules:
//! - [`config`]: settings from flags and an optional TOML file.
//! - [`datadir`]: the locked data directory and the names lanmeet owns in it.
//! - [`net`]: host name and local addresses.
//! - [`origin`]: which web pages may open the signaling WebSocket.
//! - [`admission`]: caps on open connections, in total and per address.
//! - [`limits`]: what one participant may make the server do (rates, queue, deadlines).
//! - [`outbound`]: each participant's bounded outbound queue.
//! - [`tls`]: the given or generated HTTPS certificate.
//! - [`redirect`]: plain HTTP on the HTTPS port answered with a redirect.
//! - [`lifecycle`]: the shutdown signal and the tasks a shutdown waits for.
//! - [`media`]: media worker threads driving the sans-IO SFU over UDP.
//! - [`rooms`]: the room registry on the signaling side.
//! - [`moderation`]: roles, moderator actions, the lock and its lobby, bans.
//! - [`persistent`]: persistent rooms, their passwords and permissions.
//! - [`chat`]: room and private chat, history.
//! - [`files`]: file upload and download, retention.
//! - [`signaling`]: the per-participant WebSocket actor.
//! - [`web`]: HTTP routes and embedded assets.
//! - [`whip`]: live stations: broadcasters over WHIP, their tokens.
//! - [`metrics`]: counters, the Prometheus exposition, one-second history.
//! - [`admin`]: `/metrics` and `/admin` behind the admin password; login sessions.
//!
//! [`start`] brings everything up in named steps and returns a [`RunningServer`], whose
//! [`RunningServer::shutdown`] takes it down gracefully; `main` is a thin wrapper that
//! calls it on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub mod admin;
pub mod admission;
pub mod chat;
pub mod config;
pub mod datadir;
pub mod files;
pub mod lifecycle;
pub mod limits;
pub mod mdns;
pub mod media;
pub mod metrics;
pub mod moderation;
pub mod net;
pub mod origin;
pub mod outbound;
pub mod persistent;
pub mod redirect;
pub mod rooms;
pub mod signaling;
pub mod stations;
pub mod tls;
pub mod web;
pub mod whip;

use config::Config;
use lanmeet_store::Store;
use lifecycle::{Lifecycle, SHUTDOWN_GRACE};
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
    /// Chat, for retention runs.
    pub chat: Arc<chat::Chat>,
    /// The address of `/metrics` without authentication (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// Where the admin password is kept, if it was generated (never the password).
    pub admin_password_file: Option<PathBuf>,
    /// The stations on air from the start (`--station`; the live ones are in the
    /// directory).
    pub stations: Vec<stations::RunningStation>,
    /// Every station, the admin's too.
    pub station_directory: Arc<stations::StationDirectory>,
    /// The mDNS/DNS-SD announcement, while the server runs (`--no-mdns`: none).
    pub mdns: Option<mdns::Announcement>,
    lifecycle: Lifecycle,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Shuts down gracefully and waits until the server is down: stops accepting
    /// connections, tells every participant that the server is restarting and closes
    /// its socket, stops the media workers and closes the database.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.lifecycle.shut_down();
        self.wait().await
    }

    /// Waits until the server ends (after [`RunningServer::shutdown`] or an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task panicked")?
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn trigger_shutdown(&mut self) {
        self.lifecycle.shut_down();
    }
}

/// Starts the server described by `config`: data directory, media workers, database,
/// chat and files, the HTTP(S) listener; then serves until shut down.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let data_dir = datadir::DataDir::open(&config.data_dir)?;
    let store = open_store(&data_dir, &config)?;
    let workers = spawn_workers(&config)?;
    media::connect_workers(&workers)?;
    let registry = Arc::new(
        Registry::new(workers, config.max_presenters, store.clone())
            .with_fanout_spill(config.fanout_spill),
    );
    let station_specs = config.station_specs()?;
    let stations = stations::start(&station_specs, &registry)?;
    let live_names = config.live_station_names()?;
    let live_tokens = whip::LiveTokens::load_or_generate(&config.data_dir, &live_names)?;
    let configured = config
        .rooms
        .iter()
        .map(persistent::RoomSettings::from_config)
        .collect::<anyhow::Result<Vec<_>>>()?;
    registry
        .open_rooms(config.adhoc_rooms, configured)
        .context("storing the configured rooms")?;
    let udp_ports = registry.workers().iter().map(|w| w.port).collect();
    let counters = Arc::new(metrics::Counters::default());
    let chat = Arc::new(chat::Chat::new(
        registry.clone(),
        store.clone(),
        chat_limits(&config),
    ));
    let files = Arc::new(files::Files::new(
        &data_dir,
        store.clone(),
        registry.clone(),
        file_limits(&config),
        counters.clone(),
    )?);
    let station_directory = Arc::new(stations::StationDirectory::new(
        registry.clone(),
        store.clone(),
        files.clone(),
        data_dir.folder(stations::MEDIA_FOLDER)?,
        &station_specs,
        stations.clone(),
        &live_tokens,
    )?);
    let lifecycle = Lifecycle::new();
    lifecycle.spawn(station_directory.clone().watch_files(lifecycle.clone()));
    lifecycle.spawn(run_retention(
        files.clone(),
        chat.clone(),
        lifecycle.clone(),
    ));
    let monitor = Arc::new(metrics::Monitor::new(
        counters.clone(),
        registry.clone(),
        store.clone(),
        file_limits(&config).quota_bytes,
    ));
    lifecycle.spawn(metrics::history::run_sampler(
        monitor.clone(),
        lifecycle.clone(),
    ));
    let (password, password_source) = admin::auth::load_or_generate(
        config.admin_password.as_ref().map(|s| s.0.as_str()),
        &config.data_dir,
    )?;
    let admin_password_file = match password_source {
        admin::auth::PasswordSource::File(path) => Some(path),
        admin::auth::PasswordSource::Configured => None,
    };
    let app = web::router(web::AppState {
        signaling: signaling::Context {
            registry: registry.clone(),
            chat: chat.clone(),
            heartbeat: Heartbeat {
                interval: config.ping_interval(),
                timeout: config.peer_timeout(),
            },
            lifecycle: lifecycle.clone(),
            counters,
            limits: config.signaling_limits(),
            joins: Arc::new(limits::JoinRates::new(config.join_burst, config.join_rate)),
            passwords: Arc::new(limits::JoinRates::new(
                config.password_burst,
                config.password_rate,
            )),
            stations: station_directory.clone(),
        },
        whip: whip::WhipState {
            stations: station_directory.clone(),
            registry: registry.clone(),
            lifecycle: lifecycle.clone(),
        },
        files: files.clone(),
        origins: Arc::new(config.origin_policy()?),
        admin: admin::AdminState {
            auth: Arc::new(admin::auth::AdminAuth::new(password)),
            monitor: monitor.clone(),
            secure: !config.http,
            lifecycle: lifecycle.clone(),
            stations: station_directory.clone(),
            files: files.clone(),
        },
    });
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, monitor, lifecycle.clone()).await?),
        None => None,
    };
    let mut listener = Listener::bind(&config).await?;
    listener.connections = admission::ConnectionLimits {
        total: connection_cap(config.max_connections),
        per_address: config.max_connections_per_ip,
    };
    let (addr, scheme) = (listener.addr, listener.scheme());
    let teardown = Teardown {
        registry: registry.clone(),
        store,
        data_dir,
    };
    let task = tokio::spawn(run(listener, app, lifecycle.clone(), teardown));
    info!(%addr, scheme, ?udp_ports, "listening");
    // A server on loopback only is not for the network.
    let mdns = if config.mdns && !addr.ip().is_loopback() {
        mdns::announce(scheme, addr.port())
            .inspect_err(|e| warn!("not announced over mDNS: {e:#}"))
            .ok()
    } else {
        None
    };
    Ok(RunningServer {
        mdns,
        addr,
        scheme,
        udp_ports,
        registry,
        files,
        chat,
        metrics_addr,
        admin_password_file,
        stations,
        station_directory,
        lifecycle,
        task,
    })
}

/// Serves `/metrics` without authentication on plain HTTP at `addr` until shutdown;
/// returns the bound address.
async fn serve_metrics(
    addr: SocketAddr,
    monitor: Arc<metrics::Monitor>,
    lifecycle: Lifecycle,
) -> anyhow::Result<SocketAddr> {
    let socket = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for metrics on {addr}"))?;
    let bound = socket.local_addr()?;
    let app = admin::metrics_router(monitor);
    let stop = lifecycle.clone();
    lifecycle.spawn(async move {
        let served = axum::serve(socket, app)
            .with_graceful_shutdown(async move { stop.shutting_down().await })
            .await;
        if let Err(e) = served {
            warn!("metrics listener failed: {e}");
        }
    });
    info!(%bound, "serving /metrics without authentication");
    Ok(bound)
}

/// One media worker per configured worker, on consecutive UDP ports from `udp_port`.
fn spawn_workers(config: &Config) -> anyhow::Result<Vec<media::WorkerHandle>> {
    let bind = config.media_bind_ip();
    let candidate_ips = net::candidate_ips(&config.public_ips, bind);
    (0..config.worker_count())
        .map(|i| {
            // `Config::check` guarantees that the ports fit.
            let port = if config.udp_port == 0 {
                0
            } else {
                config.udp_port + i as u16
            };
            media::spawn_worker(
                i,
                SocketAddr::new(bind, port),
                &candidate_ips,
                config.audio_top_n,
                config.bandwidth_estimation,
            )
        })
        .collect()
}

fn open_store(data_dir: &datadir::DataDir, config: &Config) -> anyhow::Result<Arc<Store>> {
    let db = data_dir.database()?;
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    store
        .limit_size(config.max_database_mib * 1024 * 1024)
        .context("limiting the database size")?;
    Ok(Arc::new(store))
}

fn chat_limits(config: &Config) -> chat::ChatLimits {
    chat::ChatLimits {
        max_bytes: config.chat_max_bytes,
        history: config.chat_history,
        burst: config.chat_burst,
        rate: config.chat_rate,
        retention: Duration::from_secs(config.chat_retention_days * 24 * 3600),
    }
}

fn file_limits(config: &Config) -> files::FileLimits {
    files::FileLimits {
        max_bytes: config.max_file_mib * 1024 * 1024,
        quota_bytes: config.storage_quota_mib * 1024 * 1024,
        retention: Duration::from_secs(config.file_retention_hours * 3600),
        max_concurrent: config.max_concurrent_uploads,
        burst: config.upload_burst,
        rate: config.upload_rate,
    }
}

/// Deletes expired shared files and chat messages hourly (the first run at start) until
/// shutdown.
async fn run_retention(files: Arc<files::Files>, chat: Arc<chat::Chat>, lifecycle: Lifecycle) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = lifecycle.shutting_down() => return,
        }
        let (files, chat) = (files.clone(), chat.clone());
        let expired = tokio::task::spawn_blocking(move || {
            let now = chat::now_ms();
            files.expire(now).context("file retention")?;
            chat.expire(now).context("chat retention")
        });
        match expired.await {
            Ok(Err(e)) => warn!("{e:#}"),
            Err(e) => warn!("retention: {e}"),
            Ok(Ok(_)) => {}
        }
    }
}

/// File descriptors kept free of connections: database, shared files being written or
/// read, media sockets, the log.
const FD_RESERVE: u64 = 256;

/// Raises the soft limit on open files to the hard limit (often 1,024 soft against a far
/// higher hard limit) and returns the connection cap: `wanted`, or less if the limit
/// leaves no room for it beside [`FD_RESERVE`].
fn connection_cap(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            info!(limit, "open-file limit raised to the hard limit");
            limit
        }
        Err(e) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            warn!(limit, "cannot raise the open-file limit: {e}");
            limit
        }
    };
    let room = usize::try_from(limit.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX);
    if room < wanted {
        warn!(
            max_connections = room,
            wanted, "the open-file limit allows fewer connections than --max-connections"
        );
    }
    wanted.min(room)
}

/// The bound HTTP(S) socket, with the TLS configuration for HTTPS and the caps and
/// timeouts of its connections.
struct Listener {
    socket: std::net::TcpListener,
    addr: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    connections: admission::ConnectionLimits,
    header_timeout: Duration,
}

impl Listener {
    async fn bind(config: &Config) -> anyhow::Result<Listener> {
        let socket = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("listening on {}", config.listen))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let tls = if config.http {
            None
        } else {
            let files = tls::ensure_certificate(config)?;
            // Both rustls users (axum-server here, str0m for DTLS) agree on aws-lc-rs;
            // an already installed provider is fine.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .with_context(|| format!("loading certificate {}", files.cert.display()))?;
            Some(tls)
        };
        Ok(Listener {
            socket,
            addr,
            tls,
            connections: admission::ConnectionLimits {
                total: config.max_connections,
                per_address: config.max_connections_per_ip,
            },
            header_timeout: config.header_timeout(),
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// What is taken down after the connections: media workers, then the database, then
/// the data directory's lock.
struct Teardown {
    registry: Arc<Registry>,
    store: Arc<Store>,
    data_dir: datadir::DataDir,
}

/// Serves until the lifecycle shuts down (or the listener fails), then takes the server
/// down in order: connections and participants (at most [`SHUTDOWN_GRACE`]), media
/// workers, database.
async fn run(
    listener: Listener,
    app: Router,
    lifecycle: Lifecycle,
    teardown: Teardown,
) -> anyhow::Result<()> {
    let served = serve(listener, app, lifecycle.clone());
    tokio::pin!(served);
    let result = tokio::select! {
        result = &mut served => result,
        () = lifecycle.shutting_down() => {
            // HTTP connections get the grace period to finish, as the participants do.
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut served).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    lifecycle.shut_down();
    if !lifecycle.wait_for_tasks(SHUTDOWN_GRACE).await {
        warn!(
            tasks = lifecycle.running_tasks(),
            "some connections did not close in time"
        );
    }
    teardown.registry.stop_workers();
    teardown.store.close().context("closing the database")?;
    drop(teardown.data_dir);
    info!("shut down");
    result
}

/// Serves HTTP(S) on `listener` until the lifecycle shuts down; then stops accepting.
///
/// Every connection is admitted under the caps first ([`admission`]); then it has the
/// TLS handshake timeout (10 s) and the header timeout for each request's headers,
/// which also closes a kept-alive connection idle that long. HTTP/2 connections are
/// pinged and closed when they stop answering.
async fn serve(listener: Listener, app: Router, lifecycle: Lifecycle) -> anyhow::Result<()> {
    use hyper_util::rt::TokioTimer;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        lifecycle.shutting_down().await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let admit = admission::Admit(admission::Admission::new(listener.connections));
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let configure = |builder: &mut hyper_util::server::conn::auto::Builder<_>| {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(listener.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(listener.header_timeout)
            .keep_alive_timeout(listener.header_timeout);
    };
    match listener.tls {
        None => {
            let mut server = axum_server::from_tcp(listener.socket).acceptor(admit);
            configure(server.http_builder());
            server
                .handle(handle)
                .serve(make_service)
                .await
                .context("HTTP server failed")
        }
        Some(tls) => {
            // Plain HTTP requests on this port get a redirect to HTTPS, not silence.
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .acceptor(redirect::RedirectPlainHttp(admit));
            let mut server = axum_server::from_tcp(listener.socket).acceptor(acceptor);
            configure(server.http_builder());
            server
                .handle(handle)
                .serve(make_service)
                .await
                .context("HTTPS server failed")
        }
    }
}
