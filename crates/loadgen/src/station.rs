//! Station mode (`--station NAME`): every participant is a viewer that `watch`es one
//! station, whose packets are the file's own VP8/VP9 and Opus and carry no send time of
//! ours. What a viewer can measure without one: per track, the sequence gaps after its
//! first packet in the window (loss), the bytes it got (its rate), and how late each
//! packet arrives against its RTP timestamp, counted from the earliest packet of its
//! stream (*lateness*: the jitter the station's pacing, the server's queues and the
//! network add, plus any delay that builds up over the window). The time the server
//! itself adds comes from its `/metrics`, as in the other modes (`--server-metrics`).

use std::collections::HashMap;

use serde::Serialize;

use crate::payload::Kind;
use crate::report::Latency;
use crate::stats::{Histogram, StreamStats};

/// What one viewer received of one of the station's tracks in the window.
#[derive(Debug, Clone, Default)]
pub struct StationStream {
    /// Sequence numbers: unique packets, gaps, duplicates.
    pub seq: StreamStats,
    /// Payload bytes received.
    pub bytes: u64,
    /// Distinct RTP times seen (video: frames), in arrival order.
    pub frames: u64,
    last_rtp_ns: Option<u64>,
    /// Per packet: arrival time minus RTP time, nanoseconds (any common offset).
    delays: Vec<i64>,
}

/// Everything the viewers of one engine received in the window, per (viewer, track).
#[derive(Debug, Clone, Default)]
pub struct StationStats {
    /// Per viewer (load-generator index) and track.
    pub streams: HashMap<(u32, Kind), StationStream>,
}

impl StationStats {
    /// Counts one packet for `viewer`: extended sequence number `seq`, RTP time `rtp_ns`
    /// (extended, in nanoseconds), `bytes` of payload, arrived at `now_ns`.
    pub fn record(
        &mut self,
        viewer: u32,
        kind: Kind,
        seq: u64,
        rtp_ns: u64,
        bytes: usize,
        now_ns: u64,
    ) {
        let s = self.streams.entry((viewer, kind)).or_default();
        let before = s.seq.received;
        s.seq.record(seq, false, now_ns);
        // Retransmissions and packets from before the window repeat an old RTP time:
        // only first arrivals say when the stream's packets come.
        // Empty packets (padding for the bandwidth estimate) only keep the numbering.
        if s.seq.received > before && bytes > 0 {
            s.bytes += bytes as u64;
            s.delays.push(now_ns as i64 - rtp_ns as i64);
            if s.last_rtp_ns != Some(rtp_ns) {
                s.frames += 1;
                s.last_rtp_ns = Some(rtp_ns);
            }
        }
    }

    /// Adds another engine's streams (viewers are on one engine each).
    pub fn merge(&mut self, other: StationStats) {
        self.streams.extend(other.streams);
    }
}

/// Least, median and largest of a per-viewer figure.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    /// Least.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        Spread {
            min: values.first().copied().unwrap_or(0.0),
            p50: values.get(values.len() / 2).copied().unwrap_or(0.0),
            max: values.last().copied().unwrap_or(0.0),
        }
    }
}

/// The station figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StationFigures {
    /// The station watched.
    pub station: String,
    /// Viewers that received the station's video in the window.
    pub viewers_with_video: u32,
    /// Viewers that received its audio in the window.
    pub viewers_with_audio: u32,
    /// Video packets lost (gaps after each viewer's first one), percent.
    pub video_loss_pct: f64,
    /// Audio packets lost, percent.
    pub audio_loss_pct: f64,
    /// Payload received per viewer, all tracks, kbit/s.
    pub rate_kbps: Spread,
    /// Video frames (distinct RTP times) per second per viewer.
    pub video_fps: Spread,
    /// Arrival against RTP time, from each stream's earliest packet, milliseconds.
    pub lateness_ms: Latency,
}

/// Loss of one kind over all viewers: (expected, lost).
fn loss(streams: &[&StationStream]) -> (u64, u64) {
    streams.iter().fold((0, 0), |(e, l), s| {
        let expected = s
            .seq
            .first
            .map_or(0, |first| s.seq.highest.saturating_sub(first) + 1);
        (e + expected, l + expected.saturating_sub(s.seq.received))
    })
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl StationFigures {
    /// The figures of `viewers` (load-generator indices) over a window of `seconds`;
    /// also returns (streams expected, streams silent, packets expected, received, lost,
    /// duplicates, reordered) for the report's common fields. A track counts as
    /// expected when any viewer received it.
    pub fn compute(
        station: &str,
        stats: &StationStats,
        viewers: &[u32],
        seconds: f64,
    ) -> (StationFigures, [u64; 7]) {
        let kinds: Vec<Kind> = [Kind::Video, Kind::Audio]
            .into_iter()
            .filter(|k| stats.streams.keys().any(|(_, kind)| kind == k))
            .collect();
        let of = |kind: Kind| -> Vec<&StationStream> {
            viewers
                .iter()
                .filter_map(|v| stats.streams.get(&(*v, kind)))
                .filter(|s| s.seq.received > 0)
                .collect()
        };
        let video = of(Kind::Video);
        let audio = of(Kind::Audio);
        let (ve, vl) = loss(&video);
        let (ae, al) = loss(&audio);
        let seconds = seconds.max(1e-3);
        let rate = viewers
            .iter()
            .map(|v| {
                let bytes: u64 = kinds
                    .iter()
                    .filter_map(|k| stats.streams.get(&(*v, *k)))
                    .map(|s| s.bytes)
                    .sum();
                bytes as f64 * 8.0 / 1000.0 / seconds
            })
            .collect();
        let fps = viewers
            .iter()
            .map(|v| {
                // Packets of one frame share an RTP time.
                let frames = stats
                    .streams
                    .get(&(*v, Kind::Video))
                    .map_or(0, |s| s.frames);
                frames as f64 / seconds
            })
            .collect();
        let mut lateness = Histogram::default();
        for s in video.iter().chain(audio.iter()) {
            let Some(&min) = s.delays.iter().min() else {
                continue;
            };
            for d in &s.delays {
                lateness.record((d - min) as u64);
            }
        }
        let figures = StationFigures {
            station: station.to_string(),
            viewers_with_video: video.len() as u32,
            viewers_with_audio: audio.len() as u32,
            video_loss_pct: pct(vl, ve),
            audio_loss_pct: pct(al, ae),
            rate_kbps: Spread::of(rate),
            video_fps: Spread::of(fps),
            lateness_ms: Latency::of(&lateness),
        };
        let streams_expected = (viewers.len() * kinds.len()) as u64;
        let streams_live = (video.len() + audio.len()) as u64;
        let all = video.iter().chain(audio.iter());
        let received: u64 = all.clone().map(|s| s.seq.received).sum();
        let duplicates: u64 = all.clone().map(|s| s.seq.duplicates).sum();
        let reordered: u64 = all.map(|s| s.seq.reordered).sum();
        (
            figures,
            [
                streams_expected,
                streams_expected.saturating_sub(streams_live),
                ve + ae,
                received,
                vl + al,
                duplicates,
                reordered,
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_rates_frames_and_lateness() {
        let mut stats = StationStats::default();
        // Viewer 1: video frames 40 ms apart, 3 packets each, one packet (seq 7) lost;
        // every packet 5 ms after its RTP time except frame 2, 20 ms late.
        let mut seq = 0;
        for frame in 0..5u64 {
            let rtp = frame * 40_000_000;
            let late = if frame == 2 { 20_000_000 } else { 5_000_000 };
            for _ in 0..3 {
                if seq != 7 {
                    stats.record(1, Kind::Video, seq, rtp, 1000, rtp + late);
                }
                seq += 1;
            }
        }
        // A retransmission of seq 3 counts as a duplicate, not as a late packet.
        stats.record(1, Kind::Video, 3, 40_000_000, 1000, 500_000_000);
        // Viewer 2: audio only, no gap.
        for n in 0..10u64 {
            stats.record(2, Kind::Audio, 100 + n, n * 20_000_000, 100, n * 20_000_000);
        }
        let (f, common) = StationFigures::compute("news", &stats, &[1, 2], 1.0);
        assert_eq!((f.viewers_with_video, f.viewers_with_audio), (1, 1));
        assert!((f.video_loss_pct - 100.0 / 15.0).abs() < 1e-9);
        assert_eq!(f.audio_loss_pct, 0.0);
        // Viewer 1: 14 packets of 1000 bytes in 1 s; viewer 2: 10 of 100.
        assert_eq!((f.rate_kbps.min, f.rate_kbps.max), (8.0, 112.0));
        assert_eq!(f.video_fps.max, 5.0);
        assert_eq!(f.lateness_ms.max, 15.0);
        assert_eq!(f.lateness_ms.samples, 24);
        // 4 streams expected (2 viewers x 2 tracks), 2 silent; 25 packets, 1 lost.
        assert_eq!(common, [4, 2, 25, 24, 1, 1, 0]);
    }
}
