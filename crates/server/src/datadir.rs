//! The data directory: lanmeet's own folder, used by one server at a time.
//!
//! `--data-dir` may be pointed anywhere by mistake, so the server only ever touches the
//! names it owns ([`OWN_NAMES`]), refuses to start in a non-empty directory that is not
//! a lanmeet data directory, and holds an exclusive lock on `lanmeet.lock` for as long
//! as it runs: a second server on the same directory would otherwise clear the first
//! one's uploads in progress and write the same database. The lock is an advisory
//! `flock` (std's `File::try_lock`), released by the kernel when the process ends, so a
//! crash never leaves a stale lock behind.
//!
//! Everything lanmeet creates here is private to the user running it: the directory and
//! its folders 0700, the database, key and uploads 0600.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The lock file; its presence also marks a lanmeet data directory.
pub const LOCK_FILE: &str = "lanmeet.lock";
/// The database file.
pub const DATABASE_FILE: &str = "lanmeet.sqlite";

/// Every name lanmeet creates at the top of its data directory.
pub const OWN_NAMES: &[&str] = &[
    LOCK_FILE,
    DATABASE_FILE,
    "lanmeet.sqlite-wal",
    "lanmeet.sqlite-shm",
    "lanmeet.sqlite-journal",
    "cert.pem",
    "key.pem",
    crate::admin::auth::PASSWORD_FILE,
    "files",
    "tmp",
    crate::stations::MEDIA_FOLDER,
    crate::whip::TOKEN_DIR,
];

/// Names that do not make a directory someone else's: a file system's own folder,
/// there when the data directory is a mount point of its own.
const NEUTRAL_NAMES: &[&str] = &["lost+found"];

/// The locked data directory; the lock lasts as long as this value.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates (0700) or checks the directory at `path` and locks it.
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                check_ownership(path, &names)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .with_context(|| format!("creating data directory {}", path.display()))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading data directory {}", path.display()))
            }
        }
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "another lanmeet server is already using the data directory {} \
                 (its {LOCK_FILE} is locked); stop that server or choose another --data-dir",
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()))
            }
        }
        // An existing directory (from an older version, or made by hand) may be readable
        // by others: chat history and shared files are not theirs to read.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", path.display()))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A folder of the data directory (`files`, `tmp`), created 0700 if missing.
    pub fn folder(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.path.join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        Ok(dir)
    }

    /// The database path; the file is created 0600 first (SQLite gives its journal and
    /// write-ahead log the database's permissions), or restricted if it exists.
    pub fn database(&self) -> anyhow::Result<PathBuf> {
        let db = self.path.join(DATABASE_FILE);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&db)
            .with_context(|| format!("creating {}", db.display()))?;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", db.display()))?;
        Ok(db)
    }
}

/// Refuses a non-empty directory that is not lanmeet's: one without the lock file or
/// database that holds a name lanmeet does not create.
fn check_ownership(path: &Path, names: &[String]) -> anyhow::Result<()> {
    let marked = names.iter().any(|n| n == LOCK_FILE || n == DATABASE_FILE);
    let foreign: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !OWN_NAMES.contains(n) && !NEUTRAL_NAMES.contains(n))
        .collect();
    if marked || foreign.is_empty() {
        return Ok(());
    }
    let mut shown = foreign
        .iter()
        .take(3)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if foreign.len() > 3 {
        shown.push_str(", …");
    }
    bail!(
        "{} is not empty and is not a lanmeet data directory (it holds {shown}); lanmeet \
         will not write into it. Choose a new or empty directory with --data-dir",
        path.display()
    )
}

/// Whether `name` is one of lanmeet's temporary upload names (a 128-bit hex token).
pub fn is_upload_temp_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` is one of lanmeet's stored file names (a SHA-256 in hex).
pub fn is_stored_file_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_rules() {
        let p = Path::new("/x");
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_ownership(p, &own(&[])).is_ok());
        assert!(check_ownership(p, &own(&["admin-password"])).is_ok());
        assert!(check_ownership(p, &own(&["lanmeet.sqlite", "notes.txt"])).is_ok());
        assert!(check_ownership(p, &own(&["lost+found"])).is_ok());
        let err = check_ownership(p, &own(&["thesis.tex", "cert.pem"]))
            .expect_err("foreign")
            .to_string();
        assert!(err.contains("not a lanmeet data directory"), "{err}");
        assert!(err.contains("thesis.tex"), "{err}");
        assert!(is_upload_temp_name(&crate::rooms::new_token()));
        assert!(!is_upload_temp_name("thesis.tex"));
    }
}
