//! What subscribers measure: per received stream (one simulcast layer of a publisher's
//! track at one subscriber), unique packets, duplicates and reordering; for all streams
//! together, a latency histogram; per participant, when its first media arrived.

use std::collections::HashMap;

use crate::payload::{Kind, Label};

/// Receive statistics of one stream (one publisher's track at one subscriber) within the
/// measurement window.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// The first sequence number received in the window.
    pub first: Option<u64>,
    /// The highest sequence number received.
    pub highest: u64,
    /// Which of the 128 numbers up to `highest` arrived (bit 0 is `highest`).
    seen: u128,
    /// Unique packets received.
    pub received: u64,
    /// Packets received twice (retransmissions that crossed the original).
    pub duplicates: u64,
    /// Packets that arrived after a higher-numbered one.
    pub reordered: u64,
    /// Numbers skipped by a jump that ended on a keyframe: the SFU moved this
    /// subscriber to another layer and back (it switches on keyframes), so they were
    /// never meant for it.
    pub skipped: u64,
    /// When the latest packet arrived, nanoseconds since the epoch.
    pub last_ns: u64,
}

impl StreamStats {
    /// Counts one packet with sequence number `seq`; `key` if it starts a keyframe.
    pub fn record(&mut self, seq: u64, key: bool, now_ns: u64) {
        self.last_ns = self.last_ns.max(now_ns);
        let Some(first) = self.first else {
            self.first = Some(seq);
            self.highest = seq;
            self.seen = 1;
            self.received = 1;
            return;
        };
        if seq < first {
            // Sent before the window started.
            return;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            if key && shift > 1 {
                self.skipped += shift - 1;
            }
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            self.received += 1;
            return;
        }
        let age = self.highest - seq;
        if age >= 128 {
            // Too old to tell a duplicate from a late original; count it as late.
            self.reordered += 1;
            self.received += 1;
        } else if self.seen & (1 << age) != 0 {
            self.duplicates += 1;
        } else {
            self.seen |= 1 << age;
            self.reordered += 1;
            self.received += 1;
        }
    }
}

/// Latency histogram: 10 µs buckets up to 20 ms, then 1 ms buckets up to 10 s.
#[derive(Debug, Clone)]
pub struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

const FINE_NS: u64 = 10_000;
const FINE_BUCKETS: usize = 2_000;
const COARSE_NS: u64 = 1_000_000;
const COARSE_BUCKETS: usize = 10_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            fine: vec![0; FINE_BUCKETS],
            coarse: vec![0; COARSE_BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        let fine = (ns / FINE_NS) as usize;
        if fine < FINE_BUCKETS {
            self.fine[fine] += 1;
        } else {
            let coarse = ((ns / COARSE_NS) as usize).min(COARSE_BUCKETS - 1);
            self.coarse[coarse] += 1;
        }
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.fine.iter_mut().zip(&other.fine) {
            *a += b;
        }
        for (a, b) in self.coarse.iter_mut().zip(&other.coarse) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latency below which a fraction `q` (0..=1) of samples lie, in milliseconds
    /// (upper edge of the bucket, so never optimistic).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.fine.iter().enumerate() {
            seen += n;
            if seen >= target {
                let edge = (i as u64 + 1) * FINE_NS;
                return edge.min(self.max_ns) as f64 / 1e6;
            }
        }
        for (i, n) in self.coarse.iter().enumerate() {
            seen += n;
            if seen >= target {
                let edge = (i as u64 + 1) * COARSE_NS;
                return edge.min(self.max_ns) as f64 / 1e6;
            }
        }
        self.max_ns as f64 / 1e6
    }

    /// Largest latency, milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }

    /// Mean latency, milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.sum_ns / u128::from(self.count)) as f64 / 1e6
        }
    }
}

/// Key of a received stream: (subscriber, publisher, kind, layer), load-generator
/// indices.
pub type StreamKey = (u32, u32, Kind, u8);

/// Everything one media engine measured in the window.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Per received stream.
    pub streams: HashMap<StreamKey, StreamStats>,
    /// Per published track and layer: (first sequence number of the window, next unsent
    /// number).
    pub sent: HashMap<(u32, Kind, u8), (u64, u64)>,
    /// One-way latency of every packet received in the window.
    pub latency: Histogram,
    /// Datagrams the engine could not send (socket buffer full).
    pub send_errors: u64,
    /// Payloads that were not ours.
    pub foreign_packets: u64,
    /// Every media payload received since the engine started, in the window or not (to
    /// compare with a server's own counters over a whole run).
    pub received_total: u64,
    /// When each participant received its first media packet, nanoseconds since the
    /// epoch (window or not).
    pub first_media: HashMap<u32, u64>,
    /// What station viewers received (`--station`).
    pub station: crate::station::StationStats,
}

impl EngineStats {
    /// Records a received payload; `key` if it starts a keyframe.
    pub fn record(&mut self, subscriber: u32, label: Label, key: bool, now_ns: u64) {
        self.streams
            .entry((subscriber, label.publisher, label.kind, label.layer))
            .or_default()
            .record(label.seq, key, now_ns);
        self.latency.record(now_ns.saturating_sub(label.sent_ns));
    }

    /// Adds another engine's figures.
    pub fn merge(&mut self, other: EngineStats) {
        self.streams.extend(other.streams);
        self.sent.extend(other.sent);
        self.latency.merge(&other.latency);
        self.send_errors += other.send_errors;
        self.foreign_packets += other.foreign_packets;
        self.received_total += other.received_total;
        self.first_media.extend(other.first_media);
        self.station.merge(other.station);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_counts_loss_duplicates_and_reordering() {
        let mut s = StreamStats::default();
        for seq in [10, 11, 13, 12, 12, 14, 200, 15] {
            s.record(seq, false, seq);
        }
        assert_eq!(s.first, Some(10));
        assert_eq!(s.highest, 200);
        assert_eq!(s.received, 7);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.reordered, 2);
        s.record(5, false, 0);
        assert_eq!(s.received, 7);
        assert_eq!((s.skipped, s.last_ns), (0, 200));
        // Away on another layer and back on a keyframe: the gap is not loss.
        s.record(300, true, 300);
        assert_eq!((s.skipped, s.received), (99, 8));
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(us * 100_000);
        }
        assert!((h.quantile_ms(0.5) - 5.0).abs() < 0.02);
        assert!((h.quantile_ms(0.99) - 9.9).abs() < 0.02);
        assert_eq!(h.max_ms(), 10.0);
        h.record(50_000_000);
        assert_eq!(h.quantile_ms(1.0), 50.0);
    }
}
