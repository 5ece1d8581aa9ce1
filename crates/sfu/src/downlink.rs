//! One subscriber's downlink: what its link is estimated to carry, and the plan that
//! splits that over the video it shows.
//!
//! [`Downlink`] owns the state (str0m's latest estimate and its recent peak, the loss
//! the subscriber reports, what it is sent, the loss-based estimate for browsers
//! without congestion feedback, and the `growth` hold-off) behind a small interface in
//! the manner of str0m's `bwe` module: events go in (`on_estimate`, `on_loss`,
//! `on_sent`, `set_twcc`), and [`Downlink::plan`] turns the tracks' demands into a
//! [`Plan`] (a choice per track and the rate to pad or probe towards) without touching
//! str0m. `Sfu::allocate` collects the demands, plans, and applies the plan. See
//! docs/bandwidth.md, "The budget" and "Steps up are trials".

use std::time::{Duration, Instant};

use tracing::trace;

use crate::growth::Growth;
use crate::layers::{allocate, Choice, Demand, RateMeter};

/// How often str0m reports a subscriber's loss (RTCP receiver reports, summarised).
pub(crate) const LOSS_INTERVAL: Duration = Duration::from_secs(1);
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
/// A budget that never limits.
const UNLIMITED: u64 = u64::MAX / 4;

/// One subscriber's downlink (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Downlink {
    /// Whether the subscribe connection runs str0m's bandwidth estimator.
    estimation: bool,
    /// What the budget is before str0m's first estimate.
    initial_bps: u64,
    /// str0m's latest estimate, bits per second.
    estimate: Option<u64>,
    /// The recent highest of those estimates.
    peak: EstimatePeak,
    /// Whether layers may go up and the link be probed.
    growth: Growth,
    /// What the subscribe connection is sent.
    sent: RateMeter,
    /// The loss the subscriber reported lately.
    loss: LossReports,
    /// Whether the subscribe connection negotiated transport-wide congestion control
    /// feedback (which str0m's estimate needs); `None` before the first answer.
    twcc: Option<bool>,
    /// The downlink estimated from loss reports, used without TWCC.
    loss_estimate: LossEstimate,
}

/// Where one video track stands, beside its [`Demand`], as [`Downlink::plan`] sees it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TrackState {
    /// Position in its demand's `costs` of the layer it is set to (whether or not that
    /// has started flowing); `None` while paused.
    pub target: Option<usize>,
    /// Paused because its link was short.
    pub paused_for_bandwidth: bool,
    /// Since when even its lowest layer has not fitted.
    pub starved_since: Option<Instant>,
}

/// What [`Downlink::plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Per track, in the order given: its choice, and since when it has been starved.
    pub tracks: Vec<(Choice, Option<Instant>)>,
    /// The rates to hand str0m's estimator (`Bwe::set_bitrate`): what to pad up to and
    /// what to probe towards. `None` without estimation.
    pub bitrate: Option<(u64, u64)>,
}

impl Downlink {
    pub(crate) fn new(now: Instant, estimation: bool, initial_bps: u64) -> Self {
        Downlink {
            estimation,
            initial_bps,
            estimate: None,
            peak: EstimatePeak::default(),
            growth: Growth::new(now),
            sent: RateMeter::new(now),
            loss: LossReports::default(),
            twcc: None,
            loss_estimate: LossEstimate::default(),
        }
    }

    /// The subscribe connection was replaced: what was learnt about the old one's link
    /// (estimates, loss, feedback) starts over. The growth hold-off and the sent rate
    /// carry over: the link itself is the same.
    pub(crate) fn new_connection(&mut self) {
        self.estimate = None;
        self.peak = EstimatePeak::default();
        self.loss = LossReports::default();
        self.twcc = None;
        self.loss_estimate = LossEstimate::default();
    }

    /// str0m estimated the link at `bps`. Returns whether the estimate changed.
    pub(crate) fn on_estimate(&mut self, now: Instant, bps: u64) -> bool {
        self.peak.add(now, bps);
        self.estimate.replace(bps) != Some(bps)
    }

    /// The subscriber reported losing `loss` of one stream's packets.
    pub(crate) fn on_loss(&mut self, now: Instant, loss: f32) {
        self.loss.add(now, loss);
    }

    /// `bytes` went out on the subscribe connection.
    pub(crate) fn on_sent(&mut self, now: Instant, bytes: usize) {
        self.sent.add(now, bytes);
    }

    /// The answer said whether the subscriber sends transport-wide congestion feedback.
    pub(crate) fn set_twcc(&mut self, twcc: bool) {
        self.twcc = Some(twcc);
    }

    /// Whether str0m's estimator drives the budget (and wants `set_bitrate`).
    fn uses_str0m_estimate(&self) -> bool {
        self.estimation && self.twcc != Some(false)
    }

    /// Chooses a layer for every video track (`demands`, with `tracks` saying where
    /// each stands) from the estimate, the loss reports and what flows now, given
    /// `audio` bits per second of audio. Pure but for the downlink's own state (the
    /// growth hold-off, the loss-based estimate).
    pub(crate) fn plan(
        &mut self,
        now: Instant,
        audio: u64,
        demands: &[Demand],
        tracks: &[TrackState],
    ) -> Plan {
        let growing = self.growth.allowed(now);
        let budget = self.budget(now, audio, demands, tracks, growing);
        let (mut choices, next_step) = allocate(budget, demands);
        let starved = self.hold_starving(now, tracks, &mut choices);
        trace!(budget, ?demands, ?choices, "allocation");
        self.note_steps(now, demands, tracks, &choices);
        let bitrate = self
            .uses_str0m_estimate()
            .then(|| padding(demands, &choices, audio, next_step, growing));
        Plan {
            tracks: choices.into_iter().zip(starved).collect(),
            bitrate,
        }
    }

    /// What the video may use now, in bits per second.
    fn budget(
        &mut self,
        now: Instant,
        audio: u64,
        demands: &[Demand],
        tracks: &[TrackState],
        growing: bool,
    ) -> u64 {
        let sent = self.sent.rate(now);
        let peak = self.peak.peak(now);
        let lossy = self.loss.sustained(now, LOSS_INTERVAL * 2, CONGESTION_LOSS);
        let estimate = match self.estimate {
            Some(e) => e,
            // A browser that sends no transport-wide feedback never gives str0m an
            // estimate: its loss reports (RTCP receiver reports) are all there is.
            None if !self.uses_str0m_estimate() => self.loss_estimate.update(now, &self.loss, sent),
            None => self.initial_bps,
        };
        // str0m's estimate follows what is acknowledged: while we send less than the
        // link carries, it sits near what we send, not near the capacity. So an estimate
        // below our own rate only means congestion when it is clearly below and the link
        // shows trouble: sustained loss, or an estimate that is falling (str0m lowers it
        // when queues grow, a second or two before loss reports arrive). Until then what
        // flows now is kept, and only upgrades wait for the estimate (raised by padding
        // probes) to make room.
        let starving = self.loss.sustained(now, LOSS_INTERVAL * 2, STARVATION_LOSS);
        let falling = self
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
            .zip(tracks)
            .filter(|(d, t)| d.wanted.is_some() && !t.paused_for_bandwidth)
            .filter_map(|(d, _)| d.costs.first())
            .sum();
        // What keeps every track where it is (or gives it its lowest layer).
        let held = current_total.max(lowest_total) + audio;
        let trusted = self.growth.trusted();
        trace!(estimate, sent, congested, lossy, starving, falling, growing, trusted, loss = ?self.loss, "downlink");
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
            UNLIMITED
        } else {
            estimate.max(held)
        };
        // After a step down, nothing climbs until the hold-off (longer after each step
        // up the link could not carry, see `growth`) is over.
        if growing { budget } else { budget.min(held) }.saturating_sub(audio)
    }

    /// A track is paused only when even its lowest layer has not fitted for a while;
    /// until then it keeps the lowest layer. Not so right after a step up (resuming is
    /// one): the link has just shown it does not carry it. Returns, per track, since
    /// when it has been starved.
    fn hold_starving(
        &self,
        now: Instant,
        tracks: &[TrackState],
        choices: &mut [Choice],
    ) -> Vec<Option<Instant>> {
        let on_trial = self.growth.on_trial(now);
        let mut starved = Vec::with_capacity(tracks.len());
        for (t, choice) in tracks.iter().zip(choices.iter_mut()) {
            let since = if *choice != Choice::Starved {
                None
            } else if !t.paused_for_bandwidth && !on_trial {
                let from = t.starved_since.unwrap_or(now);
                if now < from + STARVE_HOLD {
                    *choice = Choice::Layer(0);
                }
                Some(from)
            } else {
                t.starved_since
            };
            starved.push(since);
        }
        starved
    }

    /// Steps down for bandwidth start a hold-off; steps up (resuming is one) are trials
    /// of what the link carries (see `growth`). A step down to the layer a smaller tile
    /// wants is neither, and a track that stays paused is neither, so it goes on probing
    /// and learns when its link recovers.
    fn note_steps(
        &mut self,
        now: Instant,
        demands: &[Demand],
        tracks: &[TrackState],
        choices: &[Choice],
    ) {
        let (mut went_down, mut went_up) = (false, false);
        for ((t, d), c) in tracks.iter().zip(demands).zip(choices) {
            match (c, t.target) {
                (Choice::Starved, Some(_)) => went_down = true,
                (Choice::Layer(p), Some(b)) => {
                    went_down |= *p < b && d.wanted.is_some_and(|w| *p < w);
                    went_up |= *p > b;
                }
                (Choice::Layer(_), None) => went_up |= t.paused_for_bandwidth,
                _ => {}
            }
        }
        if went_down {
            self.growth.stepped_down(now);
        } else if went_up {
            self.growth.stepped_up(now);
        }
    }
}

/// What to hand str0m's estimator (`Bwe::set_bitrate`) given the choices: the rate to
/// pad up to and the rate to probe towards. `step` is the next step up that did not
/// fit; `growing`, whether growth is allowed.
///
/// Padding fills the link up to the floor (never beyond the estimate), so the estimate
/// can grow until the next layer fits. Without a next step there is nothing to make
/// room for: no padding, and no desired rate either, since str0m probes whenever the
/// desired rate is above its estimate, and with forwarded media unpaced the estimate
/// often stays below what is sent (a loaded server delays its own packets; str0m reads
/// that as queueing). Those endless probes cost a fifth of a worker's CPU in 2 rooms of
/// 10. While growth is held off, nothing probes: not our padding, and not str0m's own
/// probes towards a desired rate above what is sent.
fn padding(
    demands: &[Demand],
    choices: &[Choice],
    audio: u64,
    step: Option<u64>,
    growing: bool,
) -> (u64, u64) {
    let allocated: u64 = choices
        .iter()
        .zip(demands)
        .map(|(c, d)| match c {
            Choice::Layer(p) => d.costs[*p],
            _ => 0,
        })
        .sum();
    // What the tiles ask for.
    let desired: u64 = demands
        .iter()
        .filter_map(|d| d.wanted.map(|w| d.costs[w.min(d.costs.len() - 1)]))
        .sum();
    match step {
        Some(step) if growing => {
            let floor = allocated + audio + step;
            (floor, (desired + audio).max(floor))
        }
        None => (0, 0),
        Some(_) => (0, allocated + audio),
    }
}

/// The two latest loss reports of a subscriber (share of packets lost, the worst of its
/// streams in each report), and when the latest came.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LossReports {
    pub at: Option<Instant>,
    pub latest: f32,
    pub previous: f32,
}

impl LossReports {
    /// A stream's report at `now` (str0m reports every stream at the same instant).
    pub(crate) fn add(&mut self, now: Instant, loss: f32) {
        if self.at == Some(now) {
            self.latest = self.latest.max(loss);
        } else {
            self.previous = self.latest;
            self.latest = loss;
            self.at = Some(now);
        }
    }

    /// Whether the two latest reports, the latest no older than `fresh`, both exceed
    /// `threshold`. One report alone is not enough: the first report after a link
    /// recovered still covers the time it was short.
    pub(crate) fn sustained(
        &self,
        now: Instant,
        fresh: std::time::Duration,
        threshold: f32,
    ) -> bool {
        self.at.is_some_and(|at| now < at + fresh)
            && self.latest > threshold
            && self.previous > threshold
    }
}

/// A downlink estimate from loss reports alone, for a subscriber whose browser sends no
/// transport-wide congestion feedback (so str0m has no estimate): unlimited until it
/// first reports loss; then, at each report of more than [`LossEstimate::LOSS`], what
/// arrived (what was sent, less what was lost) with a margin, and between such reports
/// a growth of 8% a second (the loss-based controller of libwebrtc's GCC works so).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LossEstimate {
    /// The estimate, bits per second, and when it was last set or grown; `None` until
    /// the first loss.
    bps: Option<(u64, Instant)>,
    /// The loss report last acted on.
    report: Option<Instant>,
}

impl LossEstimate {
    /// Share of packets lost in a report that lowers the estimate.
    const LOSS: f32 = 0.02;
    /// Share of what arrived that the estimate is set to.
    const SHARE: f64 = 0.85;
    /// Growth per second without loss.
    const GROWTH: f64 = 1.08;

    /// The estimate at `now`, having seen `loss` reports while `sent_bps` was sent.
    pub(crate) fn update(&mut self, now: Instant, loss: &LossReports, sent_bps: u64) -> u64 {
        let fresh = loss.at.filter(|at| Some(*at) != self.report);
        if let Some(at) = fresh {
            self.report = Some(at);
            if loss.latest > Self::LOSS {
                let arrived = sent_bps as f64 * (1.0 - f64::from(loss.latest));
                let lowered = (arrived * Self::SHARE) as u64;
                let bps = self.bps.map_or(lowered, |(b, _)| b.min(lowered));
                self.bps = Some((bps, now));
            }
        }
        match &mut self.bps {
            None => u64::MAX / 4,
            Some((bps, since)) => {
                let secs = now.saturating_duration_since(*since).as_secs_f64();
                if secs >= 0.1 {
                    *bps = (*bps as f64 * Self::GROWTH.powf(secs)) as u64;
                    *since = now;
                }
                *bps
            }
        }
    }
}

/// The highest bandwidth estimate of the last [`EstimatePeak::WINDOW`]: an estimate
/// clearly below it is falling, which str0m's estimator does when it sees queues grow
/// (delay) or packets lost on the way, well before the loss reports come back.
#[derive(Debug, Default, Clone)]
pub(crate) struct EstimatePeak {
    /// Estimates with when they came, each larger than every later one (so the front is
    /// the window's highest).
    recent: std::collections::VecDeque<(Instant, u64)>,
}

impl EstimatePeak {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

    /// A new estimate at `now`.
    pub(crate) fn add(&mut self, now: Instant, bps: u64) {
        while self.recent.back().is_some_and(|(_, b)| *b <= bps) {
            self.recent.pop_back();
        }
        self.recent.push_back((now, bps));
    }

    /// The highest estimate since `now - WINDOW`, if any.
    pub(crate) fn peak(&mut self, now: Instant) -> Option<u64> {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| *at + Self::WINDOW < now)
            && self.recent.len() > 1
        {
            self.recent.pop_front();
        }
        self.recent.front().map(|(_, b)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer costs of one simulcast camera: 180p, 360p, 720p.
    const COSTS: [u64; 3] = [150_000, 500_000, 1_500_000];
    const AUDIO: u64 = 40_000;

    /// One subscriber watching one camera whose tile wants 720p, on simulated time.
    struct Fixture {
        d: Downlink,
        now: Instant,
        /// The layer the camera is at (position in `COSTS`); `None`: paused.
        layer: Option<usize>,
        paused_for_bandwidth: bool,
        starved_since: Option<Instant>,
    }

    impl Fixture {
        #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
        fn new() -> Self {
            let now = Instant::now();
            Fixture {
                d: Downlink::new(now, true, 800_000),
                now,
                layer: Some(2),
                paused_for_bandwidth: false,
                starved_since: None,
            }
        }

        /// Lets `ms` pass while the current layer and audio flow, in 10 ms steps.
        fn run(&mut self, ms: u64) {
            let bps = self.layer.map_or(0, |l| COSTS[l]) + AUDIO;
            for _ in 0..ms / 10 {
                self.now += Duration::from_millis(10);
                self.d.on_sent(self.now, (bps / 8 / 100) as usize);
            }
        }

        /// Plans, and applies the plan as `Sfu::allocate` would. Returns the choice.
        fn plan(&mut self) -> (Choice, Option<(u64, u64)>) {
            let demand = Demand {
                costs: COSTS.to_vec(),
                wanted: Some(2),
                current: self.layer,
                priority: 1,
            };
            let state = TrackState {
                target: self.layer,
                paused_for_bandwidth: self.paused_for_bandwidth,
                starved_since: self.starved_since,
            };
            let plan = self.d.plan(self.now, AUDIO, &[demand], &[state]);
            let (choice, starved_since) = plan.tracks[0];
            self.starved_since = starved_since;
            match choice {
                Choice::Layer(l) => {
                    self.layer = Some(l);
                    self.paused_for_bandwidth = false;
                }
                Choice::Starved => {
                    self.layer = None;
                    self.paused_for_bandwidth = true;
                }
                Choice::Hidden => self.layer = None,
            }
            (choice, plan.bitrate)
        }

        /// str0m's estimate changes to `bps`.
        fn estimate(&mut self, bps: u64) {
            self.d.on_estimate(self.now, bps);
        }

        /// The subscriber reports losing `share` of its packets.
        fn loss(&mut self, share: f32) {
            self.d.on_loss(self.now, share);
        }
    }

    #[test]
    fn a_link_never_short_gets_what_the_tile_asks_for_and_nothing_probes() {
        let mut f = Fixture::new();
        f.layer = None;
        // The estimate starts far below 720p: it only follows what was sent so far.
        f.estimate(300_000);
        f.run(1000);
        assert_eq!(f.plan(), (Choice::Layer(2), Some((0, 0))));
        f.run(1000);
        assert_eq!(f.plan(), (Choice::Layer(2), Some((0, 0))));
    }

    #[test]
    fn congestion_steps_down_but_pauses_nothing() {
        struct Case {
            name: &'static str,
            /// Estimates in order (the last one is current), and loss reports.
            estimates: &'static [u64],
            losses: &'static [f32],
            want: Choice,
        }
        let cases = [
            Case {
                name: "an estimate below what is sent, nothing wrong: keep",
                estimates: &[900_000],
                losses: &[0.0, 0.0],
                want: Choice::Layer(2),
            },
            Case {
                name: "falling estimate: to what it says fits",
                estimates: &[2_000_000, 900_000],
                losses: &[],
                want: Choice::Layer(1),
            },
            Case {
                name: "sustained loss, estimate below what is sent",
                estimates: &[900_000],
                losses: &[0.05, 0.05],
                want: Choice::Layer(1),
            },
            Case {
                name: "one lossy report is not enough",
                estimates: &[900_000],
                losses: &[0.0, 0.05],
                want: Choice::Layer(2),
            },
            Case {
                name: "falling below the lowest layer without heavy loss: lowest, not paused",
                estimates: &[2_000_000, 50_000],
                losses: &[0.03, 0.03],
                want: Choice::Layer(0),
            },
        ];
        for case in cases {
            let mut f = Fixture::new();
            f.run(1000);
            for e in case.estimates {
                f.estimate(*e);
                f.run(100);
            }
            for l in case.losses {
                f.loss(*l);
                f.run(10);
            }
            let (choice, _) = f.plan();
            assert_eq!(choice, case.want, "{}", case.name);
        }
    }

    #[test]
    fn starving_pauses_only_after_the_hold_and_not_on_a_first_report() {
        let mut f = Fixture::new();
        f.layer = Some(0);
        f.run(1000);
        f.estimate(2_000_000);
        f.run(100);
        f.estimate(60_000);
        f.loss(0.3);
        f.run(10);
        f.loss(0.3);
        // Even the lowest layer does not fit, but a moment's dip is not proof.
        assert_eq!(f.plan().0, Choice::Layer(0));
        let since = f.starved_since.expect("starving is being timed");
        f.run(2000);
        f.loss(0.3);
        f.run(10);
        f.loss(0.3);
        assert_eq!(f.plan().0, Choice::Layer(0));
        assert_eq!(
            f.starved_since,
            Some(since),
            "the hold runs from the first miss"
        );
        f.run(1000);
        f.loss(0.3);
        f.run(10);
        f.loss(0.3);
        assert_eq!(f.plan().0, Choice::Starved, "paused after {STARVE_HOLD:?}");
        // Paused for bandwidth, it stays paused while the link is no better.
        f.run(1000);
        f.loss(0.3);
        f.run(10);
        f.loss(0.3);
        assert_eq!(f.plan().0, Choice::Starved);
    }

    #[test]
    fn after_a_step_down_climbing_is_a_trial_and_a_failed_one_backs_off() {
        let mut f = Fixture::new();
        f.run(1000);
        f.estimate(2_000_000);
        f.run(100);
        f.estimate(900_000);
        assert_eq!(f.plan().0, Choice::Layer(1), "down on a falling estimate");

        // The estimate recovers at once, but nothing climbs during the hold-off; the
        // plan keeps what flows and neither pads nor probes beyond it.
        f.run(500);
        f.estimate(5_000_000);
        let (choice, bitrate) = f.plan();
        assert_eq!(choice, Choice::Layer(1));
        assert_eq!(
            bitrate,
            Some((0, COSTS[1] + AUDIO)),
            "no padding while held off"
        );

        // After the hold-off it climbs (a trial)...
        f.run(2600);
        assert_eq!(f.plan().0, Choice::Layer(2));
        // ...which fails: the link falls short again within the trial.
        f.run(1000);
        f.estimate(2_000_000);
        f.run(100);
        f.estimate(900_000);
        assert_eq!(f.plan().0, Choice::Layer(1));
        // The next try waits twice as long (6 s), however good the estimate looks.
        f.estimate(5_000_000);
        f.run(5000);
        assert_eq!(f.plan().0, Choice::Layer(1), "still held off after 5 s");
        f.run(1100);
        assert_eq!(f.plan().0, Choice::Layer(2), "climbs after 6 s");
    }

    #[test]
    fn padding_makes_room_for_the_next_layer_only_while_growth_is_allowed() {
        let mut f = Fixture::new();
        f.run(1000);
        f.estimate(2_000_000);
        f.run(100);
        f.estimate(600_000);
        assert_eq!(f.plan().0, Choice::Layer(1));
        f.run(3100);
        // Not trusted any more: the estimate (600 kbit/s) holds 360p, not 720p.
        let (choice, bitrate) = f.plan();
        assert_eq!(choice, Choice::Layer(1));
        // Padding fills up to what 720p would need (360p, audio and the step up), and
        // str0m probes towards what the tile asks for.
        let floor = COSTS[1] + AUDIO + (COSTS[2] - COSTS[1]);
        assert_eq!(
            bitrate,
            Some((floor, COSTS[2] + AUDIO)),
            "pads towards the step to 720p"
        );
    }

    #[test]
    fn without_congestion_feedback_loss_reports_are_the_estimate() {
        let mut f = Fixture::new();
        f.d.set_twcc(false);
        f.run(1000);
        // Unlimited until the first loss, and str0m's estimator is left alone.
        assert_eq!(f.plan(), (Choice::Layer(2), None));
        f.loss(0.2);
        f.run(10);
        f.loss(0.2);
        f.run(10);
        // 20% of 1.54 Mbit/s lost: 85% of what arrived is about 1.05 Mbit/s.
        assert_eq!(f.plan(), (Choice::Layer(1), None));
    }

    #[test]
    fn without_estimation_nothing_is_handed_to_str0m() {
        let mut f = Fixture::new();
        f.d = Downlink::new(f.now, false, 800_000);
        f.run(1000);
        assert_eq!(f.plan(), (Choice::Layer(2), None));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn a_loss_estimate_is_unlimited_until_loss_then_follows_what_arrives() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut e = LossEstimate::default();
        let mut loss = LossReports::default();
        assert_eq!(e.update(at(0), &loss, 2_000_000), u64::MAX / 4);
        // A report without loss changes nothing.
        loss.add(at(1000), 0.0);
        assert_eq!(e.update(at(1000), &loss, 2_000_000), u64::MAX / 4);
        // 20% lost of 2 Mbit/s: 1.6 Mbit/s arrived, the estimate is 85% of that.
        loss.add(at(2000), 0.2);
        let lowered = e.update(at(2000), &loss, 2_000_000);
        assert!(lowered.abs_diff(1_360_000) < 10, "{lowered}");
        // The same report again lowers nothing, even though less is sent now.
        assert_eq!(e.update(at(2050), &loss, 500_000), lowered);
        // Without new loss it grows 8% a second.
        loss.add(at(3000), 0.0);
        let grown = e.update(at(3000), &loss, 500_000);
        assert!((1_460_000..1_480_000).contains(&grown), "{grown}");
        // A new lossy report never raises it.
        loss.add(at(4000), 0.1);
        let lowered = e.update(at(4000), &loss, 3_000_000);
        assert!(lowered <= grown && lowered < 2_300_000, "{lowered}");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
    fn the_peak_is_the_highest_estimate_of_the_last_two_seconds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = EstimatePeak::default();
        assert_eq!(p.peak(t0), None);
        p.add(at(0), 1_000);
        p.add(at(500), 3_000);
        p.add(at(1000), 2_000);
        p.add(at(1500), 500);
        assert_eq!(p.peak(at(1500)), Some(3_000));
        // 3000 ages out after two seconds; 2000 is then the highest.
        assert_eq!(p.peak(at(2600)), Some(2_000));
        assert_eq!(p.peak(at(3100)), Some(500));
        // The latest estimate is kept however old: it is still the estimate.
        assert_eq!(p.peak(at(60_000)), Some(500));
    }
}
