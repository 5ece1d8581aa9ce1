//! Stations from uploads: checked at once, played as they are or converted by ffmpeg
//! in the background, stored and recorded only once playable.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use lanmeet_sfu::StationMedia;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{description, lock, read_media, station_name, Origin, Play, Refused, StationDirectory};
use crate::files::Incoming;
use crate::stations::convert;

/// A conversion in progress (or failed, until the admin dismisses it).
#[derive(Debug)]
pub struct Conversion {
    /// The station it will become.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// Thousandths done.
    pub progress: AtomicU32,
    /// Why it failed, once it has.
    pub failed: Mutex<Option<String>>,
}

/// How an upload became a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It played as it is and is on air.
    OnAir,
    /// It is being converted in the background.
    Converting,
}

impl StationDirectory {
    /// Creates station `name` from an upload: played as it is when it can be, else
    /// probed at once (a file ffmpeg cannot read is refused now) and converted in the
    /// background. Nothing is stored or recorded for a refused file.
    pub async fn create_uploaded(
        self: &Arc<Self>,
        name: &str,
        description_text: &str,
        file_name: &str,
        incoming: Incoming,
    ) -> Result<Created, Refused> {
        let name = station_name(name)?;
        let description = description(description_text)?;
        let file_name = file_name.to_string();
        let path = incoming.path().to_path_buf();
        let tools = lock(&self.tools).clone();
        let checked = tokio::task::spawn_blocking(move || match read_media(&path) {
            Ok(media) => Ok(Ok(media)),
            Err(_) => convert::probe(&tools, &path, "The file").map(Err),
        })
        .await
        .map_err(|e| Refused::internal("checking an upload", e))?;
        let checked = checked.map_err(|e| {
            let mut refused = Refused::from(e);
            refused.message = refused.message.replace("The file", &file_name);
            refused
        })?;
        let _change = self.changes.lock().await;
        self.check_free(&name)?;
        match checked {
            Ok(media) => {
                self.store_and_start(name, description, file_name, incoming, media)?;
                Ok(Created::OnAir)
            }
            Err(probe) => {
                let conversion = Arc::new(Conversion {
                    name,
                    description,
                    file_name,
                    progress: AtomicU32::new(0),
                    failed: Mutex::new(None),
                });
                lock(&self.conversions).push(conversion.clone());
                let directory = self.clone();
                let tools = lock(&self.tools).clone();
                tokio::spawn(async move {
                    directory.convert(tools, conversion, incoming, probe).await;
                });
                Ok(Created::Converting)
            }
        }
    }

    /// Stores checked bytes, records the station and starts it.
    fn store_and_start(
        &self,
        name: String,
        description: String,
        file_name: String,
        incoming: Incoming,
        media: StationMedia,
    ) -> Result<(), Refused> {
        let (sha256, size) = (incoming.sha256().to_string(), incoming.size());
        incoming.store()?;
        let origin = Origin::Stored {
            sha256: sha256.clone(),
            size,
            file_name: file_name.clone(),
        };
        let started = self
            .launch(&name, media, file_name)
            .map_err(|e| Refused::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))
            .and_then(|running| {
                let play = Play::OnAir {
                    running,
                    ended: CancellationToken::new(),
                };
                self.add(name, description, origin, None, play)
            });
        if started.is_err() {
            if let Err(e) = self.files.release(&sha256, size) {
                warn!("releasing station media: {e:#}");
            }
        }
        started
    }

    /// Converts an upload in the background; on success the station goes on air, on
    /// failure the conversion stays listed as failed (nothing stored or recorded).
    async fn convert(
        self: Arc<Self>,
        tools: convert::Tools,
        conversion: Arc<Conversion>,
        incoming: Incoming,
        probe: convert::Probe,
    ) {
        let files = self.files.clone();
        let job = conversion.clone();
        let converted = tokio::task::spawn_blocking(move || {
            let out = files.temp_path();
            let result = convert::convert(
                &tools,
                incoming.path(),
                &out,
                &probe,
                &job.file_name,
                &job.progress,
            )
            .map_err(Refused::from)
            .and_then(|()| {
                drop(incoming);
                read_media(&out).map_err(|e| {
                    Refused::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "conversion_failed",
                        format!("The converted {} cannot be played: {e}", job.file_name),
                    )
                })
            })
            .and_then(|media| Ok((files.adopt(out.clone())?, media)));
            if result.is_err() {
                let _ = std::fs::remove_file(&out);
            }
            result
        })
        .await
        .unwrap_or_else(|e| Err(Refused::internal("converting", e)));
        let done = match converted {
            Ok((incoming, media)) => {
                let _change = self.changes.lock().await;
                lock(&self.conversions).retain(|c| !Arc::ptr_eq(c, &conversion));
                self.store_and_start(
                    conversion.name.clone(),
                    conversion.description.clone(),
                    conversion.file_name.clone(),
                    incoming,
                    media,
                )
            }
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            warn!(
                station = conversion.name,
                "conversion failed: {}", e.message
            );
            *lock(&conversion.failed) = Some(e.message);
            let mut list = lock(&self.conversions);
            if !list.iter().any(|c| Arc::ptr_eq(c, &conversion)) {
                list.push(conversion);
            }
        } else {
            info!(station = conversion.name, "converted");
        }
    }
}
