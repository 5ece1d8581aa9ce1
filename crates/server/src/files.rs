//! File sharing through the server: streaming uploads with SHA-256 computed on the way
//! to disk, access-checked downloads with HTTP Range, retention.
//!
//! Bytes stream into `tmp/` under a random name and are renamed to `files/<sha256>` only
//! when complete, so nothing partial is ever visible; a guard deletes the temporary file
//! when an upload fails, is refused, or its connection drops (the handler future is then
//! dropped mid-await). The file name the user gave is metadata only and never touches
//! the file system. Identical content is stored once.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{StreamExt, TryStreamExt};
use lanmeet_proto::{ParticipantId, ServerMessage, SharedFile};
use lanmeet_store::{FileRecord, NewFile, Person, Store};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::chat::{file_message, now_ms, shared_file, RateLimiter};
use crate::datadir::{is_stored_file_name, is_upload_temp_name, DataDir};
use crate::metrics::Counters;
use crate::rooms::{new_token, Registry, SessionInfo};

/// File limits.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest file in bytes.
    pub max_bytes: u64,
    /// Total bytes of stored files.
    pub quota_bytes: u64,
    /// How long files are kept.
    pub retention: Duration,
    /// Uploads one participant may have in progress at once.
    pub max_concurrent: usize,
    /// Uploads one participant may start in a burst.
    pub burst: u32,
    /// Sustained uploads per second per participant.
    pub rate: f64,
}

/// The file service.
pub struct Files {
    files_dir: PathBuf,
    tmp_dir: PathBuf,
    store: Arc<Store>,
    registry: Arc<Registry>,
    limits: FileLimits,
    /// Bytes counted against the quota: stored files plus uploads in progress. One
    /// counter, checked on every chunk, so concurrent uploads cannot overrun the quota
    /// together.
    used: AtomicU64,
    /// Per participant: uploads in progress and the upload rate limiter.
    uploaders: Mutex<HashMap<ParticipantId, Uploader>>,
    /// Bytes uploaded and downloaded, for metrics.
    counters: Arc<Counters>,
}

/// An HTTP error with a JSON body `{"error": code, "message": text}`; never leaks
/// internals (those go to the log).
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl HttpError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
        }
    }

    /// Its status, code and message.
    pub fn parts(self) -> (StatusCode, &'static str, String) {
        (self.status, self.code, self.message)
    }

    fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        warn!("{context}: {e}");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The server could not complete this; please try again.",
        )
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

/// Deletes a temporary file unless kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Returns reserved quota bytes when an upload ends without storing new bytes, however
/// it ends.
struct Reservation<'a> {
    counter: &'a AtomicU64,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A participant's uploads: how many are in progress, and its rate limiter.
struct Uploader {
    room: String,
    active: usize,
    limiter: RateLimiter,
}

/// Counts one upload in progress for its participant until dropped.
struct ActiveUpload<'a> {
    files: &'a Files,
    id: ParticipantId,
}

impl Drop for ActiveUpload<'_> {
    fn drop(&mut self) {
        let mut uploaders = self
            .files
            .uploaders
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(u) = uploaders.get_mut(&self.id) {
            u.active = u.active.saturating_sub(1);
        }
    }
}

/// Bytes received for a station, in a temporary file and counted against the quota,
/// not yet stored: dropped, the file is removed and the quota returned.
pub struct Incoming {
    files: Arc<Files>,
    temp: TempFile,
    reserved: u64,
    sha256: String,
    size: u64,
}

impl Incoming {
    /// The temporary file.
    pub fn path(&self) -> &std::path::Path {
        &self.temp.path
    }

    /// SHA-256 of the bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Their size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves the bytes to `files/<sha256>` (identical bytes already there are kept
    /// and counted once). The caller records them next; if that fails, it calls
    /// [`Files::release`].
    pub fn store(mut self) -> Result<PathBuf, HttpError> {
        let target = self.files.files_dir.join(&self.sha256);
        if !target.exists() {
            std::fs::rename(&self.temp.path, &target)
                .map_err(|e| write_error("storing station media", e))?;
            self.temp.keep = true;
            // New bytes on disk stay counted until released.
            self.reserved = 0;
        }
        Ok(target)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.files.used.fetch_sub(self.reserved, Ordering::SeqCst);
    }
}

/// The refusal of bytes over the storage quota.
fn quota_full() -> HttpError {
    HttpError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "quota",
        "The server's file storage is full; ask the host to free space.",
    )
}

/// Participants remembered by the upload limits before those who left are forgotten.
const UPLOADERS_KEPT: usize = 1024;

/// A refusal because the disk (or the database) is full: 507 with a message the host
/// can act on. Other write failures stay internal errors.
fn disk_full() -> HttpError {
    HttpError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "disk_full",
        "The server's disk is full; ask the host to free space.",
    )
}

/// Maps a failed write: a full disk or exhausted disk quota is the host's to fix and
/// says so; anything else is internal.
fn write_error(context: &str, e: std::io::Error) -> HttpError {
    use std::io::ErrorKind;
    if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        warn!("{context}: {e}");
        return disk_full();
    }
    HttpError::internal(context, e)
}

/// Maps a failed database write the same way.
fn store_error(context: &str, e: lanmeet_store::StoreError) -> HttpError {
    if e.is_full() {
        warn!("{context}: {e}");
        return disk_full();
    }
    HttpError::internal(context, e)
}

impl Files {
    /// The service over `data_dir`; creates its folders and removes leftovers of
    /// interrupted uploads. Only lanmeet's own names are ever removed: a file someone
    /// else put into `files/` or `tmp/` stays.
    pub fn new(
        data_dir: &DataDir,
        store: Arc<Store>,
        registry: Arc<Registry>,
        limits: FileLimits,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Self> {
        let files_dir = data_dir.folder("files")?;
        let tmp_dir = data_dir.folder("tmp")?;
        // The data directory is locked, so no other server's upload is in progress here.
        for entry in std::fs::read_dir(&tmp_dir).context("reading the upload folder")? {
            let entry = entry?;
            if is_upload_temp_name(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let stored = store.stored_bytes().context("reading storage use")?;
        let files = Files {
            files_dir,
            tmp_dir,
            store,
            registry,
            limits,
            used: AtomicU64::new(stored),
            uploaders: Mutex::new(HashMap::new()),
            counters,
        };
        files.remove_orphans()?;
        Ok(files)
    }

    /// Removes stored bytes that no record uses (left by a crash between rename and
    /// insert).
    fn remove_orphans(&self) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(&self.files_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_stored_file_name(&name) && !self.store.sha_in_use(&name)? {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Deletes files past their retention, records and bytes. Returns how many.
    pub fn expire(&self, now_ms: u64) -> anyhow::Result<usize> {
        let cutoff = now_ms.saturating_sub(self.limits.retention.as_millis() as u64);
        let old = self.store.files_older_than(cutoff)?;
        for f in &old {
            let still_used = self.store.delete_file(f.id)?;
            if !still_used {
                let _ = std::fs::remove_file(self.files_dir.join(&f.sha256));
                self.used.fetch_sub(f.size, Ordering::SeqCst);
            }
            info!(name = f.name, room = f.room, "file expired");
        }
        Ok(old.len())
    }

    fn session(&self, headers: &HeaderMap) -> Result<SessionInfo, HttpError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                HttpError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Join a room first.",
                )
            })?;
        self.registry.session(token.trim()).ok_or_else(|| {
            HttpError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This session has ended; rejoin the room.",
            )
        })
    }

    /// Bytes counted against the quota now: stored files and uploads in progress.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Admits one more upload of `session`'s participant, or refuses it (429) when it
    /// has too many in progress or started too many lately.
    fn admit(&self, session: &SessionInfo) -> Result<ActiveUpload<'_>, HttpError> {
        let now = Instant::now();
        let mut uploaders = self.uploaders.lock().unwrap_or_else(|e| e.into_inner());
        if uploaders.len() >= UPLOADERS_KEPT {
            uploaders.retain(|id, u| u.active > 0 || self.registry.name_of(&u.room, *id).is_some());
        }
        let limits = self.limits;
        let uploader = uploaders.entry(session.id).or_insert_with(|| Uploader {
            room: session.room.clone(),
            active: 0,
            limiter: RateLimiter::new(limits.burst, limits.rate, now),
        });
        if uploader.active >= limits.max_concurrent {
            return Err(HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                format!(
                    "At most {} uploads at a time; wait until one has finished.",
                    limits.max_concurrent
                ),
            ));
        }
        if !uploader.limiter.allow(now) {
            return Err(HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "You are sharing files too quickly; wait a moment.",
            ));
        }
        uploader.active += 1;
        Ok(ActiveUpload {
            files: self,
            id: session.id,
        })
    }

    /// Streams `body` into a new file at `path` (0600), hashing it on the way and
    /// counting each chunk against the quota in `reservation` (and the size limit, with
    /// `too_large`'s error). Returns the SHA-256 (hex) and size. The caller owns the file:
    /// its guard removes it when this fails.
    async fn receive_into(
        &self,
        path: &std::path::Path,
        body: Body,
        announced: Option<u64>,
        reservation: &mut Reservation<'_>,
        too_large: impl Fn() -> HttpError,
    ) -> Result<(String, u64), HttpError> {
        // Private to the server's user, like everything in the data directory.
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .await
            .map_err(|e| write_error("creating upload file", e))?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "interrupted",
                    format!("Upload interrupted: {e}"),
                )
            })?;
            let n = chunk.len() as u64;
            Counters::add(&self.counters.file_uploaded, n);
            size += n;
            if size > self.limits.max_bytes {
                return Err(too_large());
            }
            reservation.bytes += n;
            let used = self.used.fetch_add(n, Ordering::SeqCst) + n;
            if used > self.limits.quota_bytes {
                return Err(quota_full());
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| write_error("writing upload", e))?;
        }
        if announced.is_some_and(|n| n != size) {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "interrupted",
                "The upload ended early.",
            ));
        }
        out.sync_all()
            .await
            .map_err(|e| write_error("flushing upload", e))?;
        Ok((hex::encode(hasher.finalize()), size))
    }

    /// The largest file in bytes (shared files and stations' media alike).
    pub fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    /// The refusal of a file over [`Files::max_bytes`].
    pub fn too_large(&self) -> HttpError {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "The file is too large: at most {} MiB.",
                self.limits.max_bytes / (1024 * 1024)
            ),
        )
    }

    /// Receives `body` (`announced` bytes long, if said) into a temporary file for a
    /// station, under the same size limit and quota as shared files. Nothing is stored
    /// until [`Incoming::store`]; dropped, the file is removed and the quota returned.
    pub async fn receive(
        self: &Arc<Self>,
        body: Body,
        announced: Option<u64>,
    ) -> Result<Incoming, HttpError> {
        if announced.is_some_and(|n| n > self.limits.max_bytes) {
            return Err(self.too_large());
        }
        let mut reservation = Reservation {
            counter: &self.used,
            bytes: 0,
        };
        let temp = TempFile {
            path: self.tmp_dir.join(new_token()),
            keep: false,
        };
        let (sha256, size) = self
            .receive_into(&temp.path, body, announced, &mut reservation, || {
                self.too_large()
            })
            .await?;
        let reserved = std::mem::take(&mut reservation.bytes);
        Ok(Incoming {
            files: self.clone(),
            temp,
            reserved,
            sha256,
            size,
        })
    }

    /// A new temporary file's path (a converted station's output goes there before
    /// [`Files::adopt`]).
    pub fn temp_path(&self) -> PathBuf {
        self.tmp_dir.join(new_token())
    }

    /// Takes the file at `path` (made by the server in its temporary folder) as an
    /// incoming file: hashes it and counts it against the size limit and quota.
    /// Blocking (reads the file).
    pub fn adopt(self: &Arc<Self>, path: PathBuf) -> Result<Incoming, HttpError> {
        let temp = TempFile { path, keep: false };
        let mut file = std::fs::File::open(&temp.path)
            .map_err(|e| HttpError::internal("opening converted file", e))?;
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut file, &mut hasher)
            .map_err(|e| HttpError::internal("hashing converted file", e))?;
        if size > self.limits.max_bytes {
            return Err(self.too_large());
        }
        let used = self.used.fetch_add(size, Ordering::SeqCst) + size;
        let incoming = Incoming {
            files: self.clone(),
            temp,
            reserved: size,
            sha256: hex::encode(hasher.finalize()),
            size,
        };
        if used > self.limits.quota_bytes {
            return Err(quota_full());
        }
        Ok(incoming)
    }

    /// Where stored bytes with this SHA-256 are.
    pub fn stored_path(&self, sha256: &str) -> PathBuf {
        self.files_dir.join(sha256)
    }

    /// Removes the stored bytes `sha256` (`size` long) unless a record still uses them
    /// (call after deleting a record that used them).
    pub fn release(&self, sha256: &str, size: u64) -> anyhow::Result<()> {
        if !is_stored_file_name(sha256) || self.store.sha_in_use(sha256)? {
            return Ok(());
        }
        if std::fs::remove_file(self.files_dir.join(sha256)).is_ok() {
            self.used.fetch_sub(size, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn upload(&self, headers: HeaderMap, body: Body) -> Result<SharedFile, HttpError> {
        let session = self.session(&headers)?;
        self.registry
            .may_share_files(&session.room, session.id)
            .map_err(|e| HttpError::new(StatusCode::FORBIDDEN, "forbidden", e.message))?;
        let name = file_name(&headers)?;
        let mime = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 255)
            .unwrap_or("application/octet-stream")
            .to_string();
        let recipients = self.recipients(&session, &headers)?;
        let too_large = || self.too_large();
        let announced: Option<u64> = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if announced.is_some_and(|n| n > self.limits.max_bytes) {
            return Err(too_large());
        }
        let _active = self.admit(&session)?;
        let mut reservation = Reservation {
            counter: &self.used,
            bytes: 0,
        };
        let mut temp = TempFile {
            path: self.tmp_dir.join(new_token()),
            keep: false,
        };
        let (sha256, size) = self
            .receive_into(&temp.path, body, announced, &mut reservation, too_large)
            .await?;
        let target = self.files_dir.join(&sha256);
        let new_bytes = !target.exists();
        if new_bytes {
            tokio::fs::rename(&temp.path, &target)
                .await
                .map_err(|e| write_error("storing upload", e))?;
            temp.keep = true;
        }
        let sender = Person {
            id: session.id.0,
            name: session.name.clone(),
        };
        let token = new_token();
        let record = self
            .store
            .add_file(&NewFile {
                token: &token,
                room: &session.room,
                name: &name,
                size,
                mime: &mime,
                sha256: &sha256,
                sender: &sender,
                recipients: &recipients,
                ts_ms: now_ms(),
            })
            .map_err(|e| {
                if new_bytes && !self.store.sha_in_use(&sha256).unwrap_or(true) {
                    // No record will ever name these bytes; the reservation returns.
                    let _ = std::fs::remove_file(&target);
                }
                store_error("recording upload", e)
            })?;
        if new_bytes {
            // New bytes on disk: they stay counted until retention deletes them.
            // (Identical content already stored counts once, so its reservation returns.)
            reservation.bytes = 0;
        }
        info!(name, size, sha256, room = session.room, "file shared");
        self.announce(&session, &record);
        Ok(shared_file(&record))
    }

    /// Parses `X-Recipients: 3,5` into people present in the room (empty: the room).
    fn recipients(
        &self,
        session: &SessionInfo,
        headers: &HeaderMap,
    ) -> Result<Vec<Person>, HttpError> {
        let Some(list) = headers.get("x-recipients").and_then(|v| v.to_str().ok()) else {
            return Ok(Vec::new());
        };
        let mut people = Vec::new();
        let mut named = false;
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            named = true;
            let id = part.parse::<u64>().map(ParticipantId).map_err(|_| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_recipients",
                    "Recipients must be participant ids.",
                )
            })?;
            if id == session.id || people.iter().any(|p: &Person| p.id == id.0) {
                continue;
            }
            let name = self.registry.name_of(&session.room, id).ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_recipient",
                    "A chosen recipient is not in the room any more.",
                )
            })?;
            people.push(Person { id: id.0, name });
        }
        if named && people.is_empty() {
            // Only oneself: refused as private chat refuses it, rather than silently
            // sharing with the whole room.
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "unknown_recipient",
                "Choose someone other than yourself.",
            ));
        }
        Ok(people)
    }

    fn announce(&self, session: &SessionInfo, record: &FileRecord) {
        let message = file_message(record);
        let msg = |_: &[lanmeet_proto::ParticipantRef]| ServerMessage::Chat {
            message: message.clone(),
        };
        if record.recipients.is_empty() {
            let _ = self.registry.deliver(&session.room, None, msg);
        } else {
            let mut ids: Vec<ParticipantId> = record
                .recipients
                .iter()
                .map(|p| ParticipantId(p.id))
                .collect();
            ids.push(session.id);
            // Someone who left during the upload simply misses the notice.
            ids.retain(|id| self.registry.name_of(&session.room, *id).is_some());
            let _ = self.registry.deliver(&session.room, Some(&ids), msg);
        }
    }

    async fn download(&self, token: &str, headers: &HeaderMap) -> Result<Response, HttpError> {
        let session = self.session(headers)?;
        let not_found = || {
            HttpError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such file (it may have expired).",
            )
        };
        let record = self
            .store
            .file_by_token(token)
            .map_err(|e| HttpError::internal("looking up file", e))?
            .ok_or_else(not_found)?;
        let allowed = record.room == session.room
            && (record.recipients.is_empty()
                || record.sender.id == session.id.0
                || record.recipients.iter().any(|p| p.id == session.id.0));
        if !allowed {
            // Indistinguishable from a missing file: no probing for tokens.
            return Err(not_found());
        }
        let path = self.files_dir.join(&record.sha256);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| not_found())?;
        let len = record.size;
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            None => None,
            Some(spec) => match parse_range(spec, len) {
                Some(r) => Some(r),
                None => {
                    let mut resp = HttpError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "bad_range",
                        "The requested range is outside the file.",
                    )
                    .into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                        resp.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return Ok(resp);
                }
            },
        };
        let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
        let count = if len == 0 { 0 } else { end - start + 1 };
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| HttpError::internal("seeking file", e))?;
        use tokio::io::AsyncReadExt;
        let counters = self.counters.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 * 1024)
            .inspect_ok(move |chunk| Counters::add(&counters.file_downloaded, chunk.len() as u64));
        let mut resp = Response::new(Body::from_stream(stream));
        *resp.status_mut() = if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let encoded = utf8_percent_encode(&record.name, NON_ALPHANUMERIC).to_string();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&record.sha256) {
            h.insert("x-content-sha256", v);
        }
        if range.is_some() {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        Ok(resp)
    }
}

/// The file name from `X-File-Name` (percent-encoded UTF-8): 1 to 255 characters, no
/// control characters. Kept as given for display.
fn file_name(headers: &HeaderMap) -> Result<String, HttpError> {
    let bad = |m: &str| HttpError::new(StatusCode::BAD_REQUEST, "bad_name", m);
    let raw = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("The upload needs a file name (X-File-Name)."))?;
    let name = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("The file name is not valid UTF-8."))?
        .trim()
        .to_string();
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(bad("The file name must be 1 to 255 printable characters."));
    }
    if let Some(c) = invisible_in(&name) {
        // `invoice\u{202e}fdp.exe` shows as `invoiceexe.pdf`.
        return Err(bad(&format!(
            "The file name contains an invisible or text-direction character (U+{:04X}); \
             rename the file.",
            u32::from(c)
        )));
    }
    Ok(name)
}

/// Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): bidi
/// controls, zero-width characters, fillers, variation selectors, tags. None is visible
/// by itself, so in a file name each can only hide or reorder what the reader sees.
const INVISIBLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` is a default-ignorable (invisible) code point.
fn is_invisible(c: char) -> bool {
    INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// The first invisible character of `name` that is not doing a visible character's
/// job. Zero-width (non-)joiners are part of Persian and Indic words and of emoji
/// sequences (`👩‍💻`), so one between two visible non-ASCII characters is kept; a
/// variation selector right after a visible character only picks its presentation
/// (`❤️`, keycaps). Anywhere else they, and every other invisible character, only hide
/// or reorder what the reader sees.
fn invisible_in(name: &str) -> Option<char> {
    let chars: Vec<char> = name.chars().collect();
    let visible = |c: Option<&char>| c.is_some_and(|c| !is_invisible(*c));
    let visible_non_ascii = |c: Option<&char>| visible(c) && c.is_some_and(|c| !c.is_ascii());
    chars.iter().enumerate().find_map(|(i, &c)| {
        let before = i.checked_sub(1).and_then(|b| chars.get(b));
        let after = chars.get(i + 1);
        let allowed = match c {
            '\u{200c}' | '\u{200d}' => visible_non_ascii(before) && visible_non_ascii(after),
            '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' => visible(before),
            _ => false,
        };
        (is_invisible(c) && !allowed).then_some(c)
    })
}

/// Parses a single `bytes=` range against a file of `len` bytes into inclusive bounds.
/// Multiple ranges are not supported (clients resume with one).
fn parse_range(spec: &str, len: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let suffix: u64 = b.parse().ok()?;
        if suffix == 0 {
            return None;
        }
        (len.saturating_sub(suffix), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

/// `POST /files`: upload.
pub async fn upload_handler(
    State(files): State<Arc<Files>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), HttpError> {
    let file = files.upload(headers, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "file": file })),
    ))
}

/// `GET /files/{token}`: download.
pub async fn download_handler(
    State(files): State<Arc<Files>>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    files.download(&token, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=9-3", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-", 100), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
    }

    #[test]
    fn invisible_characters_are_refused_in_file_names() {
        let named = |n: &str| {
            let mut h = HeaderMap::new();
            let v = utf8_percent_encode(n, NON_ALPHANUMERIC).to_string();
            h.insert("x-file-name", HeaderValue::from_str(&v).expect("ascii"));
            file_name(&h)
        };
        for bad in [
            "invoice\u{202e}fdp.exe",
            "a\u{200b}b.txt",
            "\u{2066}x\u{2069}.pdf",
            "\u{3164}.txt",
            "x\u{feff}.txt",
            "x\u{200f}.txt",
            "a\u{200d}b.txt",
            "\u{200c}.txt",
            "\u{fe0f}x.txt",
            "x\u{e0041}.txt",
        ] {
            let e = named(bad).expect_err(bad);
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "bad_name"),
                "{bad}"
            );
        }
        for good in [
            "ünïcødé 📎.txt",
            "مرحبا.pdf",
            "שלום.txt",
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}.txt",
            "\u{1f469}\u{200d}\u{1f4bb}.png",
            "\u{2764}\u{fe0f}.png",
            "1\u{fe0f}\u{20e3}.txt",
        ] {
            assert!(named(good).is_ok(), "{good}");
        }
    }
}
