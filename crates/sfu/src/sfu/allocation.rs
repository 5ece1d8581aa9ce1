//! Splitting each subscriber's bandwidth over the video it shows: the budget from
//! str0m's estimate, the subscriber's loss reports and what flows now; the layer of
//! every track (`layers::allocate`); pausing only on proof; steps up held off after a
//! step down (`growth`); and the padding that lets the estimate grow. See
//! docs/ARCHITECTURE.md, "The budget" and "Steps up are trials".

use std::time::{Duration, Instant};

use lanmeet_proto::{ParticipantId, PauseReason, TrackSource};
use str0m::bwe::Bitrate;
use str0m::media::MediaKind;
use tracing::debug;

use super::{video_state_change, Leg, Output, Sfu, LOSS_INTERVAL};
use crate::forward::{SubState, Target};
use crate::layers::{allocate, Choice, Demand};

/// An estimate below this share of what a subscriber is sent, while the subscriber
/// reports loss in two reports in a row or the estimate falls, means its link is
/// congested.
const CONGESTION_SHARE: f64 = 0.85;
/// An estimate below this share of its recent peak is falling.
const FALLING_SHARE: f64 = 0.85;
/// Share of packets a subscriber must report lost for its link to count as congested.
const CONGESTION_LOSS: f32 = 0.02;
/// Share of packets lost, in two reports in a row, that shows even the lowest layers
/// do not fit: only then may video be paused. A link that carries the lowest layer
/// with little to spare loses a few percent in bursts (str0m's estimate then collapses
/// to a fraction of the link); one that cannot carry it loses far more.
const STARVATION_LOSS: f32 = 0.10;
/// How long the bandwidth must fall short of a track's lowest layer before the track
/// is paused. Estimates dip for a second or two after every burst of loss on a link
/// that carries the lowest layer well (seen on a 300 kbit/s `tc tbf` link carrying
/// 180p and audio at 250 kbit/s); a paused picture is worse than a few lost packets.
const STARVE_HOLD: Duration = Duration::from_secs(3);

impl Sfu {
    /// Measures layer rates, then re-splits every subscriber's bandwidth.
    pub(super) fn tick_layers(&mut self, now: Instant) {
        let mut any_video = false;
        for peer in self.peers.values_mut() {
            for track in &mut peer.tracks {
                track.layers.tick(now);
                any_video |= track.kind == MediaKind::Video;
            }
        }
        if !any_video {
            return;
        }
        let ids: Vec<ParticipantId> = self.peers.keys().copied().collect();
        for id in ids {
            self.allocate(now, id);
        }
    }

    /// Chooses the layer of every video track subscriber `id` receives from its view
    /// and its bandwidth estimate (see `layers`), asks publishers for the key frames the
    /// changes need, tells the subscriber what changed, and points its bandwidth
    /// estimator at the rate that would serve it fully.
    pub(super) fn allocate(&mut self, now: Instant, id: ParticipantId) {
        let Some((sent, peak, growing, trusted)) = self.peers.get_mut(&id).map(|p| {
            (
                p.sent.rate(now),
                p.estimate_peak.peak(now),
                p.growth.allowed(now),
                p.growth.trusted(),
            )
        }) else {
            return;
        };
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let mut audio = 0u64;
        // (subscription index, live layers) per demand.
        let mut slots: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut demands = Vec::new();
        for (i, sub) in peer.subscriptions.iter().enumerate() {
            if !matches!(sub.state, SubState::Active(_)) {
                continue;
            }
            let Some(track) = self
                .peers
                .get(&sub.source)
                .and_then(|p| p.tracks.iter().find(|t| t.mid == sub.source_mid))
            else {
                continue;
            };
            if sub.kind == MediaKind::Audio {
                // What the microphone actually sends: nothing while muted.
                audio += track.layers.measured(0);
                continue;
            }
            let layers = &track.layers;
            let live = layers.live(now);
            if live.is_empty() {
                // Nothing arrives yet: keep waiting for the first key frame.
                continue;
            }
            let wanted = match sub.view {
                None => live.len().checked_sub(1),
                Some((w, h)) if w == 0 || h == 0 => None,
                Some((_, h)) => layers
                    .fitting(&live, h)
                    .and_then(|l| live.iter().position(|x| *x == l)),
            };
            let current = match sub.target {
                Target::Layer(l) if sub.current.is_some() => live.iter().position(|x| *x == l),
                _ => None,
            };
            let area = sub.view.map_or(1, |(w, h)| u64::from(w) * u64::from(h));
            let priority = match sub.track_source {
                TrackSource::Screen => u64::MAX / 2 + area,
                _ => area,
            };
            demands.push(Demand {
                costs: live.iter().map(|l| layers.cost(*l)).collect(),
                wanted,
                current,
                priority,
            });
            slots.push((i, live));
        }
        let lossy = peer.loss.sustained(now, LOSS_INTERVAL * 2, CONGESTION_LOSS);
        let estimate = match peer.estimate {
            Some(e) => e,
            // A browser that sends no transport-wide feedback never gives str0m an
            // estimate: its loss reports (RTCP receiver reports) are all there is.
            None if peer.twcc == Some(false) || !self.config.bandwidth_estimation => {
                let loss = peer.loss;
                match self.peers.get_mut(&id) {
                    Some(p) => p.loss_estimate.update(now, &loss, sent),
                    None => return,
                }
            }
            None => self.config.initial_bandwidth_bps,
        };
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        // str0m's estimate follows what is acknowledged: while we send less than the
        // link carries, it sits near what we send, not near the capacity. So an estimate
        // below our own rate only means congestion when it is clearly below and the link
        // shows trouble: sustained loss, or an estimate that is falling (str0m lowers it
        // when queues grow, a second or two before loss reports arrive; meanwhile what
        // exceeds the estimate waits in the pacer and delays everything). Until then
        // what flows now is kept, and only upgrades wait for the estimate (raised by
        // padding probes) to make room.
        let starving = peer.loss.sustained(now, LOSS_INTERVAL * 2, STARVATION_LOSS);
        let falling = peer
            .estimate
            .zip(peak)
            .is_some_and(|(e, p)| (e as f64) < p as f64 * FALLING_SHARE);
        let congested =
            (lossy || falling) && sent > 0 && (estimate as f64) < sent as f64 * CONGESTION_SHARE;
        let current_total: u64 = demands
            .iter()
            .filter_map(|d| d.current.map(|c| d.costs[c]))
            .sum();
        // Without congestion, every visible track may have at least its lowest layer:
        // a low estimate then only says we have not sent much yet (a new subscriber,
        // a new publisher), not that the link is short. A track paused because the link
        // was short is the exception: the link has not been shown to carry it since, and
        // resuming it blindly would pause it again at the next loss report, over and
        // over. It resumes once probing has raised the estimate enough.
        let lowest_total: u64 = demands
            .iter()
            .zip(&slots)
            .filter(|(d, _)| d.wanted.is_some())
            .filter(|(_, (i, _))| {
                peer.subscriptions[*i].target != Target::Paused(PauseReason::LowBandwidth)
            })
            .filter_map(|(d, _)| d.costs.first())
            .sum();
        // What keeps every track where it is (or gives it its lowest layer).
        let held = current_total.max(lowest_total) + audio;
        // What the tiles ask for.
        let desired: u64 = demands
            .iter()
            .filter_map(|d| d.wanted.map(|w| d.costs[w.min(d.costs.len() - 1)]))
            .sum();
        let budget = if congested && starving {
            estimate
        } else if congested {
            // A falling estimate or some loss moves tracks down, but pauses none: after
            // a squeeze str0m's estimate often undershoots what the link carries for a
            // few seconds, and a picture lost for that long is worse than a lower
            // layer. Only heavy loss that goes on proves the lowest layer does not fit.
            estimate.max(lowest_total + audio)
        } else if trusted {
            // A link that has never been short gets what its tiles ask for at once:
            // on a LAN there is room, and the estimate, which follows what is sent,
            // would take seconds to grow there. Forwarded media is never paced, so an
            // estimate below what is sent delays nothing; a real shortage shows as loss
            // or a falling estimate, steps the layers down, and ends the trust for good.
            u64::MAX / 4
        } else {
            estimate.max(held)
        };
        // After a step down, nothing climbs until the hold-off (longer after each step
        // up the link could not carry, see `growth`) is over.
        let budget = if growing { budget } else { budget.min(held) }.saturating_sub(audio);
        let (mut choices, next_step) = allocate(budget, &demands);

        let mut keyframes = Vec::new();
        let mut signals = Vec::new();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // A track is paused only when even its lowest layer has not fitted for a while;
        // until then it keeps the lowest layer. Not so right after a step up (resuming
        // is one): the link has just shown it does not carry it.
        let on_trial = peer.growth.on_trial(now);
        for ((i, _), choice) in slots.iter().zip(choices.iter_mut()) {
            let sub = &mut peer.subscriptions[*i];
            if *choice != Choice::Starved {
                sub.starved_since = None;
            } else if sub.target != Target::Paused(PauseReason::LowBandwidth) && !on_trial {
                let since = *sub.starved_since.get_or_insert(now);
                if now < since + STARVE_HOLD {
                    *choice = Choice::Layer(0);
                }
            }
        }
        tracing::trace!(%id, estimate, sent, congested, lossy, starving, falling, growing, trusted, loss = ?peer.loss, budget, ?demands, ?choices, "allocation");
        let allocated: u64 = choices
            .iter()
            .zip(&demands)
            .map(|(c, d)| match c {
                Choice::Layer(p) => d.costs[*p],
                _ => 0,
            })
            .sum();
        // Steps down for bandwidth start a hold-off; steps up (resuming is one) are
        // trials of what the link carries (see `growth`). A step down to the layer a
        // smaller tile wants is neither, and a track that stays paused is neither, so
        // it goes on probing and learns when its link recovers.
        let (mut went_down, mut went_up) = (false, false);
        for (((i, live), c), d) in slots.iter().zip(&choices).zip(&demands) {
            let target = peer.subscriptions[*i].target;
            let before = match target {
                Target::Layer(l) => live.iter().position(|x| *x == l),
                Target::Paused(_) => None,
            };
            match (c, before) {
                (Choice::Starved, Some(_)) => went_down = true,
                (Choice::Layer(p), Some(b)) => {
                    went_down |= *p < b && d.wanted.is_some_and(|w| *p < w);
                    went_up |= *p > b;
                }
                (Choice::Layer(_), None) => {
                    went_up |= target == Target::Paused(PauseReason::LowBandwidth);
                }
                _ => {}
            }
        }
        if went_down {
            peer.growth.stepped_down(now);
        } else if went_up {
            peer.growth.stepped_up(now);
        }
        for ((i, live), choice) in slots.into_iter().zip(choices) {
            let sub = &mut peer.subscriptions[i];
            let target = match choice {
                Choice::Layer(p) => Target::Layer(live[p]),
                Choice::Hidden => Target::Paused(PauseReason::NotVisible),
                Choice::Starved => Target::Paused(PauseReason::LowBandwidth),
            };
            if sub.target != target {
                debug!(%id, source = %sub.source, from = ?sub.target, to = ?target, "layer target");
                sub.target = target;
                if let Target::Layer(l) = target {
                    if sub.current != Some(l) {
                        keyframes.push((sub.source, sub.source_mid, l));
                    }
                }
            }
            signals.extend(video_state_change(sub));
        }
        if self.config.bandwidth_estimation && peer.twcc != Some(false) {
            // Padding fills the link up to `floor` (never beyond the estimate), so the
            // estimate can grow until the next layer fits. Without a next step there is
            // nothing to make room for: no padding, and no desired rate either, since
            // str0m probes whenever the desired rate is above its estimate, and with
            // forwarded media unpaced the estimate often stays below what is sent (a
            // loaded server delays its own packets; str0m reads that as queueing). Those
            // endless probes cost a fifth of a worker's CPU in 2 rooms of 10.
            // While growth is held off, nothing probes: not our padding, and not str0m's
            // own probes towards a desired rate above what is sent.
            let (floor, want) = match next_step {
                Some(step) if growing => {
                    let floor = allocated + audio + step;
                    (floor, (desired + audio).max(floor))
                }
                None => (0, 0),
                _ => (0, allocated + audio),
            };
            peer.subscribe
                .rtc
                .bwe()
                .set_bitrate(Bitrate::bps(floor), Bitrate::bps(want));
            self.dirty.push((id, Leg::Subscribe));
        }
        for msg in signals {
            self.outputs.push_back(Output::Signal(id, msg));
        }
        for (source, mid, layer) in keyframes {
            self.request_keyframe(now, source, mid, Some(layer));
        }
    }
}
