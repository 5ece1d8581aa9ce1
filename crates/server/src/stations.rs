//! Stations on the server side: the `--station NAME=FILE` definitions, each file read
//! and checked at start-up (a file that cannot be played stops the start with a message
//! naming it: never a half-working station), then started on a media worker. The media
//! side is `lanmeet_sfu::station` and docs/stations.md.
//!
//! Every station plays on the first worker, so a viewer can switch between any two
//! without a new connection (`Sfu::switch_station`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lanmeet_proto::{validate, ParticipantId, StationInfo};
use lanmeet_sfu::StationMedia;
use tracing::info;

use crate::media::WorkerCommand;
use crate::rooms::Registry;

/// One `--station NAME=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationSpec {
    /// Its name: letters, digits, `-` and `_` (it is part of `/stations/<name>`).
    pub name: String,
    /// The media file: WebM/Matroska (VP8 or VP9, Opus) or Ogg Opus.
    pub file: PathBuf,
}

impl StationSpec {
    /// Parses `NAME=FILE`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let Some((name, file)) = spec.split_once('=') else {
            return Err(format!("station {spec:?}: expected NAME=FILE"));
        };
        let name = validate::room_name(name)
            .map_err(|e| format!("station {spec:?}: {e}"))?
            .display;
        if file.trim().is_empty() {
            return Err(format!("station {name}: no file given"));
        }
        Ok(StationSpec {
            name,
            file: PathBuf::from(file),
        })
    }
}

/// A station playing on a worker.
#[derive(Debug, Clone)]
pub struct RunningStation {
    /// Its name.
    pub name: String,
    /// Its participant id in the SFU (never a participant's).
    pub id: ParticipantId,
    /// The worker it plays on.
    pub worker: usize,
    /// Its room in that worker's SFU: `station:<name>`, a name no meeting room can
    /// have (room names have no `:`).
    pub room: String,
    /// One pass through its file.
    pub duration: Duration,
    /// Whether it has video (else it is audio only, a "radio" station).
    pub video: bool,
    /// When its clock started (the worker starts it on receiving the command, within
    /// a millisecond as a rule).
    pub started: Instant,
    /// Its file's name, shown as what is playing.
    pub playing: String,
    /// A live station: a WHIP broadcaster plays on it instead of a file
    /// ([`crate::whip`]); `id` is then only a placeholder no peer ever has.
    pub live: bool,
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

/// The stations on air as signaling sees them: the list viewers get, and who watches
/// what (counted here, by the viewers' actors).
#[derive(Debug, Default)]
pub struct OnAir {
    stations: Vec<RunningStation>,
    viewers: Vec<AtomicU32>,
    /// The live stations' broadcasters, by station index: at most one each.
    broadcasts: Mutex<HashMap<usize, Broadcast>>,
}

impl OnAir {
    /// The directory of `stations`.
    pub fn new(stations: Vec<RunningStation>) -> Self {
        let viewers = stations.iter().map(|_| AtomicU32::new(0)).collect();
        OnAir {
            stations,
            viewers,
            broadcasts: Mutex::default(),
        }
    }

    fn broadcasts(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Broadcast>> {
        self.broadcasts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `id` the broadcaster of live station `index` under a new session id,
    /// returned with a receiver that completes when the broadcast ends. `None` when
    /// the station already has a broadcaster (or is not live).
    pub fn begin_broadcast(
        &self,
        index: usize,
        id: ParticipantId,
    ) -> Option<(String, tokio::sync::oneshot::Receiver<()>)> {
        if !self.stations.get(index).is_some_and(|s| s.live) {
            return None;
        }
        let mut broadcasts = self.broadcasts();
        if broadcasts.contains_key(&index) {
            return None;
        }
        let session = hex::encode(rand::random::<[u8; 16]>());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        broadcasts.insert(
            index,
            Broadcast {
                session: session.clone(),
                id,
                _stop: stop,
            },
        );
        Some((session, stopped))
    }

    /// Ends session `session` of live station `index`, if it is the current one:
    /// returns its broadcaster, who must now leave the SFU (exactly one caller gets
    /// it). The station is off air from now on.
    pub fn end_broadcast(&self, index: usize, session: &str) -> Option<ParticipantId> {
        let mut broadcasts = self.broadcasts();
        if broadcasts.get(&index).is_some_and(|b| b.session == session) {
            return broadcasts.remove(&index).map(|b| b.id);
        }
        None
    }

    /// Whether live station `index` has a broadcaster now.
    pub fn on_air(&self, index: usize) -> bool {
        self.broadcasts().contains_key(&index)
    }

    /// The station called `name` and its index.
    pub fn find(&self, name: &str) -> Option<(usize, &RunningStation)> {
        self.stations
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }

    /// Station `index`.
    pub fn get(&self, index: usize) -> Option<&RunningStation> {
        self.stations.get(index)
    }

    /// One more (`true`) or one fewer viewer of station `index`.
    pub fn count_viewer(&self, index: usize, more: bool) {
        if let Some(v) = self.viewers.get(index) {
            if more {
                v.fetch_add(1, Ordering::Relaxed);
            } else {
                let _ = v.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
    }

    /// The list at `now`.
    pub fn list(&self, now: Instant) -> Vec<StationInfo> {
        let broadcasts = self.broadcasts();
        self.stations
            .iter()
            .zip(&self.viewers)
            .enumerate()
            .map(|(index, (s, viewers))| {
                let elapsed = now.saturating_duration_since(s.started).as_millis() as u64;
                let duration_ms = s.duration.as_millis().max(1) as u64;
                let (position_ms, duration_ms) = if s.live {
                    (0, 0)
                } else {
                    (elapsed % duration_ms, duration_ms)
                };
                StationInfo {
                    name: s.name.clone(),
                    description: String::new(),
                    playing: s.playing.clone(),
                    position_ms,
                    duration_ms,
                    viewers: viewers.load(Ordering::Relaxed),
                    video: s.video,
                    live: s.live,
                    off_air: s.live && !broadcasts.contains_key(&index),
                }
            })
            .collect()
    }
}

/// The SFU room of station `name`.
pub fn room_of(name: &str) -> String {
    format!("station:{name}")
}

/// Reads every station's file and starts it on the first worker. Fails, naming the
/// station and file, if a file cannot be read or played as it is.
pub fn start(specs: &[StationSpec], registry: &Registry) -> anyhow::Result<Vec<RunningStation>> {
    let mut running = Vec::new();
    for spec in specs {
        let file = std::fs::File::open(&spec.file)
            .with_context(|| format!("station {}: opening {}", spec.name, spec.file.display()))?;
        let media = StationMedia::read(std::io::BufReader::new(file)).with_context(|| {
            format!(
                "station {}: {} cannot be played as it is (convert it with: ffmpeg -i {} -c:v libvpx -g 30 -b:v 1500k -c:a libopus {}.webm)",
                spec.name,
                spec.file.display(),
                spec.file.display(),
                spec.name
            )
        })?;
        let id = registry
            .reserve_id()
            .map_err(|e| anyhow::anyhow!("station {}: {e}", spec.name))?;
        let worker = 0;
        let room = room_of(&spec.name);
        let station = RunningStation {
            name: spec.name.clone(),
            id,
            worker,
            room: room.clone(),
            duration: media.duration,
            video: media.has_video(),
            started: Instant::now(),
            playing: spec
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            live: false,
        };
        let handle = registry
            .workers()
            .get(worker)
            .context("no media worker for the stations")?;
        handle
            .try_send(WorkerCommand::StartStation {
                id,
                room,
                media: Arc::new(media),
            })
            .map_err(|e| anyhow::anyhow!("station {}: {e}", spec.name))?;
        info!(station = %station.name, %id, duration = ?station.duration, video = station.video, "station on air");
        running.push(station);
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_named() {
        let s = StationSpec::parse("news=/srv/news.webm").expect("valid");
        assert_eq!(s.name, "news");
        assert_eq!(s.file, PathBuf::from("/srv/news.webm"));
        assert!(StationSpec::parse("news")
            .expect_err("refused")
            .contains("NAME=FILE"));
        assert!(StationSpec::parse("a b=/x").is_err());
        assert!(StationSpec::parse("=x").is_err());
        assert!(StationSpec::parse("news=")
            .expect_err("refused")
            .contains("no file"));
    }
}
