//! Active speaker detection from the audio level header extension (RFC 6464).
//!
//! Every audio packet carries its sender's level in -dBov. Each participant's loudness is
//! smoothed with an exponential average (time constant [`SMOOTHING`]) that also decays
//! through silence (browsers send no packets, or only comfort noise, when muted). Every
//! [`EVALUATION_INTERVAL`] the loudest participant above [`SPEECH_THRESHOLD`] becomes the
//! active speaker, but a challenger must be louder than the current speaker by
//! [`MARGIN`] in [`CHALLENGES`] evaluations in a row: a cough or a laugh does not move
//! the highlight. Silence keeps the last speaker, as meeting tools do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lanmeet_proto::ParticipantId;

/// How often the speaker is re-evaluated.
pub(crate) const EVALUATION_INTERVAL: Duration = Duration::from_millis(200);
/// Time constant of the loudness average.
const SMOOTHING: Duration = Duration::from_millis(400);
/// Loudness (0 = -127 dBov, 1 = 0 dBov) below which nobody is speaking: about -50 dBov,
/// above a quiet room's noise floor and below normal speech (-20 to -35 dBov).
const SPEECH_THRESHOLD: f32 = 0.6;
/// Longest normal gap between two audio packets (Opus sends every 20 ms, 60 ms at most);
/// a longer gap is silence.
const PACKET_GAP: Duration = Duration::from_millis(100);
/// How much louder a challenger must be than the current speaker.
const MARGIN: f32 = 0.04;
/// Evaluations in a row a challenger must win (0.4 s at the interval above).
const CHALLENGES: u32 = 2;

#[derive(Debug, Clone, Copy)]
struct Loudness {
    average: f32,
    last: Instant,
}

impl Loudness {
    /// The average as of `now`, decayed through the silence since the last packet
    /// (a gap longer than a few packet intervals: no packets means no sound).
    fn at(&self, now: Instant) -> f32 {
        let silent = now
            .saturating_duration_since(self.last)
            .saturating_sub(PACKET_GAP)
            .as_secs_f32();
        self.average * (-silent / SMOOTHING.as_secs_f32()).exp()
    }
}

/// One room's speaker detection.
#[derive(Debug, Default)]
pub(crate) struct SpeakerDetector {
    loudness: HashMap<ParticipantId, Loudness>,
    current: Option<ParticipantId>,
    challenger: Option<(ParticipantId, u32)>,
    /// The loudest participants, loudest first, for top-N audio forwarding.
    audible: Vec<ParticipantId>,
}

impl SpeakerDetector {
    /// An audio packet from `id` with level `level` (RFC 6464: 0 is loudest, -127 is
    /// silence; str0m gives it as a negative number).
    pub(crate) fn on_audio(&mut self, id: ParticipantId, now: Instant, level: i8) {
        let x = f32::from(level.clamp(-127, 0) + 127) / 127.0;
        let entry = self.loudness.entry(id).or_insert(Loudness {
            average: 0.0,
            last: now,
        });
        let dt = now
            .saturating_duration_since(entry.last)
            .min(PACKET_GAP)
            .as_secs_f32();
        let decayed = entry.at(now);
        let weight = 1.0 - (-dt.max(0.001) / SMOOTHING.as_secs_f32()).exp();
        entry.average = decayed + (x - decayed) * weight;
        entry.last = now;
    }

    /// Forgets a participant who left. Returns the new speaker if it was the speaker.
    pub(crate) fn remove(&mut self, id: ParticipantId) -> Option<Option<ParticipantId>> {
        self.loudness.remove(&id);
        self.audible.retain(|a| *a != id);
        if self.challenger.is_some_and(|(c, _)| c == id) {
            self.challenger = None;
        }
        if self.current == Some(id) {
            self.current = None;
            return Some(None);
        }
        None
    }

    /// Re-evaluates; returns the new active speaker when it changed.
    pub(crate) fn evaluate(&mut self, now: Instant) -> Option<Option<ParticipantId>> {
        let loudest = self
            .loudness
            .iter()
            .map(|(id, l)| (*id, l.at(now)))
            .filter(|(_, score)| *score >= SPEECH_THRESHOLD)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((candidate, score)) = loudest else {
            self.challenger = None;
            return None;
        };
        let Some(current) = self.current else {
            self.current = Some(candidate);
            return Some(self.current);
        };
        if candidate == current {
            self.challenger = None;
            return None;
        }
        let current_score = self.loudness.get(&current).map_or(0.0, |l| l.at(now));
        if score < current_score + MARGIN {
            self.challenger = None;
            return None;
        }
        let wins = match self.challenger {
            Some((c, n)) if c == candidate => n + 1,
            _ => 1,
        };
        if wins >= CHALLENGES {
            self.current = Some(candidate);
            self.challenger = None;
            Some(self.current)
        } else {
            self.challenger = Some((candidate, wins));
            None
        }
    }

    /// Re-ranks the `k` loudest participants. A participant outside the ranking takes
    /// the place of the quietest one inside only when louder by [`MARGIN`], so two
    /// similar voices at the boundary do not flip streams on and off.
    pub(crate) fn rank_audible(&mut self, now: Instant, k: usize) {
        let score = |id: &ParticipantId| self.loudness.get(id).map_or(0.0, |l| l.at(now));
        let mut scored: Vec<(ParticipantId, f32)> = self
            .loudness
            .iter()
            .map(|(id, l)| (*id, l.at(now)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut keep: Vec<ParticipantId> = self
            .audible
            .iter()
            .copied()
            .filter(|id| self.loudness.contains_key(id))
            .collect();
        keep.truncate(k);
        for (candidate, s) in scored {
            if keep.contains(&candidate) {
                continue;
            }
            if keep.len() < k {
                keep.push(candidate);
                continue;
            }
            let weakest = keep
                .iter()
                .enumerate()
                .map(|(i, id)| (i, score(id)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, weak)) = weakest {
                if s > weak + MARGIN {
                    keep[i] = candidate;
                }
            }
        }
        keep.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.cmp(b)));
        self.audible = keep;
    }

    /// Whether `subscriber` gets `source`'s audio when it may hear only `n` streams:
    /// yes when there are no more than `n` others to hear, else when `source` is among
    /// the `n` loudest others.
    pub(crate) fn is_audible(
        &self,
        subscriber: ParticipantId,
        source: ParticipantId,
        n: usize,
    ) -> bool {
        let others = self.loudness.len() - usize::from(self.loudness.contains_key(&subscriber));
        if others <= n {
            return true;
        }
        self.audible
            .iter()
            .filter(|id| **id != subscriber)
            .take(n)
            .any(|id| *id == source)
    }

    /// Whether there is anything to evaluate.
    pub(crate) fn is_idle(&self) -> bool {
        self.loudness.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);

    /// Feeds 20 ms packets at the given levels for `ms`, evaluating every 200 ms;
    /// returns every change.
    fn run(
        d: &mut SpeakerDetector,
        t: &mut Instant,
        ms: u64,
        levels: &[(ParticipantId, i8)],
    ) -> Vec<Option<ParticipantId>> {
        let mut changes = Vec::new();
        for step in 1..=ms / 20 {
            *t += Duration::from_millis(20);
            for (id, level) in levels {
                d.on_audio(*id, *t, *level);
            }
            if step % 10 == 0 {
                changes.extend(d.evaluate(*t));
            }
        }
        changes
    }

    #[test]
    fn speaker_follows_the_talk_with_hysteresis() {
        let mut d = SpeakerDetector::default();
        // The simulation's origin; everything after is simulated time.
        #[allow(clippy::disallowed_methods)]
        let mut t = Instant::now();
        // Both quiet: nobody.
        assert!(run(&mut d, &mut t, 1000, &[(A, -70), (B, -75)]).is_empty());
        // A talks.
        assert_eq!(run(&mut d, &mut t, 1000, &[(A, -25), (B, -70)]), [Some(A)]);
        // B coughs for 200 ms while A talks on: A stays.
        assert!(run(&mut d, &mut t, 200, &[(A, -25), (B, -5)]).is_empty());
        assert!(run(&mut d, &mut t, 1000, &[(A, -25), (B, -70)]).is_empty());
        // A stops, B talks: B within about a second.
        assert_eq!(run(&mut d, &mut t, 1200, &[(A, -90), (B, -28)]), [Some(B)]);
        // Everyone silent (no packets at all): B stays highlighted.
        t += Duration::from_secs(5);
        assert_eq!(d.evaluate(t), None);
        // B leaves: nobody.
        assert_eq!(d.remove(B), Some(None));
        assert_eq!(d.remove(A), None);
        assert!(d.is_idle());
    }
}
