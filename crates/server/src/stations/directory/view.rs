//! The admin's view of the directory.

use std::sync::atomic::Ordering;
use std::time::Instant;

use lanmeet_proto::StationInfo;
use serde::Serialize;

use super::{lock, Origin, Play, StationDirectory, NO_BROADCASTER};

/// A station as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StationView {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// `config`, `upload`, `file` or `live`.
    pub source: &'static str,
    /// The media file's name (none for live stations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `on_air`, `off_air`, `converting` or `failed`.
    pub state: &'static str,
    /// Why it is off air, or why its conversion failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Conversion progress in thousandths, while converting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// Where it plays, while on air.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playing: Option<StationInfo>,
    /// Viewers now.
    pub viewers: u32,
    /// A live station's WHIP bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether the admin may edit, move and delete it (not a `--station` one).
    pub editable: bool,
}

impl StationDirectory {
    /// Every station and conversion, for the admin, at `now`.
    pub fn admin_list(&self, now: Instant) -> Vec<StationView> {
        let mut views: Vec<StationView> = self
            .read()
            .iter()
            .map(|s| {
                let (source, file) = match &s.origin {
                    Origin::Config { file } => {
                        ("config", Some(file.to_string_lossy().into_owned()))
                    }
                    Origin::Stored { file_name, .. } => ("upload", Some(file_name.clone())),
                    Origin::DataFile { file_name } => ("file", Some(file_name.clone())),
                    Origin::Live | Origin::ConfigLive => ("live", None),
                };
                let play = lock(&s.play).clone();
                let (state, reason, playing) = match play {
                    Play::OnAir { running, .. } if running.live && !s.has_broadcaster() => (
                        "off_air",
                        Some(NO_BROADCASTER.to_string()),
                        Some(s.info(&running, now)),
                    ),
                    Play::OnAir { running, .. } => ("on_air", None, Some(s.info(&running, now))),
                    Play::OffAir { reason, .. } => ("off_air", Some(reason), None),
                };
                StationView {
                    name: s.name.clone(),
                    description: s.description(),
                    source,
                    file,
                    state,
                    reason,
                    progress: None,
                    playing,
                    viewers: s.viewers(),
                    token: lock(&s.token).clone(),
                    editable: !s.origin.is_configured(),
                }
            })
            .collect();
        for c in lock(&self.conversions).iter() {
            let failed = lock(&c.failed).clone();
            views.push(StationView {
                name: c.name.clone(),
                description: c.description.clone(),
                source: "upload",
                file: Some(c.file_name.clone()),
                state: if failed.is_some() {
                    "failed"
                } else {
                    "converting"
                },
                reason: failed,
                progress: Some(c.progress.load(Ordering::Relaxed)),
                playing: None,
                viewers: 0,
                token: None,
                editable: true,
            });
        }
        views
    }
}
