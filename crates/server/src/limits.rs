//! Bounds on what one client may make the server do: the settings of the signaling
//! actor (queue, send timeout, join deadline), a token bucket per participant and
//! message type, and joins and wrong room passwords per address.
//!
//! Every bound refuses with an error the client can show (docs/PROTOCOL.md, "Limits")
//! or removes the one participant that exceeds it; none makes anyone else wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lanmeet_proto::ClientMessage;

use crate::chat::RateLimiter;

/// What a participant's actor is allowed, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SignalingLimits {
    /// Messages waiting for a participant's socket, at most; a full queue removes it.
    pub outbound_queue: usize,
    /// The longest one write to a participant's socket may take; a slower one removes
    /// it.
    pub send_timeout: Duration,
    /// Time from the WebSocket upgrade to `join`; a socket that has not joined by then
    /// is closed, whatever else it sends.
    pub join_timeout: Duration,
}

/// A message type's bucket: `burst` messages at once, `rate` per second sustained.
#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: u32,
    rate: f64,
}

/// The rates per participant and message type. Chat has its own, configurable
/// (`--chat-burst`, `--chat-rate`); `join` is once per socket and limited per address;
/// `leave` ends the session.
const RATES: [(&str, Rate); 14] = [
    // Renegotiations: camera on and off, screen share on and off.
    (
        "publish_offer",
        Rate {
            burst: 5,
            rate: 2.0,
        },
    ),
    // One per subscribe offer, which follows membership changes in the room.
    (
        "subscribe_answer",
        Rate {
            burst: 20,
            rate: 10.0,
        },
    ),
    (
        "screen_share",
        Rate {
            burst: 5,
            rate: 2.0,
        },
    ),
    (
        "media_state",
        Rate {
            burst: 20,
            rate: 5.0,
        },
    ),
    // The layout sends one per resize, debounced.
    (
        "view",
        Rate {
            burst: 30,
            rate: 10.0,
        },
    ),
    // Moderation: a moderator clicks; a flood must not fill the chat history.
    (
        "moderate",
        Rate {
            burst: 20,
            rate: 5.0,
        },
    ),
    (
        "room_control",
        Rate {
            burst: 5,
            rate: 1.0,
        },
    ),
    (
        "raise_hand",
        Rate {
            burst: 5,
            rate: 1.0,
        },
    ),
    (
        "admit",
        Rate {
            burst: 20,
            rate: 5.0,
        },
    ),
    // The stations page refreshes its list every 2 s; switching is a click.
    (
        "list_stations",
        Rate {
            burst: 10,
            rate: 2.0,
        },
    ),
    (
        "watch",
        Rate {
            burst: 10,
            rate: 2.0,
        },
    ),
    (
        "stop_watching",
        Rate {
            burst: 10,
            rate: 2.0,
        },
    ),
    // The client pings every 2 s.
    (
        "ping",
        Rate {
            burst: 10,
            rate: 2.0,
        },
    ),
    // Messages that cannot be parsed, each answered with `bad_message`.
    (
        "invalid",
        Rate {
            burst: 50,
            rate: 10.0,
        },
    ),
];

/// A refused message: its type and the sustained rate it is limited to.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimited {
    /// The message type (`invalid` for unparsable ones).
    pub kind: &'static str,
    /// Messages per second allowed, sustained.
    pub rate: f64,
}

impl RateLimited {
    /// Text for the user.
    pub fn message(&self) -> String {
        format!(
            "Too many {} messages: at most {} per second. This one was dropped.",
            self.kind, self.rate
        )
    }
}

/// One participant's buckets, one per limited message type.
pub struct MessageRates {
    buckets: Vec<(&'static str, f64, RateLimiter)>,
}

impl MessageRates {
    /// Full buckets at `now`.
    pub fn new(now: Instant) -> Self {
        let buckets = RATES
            .iter()
            .map(|(kind, r)| (*kind, r.rate, RateLimiter::new(r.burst, r.rate, now)))
            .collect();
        MessageRates { buckets }
    }

    /// Takes a token for a message of type `kind` (see [`kind_of`]); types without a
    /// bucket always pass.
    pub fn allow(&mut self, kind: &str, now: Instant) -> Result<(), RateLimited> {
        match self.buckets.iter_mut().find(|(k, ..)| *k == kind) {
            Some((k, rate, bucket)) => {
                if bucket.allow(now) {
                    Ok(())
                } else {
                    Err(RateLimited {
                        kind: k,
                        rate: *rate,
                    })
                }
            }
            None => Ok(()),
        }
    }
}

/// The `type` of a client message, as in the protocol.
pub fn kind_of(msg: &ClientMessage) -> &'static str {
    match msg {
        ClientMessage::Join { .. } => "join",
        ClientMessage::PublishOffer { .. } => "publish_offer",
        ClientMessage::SubscribeAnswer { .. } => "subscribe_answer",
        ClientMessage::View { .. } => "view",
        ClientMessage::MediaState { .. } => "media_state",
        ClientMessage::ScreenShare { .. } => "screen_share",
        ClientMessage::Chat { .. } => "chat",
        ClientMessage::Ping { .. } => "ping",
        ClientMessage::Leave { .. } => "leave",
        ClientMessage::RaiseHand { .. } => "raise_hand",
        ClientMessage::Moderate { .. } => "moderate",
        ClientMessage::RoomControl { .. } => "room_control",
        ClientMessage::Admit { .. } => "admit",
        ClientMessage::ListStations { .. } => "list_stations",
        ClientMessage::Watch { .. } => "watch",
        ClientMessage::StopWatching { .. } => "stop_watching",
    }
}

/// Addresses remembered before idle ones are forgotten.
const JOIN_ADDRESSES: usize = 4096;

/// Joins (or wrong room passwords) per client address: `burst` at once, `rate` per
/// second sustained.
pub struct JoinRates {
    burst: u32,
    rate: f64,
    by_address: Mutex<HashMap<IpAddr, RateLimiter>>,
}

impl JoinRates {
    /// Limits joins from one address to `burst` at once and `rate` per second.
    pub fn new(burst: u32, rate: f64) -> Self {
        JoinRates {
            burst,
            rate,
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a join token for `address`; `Err` holds the sustained rate.
    pub fn allow(&self, address: IpAddr, now: Instant) -> Result<(), f64> {
        self.with_bucket(address, now, |bucket| bucket.allow(now))
    }

    /// Whether `address` has a token left, without taking it (wrong passwords: the
    /// bucket is checked before each guess and a token taken only for a wrong one);
    /// `Err` holds the sustained rate.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), f64> {
        self.with_bucket(address, now, |bucket| bucket.available(now))
    }

    fn with_bucket(
        &self,
        address: IpAddr,
        now: Instant,
        f: impl FnOnce(&mut RateLimiter) -> bool,
    ) -> Result<(), f64> {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= JOIN_ADDRESSES && !map.contains_key(&address) {
            // An address whose bucket has refilled is as good as forgotten.
            let refill = Duration::from_secs_f64(f64::from(self.burst) / self.rate);
            map.retain(|_, bucket| now.saturating_duration_since(bucket.last()) < refill);
        }
        let bucket = map
            .entry(address)
            .or_insert_with(|| RateLimiter::new(self.burst, self.rate, now));
        if f(bucket) {
            Ok(())
        } else {
            Err(self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limited_type_names_itself_and_others_pass() {
        let t0 = Instant::now();
        let mut rates = MessageRates::new(t0);
        for _ in 0..5 {
            assert_eq!(rates.allow("publish_offer", t0), Ok(()));
        }
        let refused = rates
            .allow("publish_offer", t0)
            .expect_err("over the burst");
        assert_eq!(refused.kind, "publish_offer");
        assert!(refused.message().contains("at most 2 per second"));
        // Buckets are separate; unlimited types always pass.
        assert_eq!(rates.allow("media_state", t0), Ok(()));
        for _ in 0..100 {
            assert_eq!(rates.allow("leave", t0), Ok(()));
        }
        assert_eq!(
            rates.allow("publish_offer", t0 + Duration::from_millis(600)),
            Ok(())
        );
    }

    #[test]
    fn joins_are_limited_per_address() {
        let t0 = Instant::now();
        let joins = JoinRates::new(2, 1.0);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("an address"),
            "10.0.0.2".parse().expect("an address"),
        );
        assert!(joins.allow(a, t0).is_ok() && joins.allow(a, t0).is_ok());
        assert_eq!(joins.allow(a, t0), Err(1.0));
        assert!(joins.allow(b, t0).is_ok());
        assert!(joins.allow(a, t0 + Duration::from_secs(1)).is_ok());
    }
}
