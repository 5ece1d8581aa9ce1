//! The server's own account of the time it adds: lanmeet's arrival-to-send histogram
//! (`lanmeet_forward_delay_seconds` on `/metrics`, see README "Monitoring"), read at the
//! start and the end of the measurement window, so the difference covers exactly the
//! packets forwarded in it. Beside the load generator's one-way latency (which includes
//! its own queueing and the network), it says what the server itself adds.

use anyhow::{bail, Context};
use prometheus_parse::{Scrape, Value};
use serde::Serialize;

/// The histogram's name in the exposition.
const METRIC: &str = "lanmeet_forward_delay_seconds";

/// One reading of the histogram: cumulative counts per upper bound (seconds), ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelayHistogram {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum_s: f64,
}

/// The server-side delay over the window, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerDelay {
    /// Median (interpolated within its bucket, as Prometheus's `histogram_quantile`).
    pub p50: Option<f64>,
    /// 99th percentile; `None` when it lies above the largest bucket (100 ms).
    pub p99: Option<f64>,
    /// Mean.
    pub mean: f64,
    /// Forwarding events counted in the window.
    pub samples: u64,
}

/// Reads the histogram from `url` (a `/metrics` address served without a password, e.g.
/// the server's `--metrics-listen`).
pub async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<DelayHistogram> {
    let text = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("reading {url}"))?
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    parse(&text)
}

/// Finds the histogram in a Prometheus text exposition.
pub fn parse(text: &str) -> anyhow::Result<DelayHistogram> {
    let scrape =
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).context("parsing the metrics")?;
    let mut h = DelayHistogram::default();
    let mut found = false;
    for sample in scrape.samples {
        match (sample.metric.strip_prefix(METRIC), sample.value) {
            (Some(""), Value::Histogram(buckets)) => {
                found = true;
                h.buckets = buckets.iter().map(|b| (b.less_than, b.count)).collect();
                h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            (Some("_count"), Value::Untyped(v) | Value::Counter(v)) => h.count = v,
            (Some("_sum"), Value::Untyped(v) | Value::Counter(v)) => h.sum_s = v,
            _ => {}
        }
    }
    if !found {
        bail!("no {METRIC} in the metrics");
    }
    // Cumulative buckets never fall and never exceed the count.
    let counts: Vec<f64> = h.buckets.iter().map(|(_, n)| *n).collect();
    if counts.windows(2).any(|w| w[1] < w[0]) || counts.iter().any(|n| *n > h.count) {
        bail!(
            "{METRIC} is not a cumulative histogram: buckets {counts:?}, count {}",
            h.count
        );
    }
    Ok(h)
}

impl DelayHistogram {
    /// What was recorded between `start` and this reading.
    pub fn since(&self, start: &DelayHistogram) -> DelayHistogram {
        let before = |bound: f64| {
            start
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, n)| *n)
        };
        DelayHistogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(b, n)| (b, (n - before(b)).max(0.0)))
                .collect(),
            count: (self.count - start.count).max(0.0),
            sum_s: (self.sum_s - start.sum_s).max(0.0),
        }
    }

    /// The delay below which a fraction `q` of events lie, milliseconds, interpolated
    /// linearly within its bucket; `None` without events or above the largest bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        let mut lower = (0.0, 0.0);
        for &(bound, n) in &self.buckets {
            if bound.is_finite() && n >= rank {
                let (lb, ln) = lower;
                let share = if n > ln { (rank - ln) / (n - ln) } else { 1.0 };
                return Some((lb + (bound - lb) * share) * 1e3);
            }
            lower = (bound, n);
        }
        None
    }

    /// The figures for a report.
    pub fn summary(&self) -> ServerDelay {
        ServerDelay {
            p50: self.quantile_ms(0.5),
            p99: self.quantile_ms(0.99),
            mean: if self.count > 0.0 {
                self.sum_s / self.count * 1e3
            } else {
                0.0
            },
            samples: self.count as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(buckets: [u64; 4], count: u64, sum: f64) -> String {
        format!(
            "# TYPE lanmeet_forward_delay_seconds histogram\n\
             lanmeet_forward_delay_seconds_bucket{{le=\"0.0001\"}} {}\n\
             lanmeet_forward_delay_seconds_bucket{{le=\"0.001\"}} {}\n\
             lanmeet_forward_delay_seconds_bucket{{le=\"0.01\"}} {}\n\
             lanmeet_forward_delay_seconds_bucket{{le=\"0.1\"}} {}\n\
             lanmeet_forward_delay_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             lanmeet_forward_delay_seconds_sum {sum}\n\
             lanmeet_forward_delay_seconds_count {count}\n\
             # TYPE lanmeet_rooms gauge\nlanmeet_rooms 1\n",
            buckets[0], buckets[1], buckets[2], buckets[3]
        )
    }

    #[test]
    fn the_window_is_the_difference_of_two_readings() {
        let start = parse(&exposition([10, 20, 20, 20], 20, 0.01)).expect("parses");
        let end = parse(&exposition([10, 120, 218, 219], 220, 0.51)).expect("parses");
        let window = end.since(&start);
        let s = window.summary();
        assert_eq!(s.samples, 200);
        assert!((s.mean - 2.5).abs() < 1e-9, "{}", s.mean);
        // 100 of 200 events are in (0.1 ms, 1 ms]: the median is that bucket's top.
        let p50 = s.p50.expect("p50");
        assert!((p50 - 1.0).abs() < 1e-9, "{p50}");
        // The 198th event is the 98th of (1 ms, 10 ms]'s 98: its top.
        let p99 = s.p99.expect("p99");
        assert!((p99 - 10.0).abs() < 1e-9, "{p99}");
        // Above the largest bound, no figure.
        assert_eq!(window.quantile_ms(1.0), None);
        assert!(parse("lanmeet_rooms 1\n").is_err());
        // Buckets cumulated twice (more events below 100 ms than in all) are refused.
        assert!(parse(&exposition([10, 130, 348, 567], 220, 0.5)).is_err());
    }
}
