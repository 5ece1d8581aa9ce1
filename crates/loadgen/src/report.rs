//! The outcome of a run: figures computed from what the engines measured, a readable
//! summary and a JSON line.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::payload::Kind;
use crate::session::Spec;
use crate::station::StationFigures;
use crate::stats::EngineStats;

/// One-way latency through the server, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Number of packets measured.
    pub samples: u64,
}

impl Latency {
    /// The figures of a histogram of nanoseconds.
    pub fn of(h: &crate::stats::Histogram) -> Latency {
        Latency {
            p50: h.quantile_ms(0.50),
            p95: h.quantile_ms(0.95),
            p99: h.quantile_ms(0.99),
            max: h.max_ms(),
            mean: h.mean_ms(),
            samples: h.count(),
        }
    }
}

/// Join times: the signaling connection opening to the first media packet arriving.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JoinTimes {
    /// Median, milliseconds.
    pub p50: f64,
    /// 95th percentile, milliseconds.
    pub p95: f64,
    /// Largest, milliseconds.
    pub max: f64,
    /// Participants measured (joined, and someone else publishes).
    pub count: u64,
    /// Of those, participants that joined but never received media.
    pub without_media: u64,
}

/// Everything a run measured. Printed as a summary, and as JSON with `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `lanmeet`, `janus`, `mediasoup` or `relay`.
    pub target: String,
    /// Rooms.
    pub rooms: u32,
    /// Publishing participants per room.
    pub participants: u32,
    /// Watching-only participants per room.
    pub viewers: u32,
    /// Participants whose signaling and media came up.
    pub joined: u32,
    /// Participants whose signaling or media did not come up.
    pub join_failures: u32,
    /// The first few reasons for join failures.
    pub join_errors: Vec<String>,
    /// Length of the measurement window, seconds.
    pub duration_s: f64,
    /// (subscriber, publisher track) pairs that should carry packets.
    pub streams_expected: u64,
    /// Expected streams that carried nothing in the window.
    pub streams_silent: u64,
    /// Packets publishers sent in the window.
    pub packets_sent: u64,
    /// Packets subscribers should have received.
    pub packets_expected: u64,
    /// Unique packets subscribers received.
    pub packets_received: u64,
    /// Every media packet subscribers received from the first join to the end, in the
    /// window or not: what a server's forwarded-packet counter should say over the run.
    pub packets_received_total: u64,
    /// Expected packets that never arrived.
    pub packets_lost: u64,
    /// `packets_lost / packets_expected`, percent.
    pub loss_pct: f64,
    /// Packets that arrived twice.
    pub duplicates: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// One-way latency, send to receive, on the same host clock.
    pub latency_ms: Latency,
    /// Video packets subscribers received in the window per simulcast layer (lowest
    /// first; one entry without simulcast).
    pub layer_packets: Vec<u64>,
    /// The same for subscribers that report small tiles.
    pub layer_packets_small_tiles: Vec<u64>,
    /// The same for subscribers that report large tiles.
    pub layer_packets_large_tiles: Vec<u64>,
    /// Signaling connection open to first media packet, per participant.
    pub join_ms: JoinTimes,
    /// The server's own arrival-to-send delay in the window (`--server-metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_delay_ms: Option<crate::servermetrics::ServerDelay>,
    /// Packets per second received by all subscribers together.
    pub forwarded_pps: f64,
    /// Packets per second sent by all publishers together.
    pub sent_pps: f64,
    /// Datagrams the load generator failed to send.
    pub send_errors: u64,
    /// CPU of the load generator process, percent of one core.
    pub loadgen_cpu_pct: f64,
    /// How busy each CPU of the machine was in the window, percent (includes the
    /// kernel's interrupt and softirq work, which no process is charged for).
    pub cpu_busy_pct: Vec<f64>,
    /// CPU of the server (`--server-pid`), percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct: Option<f64>,
    /// Largest resident memory of the server during the window, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_mb: Option<f64>,
    /// Resident memory of the server before the first participant joined, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_start_mb: Option<f64>,
    /// A station run's own figures (`--station`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationFigures>,
}

impl Report {
    /// Fills the media figures from the merged engine statistics. `joined` lists the
    /// participants that came up; `kinds` the tracks each publisher sends.
    ///
    /// Video is counted per simulcast layer: a subscriber is owed a layer's packets from
    /// the first it received to the last (to the end of the window for the layer it
    /// was on last), less the numbers skipped when the server moved it away and back.
    pub fn add_media(&mut self, stats: &EngineStats, joined: &[Spec], kinds: &[Kind]) {
        self.joined = joined.len() as u32;
        let layers = stats
            .sent
            .keys()
            .filter(|(_, kind, _)| *kind == Kind::Video)
            .map(|(_, _, layer)| usize::from(*layer) + 1)
            .max()
            .unwrap_or(0);
        self.layer_packets = vec![0; layers];
        self.layer_packets_small_tiles = vec![0; layers];
        self.layer_packets_large_tiles = vec![0; layers];
        for sub in joined {
            for publisher in joined.iter().filter(|p| p.publisher) {
                if publisher.index == sub.index || publisher.room != sub.room {
                    continue;
                }
                for &kind in kinds {
                    self.streams_expected += 1;
                    let track_layers: Vec<u8> = (0..layers.max(1) as u8)
                        .filter(|l| stats.sent.contains_key(&(publisher.index, kind, *l)))
                        .collect();
                    let received: Vec<(u8, &crate::stats::StreamStats)> = track_layers
                        .iter()
                        .filter_map(|l| {
                            stats
                                .streams
                                .get(&(sub.index, publisher.index, kind, *l))
                                .map(|s| (*l, s))
                        })
                        .collect();
                    if received.is_empty() {
                        self.streams_silent += 1;
                        // Owed at least the lowest layer's packets.
                        if let Some((first, next)) = track_layers
                            .first()
                            .and_then(|l| stats.sent.get(&(publisher.index, kind, *l)))
                        {
                            self.packets_expected += next.saturating_sub(*first);
                            self.packets_lost += next.saturating_sub(*first);
                        }
                        continue;
                    }
                    let last = received.iter().map(|(_, s)| s.last_ns).max().unwrap_or(0);
                    for (layer, stream) in received {
                        let Some(&(window_first, next)) =
                            stats.sent.get(&(publisher.index, kind, layer))
                        else {
                            continue;
                        };
                        let first = stream.first.unwrap_or(window_first);
                        let end = if stream.last_ns == last {
                            next
                        } else {
                            stream.highest + 1
                        };
                        let expected = end.saturating_sub(first).saturating_sub(stream.skipped);
                        self.packets_expected += expected;
                        self.packets_received += stream.received;
                        self.packets_lost += expected.saturating_sub(stream.received);
                        self.duplicates += stream.duplicates;
                        self.reordered += stream.reordered;
                        if kind == Kind::Video {
                            let l = usize::from(layer);
                            self.layer_packets[l] += stream.received;
                            if sub.small_tiles {
                                self.layer_packets_small_tiles[l] += stream.received;
                            } else {
                                self.layer_packets_large_tiles[l] += stream.received;
                            }
                        }
                    }
                }
            }
        }
        self.packets_received_total = stats.received_total;
        self.packets_sent = stats
            .sent
            .values()
            .map(|(first, next)| next.saturating_sub(*first))
            .sum();
        if self.packets_expected > 0 {
            self.loss_pct = 100.0 * self.packets_lost as f64 / self.packets_expected as f64;
        }
        if self.duration_s > 0.0 {
            self.forwarded_pps = (self.packets_received + self.duplicates) as f64 / self.duration_s;
            self.sent_pps = self.packets_sent as f64 / self.duration_s;
        }
        self.send_errors = stats.send_errors;
        self.latency_ms = Latency::of(&stats.latency);
    }

    /// Fills the figures of a station run (`--station`): every one of `joined` watched
    /// `station`. Loss is counted from the sequence gaps after each viewer's first packet
    /// in the window; `latency_ms` is the station's lateness (see [`crate::station`]),
    /// since its packets carry no send time.
    pub fn add_station(&mut self, stats: &EngineStats, joined: &[Spec], station: &str) {
        self.joined = joined.len() as u32;
        let viewers: Vec<u32> = joined.iter().map(|s| s.index).collect();
        let (figures, common) =
            StationFigures::compute(station, &stats.station, &viewers, self.duration_s);
        let [expected, silent, packets_expected, received, lost, duplicates, reordered] = common;
        self.streams_expected = expected;
        self.streams_silent = silent;
        self.packets_expected = packets_expected;
        self.packets_received = received;
        self.packets_lost = lost;
        self.duplicates = duplicates;
        self.reordered = reordered;
        self.loss_pct = if packets_expected > 0 {
            100.0 * lost as f64 / packets_expected as f64
        } else {
            0.0
        };
        if self.duration_s > 0.0 {
            self.forwarded_pps = (received + duplicates) as f64 / self.duration_s;
        }
        self.packets_received_total = stats.received_total;
        self.send_errors = stats.send_errors;
        self.latency_ms = figures.lateness_ms;
        self.station = Some(figures);
    }

    /// Join times of the `joined` participants that expect media: from `opened` (when
    /// their signaling connection opened) to their first media packet.
    pub fn add_join_times(
        &mut self,
        stats: &EngineStats,
        joined: &[Spec],
        opened: &HashMap<u32, Instant>,
        epoch: Instant,
    ) {
        let mut ms = Vec::new();
        for spec in joined.iter().filter(|s| s.expects_media) {
            let Some(open) = opened.get(&spec.index) else {
                continue;
            };
            self.join_ms.count += 1;
            match stats.first_media.get(&spec.index) {
                Some(&ns) => {
                    let open_ns = open.saturating_duration_since(epoch).as_nanos() as u64;
                    ms.push(ns.saturating_sub(open_ns) as f64 / 1e6);
                }
                None => self.join_ms.without_media += 1,
            }
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
            ms.get(i).copied().unwrap_or(0.0)
        };
        self.join_ms.p50 = at(0.5);
        self.join_ms.p95 = at(0.95);
        self.join_ms.max = ms.last().copied().unwrap_or(0.0);
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.station {
            Some(s) => writeln!(
                f,
                "{}: station {} x {} watching, {:.1} s measured",
                self.target, s.station, self.viewers, self.duration_s
            )?,
            None => writeln!(
                f,
                "{}: {} room(s) x {} publishing + {} watching, {:.1} s measured",
                self.target, self.rooms, self.participants, self.viewers, self.duration_s
            )?,
        }
        writeln!(
            f,
            "  joined          {}, {} failed",
            self.joined, self.join_failures
        )?;
        for e in &self.join_errors {
            writeln!(f, "    {e}")?;
        }
        writeln!(
            f,
            "  streams         {} expected, {} silent",
            self.streams_expected, self.streams_silent
        )?;
        writeln!(
            f,
            "  packets         {} sent ({:.0}/s), {} received ({:.0}/s forwarded)",
            self.packets_sent, self.sent_pps, self.packets_received, self.forwarded_pps
        )?;
        writeln!(
            f,
            "  loss            {:.3}% ({} of {}), {} duplicate, {} reordered",
            self.loss_pct,
            self.packets_lost,
            self.packets_expected,
            self.duplicates,
            self.reordered
        )?;
        if let Some(s) = &self.station {
            writeln!(
                f,
                "  station         video to {} viewers ({:.3}% lost), audio to {} ({:.3}% lost)",
                s.viewers_with_video, s.video_loss_pct, s.viewers_with_audio, s.audio_loss_pct
            )?;
            writeln!(
                f,
                "  per viewer      {:.0} / {:.0} / {:.0} kbit/s, {:.1} / {:.1} / {:.1} video frames/s (min / median / max)",
                s.rate_kbps.min,
                s.rate_kbps.p50,
                s.rate_kbps.max,
                s.video_fps.min,
                s.video_fps.p50,
                s.video_fps.max
            )?;
        }
        let l = &self.latency_ms;
        let latency = if self.station.is_some() {
            "  lateness (ms)  "
        } else {
            "  latency (ms)   "
        };
        writeln!(
            f,
            "{latency} p50 {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}",
            l.p50, l.p95, l.p99, l.max, l.mean
        )?;
        if self.layer_packets.len() > 1 {
            writeln!(
                f,
                "  video layers    all {:?}, small tiles {:?}, large tiles {:?} (packets, lowest first)",
                self.layer_packets, self.layer_packets_small_tiles, self.layer_packets_large_tiles
            )?;
        }
        if let Some(d) = &self.server_delay_ms {
            let ms = |v: Option<f64>| v.map_or("> 100".to_string(), |v| format!("{v:.3}"));
            writeln!(
                f,
                "  server delay    p50 {}  p99 {}  mean {:.3} ms  (inside the server, {} events)",
                ms(d.p50),
                ms(d.p99),
                d.mean,
                d.samples
            )?;
        }
        let j = &self.join_ms;
        writeln!(
            f,
            "  join to media   p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms  ({} measured, {} without media)",
            j.p50, j.p95, j.max, j.count, j.without_media
        )?;
        let busy: Vec<String> = self
            .cpu_busy_pct
            .iter()
            .map(|b| format!("{b:.0}%"))
            .collect();
        writeln!(f, "  CPUs busy       {}", busy.join(" "))?;
        write!(f, "  load generator  {:.0}% CPU", self.loadgen_cpu_pct)?;
        if self.send_errors > 0 {
            write!(f, ", {} send errors", self.send_errors)?;
        }
        if let Some(cpu) = self.server_cpu_pct {
            write!(f, "\n  server          {cpu:.0}% CPU")?;
            if let Some(rss) = self.server_rss_mb {
                write!(f, ", {rss:.1} MiB resident")?;
            }
            if let Some(rss) = self.server_rss_start_mb {
                write!(f, " ({rss:.1} MiB before joins)")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(index: u32, publisher: bool) -> Spec {
        Spec {
            index,
            room: "r".into(),
            name: format!("p{index}"),
            publisher,
            expects_media: true,
            small_tiles: index % 2 == 1,
            station: None,
        }
    }

    #[test]
    fn loss_counts_silent_streams_and_tails() {
        let mut stats = EngineStats::default();
        stats.sent.insert((0, Kind::Audio, 0), (100, 200));
        stats.sent.insert((1, Kind::Audio, 0), (0, 50));
        // Subscriber 1 got 90 of publisher 0's last 100 packets.
        for seq in 105..195 {
            stats.record(1, label(0, seq), false, 1_000_000);
        }
        // Subscriber 0 got nothing from publisher 1; viewer 2 got all of publisher 0's.
        for seq in 100..200 {
            stats.record(2, label(0, seq), false, 2_000_000);
        }
        let mut report = Report {
            duration_s: 1.0,
            ..Default::default()
        };
        let joined = [spec(0, true), spec(1, true), spec(2, false)];
        report.add_media(&stats, &joined, &[Kind::Audio]);
        assert_eq!(report.streams_expected, 4);
        // 2 hears 1 too: nothing arrived, so two silent streams.
        assert_eq!(report.streams_silent, 2);
        assert_eq!(report.packets_expected, 95 + 50 + 100 + 50);
        assert_eq!(report.packets_lost, 5 + 50 + 50);
        assert_eq!(report.packets_received, 190);
        assert_eq!(report.latency_ms.samples, 190);
    }

    fn label(publisher: u32, seq: u64) -> crate::payload::Label {
        crate::payload::Label {
            publisher,
            kind: Kind::Audio,
            layer: 0,
            seq,
            sent_ns: 0,
        }
    }

    #[test]
    fn simulcast_layers_are_owed_while_received() {
        let mut stats = EngineStats::default();
        for layer in 0..3 {
            stats.sent.insert((0, Kind::Video, layer), (0, 100));
        }
        let video = |layer, seq| crate::payload::Label {
            publisher: 0,
            kind: Kind::Video,
            layer,
            seq,
            sent_ns: 0,
        };
        // Subscriber 1 (small tiles) on layer 0 throughout, less 3 packets.
        for seq in (0..100).filter(|s| ![10, 11, 12].contains(s)) {
            stats.record(1, video(0, seq), false, seq * 10);
        }
        // Subscriber 2 starts on layer 0 and moves to layer 2 at its keyframe 40: the
        // 60 layer-0 packets after 39 are not owed.
        for seq in 0..40 {
            stats.record(2, video(0, seq), seq == 0, seq * 10);
        }
        for seq in 40..100 {
            stats.record(2, video(2, seq), seq == 40, seq * 10 + 5);
        }
        let mut report = Report {
            duration_s: 1.0,
            ..Default::default()
        };
        let joined = [spec(0, true), spec(1, false), spec(2, false)];
        report.add_media(&stats, &joined, &[Kind::Video]);
        assert_eq!(report.streams_silent, 0);
        assert_eq!(report.packets_expected, 100 + 40 + 60);
        assert_eq!(report.packets_lost, 3);
        assert_eq!(report.layer_packets, vec![137, 0, 60]);
        assert_eq!(report.layer_packets_small_tiles, vec![97, 0, 0]);
        assert_eq!(report.layer_packets_large_tiles, vec![40, 0, 60]);
    }
}
