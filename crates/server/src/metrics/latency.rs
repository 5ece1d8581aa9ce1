//! A histogram of the time the server adds to a forwarded packet, with fixed buckets so
//! that recording is an index search and an increment on the worker's thread.

use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 50 µs to 100 ms. Anything slower lands
/// in the implicit `+Inf` bucket.
pub const BUCKET_BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000,
];

/// Counts of durations per bucket (not cumulative; the exposition makes them so), their
/// count and their sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Durations at most `BUCKET_BOUNDS_US[i]` and above the bound before; the last
    /// entry counts those above every bound.
    pub buckets: [u64; BUCKET_BOUNDS_US.len() + 1],
    /// Durations recorded.
    pub count: u64,
    /// Their sum, in nanoseconds.
    pub sum_ns: u64,
}

impl LatencyHistogram {
    /// Records `n` datagrams that each took `d`.
    pub fn record(&mut self, d: Duration, n: u64) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = BUCKET_BOUNDS_US.partition_point(|bound| *bound < us);
        self.buckets[i] += n;
        self.count += n;
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.sum_ns = self.sum_ns.saturating_add(ns.saturating_mul(n));
    }

    /// Adds another histogram's counts (another worker's).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// Each bucket's own count per bound in seconds, without `+Inf`: prometheus-client's
    /// `encode_histogram` adds them up itself and writes `+Inf` from the total count.
    pub fn per_bucket(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKET_BOUNDS_US
            .iter()
            .map(|bound| *bound as f64 / 1e6)
            .zip(self.buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket() {
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_micros(50), 1); // on the bound: first bucket
        h.record(Duration::from_micros(51), 2);
        h.record(Duration::from_millis(200), 1);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 2);
        assert_eq!(h.buckets[BUCKET_BOUNDS_US.len()], 1);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum_ns, 50_000 + 2 * 51_000 + 200_000_000);
        let own: Vec<u64> = h.per_bucket().map(|(_, n)| n).collect();
        assert_eq!(own.len(), BUCKET_BOUNDS_US.len());
        assert_eq!(own[..3], [1, 2, 0]);
        assert_eq!(own.iter().sum::<u64>(), 3);
    }
}
