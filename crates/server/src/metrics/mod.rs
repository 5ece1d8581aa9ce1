//! What the server counts and how it is shown: signaling-side [`Counters`], the
//! media workers' copied statistics, and the Prometheus exposition at `/metrics`.
//!
//! Submodules: [`latency`] (the forwarding-delay histogram), [`history`] (one-second
//! samples kept for an hour), [`process`] (this process's CPU and memory).
//!
//! Nothing here is touched per media packet: workers count in plain integers on their own
//! thread and copy their counters out every 500 ms; signaling counters are atomics bumped
//! per message or chunk. A scrape reads the copies and encodes them (a custom
//! `prometheus_client` collector), so `/metrics` costs the workers nothing.

pub mod history;
pub mod latency;
pub mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lanmeet_sfu::{Flow, MediaClass, SfuStats};
use lanmeet_store::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as PromRegistry;

use crate::media::WorkerStats;
use crate::rooms::Registry;
use latency::LatencyHistogram;

/// Counters of the signaling side (WebSockets, chat, files). Bumped per message or
/// chunk, never per media packet.
#[derive(Debug, Default)]
pub struct Counters {
    /// WebSocket connections accepted.
    pub ws_accepted: AtomicU64,
    /// WebSocket connections open now.
    pub ws_open: AtomicI64,
    /// Chat messages accepted (room or private).
    pub chat_messages: AtomicU64,
    /// Bytes of WebSocket text received from participants.
    pub signaling_in: AtomicU64,
    /// Bytes of WebSocket text sent to participants.
    pub signaling_out: AtomicU64,
    /// File bytes received in uploads.
    pub file_uploaded: AtomicU64,
    /// File bytes sent in downloads.
    pub file_downloaded: AtomicU64,
    /// Refused joins by error code (`invalid_name`, `name_taken`, ...).
    join_failures: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a refused join with error code `reason`.
    pub fn join_failed(&self, reason: &str) {
        if let Ok(mut m) = self.join_failures.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// Refused joins by reason.
    pub fn join_failures(&self) -> BTreeMap<String, u64> {
        self.join_failures
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Everything the workers reported, summed over workers.
#[derive(Debug, Default, Clone)]
pub struct MediaTotals {
    /// The SFUs' counters, summed (gauges too).
    pub sfu: SfuStats,
    /// Datagrams read, all workers.
    pub datagrams_in: Flow,
    /// Datagrams sent, all workers.
    pub datagrams_out: Flow,
    /// Forwarding delay, all workers.
    pub forward_delay: LatencyHistogram,
    /// Seconds each worker spent working since start.
    pub busy_seconds: Vec<f64>,
}

impl MediaTotals {
    /// Sums the workers' copies.
    pub fn of(workers: &[WorkerStats]) -> MediaTotals {
        let mut t = MediaTotals::default();
        for w in workers {
            let (a, b) = (&mut t.sfu, &w.sfu);
            for class in MediaClass::ALL {
                add_flow(a.received.get_mut(class), b.received.get(class));
                add_flow(a.forwarded.get_mut(class), b.forwarded.get(class));
                *a.tracks.get_mut(class) += b.tracks.get(class);
            }
            a.keyframe_requests += b.keyframe_requests;
            a.nacks_received += b.nacks_received;
            add_flow(&mut a.retransmissions, &b.retransmissions);
            a.datagrams_dropped += b.datagrams_dropped;
            a.layer_switches += b.layer_switches;
            a.forged_rebinds_undone += b.forged_rebinds_undone;
            a.rooms += b.rooms;
            a.participants += b.participants;
            add_flow(&mut t.datagrams_in, &w.datagrams_in);
            add_flow(&mut t.datagrams_out, &w.datagrams_out);
            t.forward_delay.merge(&w.forward_delay);
            t.busy_seconds.push(w.busy.as_secs_f64());
        }
        t
    }
}

fn add_flow(a: &mut Flow, b: &Flow) {
    a.packets += b.packets;
    a.bytes += b.bytes;
}

/// What `/metrics` and the admin API read: the counters and where the rest comes from.
pub struct Monitor {
    /// Signaling-side counters.
    pub counters: Arc<Counters>,
    registry: Arc<Registry>,
    store: Arc<Store>,
    quota_bytes: u64,
    /// One-second samples of the last hour.
    pub history: history::History,
}

/// Shared files right now.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Storage {
    /// Distinct files stored.
    pub files: u64,
    /// Bytes they take.
    pub bytes: u64,
    /// The storage quota in bytes.
    pub quota_bytes: u64,
}

impl Monitor {
    /// A monitor over `registry`'s workers and `store`'s files.
    pub fn new(
        counters: Arc<Counters>,
        registry: Arc<Registry>,
        store: Arc<Store>,
        quota_bytes: u64,
    ) -> Self {
        Monitor {
            counters,
            registry,
            store,
            quota_bytes,
            history: history::History::new(),
        }
    }

    /// The rooms registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Every worker's latest copy.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.registry
            .workers()
            .iter()
            .map(|w| w.worker_stats())
            .collect()
    }

    /// Shared files and the quota (zeros if the database cannot be read).
    pub fn storage(&self) -> Storage {
        Storage {
            files: self.store.stored_files().unwrap_or(0),
            bytes: self.store.stored_bytes().unwrap_or(0),
            quota_bytes: self.quota_bytes,
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of everything.
    pub fn exposition(self: &Arc<Self>) -> Result<String, std::fmt::Error> {
        let mut registry = PromRegistry::with_prefix("lanmeet");
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// Content type of [`Monitor::exposition`].
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

/// Writes metric families into a descriptor encoder; names get the registry's prefix,
/// and counters `_total` (added by the encoder).
struct Out<'a>(DescriptorEncoder<'a>);

type Fmt = Result<(), std::fmt::Error>;

impl Out<'_> {
    fn counter(&mut self, name: &str, help: &str, v: u64) -> Fmt {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        m.encode_counter::<NoLabelSet, _, u64>(&v, None)
    }

    fn counter_f64(&mut self, name: &str, help: &str, v: f64) -> Fmt {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        m.encode_counter::<NoLabelSet, _, f64>(&v, None)
    }

    fn gauge(&mut self, name: &str, help: &str, v: i64) -> Fmt {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        m.encode_gauge(&v)
    }

    /// A counter family with one label (`key`), one series per value.
    fn counters_by<'v>(
        &mut self,
        name: &str,
        help: &str,
        key: &'static str,
        values: impl IntoIterator<Item = (&'v str, u64)>,
    ) -> Fmt {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (label, v) in values {
            let labels = [(key, label)];
            m.encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
        }
        Ok(())
    }

    fn gauges_by<'v>(
        &mut self,
        name: &str,
        help: &str,
        key: &'static str,
        values: impl IntoIterator<Item = (&'v str, i64)>,
    ) -> Fmt {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (label, v) in values {
            let labels = [(key, label)];
            m.encode_family(&labels)?.encode_gauge(&v)?;
        }
        Ok(())
    }
}

fn by_class(f: impl Fn(MediaClass) -> u64) -> Vec<(&'static str, u64)> {
    MediaClass::ALL.iter().map(|c| (c.label(), f(*c))).collect()
}

impl Collector for Monitor {
    fn encode(&self, encoder: DescriptorEncoder) -> Fmt {
        let media = MediaTotals::of(&self.worker_stats());
        let s = &media.sfu;
        let c = &self.counters;
        let mut out = Out(encoder);
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        {
            let mut m = out.0.encode_descriptor(
                "build_info",
                "lanmeet's version",
                None,
                MetricType::Gauge,
            )?;
            m.encode_family(&version)?.encode_gauge(&1i64)?;
        }
        out.gauge("rooms", "Rooms open now.", s.rooms as i64)?;
        out.gauge(
            "participants",
            "Participants in rooms now.",
            s.participants as i64,
        )?;
        let tracks = by_class(|k| *s.tracks.get(k));
        out.gauges_by(
            "published_tracks",
            "Tracks published now, by kind (video: camera; screen; audio).",
            "kind",
            tracks.iter().map(|(k, v)| (*k, *v as i64)),
        )?;
        let rx = |k| *s.received.get(k);
        let tx = |k| *s.forwarded.get(k);
        out.counters_by(
            "rtp_received_packets",
            "RTP packets received from publishers, by kind.",
            "kind",
            by_class(|k| rx(k).packets),
        )?;
        out.counters_by(
            "rtp_received_bytes",
            "RTP payload bytes received from publishers, by kind.",
            "kind",
            by_class(|k| rx(k).bytes),
        )?;
        out.counters_by(
            "rtp_sent_packets",
            "RTP packets forwarded to subscribers (each copy), by kind; retransmissions not included.",
            "kind",
            by_class(|k| tx(k).packets),
        )?;
        out.counters_by(
            "rtp_sent_bytes",
            "RTP payload bytes forwarded to subscribers, by kind.",
            "kind",
            by_class(|k| tx(k).bytes),
        )?;
        out.counter(
            "forwarded_packets",
            "RTP packets forwarded to subscribers, every kind.",
            s.packets_forwarded(),
        )?;
        out.counter(
            "udp_received_datagrams",
            "UDP datagrams read by the media workers.",
            media.datagrams_in.packets,
        )?;
        out.counter(
            "udp_received_bytes",
            "UDP payload bytes read by the media workers.",
            media.datagrams_in.bytes,
        )?;
        out.counter(
            "udp_sent_datagrams",
            "UDP datagrams sent by the media workers.",
            media.datagrams_out.packets,
        )?;
        out.counter(
            "udp_sent_bytes",
            "UDP payload bytes sent by the media workers.",
            media.datagrams_out.bytes,
        )?;
        out.counter(
            "dropped_datagrams",
            "Datagrams no media connection accepted.",
            s.datagrams_dropped,
        )?;
        out.counter(
            "nacks_received",
            "NACKs received from subscribers.",
            s.nacks_received,
        )?;
        out.counter(
            "keyframe_requests",
            "Keyframe requests (PLI) sent to publishers.",
            s.keyframe_requests,
        )?;
        out.counter(
            "rtx_packets",
            "Packets retransmitted to subscribers (RTX).",
            s.retransmissions.packets,
        )?;
        out.counter(
            "rtx_bytes",
            "Payload bytes retransmitted to subscribers (RTX).",
            s.retransmissions.bytes,
        )?;
        out.counter(
            "layer_switches",
            "Times a subscriber moved to another simulcast layer.",
            s.layer_switches,
        )?;
        {
            let buckets: Vec<(f64, u64)> = media.forward_delay.per_bucket().collect();
            let mut m = out.0.encode_descriptor(
                "forward_delay_seconds",
                "Time from a datagram's arrival to the sending of what it caused (forwarded packets), inside the server.",
                None,
                MetricType::Histogram,
            )?;
            m.encode_histogram::<NoLabelSet>(
                media.forward_delay.sum_ns as f64 / 1e9,
                media.forward_delay.count,
                &buckets,
                None,
            )?;
        }
        {
            let mut m = out.0.encode_descriptor(
                "worker_busy_seconds",
                "Seconds each media worker spent working rather than waiting.",
                None,
                MetricType::Counter,
            )?;
            for (i, busy) in media.busy_seconds.iter().enumerate() {
                let worker = i.to_string();
                m.encode_family(&[("worker", worker.as_str())])?
                    .encode_counter::<NoLabelSet, _, f64>(busy, None)?;
            }
        }
        out.counter(
            "websocket_connections",
            "WebSocket connections accepted.",
            Counters::get(&c.ws_accepted),
        )?;
        out.gauge(
            "websocket_connections_open",
            "WebSocket connections open now.",
            c.ws_open.load(Ordering::Relaxed),
        )?;
        let failures = c.join_failures();
        out.counters_by(
            "join_failures",
            "Joins refused, by reason (the error code sent).",
            "reason",
            failures.iter().map(|(k, v)| (k.as_str(), *v)),
        )?;
        out.counter(
            "chat_messages",
            "Chat messages accepted.",
            Counters::get(&c.chat_messages),
        )?;
        out.counter(
            "signaling_received_bytes",
            "Signaling and chat bytes received over WebSockets.",
            Counters::get(&c.signaling_in),
        )?;
        out.counter(
            "signaling_sent_bytes",
            "Signaling and chat bytes sent over WebSockets.",
            Counters::get(&c.signaling_out),
        )?;
        out.counter(
            "file_uploaded_bytes",
            "Shared-file bytes received in uploads.",
            Counters::get(&c.file_uploaded),
        )?;
        out.counter(
            "file_downloaded_bytes",
            "Shared-file bytes sent in downloads.",
            Counters::get(&c.file_downloaded),
        )?;
        let storage = self.storage();
        out.gauge(
            "files_stored",
            "Distinct shared files stored.",
            storage.files as i64,
        )?;
        out.gauge(
            "file_stored_bytes",
            "Bytes of shared files stored.",
            storage.bytes as i64,
        )?;
        out.gauge(
            "file_quota_bytes",
            "Storage quota for shared files.",
            storage.quota_bytes as i64,
        )?;
        if let Some(p) = process::ProcessStats::read() {
            out.counter_f64(
                "process_cpu_seconds",
                "CPU time used by the process (user and system).",
                p.cpu_seconds,
            )?;
            out.gauge(
                "process_resident_memory_bytes",
                "Resident memory of the process.",
                p.rss_bytes as i64,
            )?;
        }
        Ok(())
    }
}

/// Every metric name `/metrics` exposes (the README lists them; a test checks both).
pub const METRIC_NAMES: &[&str] = &[
    "lanmeet_build_info",
    "lanmeet_rooms",
    "lanmeet_participants",
    "lanmeet_published_tracks",
    "lanmeet_rtp_received_packets_total",
    "lanmeet_rtp_received_bytes_total",
    "lanmeet_rtp_sent_packets_total",
    "lanmeet_rtp_sent_bytes_total",
    "lanmeet_forwarded_packets_total",
    "lanmeet_udp_received_datagrams_total",
    "lanmeet_udp_received_bytes_total",
    "lanmeet_udp_sent_datagrams_total",
    "lanmeet_udp_sent_bytes_total",
    "lanmeet_dropped_datagrams_total",
    "lanmeet_nacks_received_total",
    "lanmeet_keyframe_requests_total",
    "lanmeet_rtx_packets_total",
    "lanmeet_rtx_bytes_total",
    "lanmeet_layer_switches_total",
    "lanmeet_forward_delay_seconds",
    "lanmeet_worker_busy_seconds_total",
    "lanmeet_websocket_connections_total",
    "lanmeet_websocket_connections_open",
    "lanmeet_join_failures_total",
    "lanmeet_chat_messages_total",
    "lanmeet_signaling_received_bytes_total",
    "lanmeet_signaling_sent_bytes_total",
    "lanmeet_file_uploaded_bytes_total",
    "lanmeet_file_downloaded_bytes_total",
    "lanmeet_files_stored",
    "lanmeet_file_stored_bytes",
    "lanmeet_file_quota_bytes",
    "lanmeet_process_cpu_seconds_total",
    "lanmeet_process_resident_memory_bytes",
];
