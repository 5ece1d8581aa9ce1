//! The [`Sfu`]'s counters and per-participant link figures: the copy a worker takes out,
//! and what str0m's statistics events add to them.

use std::time::Duration;

use lanmeet_proto::{ParticipantId, PauseReason, TrackSource};
use str0m::media::MediaKind;
use str0m::stats::{MediaEgressStats, PeerStats};

use super::Sfu;
use crate::peer::Leg;
use crate::stats::{MediaClass, ParticipantStats, SfuStats};

/// How often str0m reports on a publish connection (loss and bytes for the dashboard).
pub(super) const PUBLISH_STATS_INTERVAL: Duration = Duration::from_secs(1);

impl Sfu {
    /// Counters since start, with the current rooms, participants and tracks.
    pub fn stats(&self) -> SfuStats {
        let mut stats = self.stats;
        stats.rooms = self.rooms.len() as u64;
        stats.participants = self.participant_count() as u64;
        let local = self.peers.iter().filter(|(id, _)| !self.is_relayed(**id));
        for track in local.flat_map(|(_, p)| &p.tracks) {
            *stats
                .tracks
                .get_mut(MediaClass::of(track.kind, track.source)) += 1;
        }
        stats
    }

    /// How each participant's connections are doing, as str0m last reported, with the
    /// layers of the videos it receives as it was last told and the layers of its camera
    /// as they arrive.
    pub fn participant_stats(&self) -> Vec<(ParticipantId, ParticipantStats)> {
        self.peers
            .iter()
            .filter(|(id, _)| !self.is_relayed(**id))
            .map(|(id, p)| {
                let mut report = p.report;
                for (layer, paused) in p.subscriptions.iter().filter_map(|s| s.reported) {
                    match (layer, paused) {
                        (Some(l), _) => {
                            let slot = usize::from(l).min(report.video_layers.len() - 1);
                            report.video_layers[slot] += 1;
                        }
                        // A codec the subscriber cannot take pauses it for good: counted
                        // with the paused ones, which the dashboard shows as a problem.
                        (None, Some(PauseReason::LowBandwidth | PauseReason::Codec)) => {
                            report.video_paused += 1
                        }
                        (None, Some(PauseReason::NotVisible)) => report.video_hidden += 1,
                        (None, None) => {}
                    }
                }
                let camera = p
                    .tracks
                    .iter()
                    .find(|t| t.kind == MediaKind::Video && t.source == TrackSource::Camera);
                if let Some(track) = camera {
                    for (i, bps) in report.camera_layers_bps.iter_mut().enumerate() {
                        *bps = track.layers.measured(i);
                    }
                }
                (*id, report)
            })
            .collect()
    }

    /// Adds what is new in a subscribed stream's cumulative NACK and resend counts.
    pub(super) fn count_egress(&mut self, id: ParticipantId, stats: &MediaEgressStats) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let seen = peer
            .subscribe
            .egress_seen
            .entry((stats.mid, stats.rid))
            .or_default();
        self.stats.nacks_received += stats.nacks.saturating_sub(seen.nacks);
        let resent = &mut self.stats.retransmissions;
        resent.packets += stats.packets_resent.saturating_sub(seen.resent.packets);
        resent.bytes += stats.bytes_resent.saturating_sub(seen.resent.bytes);
        seen.nacks = seen.nacks.max(stats.nacks);
        seen.resent.packets = seen.resent.packets.max(stats.packets_resent);
        seen.resent.bytes = seen.resent.bytes.max(stats.bytes_resent);
    }

    /// Notes a connection's link figures for [`Sfu::participant_stats`].
    pub(super) fn note_peer_stats(&mut self, id: ParticipantId, leg: Leg, stats: &PeerStats) {
        let Some(report) = self.peers.get_mut(&id).map(|p| &mut p.report) else {
            return;
        };
        match leg {
            Leg::Publish => {
                report.bytes_in = stats.peer_bytes_rx;
                report.loss_from = stats.ingress_loss_fraction.or(report.loss_from);
            }
            Leg::Subscribe => {
                report.bytes_out = stats.peer_bytes_tx;
                report.rtt = stats.rtt.or(report.rtt);
                report.loss_to = stats.egress_loss_fraction.or(report.loss_to);
                report.estimate_bps = stats.bwe_tx.map(|b| b.as_u64());
            }
        }
    }
}
