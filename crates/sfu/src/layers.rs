//! Simulcast layers of a published video track, and the choice of the layer each
//! subscriber gets.
//!
//! A browser publishes its camera as up to three encodings of the same picture (rids
//! `q`, `h`, `f`: quarter, half and full resolution). [`Layers`] tracks, per published
//! track, which encodings are arriving, how many bits per second each takes, and their
//! picture size (read from VP8 key frames). [`allocate`] then splits one subscriber's
//! estimated bandwidth over the tracks it shows: every visible track first gets the
//! lowest layer (largest tiles first; a track that does not fit is paused), then tracks
//! climb towards the layer that fits their tile while the budget lasts.

use std::time::{Duration, Instant};

use str0m::media::Rid;

/// How often layer bitrates are measured.
pub(crate) const RATE_WINDOW: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not being sent (the browser dropped it, e.g.
/// because its own uplink estimate fell, or the user chose a lower quality).
const LAYER_STALE: Duration = Duration::from_millis(1500);
/// Least bitrate assumed for a layer, so a layer that just started (and measured
/// nearly nothing yet) is not taken to be free.
const MIN_LAYER_BPS: u64 = 60_000;
/// Picture height assumed for the top layer until a key frame tells.
const DEFAULT_TOP_HEIGHT: u32 = 720;
/// A layer is big enough for a tile when it has at least this share of the tile's
/// height in pixels: a slight upscale is invisible, the next layer up doubles the cost.
const FIT_SHARE: f64 = 0.8;
/// Moving above the layer a subscriber has now must fit with this much to spare, so a
/// bandwidth estimate that wobbles around a threshold does not flip layers back and forth.
const UPGRADE_MARGIN: f64 = 1.25;
/// A layer a subscriber already has is kept while the budget covers this share of its
/// measured cost: rates wobble with key frames and motion, and every switch costs a key
/// frame, so only a clear shortfall moves a subscriber down.
const KEEP_SHARE: f64 = 0.8;

/// One simulcast encoding of a track (or the only one, for a track without simulcast).
#[derive(Debug)]
pub(crate) struct Layer {
    /// The encoding's rid; `None` for a track without simulcast.
    pub rid: Option<Rid>,
    /// Bytes received in the current measuring window.
    window_bytes: u64,
    /// Smoothed bitrate, bits per second.
    rate_bps: f64,
    /// When the latest packet arrived.
    last_packet: Option<Instant>,
    /// Picture size, from the latest key frame.
    pub size: Option<(u32, u32)>,
    /// When we last asked the publisher for a key frame on this layer.
    pub last_keyframe_request: Option<Instant>,
}

/// The order of a rid among a track's layers: lowest resolution first.
fn rank(rid: Option<&Rid>) -> (u8, String) {
    let Some(rid) = rid else {
        return (0, String::new());
    };
    let name = rid.to_string();
    let known = match name.as_str() {
        "q" | "l" | "low" => 0,
        "h" | "m" | "mid" => 1,
        "f" | "high" => 2,
        _ => 3,
    };
    (known, name)
}

/// The layers of one published video track.
#[derive(Debug)]
pub(crate) struct Layers {
    /// Lowest resolution first.
    pub list: Vec<Layer>,
    window_start: Instant,
}

impl Layers {
    pub(crate) fn new(now: Instant) -> Self {
        Layers {
            list: Vec::new(),
            window_start: now,
        }
    }

    /// The index of the layer with `rid`, creating it when it is new, and whether the
    /// new layer went in below others: then every index at or above it moved up by one,
    /// and whoever holds such an index must move it too.
    pub(crate) fn index_of(&mut self, rid: Option<Rid>) -> (usize, bool) {
        if let Some(i) = self.list.iter().position(|l| l.rid == rid) {
            return (i, false);
        }
        let layer = Layer {
            rid,
            window_bytes: 0,
            rate_bps: 0.0,
            last_packet: None,
            size: None,
            last_keyframe_request: None,
        };
        let key = rank(rid.as_ref());
        let at = self
            .list
            .iter()
            .position(|l| rank(l.rid.as_ref()) > key)
            .unwrap_or(self.list.len());
        self.list.insert(at, layer);
        (at, at + 1 < self.list.len())
    }

    /// A packet of `bytes` arrived on layer `index`; `size` if it starts a key frame
    /// that tells the picture size.
    pub(crate) fn on_packet(
        &mut self,
        index: usize,
        now: Instant,
        bytes: usize,
        size: Option<(u32, u32)>,
    ) {
        if let Some(layer) = self.list.get_mut(index) {
            layer.window_bytes += bytes as u64;
            layer.last_packet = Some(now);
            if size.is_some() {
                layer.size = size;
            }
        }
    }

    /// Closes the measuring window if it is over. Returns whether rates changed.
    pub(crate) fn tick(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < RATE_WINDOW {
            return false;
        }
        let secs = elapsed.as_secs_f64();
        for layer in &mut self.list {
            let measured = layer.window_bytes as f64 * 8.0 / secs;
            // Rise fast (a ramp-up must be paid for soon), fall slowly (a quiet scene
            // should not invite a subscriber to an upgrade it cannot keep); a single
            // key frame in a window moves the rate only half way.
            layer.rate_bps = if layer.rate_bps == 0.0 {
                measured
            } else if measured > layer.rate_bps {
                layer.rate_bps * 0.5 + measured * 0.5
            } else {
                layer.rate_bps * 0.8 + measured * 0.2
            };
            layer.window_bytes = 0;
        }
        self.window_start = now;
        true
    }

    /// Whether layer `index` is being sent.
    pub(crate) fn is_live(&self, index: usize, now: Instant) -> bool {
        self.list
            .get(index)
            .and_then(|l| l.last_packet)
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_STALE)
    }

    /// Indices of the layers being sent, lowest first.
    pub(crate) fn live(&self, now: Instant) -> Vec<usize> {
        (0..self.list.len())
            .filter(|i| self.is_live(*i, now))
            .collect()
    }

    /// The measured bitrate of layer `index`, bits per second (0 when nothing
    /// arrives).
    pub(crate) fn measured(&self, index: usize) -> u64 {
        self.list.get(index).map_or(0, |l| l.rate_bps as u64)
    }

    /// What layer `index` costs, bits per second.
    pub(crate) fn cost(&self, index: usize) -> u64 {
        self.measured(index).max(MIN_LAYER_BPS)
    }

    /// The picture height of layer `index`: known from a key frame, or estimated from
    /// its place (each layer half the height of the one above).
    pub(crate) fn height(&self, index: usize) -> u32 {
        if let Some((_, h)) = self.list.get(index).and_then(|l| l.size) {
            return h;
        }
        let top = self.list.len().saturating_sub(1);
        let above = u32::try_from(top.saturating_sub(index)).unwrap_or(u32::MAX);
        DEFAULT_TOP_HEIGHT.checked_shr(above).unwrap_or(0).max(1)
    }

    /// The lowest live layer tall enough for a tile `tile_height` device pixels high, or
    /// the highest live layer if none is.
    pub(crate) fn fitting(&self, live: &[usize], tile_height: u32) -> Option<usize> {
        let need = f64::from(tile_height) * FIT_SHARE;
        live.iter()
            .copied()
            .find(|i| f64::from(self.height(*i)) >= need)
            .or_else(|| live.last().copied())
    }
}

/// Bits per second over the last measuring window or two.
#[derive(Debug)]
pub(crate) struct RateMeter {
    window_start: Instant,
    bytes: u64,
    rate_bps: u64,
}

impl RateMeter {
    pub(crate) fn new(now: Instant) -> Self {
        RateMeter {
            window_start: now,
            bytes: 0,
            rate_bps: 0,
        }
    }

    /// Counts `bytes` sent at `now`.
    pub(crate) fn add(&mut self, now: Instant, bytes: usize) {
        self.roll(now);
        self.bytes += bytes as u64;
    }

    /// The rate of the last complete window.
    pub(crate) fn rate(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.rate_bps
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < RATE_WINDOW {
            return;
        }
        // A window with nothing in it after a long gap counts as silence.
        self.rate_bps = if elapsed > RATE_WINDOW * 2 {
            0
        } else {
            (self.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64
        };
        self.bytes = 0;
        self.window_start = now;
    }
}

/// One video track a subscriber may receive, as [`allocate`] sees it.
#[derive(Debug, Clone)]
pub(crate) struct Demand {
    /// Cost of each live layer, lowest first, bits per second.
    pub costs: Vec<u64>,
    /// Position in `costs` of the layer that fits the tile; `None`: not visible.
    pub wanted: Option<usize>,
    /// Position in `costs` of the layer chosen last time, if any.
    pub current: Option<usize>,
    /// Larger is served first (screen shares, then large tiles).
    pub priority: u64,
}

/// What a subscriber gets of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// This position in the demand's `costs`.
    Layer(usize),
    /// Not visible.
    Hidden,
    /// Does not fit the bandwidth, not even at the lowest layer.
    Starved,
}

/// Splits `budget` bits per second over `demands`. Returns one choice per demand, and
/// the cost of the next step up that did not fit (what probing should make room for).
pub(crate) fn allocate(budget: u64, demands: &[Demand]) -> (Vec<Choice>, Option<u64>) {
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by(|a, b| demands[*b].priority.cmp(&demands[*a].priority));
    let mut choices = vec![Choice::Hidden; demands.len()];
    let mut left = budget as f64;
    // An upgrade beyond the current layer (resuming is one) must fit with a margin;
    // keeping what one has needs less than its full cost.
    let price = |d: &Demand, pos: usize| {
        let cost = d.costs[pos] as f64;
        match d.current {
            Some(c) if pos <= c => cost * KEEP_SHARE,
            // Resuming at the lowest layer needs no margin: a paused subscriber should
            // get its picture back as soon as it fits.
            None if pos == 0 => cost,
            _ => cost * UPGRADE_MARGIN,
        }
    };
    for &i in &order {
        let d = &demands[i];
        if d.wanted.is_none() || d.costs.is_empty() {
            continue;
        }
        if price(d, 0) <= left {
            left -= d.costs[0] as f64;
            choices[i] = Choice::Layer(0);
        } else {
            choices[i] = Choice::Starved;
        }
    }
    let mut next_step = None;
    for &i in &order {
        let d = &demands[i];
        let (Choice::Layer(mut at), Some(wanted)) = (choices[i], d.wanted) else {
            continue;
        };
        let wanted = wanted.min(d.costs.len() - 1);
        while at < wanted {
            let extra = price(d, at + 1) - d.costs[at] as f64;
            if extra > left {
                // A lower layer can cost more than the one above (Firefox has sent its
                // lowest at 1 Mbit/s next to a middle one at 300 kbit/s).
                next_step.get_or_insert(d.costs[at + 1].saturating_sub(d.costs[at]));
                break;
            }
            left -= d.costs[at + 1] as f64 - d.costs[at] as f64;
            at += 1;
        }
        choices[i] = Choice::Layer(at);
    }
    if next_step.is_none() {
        next_step = order
            .iter()
            .find(|i| choices[**i] == Choice::Starved)
            .map(|i| demands[*i].costs[0]);
    }
    (choices, next_step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(costs: &[u64], wanted: Option<usize>, current: Option<usize>, p: u64) -> Demand {
        Demand {
            costs: costs.to_vec(),
            wanted,
            current,
            priority: p,
        }
    }

    const SIMULCAST: [u64; 3] = [150_000, 500_000, 1_500_000];

    #[test]
    fn layers_order_by_rid_and_estimate_heights() {
        #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
        let now = Instant::now();
        let mut l = Layers::new(now);
        assert_eq!(l.index_of(Some(Rid::from("f"))), (0, false));
        assert_eq!(l.index_of(Some(Rid::from("q"))), (0, true));
        assert_eq!(l.index_of(Some(Rid::from("h"))), (1, true));
        assert_eq!(l.index_of(Some(Rid::from("f"))), (2, false));
        assert_eq!([l.height(0), l.height(1), l.height(2)], [180, 360, 720]);
        l.on_packet(2, now, 1000, Some((1600, 900)));
        assert_eq!(l.height(2), 900);
        assert_eq!(l.fitting(&[0, 1, 2], 300), Some(1));
        assert_eq!(l.fitting(&[0, 1, 2], 100), Some(0));
        assert_eq!(l.fitting(&[0, 1], 1000), Some(1));
    }

    #[test]
    fn rates_rise_fast_and_fall_slowly() {
        #[allow(clippy::disallowed_methods)] // a unit test's fixed origin
        let now = Instant::now();
        let mut l = Layers::new(now);
        let (i, _) = l.index_of(None);
        l.on_packet(i, now, 62_500, None);
        assert!(l.tick(now + RATE_WINDOW));
        assert_eq!(l.cost(i), 1_000_000);
        assert!(l.tick(now + RATE_WINDOW * 2));
        assert_eq!(l.cost(i), 800_000);
        l.on_packet(i, now, 125_000, None);
        assert!(l.tick(now + RATE_WINDOW * 3));
        assert_eq!(l.cost(i), 1_400_000);
        assert!(l.is_live(i, now + RATE_WINDOW * 2));
        assert!(!l.is_live(i, now + LAYER_STALE));
    }

    #[test]
    fn enough_bandwidth_gives_every_tile_its_fit() {
        let d = [
            demand(&SIMULCAST, Some(2), Some(2), 10),
            demand(&SIMULCAST, Some(0), Some(0), 1),
            demand(&SIMULCAST, None, None, 5),
        ];
        let (c, next) = allocate(10_000_000, &d);
        assert_eq!(c, [Choice::Layer(2), Choice::Layer(0), Choice::Hidden]);
        assert_eq!(next, None);
    }

    #[test]
    fn scarce_bandwidth_serves_large_tiles_first_then_starves() {
        let d = [
            demand(&SIMULCAST, Some(2), Some(2), 1),
            demand(&SIMULCAST, Some(2), Some(2), 10),
        ];
        let (c, next) = allocate(800_000, &d);
        // Both get the lowest layer (300 k), the big tile climbs to the middle one.
        assert_eq!(c, [Choice::Layer(0), Choice::Layer(1)]);
        assert_eq!(next, Some(1_000_000));
        let (c, _) = allocate(200_000, &d);
        assert_eq!(c, [Choice::Starved, Choice::Layer(0)]);
        let (c, next) = allocate(100_000, &d);
        assert_eq!(c, [Choice::Starved, Choice::Starved]);
        assert_eq!(next, Some(150_000));
    }

    #[test]
    fn upgrades_need_a_margin_but_keeping_does_not() {
        let keep = [demand(&SIMULCAST, Some(1), Some(1), 1)];
        assert_eq!(allocate(500_000, &keep).0, [Choice::Layer(1)]);
        assert_eq!(allocate(420_000, &keep).0, [Choice::Layer(1)]);
        assert_eq!(allocate(380_000, &keep).0, [Choice::Layer(0)]);
        let climb = [demand(&SIMULCAST, Some(1), Some(0), 1)];
        assert_eq!(allocate(500_000, &climb).0, [Choice::Layer(0)]);
        assert_eq!(allocate(700_000, &climb).0, [Choice::Layer(1)]);
        let resume = [demand(&SIMULCAST, Some(0), None, 1)];
        assert_eq!(allocate(140_000, &resume).0, [Choice::Starved]);
        assert_eq!(allocate(150_000, &resume).0, [Choice::Layer(0)]);
    }

    #[test]
    fn a_lower_layer_dearer_than_the_next_does_not_panic() {
        // Measured costs need not rise with the layer: Firefox's lowest layer has run at
        // 1 Mbit/s with its middle one at 300 kbit/s. Here the step up does not fit.
        let odd = [demand(
            &[1_000_000, 900_000, 2_000_000],
            Some(2),
            Some(0),
            1,
        )];
        let (choices, next) = allocate(850_000, &odd);
        assert_eq!(choices, [Choice::Layer(0)]);
        assert_eq!(next, Some(0));
    }
}
