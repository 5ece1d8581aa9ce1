//! Configuration: one serde struct with defaults, read from an optional TOML file and
//! overridden by command-line flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::origin::{Origin, OriginPolicy};

/// lanmeet: self-hosted video meetings for a local network.
#[derive(Debug, Parser)]
#[command(name = "lanmeet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the meeting server.
    Serve(ServeArgs),
}

/// Flags of `lanmeet serve`. Each overrides the [`Config`] field of the same name (a
/// `no_X` switch turns field `X` off), as set by `--config` or by default:
/// [`Config::from_args`] merges them by name, so a new setting with a flag needs only
/// its field here, its field in [`Config`] and its default there.
#[derive(Debug, Default, Args, Serialize)]
pub struct ServeArgs {
    /// TOML file with settings (same names as the flags, with `_` for `-`).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address and port for HTTPS (or HTTP with --http) [default: 0.0.0.0:8443].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory for the certificate, the chat history and shared files
    /// [default: ./lanmeet-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (for localhost, tests, or behind a TLS proxy).
    #[arg(long)]
    pub http: bool,
    /// TLS certificate chain (PEM) to use instead of the generated one; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// First UDP port for media; worker N uses PORT+N. 0 picks free ports
    /// [default: 10000].
    #[arg(long, value_name = "PORT")]
    pub udp_port: Option<u16>,
    /// Address the media UDP sockets bind to [default: the IP of --listen, so a server
    /// listening on 127.0.0.1 takes no media from the network; 0.0.0.0 binds all].
    #[arg(long, value_name = "IP")]
    pub udp_bind: Option<IpAddr>,
    /// Address browsers reach the media ports at; repeat for several. Replaces the
    /// automatically found local addresses.
    #[arg(long = "public-ip", value_name = "IP")]
    pub public_ips: Vec<IpAddr>,
    /// Also accept the signaling WebSocket from pages of this origin (e.g.
    /// https://meet.example.org, for a reverse proxy serving lanmeet under another name);
    /// repeat for several. The server's own address is always accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Number of media worker threads [default: one per CPU core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// How often the server pings each participant, in milliseconds [default: 5000].
    #[arg(long, value_name = "MS")]
    pub ping_interval_ms: Option<u64>,
    /// Silence after which a participant is removed, in milliseconds [default: 12000].
    #[arg(long, value_name = "MS")]
    pub peer_timeout_ms: Option<u64>,
    /// Largest chat message, in bytes [default: 4096].
    #[arg(long, value_name = "BYTES")]
    pub chat_max_bytes: Option<usize>,
    /// Room messages a joining participant receives [default: 200].
    #[arg(long, value_name = "N")]
    pub chat_history: Option<usize>,
    /// Chat messages a participant may send in a burst [default: 10].
    #[arg(long, value_name = "N")]
    pub chat_burst: Option<u32>,
    /// Sustained chat messages per second per participant [default: 2].
    #[arg(long, value_name = "N")]
    pub chat_rate: Option<f64>,
    /// Largest shared file, in MiB [default: 1024].
    #[arg(long, value_name = "MIB")]
    pub max_file_mib: Option<u64>,
    /// Total storage for shared files, in MiB [default: 10240].
    #[arg(long, value_name = "MIB")]
    pub storage_quota_mib: Option<u64>,
    /// Hours a shared file is kept [default: 168, a week].
    #[arg(long, value_name = "HOURS")]
    pub file_retention_hours: Option<u64>,
    /// Days a room chat message is kept [default: 7, like files].
    #[arg(long, value_name = "DAYS")]
    pub chat_retention_days: Option<u64>,
    /// Largest size of the database (chat history and file records), in MiB; when
    /// reached, new messages and files are refused until retention frees room
    /// [default: 1024].
    #[arg(long, value_name = "MIB")]
    pub max_database_mib: Option<u64>,
    /// Uploads one participant may have in progress at once [default: 4].
    #[arg(long, value_name = "N")]
    pub max_concurrent_uploads: Option<usize>,
    /// Uploads a participant may start in a burst [default: 20].
    #[arg(long, value_name = "N")]
    pub upload_burst: Option<u32>,
    /// Sustained uploads per second per participant [default: 0.5].
    #[arg(long, value_name = "N")]
    pub upload_rate: Option<f64>,
    /// Participants of one room who may share a screen at the same time; at least 1
    /// [default: 1].
    #[arg(long, value_name = "N")]
    pub max_presenters: Option<usize>,
    /// In rooms with more microphones than this, each participant receives only the N
    /// loudest; at least 1 [default: 8].
    #[arg(long, value_name = "N")]
    pub audio_top_n: Option<usize>,
    /// A room stays on one media worker until it has this many participants; later
    /// joiners go to the least loaded worker, and the room's media is handed between
    /// its workers (docs/media.md, "Cross-worker fan-out") [default: 64].
    #[arg(long, value_name = "N")]
    pub fanout_spill: Option<usize>,
    /// Fit each participant's video layers to its downlink as estimated from congestion
    /// feedback (on by default); off, everyone gets what their tiles ask for and only
    /// loss reports move them down.
    #[arg(long)]
    pub no_bandwidth_estimation: bool,
    /// Do not announce the server over mDNS/DNS-SD (`_https._tcp`, host
    /// `<hostname>.local`); announced by default unless it listens on loopback only.
    #[arg(long)]
    pub no_mdns: bool,
    /// Password for `/admin` and `/metrics` [default: generated on first start into
    /// DATA_DIR/admin-password]. The environment variable keeps it out of `ps`.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "LANMEET_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
    /// Also serve `/metrics` without a password on this plain-HTTP address (e.g.
    /// 127.0.0.1:9100, for a Prometheus on the same machine or network).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Messages waiting for one participant's socket, at most; a participant whose
    /// queue fills up is removed [default: 512].
    #[arg(long, value_name = "N")]
    pub outbound_queue: Option<usize>,
    /// The longest one write to a participant's socket may take before it is removed,
    /// in milliseconds [default: 5000].
    #[arg(long, value_name = "MS")]
    pub send_timeout_ms: Option<u64>,
    /// Time from opening the WebSocket to `join`, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub join_timeout_ms: Option<u64>,
    /// Time a client has to send a request's headers, also the idle time after which
    /// a kept-alive HTTP connection is closed, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub header_timeout_ms: Option<u64>,
    /// Open TCP connections at most (HTTP and WebSocket) [default: 4096, less if the
    /// file-descriptor limit is lower].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open TCP connections from one IP address at most [default: 64].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Joins from one IP address in a burst [default: 20].
    #[arg(long, value_name = "N")]
    pub join_burst: Option<u32>,
    /// Sustained joins per second from one IP address [default: 2].
    #[arg(long, value_name = "N")]
    pub join_rate: Option<f64>,
    /// A station playing FILE (WebM with VP8/VP9 and Opus, or Ogg Opus) in a loop,
    /// watched at /stations/NAME; repeatable [default: none].
    #[arg(long = "station", value_name = "NAME=FILE")]
    pub stations: Vec<String>,
    /// A live station: broadcasters stream to it over WHIP (POST /whip/NAME with its
    /// bearer token, kept in the data directory); repeatable [default: none].
    #[arg(long = "live-station", value_name = "NAME")]
    pub live_stations: Vec<String>,
    /// Wrong room passwords one IP address may give in a burst [default: 5].
    #[arg(long, value_name = "N")]
    pub password_burst: Option<u32>,
    /// Sustained wrong room passwords per second from one IP address [default: 0.2].
    #[arg(long, value_name = "N")]
    pub password_rate: Option<f64>,
    /// Only persistent rooms (`[[rooms]]` in the config file, or made on the admin
    /// dashboard) can be joined; a join naming another room is refused.
    #[arg(long)]
    pub no_adhoc_rooms: bool,
}

/// Who may share files in a persistent room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSharing {
    /// Every member.
    #[default]
    Everyone,
    /// Moderators only.
    Moderators,
    /// Nobody.
    Nobody,
}

impl FileSharing {
    /// The word used in the config file and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FileSharing::Everyone => "everyone",
            FileSharing::Moderators => "moderators",
            FileSharing::Nobody => "nobody",
        }
    }

    /// Reads [`FileSharing::as_str`]'s word; anything else is `None`.
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Everyone, Self::Moderators, Self::Nobody]
            .into_iter()
            .find(|f| f.as_str() == word)
    }
}

/// A persistent room from the config file (`[[rooms]]`), created or updated at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    /// Room name.
    pub name: String,
    /// Password participants need: plain text (hashed at start) or an argon2 PHC
    /// string (`$argon2id$...`). None: no password.
    pub password: Option<Secret>,
    /// Password that makes the joiner a moderator (plain or PHC, like `password`).
    pub moderator_password: Option<Secret>,
    /// Joiners wait in the lobby until a moderator lets them in.
    pub lobby: bool,
    /// Most participants at once; 0: no limit.
    pub max_participants: u32,
    /// Participants (not moderators) may publish a camera.
    pub video: bool,
    /// Participants may publish a microphone.
    pub audio: bool,
    /// Participants may share a screen.
    pub screen: bool,
    /// Who may share files.
    pub files: FileSharing,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            name: String::new(),
            password: None,
            moderator_password: None,
            lobby: false,
            max_participants: 0,
            video: true,
            audio: true,
            screen: true,
            files: FileSharing::Everyone,
        }
    }
}

/// A secret string: shown as `***` in debug output, so logging a config leaks nothing.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Every setting of the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP(S) listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Plain HTTP instead of HTTPS.
    pub http: bool,
    /// Certificate chain to use instead of the generated one.
    pub cert: Option<PathBuf>,
    /// Key for `cert`.
    pub key: Option<PathBuf>,
    /// First media UDP port (0: any free port per worker).
    pub udp_port: u16,
    /// Address the media sockets bind to; none: the IP of `listen`.
    pub udp_bind: Option<IpAddr>,
    /// Addresses advertised as media candidates; empty: the machine's own addresses.
    pub public_ips: Vec<IpAddr>,
    /// Origins besides the server's own whose pages may open the signaling WebSocket.
    pub allowed_origins: Vec<String>,
    /// Media worker threads; 0: one per core.
    pub workers: usize,
    /// Heartbeat ping interval, milliseconds.
    pub ping_interval_ms: u64,
    /// Silence before removal, milliseconds.
    pub peer_timeout_ms: u64,
    /// Largest chat message in bytes.
    pub chat_max_bytes: usize,
    /// Room messages replayed to a joiner.
    pub chat_history: usize,
    /// Chat burst allowance.
    pub chat_burst: u32,
    /// Sustained chat messages per second.
    pub chat_rate: f64,
    /// Largest shared file, MiB.
    pub max_file_mib: u64,
    /// Storage quota for shared files, MiB.
    pub storage_quota_mib: u64,
    /// Retention of shared files, hours.
    pub file_retention_hours: u64,
    /// Retention of room chat messages, days.
    pub chat_retention_days: u64,
    /// Size cap of the database, MiB.
    pub max_database_mib: u64,
    /// Uploads in progress per participant.
    pub max_concurrent_uploads: usize,
    /// Upload burst allowance per participant.
    pub upload_burst: u32,
    /// Sustained uploads per second per participant.
    pub upload_rate: f64,
    /// Most simultaneous screen sharers per room. 0 is refused rather than read as
    /// "unlimited" or "disabled", since either reading would surprise someone.
    pub max_presenters: usize,
    /// Loudest audio streams forwarded to each participant in large rooms (at least 1).
    pub audio_top_n: usize,
    /// Participants a room has on one worker before later joiners are placed on the
    /// least loaded worker (cross-worker fan-out).
    pub fanout_spill: usize,
    /// Estimate each participant's downlink (TWCC) and fit its layers to it.
    pub bandwidth_estimation: bool,
    /// Announce the server over mDNS/DNS-SD (`mdns.rs`).
    pub mdns: bool,
    /// The admin password; none: generated once into the data directory.
    pub admin_password: Option<Secret>,
    /// Address for `/metrics` without authentication, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Messages waiting for one participant's socket, at most.
    pub outbound_queue: usize,
    /// Longest write to a participant's socket, milliseconds.
    pub send_timeout_ms: u64,
    /// Time from WebSocket upgrade to `join`, milliseconds.
    pub join_timeout_ms: u64,
    /// Time to send request headers (and keep-alive idle time), milliseconds.
    pub header_timeout_ms: u64,
    /// Open TCP connections at most.
    pub max_connections: usize,
    /// Open TCP connections from one IP address at most.
    pub max_connections_per_ip: usize,
    /// Joins from one IP address in a burst.
    pub join_burst: u32,
    /// Sustained joins per second from one IP address.
    pub join_rate: f64,
    /// Stations, each `NAME=FILE` (docs/stations.md).
    pub stations: Vec<String>,
    /// Live stations, by name: a WHIP broadcaster instead of a file (docs/stations.md).
    pub live_stations: Vec<String>,
    /// Wrong room passwords from one IP address in a burst.
    pub password_burst: u32,
    /// Sustained wrong room passwords per second from one IP address.
    pub password_rate: f64,
    /// Rooms are created on first join; off, only persistent rooms can be joined.
    pub adhoc_rooms: bool,
    /// Persistent rooms created or updated at start (`[[rooms]]`).
    pub rooms: Vec<RoomConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            data_dir: PathBuf::from("lanmeet-data"),
            http: false,
            cert: None,
            key: None,
            udp_port: 10000,
            udp_bind: None,
            public_ips: Vec::new(),
            allowed_origins: Vec::new(),
            workers: 0,
            ping_interval_ms: 5000,
            peer_timeout_ms: 12000,
            chat_max_bytes: lanmeet_proto::MAX_CHAT_BYTES,
            chat_history: 200,
            chat_burst: 10,
            chat_rate: 2.0,
            max_file_mib: 1024,
            storage_quota_mib: 10 * 1024,
            file_retention_hours: 7 * 24,
            chat_retention_days: 7,
            max_database_mib: 1024,
            max_concurrent_uploads: 4,
            upload_burst: 20,
            upload_rate: 0.5,
            max_presenters: 1,
            audio_top_n: 8,
            fanout_spill: 64,
            bandwidth_estimation: true,
            mdns: true,
            admin_password: None,
            metrics_listen: None,
            outbound_queue: 512,
            send_timeout_ms: 5000,
            join_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            max_connections: 4096,
            max_connections_per_ip: 64,
            join_burst: 20,
            join_rate: 2.0,
            stations: Vec::new(),
            live_stations: Vec::new(),
            password_burst: 5,
            password_rate: 0.2,
            adhoc_rooms: true,
            rooms: Vec::new(),
        }
    }
}

impl Config {
    /// Builds the configuration: defaults, then the TOML file, then the flags given
    /// (each by its name, see [`ServeArgs`]).
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Config> {
        let config = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let flags = serde_json::to_value(&args).context("reading the flags")?;
        let mut settings = serde_json::to_value(&config).context("reading the settings")?;
        for (name, value) in flags.as_object().into_iter().flatten() {
            if let Some((setting, value)) = flag_setting(name, value) {
                settings[setting] = value;
            }
        }
        let config: Config = serde_json::from_value(settings).context("applying the flags")?;
        config.check()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Rejects combinations that cannot work.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.cert.is_some() != self.key.is_some() {
            bail!("--cert and --key go together");
        }
        if self.ping_interval_ms == 0 || self.peer_timeout_ms <= self.ping_interval_ms {
            bail!("the peer timeout must be longer than the ping interval, and both above 0");
        }
        if self.chat_max_bytes == 0 || self.chat_burst == 0 || self.chat_rate <= 0.0 {
            bail!("chat limits must be above 0");
        }
        if self.max_file_mib == 0 || self.storage_quota_mib < self.max_file_mib {
            bail!("the storage quota must be at least the largest file size, above 0");
        }
        if self.file_retention_hours == 0 || self.chat_retention_days == 0 {
            bail!("retention periods must be above 0");
        }
        if self.max_database_mib == 0 {
            bail!("--max-database-mib must be above 0");
        }
        if self.max_concurrent_uploads == 0 || self.upload_burst == 0 || self.upload_rate <= 0.0 {
            bail!("upload limits must be above 0");
        }
        if self.max_presenters == 0 {
            bail!(
                "--max-presenters must be at least 1 (use a large number to let everyone present)"
            );
        }
        if self.audio_top_n == 0 {
            bail!("--audio-top-n must be at least 1");
        }
        if self.fanout_spill == 0 {
            bail!("--fanout-spill must be at least 1 (a room's size on one worker)");
        }
        self.origin_policy()?;
        self.live_station_names()?;
        let bounds = [
            self.outbound_queue as u64,
            self.send_timeout_ms,
            self.join_timeout_ms,
            self.header_timeout_ms,
            self.max_connections as u64,
            self.max_connections_per_ip as u64,
            u64::from(self.join_burst),
        ];
        if self.password_burst == 0 || self.password_rate <= 0.0 {
            bail!("--password-burst and --password-rate must be above 0");
        }
        for room in &self.rooms {
            lanmeet_proto::validate::room_name(&room.name)
                .map_err(|e| anyhow!("[[rooms]] name {:?}: {e}", room.name))?;
        }
        if bounds.contains(&0) || self.join_rate <= 0.0 {
            bail!("connection and signaling limits must be above 0");
        }
        if self.udp_port != 0 && usize::from(self.udp_port) + self.worker_count() > 65536 {
            bail!("--udp-port leaves no room for one port per worker");
        }
        Ok(())
    }

    /// The stations, parsed; names must differ.
    pub fn station_specs(&self) -> anyhow::Result<Vec<crate::stations::StationSpec>> {
        let mut specs: Vec<crate::stations::StationSpec> = Vec::new();
        for s in &self.stations {
            let spec = crate::stations::StationSpec::parse(s).map_err(anyhow::Error::msg)?;
            if specs
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&spec.name))
            {
                bail!("two stations are named {}", spec.name);
            }
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The live stations' names, checked: valid, and no two stations (live or from a
    /// file) share one.
    pub fn live_station_names(&self) -> anyhow::Result<Vec<String>> {
        let files = self.station_specs()?;
        let mut names: Vec<String> = Vec::new();
        for name in &self.live_stations {
            let name = lanmeet_proto::validate::room_name(name)
                .map_err(|e| anyhow!("live station {name:?}: {e}"))?
                .display;
            let taken = names.iter().any(|n| n.eq_ignore_ascii_case(&name))
                || files.iter().any(|f| f.name.eq_ignore_ascii_case(&name));
            if taken {
                bail!("two stations are named {name}");
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Number of media workers to start.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The address the media UDP sockets bind to: `--udp-bind`, else the IP `--listen`
    /// names. An unspecified listen address (`0.0.0.0` or `::`) binds all IPv4
    /// interfaces, as the media candidates are IPv4.
    pub fn media_bind_ip(&self) -> IpAddr {
        match self.udp_bind {
            Some(ip) => ip,
            None if self.listen.ip().is_unspecified() => IpAddr::from([0, 0, 0, 0]),
            None => self.listen.ip(),
        }
    }

    /// Who may open the signaling WebSocket: the server's own origin and
    /// `allowed_origins`.
    pub fn origin_policy(&self) -> anyhow::Result<OriginPolicy> {
        let allowed = self
            .allowed_origins
            .iter()
            .map(|o| Origin::parse(o).map_err(|e| anyhow!("--allowed-origin: {e}")))
            .collect::<anyhow::Result<_>>()?;
        Ok(OriginPolicy::new(allowed))
    }

    /// Heartbeat ping interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    /// Silence after which a participant is removed.
    pub fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_timeout_ms)
    }

    /// Queue size, send timeout and join deadline of each participant's actor.
    pub fn signaling_limits(&self) -> crate::limits::SignalingLimits {
        crate::limits::SignalingLimits {
            outbound_queue: self.outbound_queue,
            send_timeout: Duration::from_millis(self.send_timeout_ms),
            join_timeout: Duration::from_millis(self.join_timeout_ms),
        }
    }

    /// Time to send request headers, and keep-alive idle time.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
}

/// The setting a flag sets, if it was given: `--no-X` sets `X` to false; a switch not
/// given (false), a flag not given (null) and a repeatable flag not given (empty) set
/// nothing.
fn flag_setting(name: &str, value: &serde_json::Value) -> Option<(String, serde_json::Value)> {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Bool(true) => match name.strip_prefix("no_") {
            Some(setting) => Some((setting.to_owned(), Value::Bool(false))),
            None => Some((name.to_owned(), Value::Bool(true))),
        },
        _ => Some((name.to_owned(), value.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lanmeet serve --config FILE FLAGS...` with FILE holding `toml` (in a folder
    /// named after `tag`), built into a [`Config`].
    fn from_file_and_flags(tag: &str, toml: &str, flags: &[&str]) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!("lanmeet-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("lanmeet.toml");
        std::fs::write(&file, toml).expect("write");
        let mut argv = vec![
            "lanmeet",
            "serve",
            "--config",
            file.to_str().expect("utf-8 path"),
        ];
        argv.extend_from_slice(flags);
        let Command::Serve(args) = Cli::parse_from(argv).command;
        Config::from_args(args)
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let toml = "udp_port = 20000\nhttp = true\nworkers = 3\n";
        let config = from_file_and_flags("override", toml, &["--workers", "2"]).expect("valid");
        assert_eq!(config.udp_port, 20000);
        assert!(config.http);
        assert_eq!(config.workers, 2);
        assert_eq!(config.listen, Config::default().listen);
    }

    #[test]
    fn live_stations_are_named_once_among_all_stations() {
        let parse =
            |extra: &[&str]| from_file_and_flags("live", "live_stations = [\"allhands\"]\n", extra);
        assert_eq!(
            parse(&[])
                .expect("valid")
                .live_station_names()
                .expect("valid"),
            ["allhands"]
        );
        let config =
            parse(&["--live-station", "hall", "--live-station", "town-hall"]).expect("valid");
        assert_eq!(
            config.live_station_names().expect("valid"),
            ["hall", "town-hall"]
        );
        assert!(parse(&["--live-station", "a b"]).is_err());
        assert!(parse(&["--live-station", "x", "--live-station", "X"]).is_err());
        assert!(parse(&["--live-station", "news", "--station", "news=/x.webm"]).is_err());
    }

    #[test]
    fn stations_come_from_file_and_flags() {
        let toml = "stations = [\"news=/srv/news.webm\"]\n";
        let parse = |extra: &[&str]| from_file_and_flags("stations", toml, extra);
        assert_eq!(parse(&[]).expect("valid").stations, ["news=/srv/news.webm"]);
        let config = parse(&["--station", "a=/x.webm", "--station", "b=/y.ogg"]).expect("valid");
        assert_eq!(config.stations, ["a=/x.webm", "b=/y.ogg"]);
        assert!(parse(&["--station", "a=/x.webm", "--station", "A=/y.ogg"]).is_err());
        assert!(parse(&["--station", "no file"]).is_err());
    }

    #[test]
    fn presenter_and_audio_limits_come_from_file_and_flags() {
        let toml = "max_presenters = 3\naudio_top_n = 4\n";
        let parse = |extra: &[&str]| from_file_and_flags("limits", toml, extra);
        let config = parse(&[]).expect("valid");
        assert_eq!((config.max_presenters, config.audio_top_n), (3, 4));
        let config = parse(&["--max-presenters", "2", "--audio-top-n", "6"]).expect("valid");
        assert_eq!((config.max_presenters, config.audio_top_n), (2, 6));
        assert!(parse(&["--max-presenters", "0"]).is_err());
        assert!(parse(&["--audio-top-n", "0"]).is_err());
        let defaults = Config::default();
        assert_eq!((defaults.max_presenters, defaults.audio_top_n), (1, 8));
    }

    #[test]
    fn allowed_origins_and_udp_bind_come_from_file_and_flags() {
        let toml =
            "allowed_origins = [\"https://meet.example.org\"]\nlisten = \"127.0.0.1:8443\"\n";
        let parse = |extra: &[&str]| from_file_and_flags("origins", toml, extra);
        let config = parse(&[]).expect("valid");
        assert_eq!(config.allowed_origins, ["https://meet.example.org"]);
        assert_eq!(config.media_bind_ip(), IpAddr::from([127, 0, 0, 1]));
        let config = parse(&[
            "--allowed-origin",
            "https://a.example",
            "--allowed-origin",
            "http://b.example:8080",
            "--udp-bind",
            "0.0.0.0",
        ])
        .expect("valid");
        assert_eq!(config.allowed_origins.len(), 2);
        assert_eq!(config.media_bind_ip(), IpAddr::from([0, 0, 0, 0]));
        let err = parse(&["--allowed-origin", "meet.example.org"]).expect_err("no scheme");
        assert!(err.to_string().contains("--allowed-origin"), "{err}");
        assert_eq!(
            Config::default().media_bind_ip(),
            IpAddr::from([0, 0, 0, 0]),
            "listening everywhere binds media everywhere"
        );
    }

    #[test]
    fn every_flag_names_a_setting() {
        let settings = serde_json::to_value(Config::default()).expect("serializes");
        let command = ServeArgs::augment_args(clap::Command::new("serve"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let setting = id.strip_prefix("no_").unwrap_or(id);
            assert!(
                id == "config" || settings.get(setting).is_some(),
                "--{} sets no field of Config: name its ServeArgs field like the setting",
                arg.get_long().unwrap_or(id)
            );
        }
    }

    #[test]
    fn every_kind_of_flag_overrides_the_file() {
        let toml = "mdns = true\nhttp = true\nchat_rate = 3.0\npublic_ips = [\"10.0.0.1\"]\n\
             admin_password = \"file\"\n";
        let parse = |extra: &[&str]| from_file_and_flags("kinds", toml, extra).expect("valid");
        // Flags not given leave the file's settings alone (a switch not given does not
        // turn `http` off).
        let config = parse(&[]);
        assert!(config.mdns && config.http);
        assert_eq!(config.chat_rate, 3.0);
        assert_eq!(config.public_ips, [IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(config.admin_password, Some(Secret("file".into())));
        let config = parse(&[
            "--no-mdns",
            "--chat-rate",
            "0.5",
            "--public-ip",
            "10.0.0.2",
            "--public-ip",
            "10.0.0.3",
            "--admin-password",
            "flag",
            "--cert",
            "/c.pem",
            "--key",
            "/k.pem",
        ]);
        assert!(!config.mdns && config.http);
        assert_eq!(config.chat_rate, 0.5);
        assert_eq!(config.public_ips.len(), 2);
        assert_eq!(config.admin_password, Some(Secret("flag".into())));
        assert_eq!(
            (config.cert, config.key),
            (Some("/c.pem".into()), Some("/k.pem".into()))
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("lanmeet-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("lanmeet.toml");
        std::fs::write(&file, "udp_prot = 1\n").expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(Config::from_args(args).is_err());
    }

    #[test]
    fn rooms_come_from_the_file_and_ad_hoc_rooms_can_be_turned_off() {
        let dir = std::env::temp_dir().join(format!("lanmeet-config-rooms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("lanmeet.toml");
        std::fs::write(
            &file,
            "adhoc_rooms = false\n\n[[rooms]]\nname = \"Physics\"\npassword = \"learn\"\n\
             lobby = true\nmax_participants = 30\nscreen = false\nfiles = \"moderators\"\n\n\
             [[rooms]]\nname = \"Lab\"\n",
        )
        .expect("write");
        let config = Config::from_args(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .expect("valid");
        assert!(!config.adhoc_rooms);
        assert_eq!(config.rooms.len(), 2);
        let physics = &config.rooms[0];
        assert_eq!(physics.password, Some(Secret("learn".into())));
        assert!(physics.lobby && physics.video && !physics.screen);
        assert_eq!(
            (physics.max_participants, physics.files),
            (30, FileSharing::Moderators)
        );
        assert_eq!(
            config.rooms[1],
            RoomConfig {
                name: "Lab".into(),
                ..RoomConfig::default()
            }
        );
        std::fs::write(&file, "[[rooms]]\nname = \"\"\n").expect("write");
        let empty_name = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(Config::from_args(empty_name).is_err());
        let flag = ServeArgs {
            no_adhoc_rooms: true,
            ..Default::default()
        };
        assert!(!Config::from_args(flag).expect("valid").adhoc_rooms);
    }
}
