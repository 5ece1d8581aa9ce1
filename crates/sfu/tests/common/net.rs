//! A simulated UDP network: datagrams wait in one queue ordered by delivery time, and
//! each directed link (source address → destination address) may lose a seeded random
//! share of them, delay the rest, and carry only so many bits per second: like a
//! `tc tbf` qdisc, a burst of up to the bucket's size passes at once, what exceeds the
//! rate waits in a bounded queue, and a datagram that would wait longer than the queue
//! holds is dropped. The burst matters: a short probe passes a full bucket far faster
//! than the link's rate, so a bandwidth estimator sees more than the link carries.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Behaviour of one directed link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Link {
    /// Share of datagrams dropped, 0.0 ..= 1.0.
    pub loss: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Capacity in bits per second; `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Longest a datagram may wait for its turn on a rate-limited link before it is
    /// dropped (the queue's size, in time).
    pub queue: Duration,
    /// Bytes a rate-limited link lets through at once after being idle (tbf's bucket).
    pub burst: u64,
}

impl Link {
    /// A link losing `loss` of its datagrams, without delay.
    pub fn lossy(loss: f64) -> Self {
        Link {
            loss,
            ..Link::default()
        }
    }

    /// A link carrying at most `rate_bps`, with a 6,000-byte bucket, a queue of 100 ms
    /// (drop-tail beyond) and 10 ms of delay: a slow Wi-Fi or an uplink shaped with
    /// `tc tbf` (the browser test's limit has the same bucket).
    pub fn limited(rate_bps: u64) -> Self {
        Link {
            rate_bps: Some(rate_bps),
            queue: Duration::from_millis(100),
            burst: 6000,
            delay: Duration::from_millis(10),
            ..Link::default()
        }
    }
}

/// A datagram on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// When it arrives.
    pub at: Instant,
    /// Tie-break: datagrams due at the same instant arrive in sending order.
    seq: u64,
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Contents.
    pub bytes: Vec<u8>,
}

impl Ord for Datagram {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Datagram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// IPv4 and UDP headers, counted against a link's rate like a real link would.
const UDP_IP_OVERHEAD: u64 = 28;

/// How many recently sent datagrams are kept for the fuzz tests to mutate.
const RECENT_KEPT: usize = 512;

/// The network between the SFU and the clients.
pub struct Network {
    queue: BinaryHeap<Reverse<Datagram>>,
    next_seq: u64,
    rng: StdRng,
    links: HashMap<(SocketAddr, SocketAddr), Link>,
    /// Each rate-limited link's theoretical finishing time of what it was given (a
    /// generic cell rate algorithm's TAT): a datagram may leave up to the bucket's
    /// worth of time before it.
    busy_until: HashMap<(SocketAddr, SocketAddr), Instant>,
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams the network dropped.
    pub lost: u64,
    /// Datagrams handed to the network, per sender.
    pub sent_from: HashMap<SocketAddr, u64>,
    /// The latest datagrams sent, lost or not: real STUN, DTLS and SRTP to mutate.
    pub recent: VecDeque<Datagram>,
}

impl Network {
    /// An ideal network whose future losses follow `seed`.
    pub fn new(seed: u64) -> Self {
        Network {
            queue: BinaryHeap::new(),
            next_seq: 0,
            rng: StdRng::seed_from_u64(seed),
            links: HashMap::new(),
            busy_until: HashMap::new(),
            sent: 0,
            lost: 0,
            sent_from: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// Sets the behaviour of the link from `from` to `to`, for datagrams sent from now on.
    ///
    /// A change of rate keeps what the link holds in bytes (the bucket's use and the
    /// queue): the rate-limit state is a time ahead of `now` at the old rate, and the
    /// same lead at a higher rate would stand for more bytes than were ever sent, so
    /// that 110 → 300 kbit/s looked like a queue overflowing for a tenth of a second.
    pub fn set_link(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, link: Link) {
        let old = self.links.insert((from, to), link).and_then(|l| l.rate_bps);
        let key = (from, to);
        match (old, link.rate_bps, self.busy_until.get(&key).copied()) {
            (Some(old), Some(new), Some(tat)) if tat > now && old != new => {
                let lead = (tat - now).as_nanos() * u128::from(old.max(1)) / u128::from(new.max(1));
                let lead = Duration::from_nanos(u64::try_from(lead).unwrap_or(u64::MAX));
                self.busy_until.insert(key, now + lead);
            }
            (_, None, _) | (None, _, _) => {
                self.busy_until.remove(&key);
            }
            _ => {}
        }
    }

    /// Sends a datagram at `now`.
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.sent += 1;
        *self.sent_from.entry(from).or_default() += 1;
        let link = self.links.get(&(from, to)).copied().unwrap_or_default();
        let departs = match link.rate_bps {
            Some(rate) => {
                let rate = rate.max(1);
                let tat = self
                    .busy_until
                    .get(&(from, to))
                    .copied()
                    .unwrap_or(now)
                    .max(now);
                let bucket = Duration::from_nanos(link.burst * 8 * 1_000_000_000 / rate);
                let bits = (bytes.len() as u64 + UDP_IP_OVERHEAD) * 8;
                let cost = Duration::from_nanos(bits * 1_000_000_000 / rate);
                let done = (tat + cost).checked_sub(bucket).unwrap_or(now).max(now);
                if done - now > link.queue {
                    // The queue is full: drop-tail, as tbf does.
                    None
                } else {
                    self.busy_until.insert((from, to), tat + cost);
                    Some(done)
                }
            }
            None => Some(now),
        };
        let datagram = Datagram {
            at: departs.unwrap_or(now) + link.delay,
            seq: self.next_seq,
            from,
            to,
            bytes,
        };
        self.next_seq += 1;
        if self.recent.len() == RECENT_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(datagram.clone());
        if departs.is_none() || (link.loss > 0.0 && self.rng.gen_bool(link.loss)) {
            self.lost += 1;
            return;
        }
        self.queue.push(Reverse(datagram));
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.at)
    }

    /// The next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        if self.next_arrival()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse(d)| d)
    }

    /// The seeded random source, shared so a whole scenario follows one seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}
