//! Stations on the server side: the `--station NAME=FILE` definitions, each file read
//! and checked at start-up (a file that cannot be played stops the start with a message
//! naming it: never a half-working station), then started on a media worker. The media
//! side is `lanmeet_sfu::station` and docs/stations.md.
//!
//! Every station plays on the first worker, so a viewer can switch between any two
//! without a new connection (`Sfu::switch_station`).
//!
//! - [`directory`]: every station, `--station`, `--live-station` and the admin's
//!   (SQLite), on air or off; live stations' broadcasters.
//! - [`convert`]: ffmpeg conversion of uploads that cannot be played as they are.

pub mod convert;
pub mod directory;

pub use directory::{Station, StationDirectory};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use lanmeet_proto::{validate, ParticipantId};
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
    /// ([`crate::whip`]); `id` is then only a placeholder no peer ever has, `duration`
    /// zero and `playing` empty.
    pub live: bool,
}

/// The data directory's folder of media files the admin can make stations of.
pub const MEDIA_FOLDER: &str = "media";

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
