//! The station directory: every station the server knows, in the admin's order, each
//! on air (playing on a worker) or off air with a reason. Stations come from
//! `--station` and `--live-station` (fixed for the server's run: shown, never edited or
//! deleted) and from the admin (SQLite records, `lanmeet_store::StationRecord`): added, described, moved and
//! deleted while the server runs, and back after a restart.
//!
//! Signaling reads it for viewers ([`StationDirectory::list`], [`StationDirectory::find`]);
//! the admin API changes it; the WHIP ingest asks it for a live station's token
//! ([`StationDirectory::live_token`]). A viewer holds the station's [`Station::on_air`]
//! token and hears through it when its station is deleted or goes off air.
//!
//! A live station (`--live-station` or the admin's) is always listed for viewers, who
//! may watch it before anyone broadcasts: its room is ready, `off_air` says whether a
//! broadcaster feeds it ([`Station::begin_broadcast`]). Deleting it ends the broadcast.
//!
//! Submodules: `upload` (uploads checked, converted, stored), `view` (the admin's
//! listing), `refused` (refusals and their HTTP status).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

mod refused;
mod upload;
mod view;

use base64::Engine;
use lanmeet_proto::{validate, ParticipantId, StationInfo};
use lanmeet_sfu::StationMedia;
use lanmeet_store::{StationRecord, StationSource, Store};
pub use refused::Refused;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
pub use upload::{Conversion, Created};
pub use view::StationView;

use super::convert;
use super::{room_of, RunningStation, StationSpec};
use crate::files::Files;
use crate::media::WorkerCommand;
use crate::rooms::Registry;

/// How often the files of stations are checked for having gone from the disk.
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Where a station's media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--station NAME=FILE`: fixed while the server runs.
    Config {
        /// The file.
        file: PathBuf,
    },
    /// An upload, stored as `files/<sha256>`.
    Stored {
        /// SHA-256 of the bytes, hex.
        sha256: String,
        /// Their size.
        size: u64,
        /// The name it was uploaded as.
        file_name: String,
    },
    /// A file in the data directory's `media/` folder.
    DataFile {
        /// Its name there.
        file_name: String,
    },
    /// Fed over WHIP by whoever holds its token (kept in the database).
    Live,
    /// `--live-station NAME`: fed over WHIP, its token kept in the data directory
    /// ([`crate::whip::LiveTokens`]); fixed while the server runs.
    ConfigLive,
}

impl Origin {
    /// Whether a broadcaster feeds it over WHIP.
    pub fn is_live(&self) -> bool {
        matches!(self, Origin::Live | Origin::ConfigLive)
    }

    /// Whether it comes from the configuration (never edited by the admin).
    pub fn is_configured(&self) -> bool {
        matches!(self, Origin::Config { .. } | Origin::ConfigLive)
    }
}

/// The broadcaster of a live station now.
#[derive(Debug)]
struct Broadcast {
    /// Its WHIP session's id (the last part of its resource URL).
    session: String,
    /// Its participant id in the SFU.
    id: ParticipantId,
    /// Dropped when the broadcast ends: its session task stops.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The reason a live station without a broadcaster gives the admin.
const NO_BROADCASTER: &str = "No broadcaster is sending to this live station.";

/// Whether a station plays.
#[derive(Debug, Clone)]
enum Play {
    /// Playing on a worker; `ended` is cancelled when it stops.
    OnAir {
        running: RunningStation,
        ended: CancellationToken,
    },
    /// Not playing, for `reason`; `missing`: because its file is gone (it comes back on
    /// air when the file does).
    OffAir { reason: String, missing: bool },
}

/// One station in the directory.
#[derive(Debug)]
pub struct Station {
    /// Its name (as in `/stations/<name>`).
    pub name: String,
    /// Where its media comes from.
    pub origin: Origin,
    description: Mutex<String>,
    token: Mutex<Option<String>>,
    play: Mutex<Play>,
    viewers: AtomicU32,
    broadcast: Mutex<Option<Broadcast>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a plain assignment: a panic cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Station {
    fn new(name: String, origin: Origin, description: String, play: Play) -> Self {
        Station {
            name,
            origin,
            description: Mutex::new(description),
            token: Mutex::new(None),
            play: Mutex::new(play),
            viewers: AtomicU32::new(0),
            broadcast: Mutex::new(None),
        }
    }

    /// What the admin wrote about it.
    pub fn description(&self) -> String {
        lock(&self.description).clone()
    }

    /// Where it plays and the token cancelled when it stops, while on air.
    pub fn on_air(&self) -> Option<(RunningStation, CancellationToken)> {
        match &*lock(&self.play) {
            Play::OnAir { running, ended } => Some((running.clone(), ended.clone())),
            Play::OffAir { .. } => None,
        }
    }

    /// One more (`true`) or one fewer viewer.
    pub fn count_viewer(&self, more: bool) {
        if more {
            self.viewers.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .viewers
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Viewers now.
    pub fn viewers(&self) -> u32 {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Makes `id` the broadcaster of this live station under a new session id,
    /// returned with a receiver that completes when the broadcast ends. `None` when it
    /// already has a broadcaster, is not live, or is gone from the directory.
    pub fn begin_broadcast(
        &self,
        id: ParticipantId,
    ) -> Option<(String, tokio::sync::oneshot::Receiver<()>)> {
        if !self.origin.is_live() || self.on_air().is_none() {
            return None;
        }
        let mut broadcast = lock(&self.broadcast);
        if broadcast.is_some() {
            return None;
        }
        let session = hex::encode(rand::random::<[u8; 16]>());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        *broadcast = Some(Broadcast {
            session: session.clone(),
            id,
            _stop: stop,
        });
        Some((session, stopped))
    }

    /// Ends broadcast `session` if it is the current one: returns its broadcaster, who
    /// must now leave the SFU (exactly one caller gets it). Off air from now on.
    pub fn end_broadcast(&self, session: &str) -> Option<ParticipantId> {
        let mut broadcast = lock(&self.broadcast);
        if broadcast.as_ref().is_some_and(|b| b.session == session) {
            return broadcast.take().map(|b| b.id);
        }
        None
    }

    /// Whether broadcast `session` is the current one.
    pub fn is_broadcasting(&self, session: &str) -> bool {
        lock(&self.broadcast)
            .as_ref()
            .is_some_and(|b| b.session == session)
    }

    /// Whether a broadcaster feeds this (live) station now.
    pub fn has_broadcaster(&self) -> bool {
        lock(&self.broadcast).is_some()
    }

    fn info(&self, running: &RunningStation, now: Instant) -> StationInfo {
        let elapsed = now.saturating_duration_since(running.started).as_millis() as u64;
        let duration_ms = running.duration.as_millis().max(1) as u64;
        let (position_ms, duration_ms) = if running.live {
            (0, 0)
        } else {
            (elapsed % duration_ms, duration_ms)
        };
        StationInfo {
            name: self.name.clone(),
            description: self.description(),
            playing: running.playing.clone(),
            position_ms,
            duration_ms,
            viewers: self.viewers(),
            video: running.video,
            live: running.live,
            off_air: running.live && !self.has_broadcaster(),
        }
    }
}

/// What a new station plays, besides an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSource {
    /// A file in the data directory's `media/` folder.
    DataFile(String),
    /// Live over WHIP.
    Live,
}

/// The station directory.
pub struct StationDirectory {
    registry: Arc<Registry>,
    store: Arc<Store>,
    files: Arc<Files>,
    media_dir: PathBuf,
    stations: RwLock<Vec<Arc<Station>>>,
    conversions: Mutex<Vec<Arc<Conversion>>>,
    tools: Mutex<convert::Tools>,
    /// One change at a time (create, move, delete), so that names and order stay
    /// consistent between the list and the database.
    changes: tokio::sync::Mutex<()>,
}

/// Reads and checks a station's file (blocking).
fn read_media(path: &Path) -> Result<StationMedia, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    StationMedia::read(std::io::BufReader::new(file)).map_err(|e| e.to_string())
}

/// A new live station's bearer token: 32 random bytes, base64url.
pub fn new_live_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_ms() -> u64 {
    crate::chat::now_ms()
}

/// A name a station may have: a room name's rules (it is part of `/stations/<name>`).
fn station_name(name: &str) -> Result<String, Refused> {
    validate::room_name(name)
        .map(|n| n.display)
        .map_err(|e| Refused::new(StatusCode::BAD_REQUEST, "bad_name", e))
}

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

fn description(text: &str) -> Result<String, Refused> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control) {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_description",
            format!("A description is at most {MAX_DESCRIPTION_CHARS} characters, on one line."),
        ));
    }
    Ok(text.to_string())
}

impl StationDirectory {
    /// The directory: the `--station` stations (already on air, `running[i]` playing
    /// `specs[i]`), the `--live-station` ones (with their `live` tokens), then the
    /// admin's from the database, each read and started now; one whose file is gone or
    /// unplayable is listed off air with the reason.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<Store>,
        files: Arc<Files>,
        media_dir: PathBuf,
        specs: &[StationSpec],
        running: Vec<RunningStation>,
        live: &crate::whip::LiveTokens,
    ) -> anyhow::Result<Self> {
        let mut stations: Vec<Arc<Station>> = specs
            .iter()
            .zip(running)
            .map(|(spec, running)| {
                Arc::new(Station::new(
                    spec.name.clone(),
                    Origin::Config {
                        file: spec.file.clone(),
                    },
                    String::new(),
                    Play::OnAir {
                        running,
                        ended: CancellationToken::new(),
                    },
                ))
            })
            .collect();
        let directory = StationDirectory {
            registry,
            store,
            files,
            media_dir,
            stations: RwLock::new(Vec::new()),
            conversions: Mutex::new(Vec::new()),
            tools: Mutex::new(convert::Tools::default()),
            changes: tokio::sync::Mutex::new(()),
        };
        for (name, token) in live.all() {
            let running = directory
                .live_room(name)
                .map_err(|e| anyhow::anyhow!("live station {name}: {e}"))?;
            info!(station = %name, %token, "live station: broadcast to POST /whip/{name} with this bearer token");
            let station = Station::new(
                name.clone(),
                Origin::ConfigLive,
                String::new(),
                Play::OnAir {
                    running,
                    ended: CancellationToken::new(),
                },
            );
            *lock(&station.token) = Some(token.clone());
            stations.push(Arc::new(station));
        }
        for record in directory.store.stations()? {
            let (origin, token) = match record.source {
                StationSource::Stored {
                    sha256,
                    size,
                    file_name,
                } => (
                    Origin::Stored {
                        sha256,
                        size,
                        file_name,
                    },
                    None,
                ),
                StationSource::DataFile { file_name } => (Origin::DataFile { file_name }, None),
                StationSource::Live { token } => (Origin::Live, Some(token)),
            };
            let play = if stations.iter().any(|s| s.name == record.name) {
                Play::OffAir {
                    reason: "A station given by --station or --live-station has the same name."
                        .into(),
                    missing: false,
                }
            } else {
                directory.play(&record.name, &origin)
            };
            let station = Station::new(record.name, origin, record.description, play);
            *lock(&station.token) = token;
            stations.push(Arc::new(station));
        }
        *directory.write() = stations;
        Ok(directory)
    }

    /// Uses these ffmpeg and ffprobe programs from now on (tests point them at a
    /// missing program to see the refusal without ffmpeg).
    pub fn use_tools(&self, tools: convert::Tools) {
        *lock(&self.tools) = tools;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Station>>> {
        self.stations.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Station>>> {
        self.stations.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The file a station plays, if it plays one.
    fn file_of(&self, origin: &Origin) -> Option<PathBuf> {
        match origin {
            Origin::Config { file } => Some(file.clone()),
            Origin::Stored { sha256, .. } => Some(self.files.stored_path(sha256)),
            Origin::DataFile { file_name } => Some(self.media_dir.join(file_name)),
            Origin::Live | Origin::ConfigLive => None,
        }
    }

    /// What the file a station plays is called.
    fn playing_name(origin: &Origin) -> String {
        match origin {
            Origin::Config { file } => file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Origin::Stored { file_name, .. } | Origin::DataFile { file_name } => file_name.clone(),
            Origin::Live | Origin::ConfigLive => String::new(),
        }
    }

    /// Reads station `name`'s file and starts it (blocking): on air, or off air with
    /// the reason. A live station gets its room, ready for viewers and a broadcaster.
    fn play(&self, name: &str, origin: &Origin) -> Play {
        let Some(path) = self.file_of(origin) else {
            return match self.live_room(name) {
                Ok(running) => Play::OnAir {
                    running,
                    ended: CancellationToken::new(),
                },
                Err(reason) => Play::OffAir {
                    reason,
                    missing: false,
                },
            };
        };
        if !path.exists() {
            return Play::OffAir {
                reason: format!("Its file is gone from the disk ({}).", path.display()),
                missing: true,
            };
        }
        let started = read_media(&path)
            .map_err(|e| format!("Its file cannot be played: {e}"))
            .and_then(|media| self.launch(name, media, Self::playing_name(origin)));
        match started {
            Ok(running) => Play::OnAir {
                running,
                ended: CancellationToken::new(),
            },
            Err(reason) => {
                warn!(station = name, "off air: {reason}");
                Play::OffAir {
                    reason,
                    missing: false,
                }
            }
        }
    }

    /// Live station `name`'s room on the first worker, with a placeholder id from the
    /// registry (so a viewer switching to it is never mistaken for a switch between
    /// file stations). Its broadcaster joins the room when one comes.
    fn live_room(&self, name: &str) -> Result<RunningStation, String> {
        let id = self.registry.reserve_id().map_err(|e| e.message)?;
        Ok(RunningStation {
            name: name.to_string(),
            id,
            worker: 0,
            room: room_of(name),
            duration: Duration::ZERO,
            video: true,
            started: Instant::now(),
            playing: String::new(),
            live: true,
        })
    }

    /// Starts `media` as station `name` on the first worker.
    fn launch(
        &self,
        name: &str,
        media: StationMedia,
        playing: String,
    ) -> Result<RunningStation, String> {
        let id = self.registry.reserve_id().map_err(|e| e.message)?;
        let worker = 0;
        let handle = self
            .registry
            .workers()
            .get(worker)
            .ok_or("There is no media worker.")?;
        let running = RunningStation {
            name: name.to_string(),
            id,
            worker,
            room: room_of(name),
            duration: media.duration,
            video: media.has_video(),
            started: Instant::now(),
            playing,
            live: false,
        };
        handle
            .try_send(WorkerCommand::StartStation {
                id,
                room: running.room.clone(),
                media: Arc::new(media),
            })
            .map_err(|e| e.to_string())?;
        info!(station = name, %id, duration = ?running.duration, "station on air");
        Ok(running)
    }

    /// Takes `station` off air: its worker stops it (a live station's broadcaster
    /// leaves) and its viewers are told.
    fn stop(&self, station: &Station, reason: String, missing: bool) {
        let old = std::mem::replace(&mut *lock(&station.play), Play::OffAir { reason, missing });
        let broadcast = lock(&station.broadcast).take();
        if let Play::OnAir { running, ended } = old {
            if let Some(handle) = self.registry.workers().get(running.worker) {
                if let Some(b) = broadcast {
                    info!(station = station.name, id = %b.id, "broadcast ended: station removed");
                    handle.leave(b.id);
                }
                if !running.live {
                    let _ = handle.try_send(WorkerCommand::StopStation { id: running.id });
                }
            }
            ended.cancel();
        }
    }

    /// The stations on air, for viewers, at `now` (live ones too, without a
    /// broadcaster: `off_air`).
    pub fn list(&self, now: Instant) -> Vec<StationInfo> {
        self.read()
            .iter()
            .filter_map(|s| s.on_air().map(|(running, _)| s.info(&running, now)))
            .collect()
    }

    /// The station called `name`, on air or not.
    pub fn find(&self, name: &str) -> Option<Arc<Station>> {
        self.read().iter().find(|s| s.name == name).cloned()
    }

    /// The bearer token of live station `name`, if there is such a live station. The
    /// WHIP ingest compares it (in constant time) with the one a broadcaster sends.
    pub fn live_token(&self, name: &str) -> Option<String> {
        self.find(name)
            .filter(|s| s.origin.is_live())
            .and_then(|s| lock(&s.token).clone())
    }

    /// Every live station's name and bearer token, in the directory's order.
    pub fn live_stations(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .filter(|s| s.origin.is_live())
            .filter_map(|s| Some((s.name.clone(), lock(&s.token).clone()?)))
            .collect()
    }

    /// The files in the data directory's `media/` folder, by name.
    pub fn media_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.media_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Refuses a new station's name or description before its upload is received
    /// (checked again when it is created: another may take the name meanwhile).
    pub fn check_new(&self, name: &str, text: &str) -> Result<(), Refused> {
        description(text)?;
        self.check_free(&station_name(name)?)
    }

    /// Refuses `name` if a station or conversion has it.
    fn check_free(&self, name: &str) -> Result<(), Refused> {
        let key = validate::room_name(name).map(|n| n.key).unwrap_or_default();
        let same = |other: &str| validate::room_name(other).is_ok_and(|n| n.key == key);
        let taken = self.read().iter().any(|s| same(&s.name))
            || lock(&self.conversions).iter().any(|c| same(&c.name));
        if taken {
            return Err(Refused::new(
                StatusCode::CONFLICT,
                "name_taken",
                format!("There is already a station called {name:?}."),
            ));
        }
        Ok(())
    }

    /// The next free position at the end of the list.
    fn next_position(&self) -> Result<i64, Refused> {
        let records = self
            .store
            .stations()
            .map_err(|e| Refused::internal("reading stations", e))?;
        Ok(records.iter().map(|r| r.position + 1).max().unwrap_or(0))
    }

    /// Records a new station and adds it to the list, playing `play`.
    fn add(
        &self,
        name: String,
        description: String,
        origin: Origin,
        token: Option<String>,
        play: Play,
    ) -> Result<(), Refused> {
        let source = match &origin {
            Origin::Stored {
                sha256,
                size,
                file_name,
            } => StationSource::Stored {
                sha256: sha256.clone(),
                size: *size,
                file_name: file_name.clone(),
            },
            Origin::DataFile { file_name } => StationSource::DataFile {
                file_name: file_name.clone(),
            },
            Origin::Live => StationSource::Live {
                token: token.clone().unwrap_or_default(),
            },
            Origin::Config { .. } | Origin::ConfigLive => {
                return Err(Refused::internal("adding a station", "configured origin"))
            }
        };
        let record = StationRecord {
            name: name.clone(),
            description: description.clone(),
            position: self.next_position()?,
            source,
            created_ms: now_ms(),
        };
        if let Err(e) = self.store.add_station(&record) {
            if let Play::OnAir { running, .. } = &play {
                if let Some(h) = self.registry.workers().get(running.worker) {
                    let _ = h.try_send(WorkerCommand::StopStation { id: running.id });
                }
            }
            return Err(Refused::internal("recording a station", e));
        }
        let station = Station::new(name, origin, description, play);
        *lock(&station.token) = token;
        self.write().push(Arc::new(station));
        Ok(())
    }

    /// Creates station `name` playing a file in `media/`, or a live one.
    pub async fn create(
        self: &Arc<Self>,
        name: &str,
        description_text: &str,
        source: NewSource,
    ) -> Result<(), Refused> {
        let name = station_name(name)?;
        let description = description(description_text)?;
        let _change = self.changes.lock().await;
        self.check_free(&name)?;
        match source {
            NewSource::Live => {
                let token = Some(new_live_token());
                let running = self
                    .live_room(&name)
                    .map_err(|e| Refused::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
                let play = Play::OnAir {
                    running,
                    ended: CancellationToken::new(),
                };
                self.add(name, description, Origin::Live, token, play)
            }
            NewSource::DataFile(file_name) => {
                let plain = !file_name.is_empty()
                    && !file_name.starts_with('.')
                    && !file_name.contains(['/', '\\', '\0']);
                if !plain || !self.media_dir.join(&file_name).is_file() {
                    return Err(Refused::new(
                        StatusCode::BAD_REQUEST,
                        "no_such_file",
                        format!(
                            "There is no file {file_name:?} in the data directory's media folder ({}).",
                            self.media_dir.display()
                        ),
                    ));
                }
                let path = self.media_dir.join(&file_name);
                let read = tokio::task::spawn_blocking(move || read_media(&path))
                    .await
                    .map_err(|e| Refused::internal("reading a station file", e))?;
                let media = read.map_err(|e| {
                    Refused::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unplayable",
                        format!(
                            "{file_name} cannot be played as it is: {e}. Convert it with: {}",
                            convert::command_for(&file_name)
                        ),
                    )
                })?;
                let running = self
                    .launch(&name, media, file_name.clone())
                    .map_err(|e| Refused::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
                let play = Play::OnAir {
                    running,
                    ended: CancellationToken::new(),
                };
                self.add(
                    name,
                    description,
                    Origin::DataFile { file_name },
                    None,
                    play,
                )
            }
        }
    }

    /// The station `name` if the admin may change it.
    fn editable(&self, name: &str) -> Result<Arc<Station>, Refused> {
        let station = self.find(name).ok_or_else(|| Refused::not_found(name))?;
        if station.origin.is_configured() {
            return Err(Refused::new(
                StatusCode::CONFLICT,
                "configured",
                format!("Station {name} is defined by --station or --live-station (or the configuration file); change it there."),
            ));
        }
        Ok(station)
    }

    /// Sets station `name`'s description.
    pub fn set_description(&self, name: &str, text: &str) -> Result<(), Refused> {
        let text = description(text)?;
        let station = self.editable(name)?;
        match self.store.set_station_description(name, &text) {
            Ok(true) => {}
            Ok(false) => return Err(Refused::not_found(name)),
            Err(e) => return Err(Refused::internal("describing a station", e)),
        }
        *lock(&station.description) = text;
        Ok(())
    }

    /// A new bearer token for live station `name`; returns it.
    pub fn regenerate_token(&self, name: &str) -> Result<String, Refused> {
        let station = self.editable(name)?;
        if station.origin != Origin::Live {
            return Err(Refused::new(
                StatusCode::CONFLICT,
                "not_live",
                format!("Station {name} is not a live station."),
            ));
        }
        let token = new_live_token();
        self.store
            .set_station_token(name, &token)
            .map_err(|e| Refused::internal("storing a token", e))?;
        *lock(&station.token) = Some(token.clone());
        Ok(token)
    }

    /// Moves station `name` one place up (`up`) or down among the admin's stations.
    pub async fn move_station(&self, name: &str, up: bool) -> Result<(), Refused> {
        self.editable(name)?;
        let _change = self.changes.lock().await;
        let mut list = self.write();
        let first = list
            .iter()
            .position(|s| !s.origin.is_configured())
            .unwrap_or(list.len());
        let Some(at) = list.iter().position(|s| s.name == name) else {
            return Err(Refused::not_found(name));
        };
        let to = if up { at.checked_sub(1) } else { Some(at + 1) };
        let Some(to) = to.filter(|t| *t >= first && *t < list.len()) else {
            return Ok(());
        };
        list.swap(at, to);
        let names: Vec<&str> = list[first..].iter().map(|s| s.name.as_str()).collect();
        if let Err(e) = self.store.order_stations(&names) {
            list.swap(at, to);
            return Err(Refused::internal("ordering stations", e));
        }
        Ok(())
    }

    /// Deletes station `name` (or dismisses its conversion): it stops, its viewers are
    /// told, its record goes and its stored bytes too when nothing else uses them.
    pub async fn delete(&self, name: &str) -> Result<(), Refused> {
        let _change = self.changes.lock().await;
        {
            let mut conversions = lock(&self.conversions);
            let before = conversions.len();
            conversions.retain(|c| c.name != name || lock(&c.failed).is_none());
            if conversions.len() < before {
                return Ok(());
            }
        }
        let station = self.editable(name)?;
        self.store
            .delete_station(name)
            .map_err(|e| Refused::internal("deleting a station", e))?;
        self.write().retain(|s| !Arc::ptr_eq(s, &station));
        self.stop(&station, "The station was removed.".into(), false);
        if let Origin::Stored { sha256, size, .. } = &station.origin {
            if let Err(e) = self.files.release(sha256, *size) {
                warn!("releasing station media: {e:#}");
            }
        }
        info!(station = name, "station deleted");
        Ok(())
    }

    /// Checks every station's file: one gone from the disk takes its station off air
    /// (its viewers are told); a station off air for a missing file comes back when
    /// the file does. Blocking (reads a returned file).
    pub fn check_files(&self) {
        let stations: Vec<Arc<Station>> = self.read().clone();
        for station in stations {
            let Some(path) = self.file_of(&station.origin) else {
                continue;
            };
            let play = lock(&station.play).clone();
            match play {
                Play::OnAir { .. } if !path.exists() => {
                    let reason = format!("Its file is gone from the disk ({}).", path.display());
                    warn!(station = station.name, "off air: {reason}");
                    self.stop(&station, reason, true);
                }
                Play::OffAir { missing: true, .. } if path.exists() => {
                    let play = self.play(&station.name, &station.origin);
                    *lock(&station.play) = play;
                }
                _ => {}
            }
        }
    }

    /// Runs [`StationDirectory::check_files`] every [`FILE_CHECK_INTERVAL`] until
    /// shutdown.
    pub async fn watch_files(self: Arc<Self>, lifecycle: crate::lifecycle::Lifecycle) {
        let mut tick = tokio::time::interval(FILE_CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = lifecycle.shutting_down() => return,
            }
            let directory = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || directory.check_files()).await {
                warn!("checking station files: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_tokens_are_32_random_bytes() {
        let (a, b) = (new_live_token(), new_live_token());
        assert_ne!(a, b);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a)
            .expect("base64url");
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn descriptions_are_one_line_and_bounded() {
        assert_eq!(description("  news at ten ").expect("fine"), "news at ten");
        assert!(description("a\nb").is_err());
        assert!(description(&"x".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
    }
}
