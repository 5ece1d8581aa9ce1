//! Persistent rooms: created by `[[rooms]]` in the config file (upserted at start), kept
//! in the database across restarts, with an optional participant password, an optional
//! moderator password, a lobby, a participant limit and what participants may publish
//! and share.
//!
//! Passwords are kept as argon2 PHC strings and checked with argon2's verification,
//! which compares in constant time. Checking is slow on purpose (tens of milliseconds),
//! so signaling runs it on a blocking thread, outside the registry's lock, and limits
//! wrong guesses per address ([`crate::limits::JoinRates::check`]).

use anyhow::{anyhow, Context};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use lanmeet_proto::{validate, ErrorCode, TrackSource};
use lanmeet_store::RoomRecord;

use crate::config::{FileSharing, RoomConfig};

/// A persistent room's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// Its name's key ([`validate::Name::key`]).
    pub key: String,
    /// Its name as shown.
    pub name: String,
    /// Participant password (argon2 PHC string).
    pub password: Option<String>,
    /// Moderator password (argon2 PHC string).
    pub moderator_password: Option<String>,
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
    /// Who may share files.
    pub files: FileSharing,
}

/// What a password admits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A participant.
    Participant,
    /// A moderator (the moderator password).
    Moderator,
}

impl RoomSettings {
    /// The settings of a config file's room: plain passwords are hashed, PHC strings
    /// checked and kept.
    pub fn from_config(room: &RoomConfig) -> anyhow::Result<Self> {
        let name = validate::room_name(&room.name)
            .map_err(|e| anyhow!("[[rooms]] name {:?}: {e}", room.name))?;
        let hash = |secret: &Option<crate::config::Secret>| {
            secret
                .as_ref()
                .map(|s| hash_secret(&s.0))
                .transpose()
                .with_context(|| format!("the passwords of room {}", name.display))
        };
        Ok(RoomSettings {
            key: name.key,
            password: hash(&room.password)?,
            moderator_password: hash(&room.moderator_password)?,
            name: name.display,
            lobby: room.lobby,
            max_participants: room.max_participants,
            video: room.video,
            audio: room.audio,
            screen: room.screen,
            files: room.files,
        })
    }

    /// The settings as stored.
    pub fn from_record(r: RoomRecord) -> Self {
        RoomSettings {
            key: r.key,
            name: r.name,
            password: r.password_hash,
            moderator_password: r.moderator_password_hash,
            lobby: r.lobby,
            max_participants: r.max_participants,
            video: r.video,
            audio: r.audio,
            screen: r.screen,
            // An unknown word (a newer version's) errs on the side of nobody.
            files: FileSharing::parse(&r.files).unwrap_or(FileSharing::Nobody),
        }
    }

    /// The record to store.
    pub fn record(&self) -> RoomRecord {
        RoomRecord {
            key: self.key.clone(),
            name: self.name.clone(),
            password_hash: self.password.clone(),
            moderator_password_hash: self.moderator_password.clone(),
            lobby: self.lobby,
            max_participants: self.max_participants,
            video: self.video,
            audio: self.audio,
            screen: self.screen,
            files: self.files.as_str().to_string(),
        }
    }

    /// Whether a join must give a password (either kind).
    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.moderator_password.is_some()
    }

    /// What `given` admits to: the moderator password makes a moderator, the
    /// participant password (or none, in a room without one) a participant. Slow:
    /// call it off the async threads.
    pub fn check(&self, given: Option<&str>) -> Result<Access, ErrorCode> {
        let Some(given) = given else {
            return match self.password {
                Some(_) => Err(ErrorCode::PasswordRequired),
                None => Ok(Access::Participant),
            };
        };
        if self
            .moderator_password
            .as_deref()
            .is_some_and(|h| verify(h, given))
        {
            return Ok(Access::Moderator);
        }
        if self.password.as_deref().is_some_and(|h| verify(h, given)) {
            return Ok(Access::Participant);
        }
        Err(ErrorCode::WrongPassword)
    }

    /// Whether participants (not moderators) may publish `source`.
    pub fn may_publish(&self, source: TrackSource) -> bool {
        match source {
            TrackSource::Camera => self.video,
            TrackSource::Microphone => self.audio,
            TrackSource::Screen => self.screen,
        }
    }
}

/// An argon2 PHC string for `secret`: kept as it is when it already is one (checked),
/// hashed with a fresh salt otherwise.
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    if secret.starts_with("$argon2") {
        PasswordHash::new(secret).map_err(|e| anyhow!("not a valid argon2 PHC string: {e}"))?;
        return Ok(secret.to_string());
    }
    if secret.is_empty() {
        anyhow::bail!("an empty password; leave it out for a room without one");
    }
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("hashing a password: {e}"))
}

/// Whether `given` matches the PHC string `hash` (argon2's constant-time comparison).
/// A hash that does not parse matches nothing.
pub fn verify(hash: &str, given: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(given.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn plain_and_phc_passwords_admit_their_holders_only() {
        let phc = hash_secret("teach").expect("hashes");
        assert!(phc.starts_with("$argon2id$"));
        let room = RoomConfig {
            name: "Physics".into(),
            password: Some(Secret("learn".into())),
            moderator_password: Some(Secret(phc.clone())),
            ..RoomConfig::default()
        };
        let s = RoomSettings::from_config(&room).expect("valid");
        assert_eq!(s.moderator_password.as_deref(), Some(phc.as_str()));
        assert_ne!(s.password.as_deref(), Some("learn"), "stored hashed");
        assert_eq!(s.check(Some("learn")), Ok(Access::Participant));
        assert_eq!(s.check(Some("teach")), Ok(Access::Moderator));
        assert_eq!(s.check(Some("Learn")), Err(ErrorCode::WrongPassword));
        assert_eq!(s.check(None), Err(ErrorCode::PasswordRequired));
        assert_eq!(RoomSettings::from_record(s.record()), s);
        assert!(hash_secret("$argon2id$nonsense").is_err());
        assert!(!verify("not a hash", "learn"));
    }
}
