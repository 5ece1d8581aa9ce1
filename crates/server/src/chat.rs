//! Room and private chat: limits, recipient enforcement, history.
//!
//! Room messages are stored and replayed to joiners; private messages go to exactly the
//! named participants of the room (and back to the sender) and are never stored, so a
//! later participant who takes the same name never sees them.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lanmeet_proto::{
    ChatMessage, ErrorCode, ParticipantId, ParticipantRef, ServerMessage, SharedFile,
};
use lanmeet_store::{FileRecord, HistoryEntry, Person, Store};
use tracing::warn;

use crate::rooms::Registry;

/// Chat limits.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    /// Largest message in bytes.
    pub max_bytes: usize,
    /// Messages replayed to a joiner.
    pub history: usize,
    /// Burst allowance.
    pub burst: u32,
    /// Sustained messages per second.
    pub rate: f64,
    /// How long room messages are kept.
    pub retention: std::time::Duration,
}

/// A refused message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ChatError {
    /// Protocol code.
    pub code: ErrorCode,
    /// Text for the user.
    pub message: String,
}

/// The chat service shared by all signaling tasks.
pub struct Chat {
    registry: Arc<Registry>,
    store: Arc<Store>,
    limits: ChatLimits,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Chat {
    /// A chat service over `registry` storing history in `store`.
    pub fn new(registry: Arc<Registry>, store: Arc<Store>, limits: ChatLimits) -> Self {
        Chat {
            registry,
            store,
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ChatLimits {
        self.limits
    }

    /// Sends `text` from `from` to the room (`to` empty) or privately to `to`.
    pub fn post(
        &self,
        room: &str,
        from: ParticipantId,
        text: &str,
        to: &[ParticipantId],
    ) -> Result<(), ChatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChatError {
                code: ErrorCode::BadMessage,
                message: "The message is empty.".into(),
            });
        }
        if text.len() > self.limits.max_bytes {
            return Err(ChatError {
                code: ErrorCode::TooLarge,
                message: format!(
                    "The message is too long: at most {} bytes.",
                    self.limits.max_bytes
                ),
            });
        }
        let Some(name) = self.registry.name_of(room, from) else {
            return Err(ChatError {
                code: ErrorCode::WrongState,
                message: "Join a room first.".into(),
            });
        };
        let sender = ParticipantRef { id: from, name };
        let ts = now_ms();
        if to.is_empty() {
            // Stored before it is sent, so it is in the history of anyone who joins next.
            let person = Person {
                id: from.0,
                name: sender.name.clone(),
            };
            if let Err(e) = self.store.add_message(room, &person, text, ts) {
                warn!("storing chat message: {e}");
                let message = if e.is_full() {
                    "The server's chat storage is full; ask the host to free space."
                } else {
                    "The message could not be stored; please try again."
                };
                return Err(ChatError {
                    code: ErrorCode::Unavailable,
                    message: message.into(),
                });
            }
            let message = ChatMessage {
                ts,
                from: sender,
                to: Vec::new(),
                text: text.to_string(),
                file: None,
                notice: false,
            };
            let _ = self.registry.deliver(room, None, |_| ServerMessage::Chat {
                message: message.clone(),
            });
            return Ok(());
        }
        let mut targets: Vec<ParticipantId> = to.iter().copied().filter(|id| *id != from).collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(ChatError {
                code: ErrorCode::UnknownRecipient,
                message: "Choose someone other than yourself.".into(),
            });
        }
        let mut with_sender = targets.clone();
        with_sender.push(from);
        // Recipient names for the message come from the registry; the sender is added to
        // the delivery list only, never to `to`.
        let result = self
            .registry
            .deliver(room, Some(&with_sender), |refs| ServerMessage::Chat {
                message: ChatMessage {
                    ts,
                    from: sender.clone(),
                    to: refs.iter().filter(|r| r.id != from).cloned().collect(),
                    text: text.to_string(),
                    file: None,
                    notice: false,
                },
            });
        result.map(|_| ()).map_err(|missing| ChatError {
            code: ErrorCode::UnknownRecipient,
            message: format!(
                "{} of the chosen people {} not in the room any more.",
                missing.len(),
                if missing.len() == 1 { "is" } else { "are" }
            ),
        })
    }

    /// Deletes room messages older than the retention period at `now_ms` (shared
    /// files' entries expire with their files). Returns how many.
    pub fn expire(&self, now_ms: u64) -> Result<usize, lanmeet_store::StoreError> {
        let cutoff = now_ms.saturating_sub(self.limits.retention.as_millis() as u64);
        self.store.delete_messages_older_than(cutoff)
    }

    /// The room's recent history as protocol messages.
    pub fn history(&self, room: &str) -> Vec<ChatMessage> {
        match self.store.history(room, self.limits.history) {
            Ok(entries) => entries.into_iter().map(history_message).collect(),
            Err(e) => {
                warn!("reading chat history: {e}");
                Vec::new()
            }
        }
    }
}

fn person_ref(p: &Person) -> ParticipantRef {
    ParticipantRef {
        id: ParticipantId(p.id),
        name: p.name.clone(),
    }
}

/// The protocol form of a stored file.
pub fn shared_file(f: &FileRecord) -> SharedFile {
    SharedFile {
        name: f.name.clone(),
        size: f.size,
        mime: f.mime.clone(),
        sha256: f.sha256.clone(),
        url: format!("/files/{}", f.token),
    }
}

/// The chat notice announcing a stored file.
pub fn file_message(f: &FileRecord) -> ChatMessage {
    ChatMessage {
        ts: f.ts_ms,
        from: person_ref(&f.sender),
        to: f.recipients.iter().map(person_ref).collect(),
        text: String::new(),
        file: Some(shared_file(f)),
        notice: false,
    }
}

fn history_message(e: HistoryEntry) -> ChatMessage {
    match &e.file {
        Some(f) => file_message(f),
        None => ChatMessage {
            ts: e.ts_ms,
            from: person_ref(&e.sender),
            to: Vec::new(),
            text: e.text,
            file: None,
            notice: e.notice,
        },
    }
}

/// A token bucket: `burst` messages at once, refilled at `rate` per second.
#[derive(Debug)]
pub struct RateLimiter {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(burst: u32, rate: f64, now: Instant) -> Self {
        RateLimiter {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate,
            last: now,
        }
    }

    /// When a token was last asked for.
    pub fn last(&self) -> Instant {
        self.last
    }

    /// Takes one token if available.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.available(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is available, without taking it.
    pub fn available(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens >= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limiter_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(3, 2.0, t0);
        assert!(r.allow(t0) && r.allow(t0) && r.allow(t0));
        assert!(!r.allow(t0));
        assert!(!r.allow(t0 + Duration::from_millis(400)));
        assert!(r.allow(t0 + Duration::from_millis(900)));
        assert!(!r.allow(t0 + Duration::from_millis(950)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(r.allow(later) && r.allow(later) && r.allow(later));
        assert!(!r.allow(later));
    }
}
