//! lanmeet load generator: many synthetic participants in one process, over the real
//! protocol (WebSocket signaling, WebRTC with DTLS-SRTP, str0m as the client), and the
//! figures a benchmark needs: loss, one-way latency, forwarded packets per second,
//! server CPU and memory.
//!
//! The `lanmeet-loadgen` binary (`src/bin/lanmeet-loadgen.rs`) parses [`LoadgenArgs`],
//! calls [`run`] and [`print`]s the report; the server binary does not carry any of this.
//!
//! Modules:
//! - this file: the flags ([`LoadgenArgs`]) and [`run`], which joins everyone, measures
//!   for a while and builds the [`Report`].
//! - [`engine`]: media threads, each driving many connections' str0m `Rtc`s (or plain
//!   sockets for the relay) and the synthetic cameras and microphones.
//! - [`lanmeet`]: a participant speaking lanmeet's signaling protocol.
//! - [`janus`]: a participant of Janus's videoroom plugin, for comparison.
//! - [`mediasoup`]: a participant of mediasoup, through `bench/mediasoup/server.mjs`.
//! - [`session`]: what all participants share; the relay participant.
//! - [`payload`]: what a packet carries (publisher, sequence number, send time).
//! - [`stats`]: loss, reordering and latency as subscribers measure them.
//! - [`station`]: station mode (`--station`): what viewers of a station's file measure.
//! - [`report`]: the figures, as a summary and as JSON.
//! - [`procstat`]: another process's CPU and memory from `/proc`.
//! - [`servermetrics`]: the server's own forwarding delay, from its `/metrics`.
//! - [`relay`]: the minimal no-crypto UDP relay that gives the machine's ceiling.
#![deny(missing_docs)]

pub mod engine;
pub mod janus;
pub mod lanmeet;
pub mod mediasoup;
pub mod payload;
pub mod procstat;
pub mod relay;
pub mod report;
pub mod servermetrics;
pub mod session;
pub mod station;
pub mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::{oneshot, watch};

use engine::{EngineConfig, EngineHandle, MediaProfile};
use payload::Kind;
pub use report::Report;
use session::Spec;

/// The server the participants talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// lanmeet: `--server http://HOST:PORT` (started with `--http`).
    Lanmeet,
    /// Janus videoroom over its WebSocket API: `--server ws://HOST:8188`.
    Janus,
    /// mediasoup through `bench/mediasoup/server.mjs`: `--server http://HOST:PORT`.
    Mediasoup,
    /// The no-crypto relay (`lanmeet-relay`): `--server HOST:PORT`.
    Relay,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Lanmeet => "lanmeet",
            Target::Janus => "janus",
            Target::Mediasoup => "mediasoup",
            Target::Relay => "relay",
        }
    }
}

/// Flags of `lanmeet-loadgen`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "lanmeet-loadgen",
    version,
    about = "Load a running server with synthetic participants and report loss, latency \
             and throughput",
    long_about = None
)]
pub struct LoadgenArgs {
    /// Where the server is: `http://HOST:PORT` for lanmeet and for mediasoup's signaling
    /// server, `ws://HOST:8188` for Janus, `HOST:PORT` for the relay.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// Which kind of server.
    #[arg(long, value_enum, default_value_t = Target::Lanmeet)]
    pub target: Target,
    /// Number of rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Participants per room that publish audio and video and subscribe.
    #[arg(long, default_value_t = 2)]
    pub participants: u32,
    /// Participants per room that only subscribe (with `--station`: the station's
    /// viewers).
    #[arg(long, default_value_t = 0)]
    pub viewers: u32,
    /// Watch station NAME instead of meeting: `--viewers` viewers `watch` it (no
    /// publishers, no rooms) and report loss from sequence gaps, their received rate and
    /// the packets' lateness against their RTP time (lanmeet only).
    #[arg(long, value_name = "NAME")]
    pub station: Option<String>,
    /// Seconds to measure, after everyone joined and a warm-up.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds between joining and measuring (first keyframes, settling).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Video bitrate, kbit/s of RTP payload, all simulcast layers together (0: no video).
    #[arg(long, default_value_t = 1500)]
    pub video_kbps: u32,
    /// Simulcast layers of the camera: 3 (rids q, h, f at 320x180, 640x360 and 1280x720,
    /// splitting the bitrate 100:500:1800 as the browser client does) or 1 (one
    /// 1280x720 stream, as for Janus).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub layers: u8,
    /// Share of subscribers (0 to 1) that report their videos as small tiles (320x180
    /// device pixels: the lowest layer fits); the others report large ones (1280x720).
    #[arg(long, default_value_t = 0.5)]
    pub small_tiles: f64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Largest video RTP payload, bytes.
    #[arg(long, default_value_t = 1200)]
    pub packet_size: usize,
    /// Seconds between periodic keyframes.
    #[arg(long, default_value_t = 3.0)]
    pub keyframe_interval: f64,
    /// Audio packets per second (0: no audio).
    #[arg(long, default_value_t = 50)]
    pub audio_pps: u32,
    /// Audio payload bytes.
    #[arg(long, default_value_t = 100)]
    pub audio_size: usize,
    /// Media engine threads in the load generator.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Local address for media sockets [default: the one that routes to the server].
    #[arg(long, value_name = "IP")]
    pub bind_ip: Option<IpAddr>,
    /// Participants joining per second.
    #[arg(long, default_value_t = 50.0)]
    pub join_rate: f64,
    /// Spread the joins evenly over this many seconds (overrides --join-rate).
    #[arg(long, value_name = "SECONDS")]
    pub join_spread: Option<f64>,
    /// Seconds a participant may take to join and get its media up.
    #[arg(long, default_value_t = 20.0)]
    pub join_timeout: f64,
    /// Process id of the server, to report its CPU and memory from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// lanmeet's `/metrics` served without a password (its `--metrics-listen`), e.g.
    /// `http://10.77.0.1:9100/metrics`: its arrival-to-send histogram is read at the
    /// start and the end of the window and reported as the server-side delay.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
    /// Prefix of room names (rooms are PREFIX-0, PREFIX-1, ...).
    #[arg(long, default_value = "loadgen")]
    pub room_prefix: String,
    /// Prefix of participant names (PREFIXpub0, PREFIXpub1, ...), so that several load
    /// generators can share a room without their names clashing.
    #[arg(long, default_value = "")]
    pub name_prefix: String,
    /// Print the report as JSON on the last line.
    #[arg(long)]
    pub json: bool,
}

impl LoadgenArgs {
    /// Arguments with every default, for `server`.
    pub fn new(server: impl Into<String>) -> LoadgenArgs {
        use clap::Parser;
        let server = server.into();
        LoadgenArgs::parse_from(["lanmeet-loadgen", "--server", server.as_str()])
    }

    fn profile(&self) -> MediaProfile {
        let fps = if self.video_kbps == 0 { 0 } else { self.fps };
        let frame_bytes = if fps == 0 {
            0
        } else {
            (u64::from(self.video_kbps) * 1000 / 8 / u64::from(fps)) as usize
        };
        MediaProfile {
            fps,
            frame_bytes,
            layers: if self.layers > 1 { 3 } else { 1 },
            packet_size: self.packet_size.max(payload::HEADER_LEN),
            keyframe_interval: Duration::from_secs_f64(self.keyframe_interval.max(0.1)),
            audio_pps: self.audio_pps,
            audio_size: self.audio_size,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.station.is_some() {
            if self.target != Target::Lanmeet {
                bail!("--station needs --target lanmeet");
            }
            if self.viewers == 0 {
                bail!("--station needs --viewers of at least 1");
            }
        } else if self.rooms == 0 || self.participants == 0 {
            bail!("--rooms and --participants must be at least 1");
        }
        if self.threads == 0 || self.join_rate <= 0.0 || self.duration <= 0.0 {
            bail!("--threads, --join-rate and --duration must be above 0");
        }
        if self.video_kbps > 0 && self.fps == 0 {
            bail!("--fps must be above 0 when sending video");
        }
        if self.layers == 2 {
            bail!("--layers is 3 (simulcast like the browser) or 1");
        }
        if !(0.0..=1.0).contains(&self.small_tiles) {
            bail!("--small-tiles is a share between 0 and 1");
        }
        if self.join_spread.is_some_and(|s| s.is_nan() || s < 0.0) {
            bail!("--join-spread must be 0 or more seconds");
        }
        if self.target == Target::Janus && self.layers > 1 {
            bail!("the Janus target publishes one layer: pass --layers 1");
        }
        Ok(())
    }
}

/// Runs the load and returns the report; prints nothing (see [`print`]).
pub async fn run(args: LoadgenArgs) -> anyhow::Result<Report> {
    args.check()?;
    let relay_addr = match args.target {
        Target::Relay => Some(resolve(&args.server)?),
        _ => None,
    };
    let bind_ip = match args.bind_ip {
        Some(ip) => ip,
        None => local_ip_towards(&args.server)?,
    };
    let profile = args.profile();
    let config = EngineConfig {
        bind_ip,
        profile,
        epoch: Instant::now(),
        station: args.station.is_some(),
    };
    let engines: Vec<Arc<EngineHandle>> = (0..args.threads)
        .map(|i| EngineHandle::spawn(i, config.clone()).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let server_rss_start_mb = args.server_pid.and_then(procstat::rss_mib);

    // Publishers of every room first, then the viewers, so viewers find media waiting.
    let per_room = args.participants + args.viewers;
    // Every subscriber of a room in turn: small tiles when the running share crosses
    // the next whole number, so 0.5 alternates large and small.
    let small = |slot: u32| {
        let share = args.small_tiles;
        ((f64::from(slot) + 1.0) * share).floor() > (f64::from(slot) * share).floor()
    };
    let mut specs = Vec::new();
    if let Some(station) = &args.station {
        for k in 0..args.viewers {
            specs.push(Spec {
                index: k,
                room: String::new(),
                name: format!("{}view{k}", args.name_prefix),
                publisher: false,
                expects_media: true,
                small_tiles: small(k),
                station: Some(station.clone()),
            });
        }
    }
    for publisher in [true, false] {
        if args.station.is_some() {
            break;
        }
        for r in 0..args.rooms {
            let count = if publisher {
                args.participants
            } else {
                args.viewers
            };
            for k in 0..count {
                let slot = if publisher { k } else { args.participants + k };
                let index = r * per_room + slot;
                specs.push(Spec {
                    index,
                    room: format!("{}-{r}", args.room_prefix),
                    name: format!(
                        "{}{}{slot}",
                        args.name_prefix,
                        if publisher { "pub" } else { "view" }
                    ),
                    publisher,
                    expects_media: args.participants > u32::from(publisher),
                    small_tiles: small(slot),
                    station: None,
                });
            }
        }
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let join_timeout = Duration::from_secs_f64(args.join_timeout);
    let ws_url = match args.target {
        Target::Lanmeet => Some(lanmeet::ws_url(&args.server)?),
        _ => None,
    };
    let janus = match args.target {
        Target::Janus => Some(janus::Janus::new(&args.server, args.rooms)),
        _ => None,
    };
    let mediasoup = match args.target {
        Target::Mediasoup => Some(mediasoup::Mediasoup::new(&args.server, args.participants)),
        _ => None,
    };
    let mut tasks = Vec::new();
    let mut waiting = Vec::new();
    let gap = match args.join_spread {
        Some(spread) => Duration::from_secs_f64(spread / specs.len().max(1) as f64),
        None => Duration::from_secs_f64(1.0 / args.join_rate),
    };
    let mut next_join = tokio::time::Instant::now();
    for spec in &specs {
        tokio::time::sleep_until(next_join).await;
        next_join += gap;
        let engine = engines[spec.index as usize % engines.len()].clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        let shutdown = shutdown_rx.clone();
        let spec = spec.clone();
        waiting.push((spec.clone(), ready_rx));
        let task = match args.target {
            Target::Lanmeet => {
                let url = ws_url.clone().unwrap_or_default();
                tokio::spawn(lanmeet::participant(
                    url,
                    spec,
                    engine,
                    join_timeout,
                    ready_tx,
                    shutdown,
                ))
            }
            Target::Relay => {
                let relay = relay_addr.context("relay address")?;
                tokio::spawn(session::relay_participant(
                    relay, spec, engine, ready_tx, shutdown,
                ))
            }
            Target::Janus => {
                let janus = janus.clone().context("janus")?;
                tokio::spawn(janus::participant(
                    janus,
                    spec,
                    engine,
                    join_timeout,
                    ready_tx,
                    shutdown,
                ))
            }
            Target::Mediasoup => {
                let server = mediasoup.clone().context("mediasoup")?;
                tokio::spawn(mediasoup::participant(
                    server,
                    spec,
                    engine,
                    join_timeout,
                    ready_tx,
                    shutdown,
                ))
            }
        };
        tasks.push(task);
    }

    let station_mode = args.station.is_some();
    let mut report = Report {
        target: args.target.name().to_string(),
        rooms: if station_mode { 0 } else { args.rooms },
        participants: if station_mode { 0 } else { args.participants },
        viewers: args.viewers,
        server_rss_start_mb,
        ..Default::default()
    };
    let mut joined = Vec::new();
    let mut opened = HashMap::new();
    for (spec, ready) in waiting {
        let outcome = ready
            .await
            .unwrap_or_else(|_| Err(format!("{}: gave up", spec.name)));
        match outcome {
            Ok(at) => {
                opened.insert(spec.index, at);
                joined.push(spec);
            }
            Err(e) => {
                report.join_failures += 1;
                if report.join_errors.len() < 5 {
                    report.join_errors.push(e);
                }
            }
        }
    }
    tracing::info!(
        joined = joined.len(),
        failed = report.join_failures,
        "everyone joined"
    );
    if joined.is_empty() {
        let _ = shutdown_tx.send(true);
        bail!(
            "no {} joined ({} failed): {}",
            if station_mode {
                "viewer"
            } else {
                "participant"
            },
            report.join_failures,
            report.join_errors.join("; ")
        );
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.0))).await;
    for e in &engines {
        e.start_window();
    }
    let http = reqwest::Client::new();
    let delay_start = server_delay(&http, args.server_metrics.as_deref()).await;
    let started = Instant::now();
    let own_cpu_start = procstat::cpu(std::process::id());
    let server_cpu_start = args.server_pid.and_then(procstat::cpu);
    let cpus_start = procstat::cpu_ticks();
    let mut server_rss_max: Option<f64> = None;
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(args.duration);
    loop {
        if let Some(rss) = args.server_pid.and_then(procstat::rss_mib) {
            server_rss_max = Some(server_rss_max.map_or(rss, |m: f64| m.max(rss)));
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(500))).await;
    }
    for e in &engines {
        e.stop_media();
    }
    report.duration_s = started.elapsed().as_secs_f64();
    if let (Some(start), Some(end)) = (
        delay_start,
        server_delay(&http, args.server_metrics.as_deref()).await,
    ) {
        report.server_delay_ms = Some(end.since(&start).summary());
    }
    let own_cpu_end = procstat::cpu(std::process::id());
    let server_cpu_end = args.server_pid.and_then(procstat::cpu);
    report.cpu_busy_pct = procstat::cpu_busy_percent(&cpus_start, &procstat::cpu_ticks());
    if let (Some(a), Some(b)) = (own_cpu_start, own_cpu_end) {
        report.loadgen_cpu_pct = procstat::cpu_percent(a, b);
    }
    if let (Some(a), Some(b)) = (server_cpu_start, server_cpu_end) {
        report.server_cpu_pct = Some(procstat::cpu_percent(a, b));
    }
    report.server_rss_mb = server_rss_max;
    // Packets still in flight when the publishers stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut stats = stats::EngineStats::default();
    for e in &engines {
        stats.merge(e.collect().await?);
    }
    let mut kinds = Vec::new();
    if profile.audio_pps > 0 {
        kinds.push(Kind::Audio);
    }
    if profile.fps > 0 {
        kinds.push(Kind::Video);
    }
    match &args.station {
        Some(station) => report.add_station(&stats, &joined, station),
        None => report.add_media(&stats, &joined, &kinds),
    }
    report.add_join_times(&stats, &joined, &opened, config.epoch);

    let _ = shutdown_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    drop(engines);
    Ok(report)
}

/// Prints the summary, and the JSON line last when asked. Participants that failed to
/// join are said again on stderr, since the figures only cover those that joined.
pub fn print(report: &Report, json: bool) {
    println!("{report}");
    if json {
        println!("{}", report.to_json());
    }
    if report.join_failures > 0 {
        eprintln!(
            "error: {} participant(s) failed to join; the figures cover only the {} that did",
            report.join_failures, report.joined
        );
    }
}

/// The server's forwarding delay histogram now, if `url` is given and can be read.
async fn server_delay(
    http: &reqwest::Client,
    url: Option<&str>,
) -> Option<servermetrics::DelayHistogram> {
    match servermetrics::fetch(http, url?).await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("no server-side delay: {e:#}");
            None
        }
    }
}

/// The `host:port` of a server given as a URL or an address.
fn host_port(server: &str) -> &str {
    let rest = server.split("://").nth(1).unwrap_or(server);
    rest.split('/').next().unwrap_or(rest)
}

fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    let hp = host_port(server);
    hp.to_socket_addrs()
        .with_context(|| format!("resolving {hp}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("no IPv4 address for {hp}"))
}

/// The local address the kernel would use to reach `server`: media sockets bind there,
/// since that is the host candidate the server can reach.
fn local_ip_towards(server: &str) -> anyhow::Result<IpAddr> {
    let target = resolve(server)?;
    let probe = UdpSocket::bind("0.0.0.0:0")?;
    probe
        .connect(target)
        .with_context(|| format!("no route to {target}"))?;
    Ok(probe.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_about_one_and_a_half_megabits() {
        let args = LoadgenArgs::new("http://127.0.0.1:1");
        let p = args.profile();
        assert_eq!(p.fps, 30);
        assert_eq!(p.frame_bytes, 6250);
        assert_eq!(p.audio_pps, 50);
        assert_eq!(host_port("http://127.0.0.1:1/x"), "127.0.0.1:1");
        assert_eq!(host_port("10.0.0.1:9"), "10.0.0.1:9");
        assert!(args.check().is_ok());
    }
}
