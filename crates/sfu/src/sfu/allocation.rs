//! Splitting each subscriber's bandwidth over the video it shows: collect every video
//! track's demand, let the subscriber's `Downlink` plan the layers and the padding,
//! then apply the plan (targets, key frame requests, video-state messages, str0m's
//! desired bitrate). See docs/bandwidth.md, "The budget" and "Steps up are trials".

use std::time::Instant;

use lanmeet_proto::{ParticipantId, PauseReason, TrackSource};
use str0m::bwe::Bitrate;
use str0m::media::MediaKind;
use tracing::debug;

use super::{video_state_change, Leg, Output, Sfu};
use crate::downlink::TrackState;
use crate::forward::{SubState, Target};
use crate::layers::{Choice, Demand};

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
        let Some((audio, slots, demands, states)) = self.collect_demands(now, id) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let plan = peer.downlink.plan(now, audio, &demands, &states);
        debug_assert_eq!(plan.tracks.len(), slots.len());

        let mut keyframes = Vec::new();
        let mut signals = Vec::new();
        for ((i, live), (choice, starved_since)) in slots.into_iter().zip(plan.tracks) {
            let sub = &mut peer.subscriptions[i];
            sub.starved_since = starved_since;
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
        if let Some((floor, want)) = plan.bitrate {
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

    /// What subscriber `id` receives: the audio rate, and for every live video
    /// subscription its index and live layers, its demand, and where it stands.
    #[allow(clippy::type_complexity)]
    fn collect_demands(
        &self,
        now: Instant,
        id: ParticipantId,
    ) -> Option<(u64, Vec<(usize, Vec<usize>)>, Vec<Demand>, Vec<TrackState>)> {
        let peer = self.peers.get(&id)?;
        let mut audio = 0u64;
        // (subscription index, live layers) per demand.
        let mut slots: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut demands = Vec::new();
        let mut states = Vec::new();
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
            states.push(TrackState {
                target: match sub.target {
                    Target::Layer(l) => live.iter().position(|x| *x == l),
                    Target::Paused(_) => None,
                },
                paused_for_bandwidth: sub.target == Target::Paused(PauseReason::LowBandwidth),
                starved_since: sub.starved_since,
            });
            slots.push((i, live));
        }
        Some((audio, slots, demands, states))
    }
}
