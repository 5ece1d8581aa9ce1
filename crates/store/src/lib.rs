//! lanmeet's storage: one SQLite database in the data directory (rusqlite with bundled
//! SQLite, so no system library is needed) holding room chat history, the metadata of
//! shared files and the persistent rooms. File bytes live beside it, named by their SHA-256 (see the server's
//! `files` module); this crate only records them.
//!
//! Modules: this file only. Schema migrations run in [`Store::open`], versioned with
//! `PRAGMA user_version`.
//!
//! Calls are short (one indexed statement each), so the server calls them from async code
//! under a std mutex instead of shipping each to a blocking thread.
#![deny(missing_docs)]

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored JSON did not parse (a corrupted row).
    #[error("corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// [`Store::close`] was called.
    #[error("the database is closed")]
    Closed,
}

impl StoreError {
    /// Whether the write failed because the database reached its size limit
    /// ([`Store::limit_size`]) or the disk is full.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// Result of storage calls.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A participant as recorded with a message: id and the name it had then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    /// Participant id.
    pub id: u64,
    /// Display name.
    pub name: String,
}

/// A shared file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Row id.
    pub id: i64,
    /// Unguessable download token.
    pub token: String,
    /// Room it was shared in.
    pub room: String,
    /// File name as given by the sender (shown, never used as a path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type as given by the sender.
    pub mime: String,
    /// SHA-256 of the bytes, lowercase hex; also the name of the bytes on disk.
    pub sha256: String,
    /// Who shared it.
    pub sender: Person,
    /// Who may download it; empty: everyone in the room.
    pub recipients: Vec<Person>,
    /// When, in milliseconds since the Unix epoch.
    pub ts_ms: u64,
}

/// A stored room chat entry: a text message or a file shared with the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Row id, increasing in order of arrival.
    pub id: i64,
    /// Sender.
    pub sender: Person,
    /// Text ("" for a file entry).
    pub text: String,
    /// When, in milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The shared file, for file entries.
    pub file: Option<FileRecord>,
    /// A moderation notice written by the server ("Ann removed Bob"), `sender` being
    /// the moderator.
    pub notice: bool,
}

/// A file about to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    /// Download token.
    pub token: &'a str,
    /// Room.
    pub room: &'a str,
    /// Name as given.
    pub name: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime: &'a str,
    /// SHA-256 hex.
    pub sha256: &'a str,
    /// Sender.
    pub sender: &'a Person,
    /// Recipients; empty: the room.
    pub recipients: &'a [Person],
    /// Time, ms since epoch.
    pub ts_ms: u64,
}

/// A persistent room, kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// Its name's key (the server's `validate::Name::key`): one room per key.
    pub key: String,
    /// Its name as shown.
    pub name: String,
    /// Participant password as an argon2 PHC string; none: no password.
    pub password_hash: Option<String>,
    /// Moderator password as an argon2 PHC string; none: no moderator password.
    pub moderator_password_hash: Option<String>,
    /// Joiners wait in the lobby.
    pub lobby: bool,
    /// Most participants at once; 0: no limit.
    pub max_participants: u32,
    /// Participants may publish a camera.
    pub video: bool,
    /// Participants may publish a microphone.
    pub audio: bool,
    /// Participants may share a screen.
    pub screen: bool,
    /// Who may share files (the server's word: `everyone`, `moderators`, `nobody`).
    pub files: String,
}

/// A station the admin created (`stations` table, migration 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationRecord {
    /// Its name, unique (as in `/stations/<name>`).
    pub name: String,
    /// What the admin wrote about it.
    pub description: String,
    /// Its place in the list: lower first.
    pub position: i64,
    /// Where its media comes from.
    pub source: StationSource,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// Where a station's media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationSource {
    /// Bytes stored as `files/<sha256>` (an upload, converted or not), counted against
    /// the storage quota like shared files; `file_name` is the name it was uploaded as.
    Stored {
        /// SHA-256 of the bytes, hex.
        sha256: String,
        /// Their size.
        size: u64,
        /// The uploaded file's name, shown as what is playing.
        file_name: String,
    },
    /// A file the operator put into the data directory's `media/` folder, by name.
    DataFile {
        /// Its name in `media/`.
        file_name: String,
    },
    /// A live station, fed over WHIP by whoever holds its bearer token.
    Live {
        /// The bearer token.
        token: String,
    },
}

/// The database.
pub struct Store {
    /// `None` once closed.
    conn: Mutex<Option<Connection>>,
}

const MIGRATIONS: &[&str] = &[
    // 1: chat history and files.
    "CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        room TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mime TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        sender_id INTEGER NOT NULL,
        sender_name TEXT NOT NULL,
        recipients TEXT NOT NULL,
        ts_ms INTEGER NOT NULL
    );
    CREATE INDEX files_ts ON files(ts_ms);
    CREATE INDEX files_sha ON files(sha256);
    CREATE TABLE chat (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        sender_id INTEGER NOT NULL,
        sender_name TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        file_id INTEGER REFERENCES files(id) ON DELETE CASCADE
    );
    CREATE INDEX chat_room ON chat(room, id);",
    // 2: persisted counters (participant ids), chat retention.
    "CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE INDEX chat_ts ON chat(ts_ms);",
    // 3: moderation notices in the chat history ("Ann removed Bob").
    "ALTER TABLE chat ADD COLUMN notice INTEGER NOT NULL DEFAULT 0;",
    // 4: persistent rooms, their passwords (argon2 PHC strings) and permissions.
    "CREATE TABLE rooms (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT,
        moderator_password_hash TEXT,
        lobby INTEGER NOT NULL,
        max_participants INTEGER NOT NULL,
        video INTEGER NOT NULL,
        audio INTEGER NOT NULL,
        screen INTEGER NOT NULL,
        files TEXT NOT NULL
    );",
    // 5: stations the admin created: stored bytes by SHA-256, a file in `media/`, or
    // live (with its WHIP bearer token).
    "CREATE TABLE stations (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('stored', 'data_file', 'live')),
        sha256 TEXT,
        size INTEGER,
        file_name TEXT,
        token TEXT,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX stations_sha ON stations(sha256);",
];

/// The counter of participant ids.
const PARTICIPANT_COUNTER: &str = "participant";

/// The connection, unless the store is closed.
fn open(conn: &mut Option<Connection>) -> Result<&mut Connection> {
    conn.as_mut().ok_or(StoreError::Closed)
}

const FILE_COLUMNS: &str =
    "f.id, f.token, f.room, f.name, f.size, f.mime, f.sha256, f.sender_id, f.sender_name, f.recipients, f.ts_ms";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tx = conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        if version == 1 {
            // Before version 2, ids were the start time in ms × 1000 plus one per join:
            // continue above every id that can have been handed out.
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let senders: i64 = tx.query_row(
                "SELECT max(coalesce((SELECT max(sender_id) FROM chat), 0),
                            coalesce((SELECT max(sender_id) FROM files), 0))",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO counters (name, value) VALUES (?1, ?2)",
                params![
                    PARTICIPANT_COUNTER,
                    clock.saturating_mul(1000).max(senders.saturating_add(1))
                ],
            )?;
        }
        tx.commit()?;
        Ok(Store {
            conn: Mutex::new(Some(conn)),
        })
    }

    /// Closes the database: SQLite checkpoints the write-ahead log into the database
    /// file and removes it. Later calls fail with [`StoreError::Closed`]; closing again
    /// does nothing.
    pub fn close(&self) -> Result<()> {
        match self.lock().take() {
            Some(conn) => conn.close().map_err(|(_, e)| e.into()),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic mid-statement leaves SQLite consistent (statements are atomic).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caps the database file at about `bytes` (SQLite's `max_page_count`): a write
    /// that would grow it further fails with an error for which
    /// [`StoreError::is_full`] holds. Deleting rows frees pages for reuse, so
    /// retention makes room again. A database already larger keeps its size as the cap.
    pub fn limit_size(&self, bytes: u64) -> Result<()> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (bytes / page.max(1) as u64).max(1);
        conn.pragma_update(None, "max_page_count", pages as i64)?;
        Ok(())
    }

    /// Reserves `count` participant ids that no earlier call handed out, also across
    /// restarts and whatever the clock says; returns the first. The counter is
    /// persisted before the ids are used.
    pub fn reserve_participant_ids(&self, count: u64) -> Result<u64> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let tx = conn.transaction()?;
        let first: i64 = tx
            .query_row(
                "SELECT value FROM counters WHERE name = ?1",
                params![PARTICIPANT_COUNTER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(1);
        tx.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![PARTICIPANT_COUNTER, first.saturating_add(count as i64)],
        )?;
        tx.commit()?;
        Ok(first as u64)
    }

    /// Creates or replaces the persistent room `room.key`.
    pub fn upsert_room(&self, room: &RoomRecord) -> Result<()> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        conn.execute(
            "INSERT INTO rooms (key, name, password_hash, moderator_password_hash, lobby,
                max_participants, video, audio, screen, files)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(key) DO UPDATE SET name = excluded.name,
                password_hash = excluded.password_hash,
                moderator_password_hash = excluded.moderator_password_hash,
                lobby = excluded.lobby, max_participants = excluded.max_participants,
                video = excluded.video, audio = excluded.audio, screen = excluded.screen,
                files = excluded.files",
            params![
                room.key,
                room.name,
                room.password_hash,
                room.moderator_password_hash,
                room.lobby,
                room.max_participants,
                room.video,
                room.audio,
                room.screen,
                room.files
            ],
        )?;
        Ok(())
    }

    /// Every persistent room, by key.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let mut stmt = conn.prepare_cached(
            "SELECT key, name, password_hash, moderator_password_hash, lobby, max_participants,
                video, audio, screen, files FROM rooms ORDER BY key",
        )?;
        let rooms = stmt
            .query_map([], |r| {
                Ok(RoomRecord {
                    key: r.get(0)?,
                    name: r.get(1)?,
                    password_hash: r.get(2)?,
                    moderator_password_hash: r.get(3)?,
                    lobby: r.get(4)?,
                    max_participants: r.get(5)?,
                    video: r.get(6)?,
                    audio: r.get(7)?,
                    screen: r.get(8)?,
                    files: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rooms)
    }

    /// Deletes the persistent room `key`; returns whether there was one.
    pub fn delete_room(&self, key: &str) -> Result<bool> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        Ok(conn.execute("DELETE FROM rooms WHERE key = ?1", params![key])? > 0)
    }

    /// Deletes room messages (not file entries: those go with their file) sent before
    /// `ts_ms`. Returns how many.
    pub fn delete_messages_older_than(&self, ts_ms: u64) -> Result<usize> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        Ok(conn.execute(
            "DELETE FROM chat WHERE file_id IS NULL AND ts_ms < ?1",
            params![ts_ms as i64],
        )?)
    }

    /// Records a room message; returns its id.
    pub fn add_message(&self, room: &str, sender: &Person, text: &str, ts_ms: u64) -> Result<i64> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        conn.execute(
            "INSERT INTO chat (room, sender_id, sender_name, text, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![room, sender.id as i64, sender.name, text, ts_ms as i64],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records a moderation notice (`text`, by moderator `sender`); returns its id.
    pub fn add_notice(&self, room: &str, sender: &Person, text: &str, ts_ms: u64) -> Result<i64> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        conn.execute(
            "INSERT INTO chat (room, sender_id, sender_name, text, ts_ms, notice) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
            params![room, sender.id as i64, sender.name, text, ts_ms as i64],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records a shared file; a file for the whole room also becomes a history entry.
    pub fn add_file(&self, f: &NewFile<'_>) -> Result<FileRecord> {
        let recipients = serde_json::to_string(f.recipients)?;
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO files (token, room, name, size, mime, sha256, sender_id, sender_name, recipients, ts_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                f.token,
                f.room,
                f.name,
                f.size as i64,
                f.mime,
                f.sha256,
                f.sender.id as i64,
                f.sender.name,
                recipients,
                f.ts_ms as i64
            ],
        )?;
        let id = tx.last_insert_rowid();
        if f.recipients.is_empty() {
            tx.execute(
                "INSERT INTO chat (room, sender_id, sender_name, text, ts_ms, file_id) VALUES (?1, ?2, ?3, '', ?4, ?5)",
                params![f.room, f.sender.id as i64, f.sender.name, f.ts_ms as i64, id],
            )?;
        }
        tx.commit()?;
        Ok(FileRecord {
            id,
            token: f.token.to_string(),
            room: f.room.to_string(),
            name: f.name.to_string(),
            size: f.size,
            mime: f.mime.to_string(),
            sha256: f.sha256.to_string(),
            sender: f.sender.clone(),
            recipients: f.recipients.to_vec(),
            ts_ms: f.ts_ms,
        })
    }

    /// The latest `limit` room entries of `room`, oldest first.
    pub fn history(&self, room: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let sql = format!(
            "SELECT * FROM (
                SELECT c.id, c.sender_id, c.sender_name, c.text, c.ts_ms, c.file_id, {FILE_COLUMNS}, c.notice
                FROM chat c LEFT JOIN files f ON f.id = c.file_id
                WHERE c.room = ?1 ORDER BY c.id DESC LIMIT ?2
            ) ORDER BY id ASC"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![room, limit as i64], |r| {
            let file_id: Option<i64> = r.get(5)?;
            Ok((
                HistoryEntry {
                    id: r.get(0)?,
                    sender: Person {
                        id: r.get::<_, i64>(1)? as u64,
                        name: r.get(2)?,
                    },
                    text: r.get(3)?,
                    ts_ms: r.get::<_, i64>(4)? as u64,
                    file: None,
                    notice: r.get::<_, i64>(17)? != 0,
                },
                match file_id {
                    Some(_) => Some(file_row(r, 6)?),
                    None => None,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut entry, file) = row?;
            entry.file = file.map(RawFile::finish).transpose()?;
            out.push(entry);
        }
        Ok(out)
    }

    /// The file with download token `token`.
    pub fn file_by_token(&self, token: &str) -> Result<Option<FileRecord>> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.token = ?1");
        let raw = conn
            .prepare_cached(&sql)?
            .query_row(params![token], |r| file_row(r, 0))
            .optional()?;
        raw.map(RawFile::finish).transpose()
    }

    /// Files shared before `ts_ms`.
    pub fn files_older_than(&self, ts_ms: u64) -> Result<Vec<FileRecord>> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.ts_ms < ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let raws = stmt
            .query_map(params![ts_ms as i64], |r| file_row(r, 0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawFile::finish).collect()
    }

    /// Deletes a file's record (and its history entry). Returns whether other records
    /// still use the same bytes, in which case they must stay on disk.
    pub fn delete_file(&self, id: i64) -> Result<bool> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let sha: Option<String> = conn
            .query_row("SELECT sha256 FROM files WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        conn.execute("DELETE FROM files WHERE id = ?1", params![id])?;
        let Some(sha) = sha else { return Ok(false) };
        let others: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM files WHERE sha256 = ?1)
                  + (SELECT count(*) FROM stations WHERE sha256 = ?1)",
            params![sha],
            |r| r.get(0),
        )?;
        Ok(others > 0)
    }

    /// Whether any record (a shared file or a station) uses the bytes with this SHA-256.
    pub fn sha_in_use(&self, sha256: &str) -> Result<bool> {
        let n: i64 = open(&mut self.lock())?.query_row(
            "SELECT (SELECT count(*) FROM files WHERE sha256 = ?1)
                  + (SELECT count(*) FROM stations WHERE sha256 = ?1)",
            params![sha256],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Bytes of distinct stored files (shared files and stations' media), for the
    /// storage quota.
    pub fn stored_bytes(&self) -> Result<u64> {
        let n: i64 = open(&mut self.lock())?.query_row(
            "SELECT coalesce(sum(size), 0) FROM (SELECT sha256, max(size) AS size FROM
                (SELECT sha256, size FROM files
                 UNION ALL SELECT sha256, size FROM stations WHERE sha256 IS NOT NULL)
             GROUP BY sha256)",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Distinct stored files (by content), as counted against the quota.
    pub fn stored_files(&self) -> Result<u64> {
        let n: i64 = open(&mut self.lock())?.query_row(
            "SELECT count(DISTINCT sha256) FROM files",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

impl Store {
    /// Adds station `station`; fails (a constraint error) if the name is taken.
    pub fn add_station(&self, station: &StationRecord) -> Result<()> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let (kind, sha, size, file_name, token) = match &station.source {
            StationSource::Stored {
                sha256,
                size,
                file_name,
            } => (
                "stored",
                Some(sha256.as_str()),
                Some(*size as i64),
                Some(file_name.as_str()),
                None,
            ),
            StationSource::DataFile { file_name } => {
                ("data_file", None, None, Some(file_name.as_str()), None)
            }
            StationSource::Live { token } => ("live", None, None, None, Some(token.as_str())),
        };
        conn.execute(
            "INSERT INTO stations (name, description, position, kind, sha256, size, file_name,
                token, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                station.name,
                station.description,
                station.position,
                kind,
                sha,
                size,
                file_name,
                token,
                station.created_ms as i64
            ],
        )?;
        Ok(())
    }

    /// Every station, in list order.
    pub fn stations(&self) -> Result<Vec<StationRecord>> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let mut stmt = conn.prepare_cached(
            "SELECT name, description, position, kind, sha256, size, file_name, token,
                created_ms FROM stations ORDER BY position, created_ms",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let kind: String = r.get(3)?;
                let source = match kind.as_str() {
                    "stored" => StationSource::Stored {
                        sha256: r.get(4)?,
                        size: r.get::<_, i64>(5)? as u64,
                        file_name: r.get(6)?,
                    },
                    "data_file" => StationSource::DataFile {
                        file_name: r.get(6)?,
                    },
                    _ => StationSource::Live { token: r.get(7)? },
                };
                Ok(StationRecord {
                    name: r.get(0)?,
                    description: r.get(1)?,
                    position: r.get(2)?,
                    source,
                    created_ms: r.get::<_, i64>(8)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Sets station `name`'s description; returns whether there is such a station.
    pub fn set_station_description(&self, name: &str, description: &str) -> Result<bool> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        Ok(conn.execute(
            "UPDATE stations SET description = ?2 WHERE name = ?1",
            params![name, description],
        )? > 0)
    }

    /// Sets live station `name`'s bearer token; returns whether there is such a station.
    pub fn set_station_token(&self, name: &str, token: &str) -> Result<bool> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        Ok(conn.execute(
            "UPDATE stations SET token = ?2 WHERE name = ?1 AND kind = 'live'",
            params![name, token],
        )? > 0)
    }

    /// Gives the stations `names` the positions 0, 1, 2… in that order, together.
    pub fn order_stations(&self, names: &[&str]) -> Result<()> {
        let mut guard = self.lock();
        let conn = open(&mut guard)?;
        let tx = conn.transaction()?;
        for (i, name) in names.iter().enumerate() {
            tx.execute(
                "UPDATE stations SET position = ?2 WHERE name = ?1",
                params![name, i as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes station `name`; returns its record if there was one.
    pub fn delete_station(&self, name: &str) -> Result<Option<StationRecord>> {
        let found = self.stations()?.into_iter().find(|s| s.name == name);
        if found.is_some() {
            let mut guard = self.lock();
            open(&mut guard)?.execute("DELETE FROM stations WHERE name = ?1", params![name])?;
        }
        Ok(found)
    }
}

/// A file row before its recipients JSON is parsed (rusqlite closures cannot return our
/// error type).
struct RawFile {
    record: FileRecord,
    recipients: String,
}

impl RawFile {
    fn finish(mut self) -> Result<FileRecord> {
        self.record.recipients = serde_json::from_str(&self.recipients)?;
        Ok(self.record)
    }
}

fn file_row(r: &Row<'_>, at: usize) -> rusqlite::Result<RawFile> {
    Ok(RawFile {
        record: FileRecord {
            id: r.get(at)?,
            token: r.get(at + 1)?,
            room: r.get(at + 2)?,
            name: r.get(at + 3)?,
            size: r.get::<_, i64>(at + 4)? as u64,
            mime: r.get(at + 5)?,
            sha256: r.get(at + 6)?,
            sender: Person {
                id: r.get::<_, i64>(at + 7)? as u64,
                name: r.get(at + 8)?,
            },
            recipients: Vec::new(),
            ts_ms: r.get::<_, i64>(at + 10)? as u64,
        },
        recipients: r.get(at + 9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Person {
        Person {
            id: 1,
            name: "Ada".into(),
        }
    }

    #[test]
    fn history_keeps_order_limit_and_rooms_apart() {
        let s = Store::open_in_memory().expect("db");
        for i in 0..10 {
            s.add_message("lab", &ada(), &format!("m{i}"), 1000 + i)
                .expect("insert");
        }
        s.add_message("other", &ada(), "elsewhere", 5)
            .expect("insert");
        let h = s.history("lab", 3).expect("history");
        let texts: Vec<_> = h.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["m7", "m8", "m9"]);
        assert_eq!(s.history("other", 200).expect("history").len(), 1);
        assert!(s.history("nobody", 200).expect("history").is_empty());
    }

    #[test]
    fn room_files_enter_history_private_files_do_not() {
        let s = Store::open_in_memory().expect("db");
        let grace = Person {
            id: 2,
            name: "Grace".into(),
        };
        let file = |token, recipients: &'static [Person]| NewFile {
            token,
            room: "lab",
            name: "../../etc/passwd",
            size: 3,
            mime: "text/plain",
            sha256: "abc",
            sender: Box::leak(Box::new(ada())),
            recipients,
            ts_ms: 7,
        };
        let room = s.add_file(&file("t1", &[])).expect("room file");
        let private = s
            .add_file(&file("t2", Box::leak(Box::new([grace.clone()]))))
            .expect("private file");
        let h = s.history("lab", 200).expect("history");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].file.as_ref(), Some(&room));
        assert_eq!(
            s.file_by_token("t2").expect("lookup"),
            Some(private.clone())
        );
        assert_eq!(s.file_by_token("nope").expect("lookup"), None);
        assert_eq!(s.stored_bytes().expect("sum"), 3, "same bytes count once");
        assert!(
            s.delete_file(room.id).expect("delete"),
            "t2 still uses the bytes"
        );
        assert!(s.history("lab", 200).expect("history").is_empty());
        assert!(!s.delete_file(private.id).expect("delete"));
        assert!(!s.sha_in_use("abc").expect("query"));
    }

    #[test]
    fn participant_ids_continue_across_reopening() {
        let dir = std::env::temp_dir().join(format!("lanmeet-store-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.sqlite");
        let _ = std::fs::remove_file(&path);
        let s = Store::open(&path).expect("db");
        assert_eq!(s.reserve_participant_ids(10).expect("ids"), 1);
        assert_eq!(s.reserve_participant_ids(10).expect("ids"), 11);
        drop(s);
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.reserve_participant_ids(10).expect("ids"), 21);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_database_continues_above_its_clock_based_ids() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(MIGRATIONS[0]).expect("v1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO chat (room, sender_id, sender_name, text, ts_ms) VALUES ('lab', ?1, 'Ada', 'hi', 1)",
            params![i64::MAX / 2],
        )
        .expect("insert");
        let s = Store::init(conn).expect("migrates");
        assert_eq!(
            s.reserve_participant_ids(1).expect("ids"),
            (i64::MAX / 2 + 1) as u64
        );
    }

    #[test]
    fn old_messages_expire_and_a_full_database_says_so() {
        let s = Store::open_in_memory().expect("db");
        s.add_message("lab", &ada(), "old", 10).expect("insert");
        s.add_message("lab", &ada(), "new", 20).expect("insert");
        assert_eq!(s.delete_messages_older_than(15).expect("delete"), 1);
        let h = s.history("lab", 10).expect("history");
        assert_eq!(
            h.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        s.limit_size(64 * 1024).expect("limit");
        let text = "x".repeat(4000);
        let err = (0..100)
            .find_map(|i| s.add_message("lab", &ada(), &text, 30 + i).err())
            .expect("the cap is reached");
        assert!(err.is_full(), "{err}");
        assert!(s.delete_messages_older_than(1000).expect("delete") > 0);
        s.add_message("lab", &ada(), &text, 2000)
            .expect("room again after retention");
    }

    #[test]
    fn persistent_rooms_are_upserted_kept_and_deleted() {
        let dir = std::env::temp_dir().join(format!("lanmeet-store-rooms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.sqlite");
        let mut room = RoomRecord {
            key: "physics".into(),
            name: "Physics".into(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            moderator_password_hash: None,
            lobby: true,
            max_participants: 30,
            video: true,
            audio: false,
            screen: false,
            files: "moderators".into(),
        };
        {
            let store = Store::open(&path).expect("opens");
            store.upsert_room(&room).expect("inserts");
            room.max_participants = 25;
            store.upsert_room(&room).expect("replaces");
            store.close().expect("closes");
        }
        let store = Store::open(&path).expect("reopens");
        assert_eq!(store.rooms().expect("reads"), vec![room]);
        assert!(store.delete_room("physics").expect("deletes"));
        assert!(!store.delete_room("physics").expect("nothing left"));
        assert!(store.rooms().expect("reads").is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn stations_are_kept_ordered_and_their_bytes_count_once() {
        let store = Store::open_in_memory().expect("open");
        let stored = |name: &str, position| StationRecord {
            name: name.into(),
            description: format!("about {name}"),
            position,
            source: StationSource::Stored {
                sha256: "ab".repeat(32),
                size: 100,
                file_name: format!("{name}.webm"),
            },
            created_ms: 1,
        };
        store.add_station(&stored("b", 1)).expect("add b");
        store.add_station(&stored("a", 0)).expect("add a");
        let live = StationRecord {
            name: "l".into(),
            description: String::new(),
            position: 2,
            source: StationSource::Live { token: "t".into() },
            created_ms: 2,
        };
        store.add_station(&live).expect("add live");
        assert!(
            store.add_station(&stored("a", 5)).is_err(),
            "names are unique"
        );
        let names = |s: &Store| -> Vec<String> {
            s.stations()
                .expect("list")
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(names(&store), ["a", "b", "l"]);
        assert!(store.sha_in_use(&"ab".repeat(32)).expect("query"));
        assert_eq!(
            store.stored_bytes().expect("bytes"),
            100,
            "one copy counted"
        );
        store.order_stations(&["l", "b", "a"]).expect("order");
        assert_eq!(names(&store), ["l", "b", "a"]);
        assert!(store.set_station_description("b", "news").expect("edit"));
        assert!(store.set_station_token("l", "u").expect("token"));
        assert!(!store.set_station_token("b", "u").expect("not live"));
        let all = store.stations().expect("list");
        assert_eq!(all[1].description, "news");
        assert_eq!(all[0].source, StationSource::Live { token: "u".into() });
        assert!(store.delete_station("a").expect("delete").is_some());
        assert!(store.delete_station("a").expect("delete").is_none());
        assert!(store.sha_in_use(&"ab".repeat(32)).expect("b still uses it"));
        store.delete_station("b").expect("delete");
        assert!(!store.sha_in_use(&"ab".repeat(32)).expect("unused"));
        assert_eq!(store.stored_bytes().expect("bytes"), 0);
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = std::env::temp_dir().join(format!("lanmeet-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.sqlite");
        let _ = std::fs::remove_file(&path);
        Store::open(&path)
            .expect("db")
            .add_message("lab", &ada(), "kept", 1)
            .expect("insert");
        let again = Store::open(&path).expect("reopen");
        assert_eq!(again.history("lab", 10).expect("history")[0].text, "kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn close_removes_the_write_ahead_log_and_refuses_later_calls() {
        let dir = std::env::temp_dir().join(format!("lanmeet-store-close-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.sqlite");
        let wal = dir.join("db.sqlite-wal");
        let store = Store::open(&path).expect("db");
        store.add_message("lab", &ada(), "kept", 1).expect("insert");
        assert!(wal.exists(), "WAL mode writes a log first");
        store.close().expect("close");
        assert!(!wal.exists(), "closing checkpoints and removes the log");
        assert!(matches!(store.history("lab", 10), Err(StoreError::Closed)));
        store.close().expect("closing twice is fine");
        let again = Store::open(&path).expect("reopen");
        assert_eq!(again.history("lab", 10).expect("history")[0].text, "kept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
