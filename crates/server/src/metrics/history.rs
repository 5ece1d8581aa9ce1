//! One-second samples of the server's data rates and load, the last hour of them kept in
//! memory, so that a dashboard opened late shows history at once; and a broadcast of
//! each new sample for live views (`/admin/api/live`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanmeet_sfu::MediaClass;
use serde::Serialize;
use tokio::sync::broadcast;

use super::process::ProcessStats;
use super::{Counters, MediaTotals, Monitor};
use crate::lifecycle::Lifecycle;

/// Samples kept: an hour of one a second.
pub const KEPT: usize = 3600;
/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Bytes in one second, by what they carried.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Rates {
    /// Camera video (RTP payload).
    pub video: u64,
    /// Shared screens (RTP payload).
    pub screen: u64,
    /// Audio (RTP payload).
    pub audio: u64,
    /// Signaling and chat over WebSockets.
    pub signaling: u64,
    /// Shared files.
    pub files: u64,
    /// Every UDP datagram of the media workers (media with its headers, RTCP, DTLS,
    /// STUN).
    pub udp: u64,
}

/// One second of the server's life.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// End of the second, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Bytes received in the second.
    pub received: Rates,
    /// Bytes sent in the second.
    pub sent: Rates,
    /// UDP datagrams received in the second.
    pub packets_in: u64,
    /// UDP datagrams sent in the second.
    pub packets_out: u64,
    /// Share of the second each media worker spent working (0 to 1).
    pub worker_load: Vec<f64>,
    /// CPU used by the process in the second, in cores (1.0: one core busy).
    pub cpu: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Rooms now.
    pub rooms: u64,
    /// Participants now.
    pub participants: u64,
}

/// Cumulative totals from which a sample is the difference.
#[derive(Debug, Clone, Default)]
struct Totals {
    received: Rates,
    sent: Rates,
    packets_in: u64,
    packets_out: u64,
    busy: Vec<f64>,
    cpu: f64,
}

impl Totals {
    fn read(media: &MediaTotals, c: &Counters, process: Option<ProcessStats>) -> Totals {
        let s = &media.sfu;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let rates = |f: &dyn Fn(MediaClass) -> u64, signaling, files, udp| Rates {
            video: f(MediaClass::Camera),
            screen: f(MediaClass::Screen),
            audio: f(MediaClass::Audio),
            signaling,
            files,
            udp,
        };
        Totals {
            received: rates(
                &|k| s.received.get(k).bytes,
                get(&c.signaling_in),
                get(&c.file_uploaded),
                media.datagrams_in.bytes,
            ),
            sent: rates(
                &|k| s.forwarded.get(k).bytes,
                get(&c.signaling_out),
                get(&c.file_downloaded),
                media.datagrams_out.bytes,
            ),
            packets_in: media.datagrams_in.packets,
            packets_out: media.datagrams_out.packets,
            busy: media.busy_seconds.clone(),
            cpu: process.map_or(0.0, |p| p.cpu_seconds),
        }
    }
}

fn minus(a: &Rates, b: &Rates) -> Rates {
    Rates {
        video: a.video.saturating_sub(b.video),
        screen: a.screen.saturating_sub(b.screen),
        audio: a.audio.saturating_sub(b.audio),
        signaling: a.signaling.saturating_sub(b.signaling),
        files: a.files.saturating_sub(b.files),
        udp: a.udp.saturating_sub(b.udp),
    }
}

/// The kept samples and the live feed.
#[derive(Debug)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
    live: broadcast::Sender<Sample>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// No samples yet.
    pub fn new() -> Self {
        History {
            samples: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::channel(16).0,
        }
    }

    /// Every kept sample, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// New samples as they are taken.
    pub fn subscribe(&self) -> broadcast::Receiver<Sample> {
        self.live.subscribe()
    }

    fn push(&self, sample: Sample) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() == KEPT {
                s.pop_front();
            }
            s.push_back(sample.clone());
        }
        // Nobody listening is fine.
        let _ = self.live.send(sample);
    }
}

/// Takes a sample every [`INTERVAL`] until shutdown.
pub async fn run_sampler(monitor: Arc<Monitor>, lifecycle: Lifecycle) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(Instant, Totals)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = lifecycle.shutting_down() => return,
        }
        let media = MediaTotals::of(&monitor.worker_stats());
        let process = ProcessStats::read();
        let now = Instant::now();
        let totals = Totals::read(&media, &monitor.counters, process);
        if let Some((then, before)) = &last {
            let secs = now.saturating_duration_since(*then).as_secs_f64().max(1e-3);
            let worker_load = totals
                .busy
                .iter()
                .zip(before.busy.iter().chain(std::iter::repeat(&0.0)))
                .map(|(b, a)| ((b - a) / secs).clamp(0.0, 1.0))
                .collect();
            monitor.history.push(Sample {
                at_ms: crate::chat::now_ms(),
                received: minus(&totals.received, &before.received),
                sent: minus(&totals.sent, &before.sent),
                packets_in: totals.packets_in.saturating_sub(before.packets_in),
                packets_out: totals.packets_out.saturating_sub(before.packets_out),
                worker_load,
                cpu: ((totals.cpu - before.cpu) / secs).max(0.0),
                rss_bytes: process.map_or(0, |p| p.rss_bytes),
                rooms: media.sfu.rooms,
                participants: media.sfu.participants,
            });
        }
        last = Some((now, totals));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64) -> Sample {
        Sample {
            at_ms,
            received: Rates::default(),
            sent: Rates::default(),
            packets_in: 0,
            packets_out: 0,
            worker_load: Vec::new(),
            cpu: 0.0,
            rss_bytes: 0,
            rooms: 0,
            participants: 0,
        }
    }

    #[test]
    fn keeps_the_last_hour() {
        let h = History::new();
        let mut live = h.subscribe();
        for i in 0..(KEPT as u64 + 10) {
            h.push(sample(i));
        }
        let kept = h.samples();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].at_ms, 10);
        assert_eq!(kept[KEPT - 1].at_ms, KEPT as u64 + 9);
        // The live feed lags: its receiver sees that it missed some, then new ones.
        assert!(live.try_recv().is_err());
    }
}
