//! The admin password (given, or generated once and kept in the data directory), its
//! constant-time check with a per-address limit on wrong guesses, and the login
//! sessions of the dashboard.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use subtle::ConstantTimeEq;

/// File in the data directory holding a generated password.
pub const PASSWORD_FILE: &str = "admin-password";
/// Length of a generated password (alphanumeric: about 143 bits).
const GENERATED_LENGTH: usize = 24;
/// Wrong passwords an address may try per [`FAILURE_WINDOW`] before it is refused.
pub const MAX_FAILURES: usize = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a dashboard login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Addresses remembered for the limit; past this the oldest are forgotten, so a flood
/// from many addresses cannot grow memory without bound.
const MAX_TRACKED: usize = 10_000;
/// Open sessions kept; a new login beyond this ends the oldest.
const MAX_SESSIONS: usize = 1_000;

/// Where the password came from, for the startup banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Given by flag, environment or configuration file.
    Configured,
    /// Generated (now or on an earlier start) and kept in this file.
    File(PathBuf),
}

/// The admin password: the configured one, or the one kept in `data_dir`, generated
/// there (mode 0600) on first start.
pub fn load_or_generate(
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, PasswordSource)> {
    if let Some(p) = configured.filter(|p| !p.is_empty()) {
        return Ok((p.to_string(), PasswordSource::Configured));
    }
    let path = data_dir.join(PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            // Someone may have copied it in with looser rights.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
            return Ok((text.trim().to_string(), PasswordSource::File(path)));
        }
        Ok(_) => {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_LENGTH);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{password}").with_context(|| format!("writing {}", path.display()))?;
    Ok((password, PasswordSource::File(path)))
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or wrong.
    Wrong,
    /// Too many wrong ones from this address: try again after this long.
    TooMany(Duration),
}

/// The password check and the dashboard's sessions.
#[derive(Debug)]
pub struct AdminAuth {
    password: String,
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl AdminAuth {
    /// Checks against `password`.
    pub fn new(password: String) -> Self {
        AdminAuth {
            password,
            failures: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `candidate` (absent: no credential given) from `from` at `now`. A
    /// missing credential is not counted against the address; a wrong one is. Once an
    /// address has [`MAX_FAILURES`] wrong ones in the window, even the right password is
    /// refused until the window has passed, so guessing stays slow.
    pub fn check(
        &self,
        from: IpAddr,
        candidate: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = failures.entry(from).or_default();
        recent.retain(|t| now.saturating_duration_since(*t) < FAILURE_WINDOW);
        if recent.len() >= MAX_FAILURES {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            let wait = FAILURE_WINDOW.saturating_sub(now.saturating_duration_since(oldest));
            return Err(Refusal::TooMany(wait.max(Duration::from_secs(1))));
        }
        let Some(candidate) = candidate else {
            if recent.is_empty() {
                failures.remove(&from);
            }
            return Err(Refusal::Wrong);
        };
        if bool::from(candidate.as_bytes().ct_eq(self.password.as_bytes())) {
            return Ok(());
        }
        recent.push(now);
        if failures.len() > MAX_TRACKED {
            failures.retain(|_, v| {
                v.retain(|t| now.saturating_duration_since(*t) < FAILURE_WINDOW);
                !v.is_empty()
            });
        }
        Err(Refusal::Wrong)
    }

    /// Opens a session; returns its token (256 random bits, hex).
    pub fn open_session(&self, now: Instant) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|_, expiry| *expiry > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(t, _)| t.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(token.clone(), now + SESSION_LIFETIME);
        token
    }

    /// Whether `token` is an open session at `now`.
    pub fn session_valid(&self, token: &str, now: Instant) -> bool {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A map lookup by a secret leaks timing only about the hash, which the attacker
        // cannot relate to the token (SipHash with a random key).
        sessions.get(token).is_some_and(|expiry| *expiry > now)
    }

    /// Ends session `token`.
    pub fn close_session(&self, token: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn wrong_guesses_are_limited_per_address() {
        let auth = AdminAuth::new("secret".into());
        let t0 = Instant::now();
        assert_eq!(auth.check(HOME, Some("secret"), t0), Ok(()));
        assert_eq!(auth.check(HOME, None, t0), Err(Refusal::Wrong));
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.check(HOME, Some("guess"), t0), Err(Refusal::Wrong));
        }
        assert!(matches!(
            auth.check(HOME, Some("secret"), t0),
            Err(Refusal::TooMany(_))
        ));
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(auth.check(other, Some("secret"), t0), Ok(()));
        let later = t0 + FAILURE_WINDOW;
        assert_eq!(auth.check(HOME, Some("secret"), later), Ok(()));
    }

    #[test]
    fn sessions_expire_and_close() {
        let auth = AdminAuth::new("secret".into());
        let t0 = Instant::now();
        let token = auth.open_session(t0);
        assert!(auth.session_valid(&token, t0));
        assert!(!auth.session_valid("forged", t0));
        assert!(!auth.session_valid(&token, t0 + SESSION_LIFETIME));
        let second = auth.open_session(t0);
        auth.close_session(&second);
        assert!(!auth.session_valid(&second, t0));
    }

    #[test]
    fn generated_password_is_kept_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("lanmeet-admin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (first, source) = load_or_generate(None, &dir).expect("generated");
        assert!(first.len() >= 20);
        assert_eq!(source, PasswordSource::File(dir.join(PASSWORD_FILE)));
        let mode = std::fs::metadata(dir.join(PASSWORD_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, _) = load_or_generate(None, &dir).expect("reused");
        assert_eq!(first, again);
        let (given, source) = load_or_generate(Some("given"), &dir).expect("configured");
        assert_eq!(
            (given.as_str(), source),
            ("given", PasswordSource::Configured)
        );
    }
}
