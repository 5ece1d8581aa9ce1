//! When a subscriber's video may climb: the hold-off after a step down, with an
//! exponential back-off for steps up that the link could not carry.
//!
//! A bandwidth estimate that says "more fits" is often wrong on a shaped link: a short
//! probe passes a token bucket far faster than the link's rate (`tc tbf`, a Wi-Fi
//! access point's queue), and the estimate jumps for a moment to several times what
//! the link carries. Taking such an estimate at its word moves the subscriber up, the
//! link overflows, the picture freezes and comes back at the layer it had. So every
//! step up is a trial: a step down within [`TRIAL`] of it means it failed, and the
//! next attempt (padding probes included) waits twice as long as the last, up to
//! [`MAX_HOLDOFF`]. A step up that holds for [`TRIAL`] resets the back-off. This is
//! the same shape as TCP's retransmission back-off, and what LiveKit's stream
//! allocator does after a failed probe.

use std::time::{Duration, Instant};

/// A step down within this long of a step up means the step up did not fit.
const TRIAL: Duration = Duration::from_secs(4);
/// Hold-off after a step down that followed no recent step up.
const MIN_HOLDOFF: Duration = Duration::from_secs(3);
/// Longest hold-off: the link is tried again at least this often, so a subscriber
/// whose link recovers climbs back within about this long.
const MAX_HOLDOFF: Duration = Duration::from_secs(16);

/// Whether one subscriber's layers may go up and its link be probed.
#[derive(Debug, Clone)]
pub(crate) struct Growth {
    /// No step up and no probing before this.
    blocked_until: Instant,
    /// The hold-off after the next failed step up.
    holdoff: Duration,
    /// The latest step up, while it is on trial.
    trial_since: Option<Instant>,
    /// The latest step down for lack of bandwidth.
    last_short: Option<Instant>,
}

impl Growth {
    pub(crate) fn new(now: Instant) -> Self {
        Growth {
            blocked_until: now,
            holdoff: MIN_HOLDOFF,
            trial_since: None,
            last_short: None,
        }
    }

    /// Whether the link has never been short: on a LAN it almost always has room, so
    /// its subscriber may have what its tiles ask for at once rather than climbing for
    /// seconds while an estimate grows. After a shortage it climbs by trials, paced by
    /// the estimate: a link that was short once (a Wi-Fi far from its access point, a
    /// shaped uplink) tends to be short again.
    pub(crate) fn trusted(&self) -> bool {
        self.last_short.is_none()
    }

    /// Whether layers may go up at `now`. A step up that has held through its trial
    /// ends the back-off here.
    pub(crate) fn allowed(&mut self, now: Instant) -> bool {
        if self.trial_since.is_some_and(|at| now >= at + TRIAL) {
            self.trial_since = None;
            self.holdoff = MIN_HOLDOFF;
        }
        now >= self.blocked_until
    }

    /// Whether a step up is on trial at `now`.
    pub(crate) fn on_trial(&self, now: Instant) -> bool {
        self.trial_since.is_some_and(|at| now < at + TRIAL)
    }

    /// Some track went up (or resumed) at `now`.
    pub(crate) fn stepped_up(&mut self, now: Instant) {
        self.trial_since = Some(now);
    }

    /// Some track went down (or was paused) for lack of bandwidth at `now`.
    pub(crate) fn stepped_down(&mut self, now: Instant) {
        self.last_short = Some(now);
        let failed_trial = self.trial_since.take().is_some_and(|at| now < at + TRIAL);
        let holdoff = if failed_trial {
            self.holdoff = (self.holdoff * 2).min(MAX_HOLDOFF);
            self.holdoff
        } else {
            MIN_HOLDOFF
        };
        self.blocked_until = self.blocked_until.max(now + holdoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn failed_steps_up_back_off_exponentially_and_success_resets() {
        let t0 = Instant::now();
        let mut g = Growth::new(t0);
        assert!(g.allowed(t0));
        assert!(g.trusted(), "a new link is trusted");

        // A step down on its own holds growth off for the minimum.
        g.stepped_down(t0);
        assert!(!g.allowed(t0 + MIN_HOLDOFF - Duration::from_millis(1)));
        let mut t = t0 + MIN_HOLDOFF;
        assert!(g.allowed(t));

        // Each step up that is undone within its trial doubles the wait.
        let mut waits = Vec::new();
        for _ in 0..5 {
            g.stepped_up(t);
            t += Duration::from_secs(1);
            g.stepped_down(t);
            let wait = g.blocked_until - t;
            waits.push(wait.as_secs());
            t += wait;
            assert!(g.allowed(t));
        }
        assert_eq!(waits, [6, 12, 16, 16, 16]);

        // A step up that holds resets the back-off.
        g.stepped_up(t);
        t += TRIAL;
        assert!(g.allowed(t));
        g.stepped_down(t + Duration::from_secs(10));
        assert_eq!(g.blocked_until, t + Duration::from_secs(10) + MIN_HOLDOFF);
        assert!(!g.trusted(), "a link that was short is not trusted again");
    }
}
