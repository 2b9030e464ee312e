//! The estimates behind adaptive protection (CONTRACT section 13), kept in log time so
//! a replay computes the same numbers: a sales rate that follows a ramp, a decayed p99
//! of a delay, and the two automatic numbers derived from them, the buffer and the
//! EMSR-b nested protection levels. Pure arithmetic; the state decides when to call it.
//!
//! Every result is finite and within its range whatever the input: rates, delays and
//! units are clamped before they are multiplied, and a float becomes an integer only
//! through [`whole_units`].

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::f64::consts::LN_2;
use std::sync::OnceLock;

const MICROS: f64 = 1e6;
/// A decayed unit count never exceeds this (no SKU sells 10^15 units in a half-life).
const MAX_UNITS: f64 = 1e15;
/// Delays are clamped to this many seconds (about four months).
pub const MAX_DELAY_S: f64 = 1e7;
/// A rate below this (one unit a week) is forgotten: a SKU that sells a few times a
/// week keeps a rate, and a buffer, between its sales.
const FADED_BELOW: f64 = 1.0 / 604_800.0;
/// How far above a threshold a lower bound must stay to count as above it: far more
/// than the rounding of the few float operations between the bound and the number.
const MARGIN: f64 = 1e-9;

/// Half-lives of the rate estimates, in seconds (policy `[defaults]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HalfLives {
    /// The fast rate: follows a ramp within a minute or two.
    pub fast_s: f64,
    /// The slow rate: steady demand, unmoved by a lull.
    pub slow_s: f64,
    /// How fast a peak of the fast rate is forgotten: it bridges the gaps between a
    /// surge's sales; the clumps cover the spread of a steady rate's.
    pub peak_s: f64,
    /// The day-long rate: a steady SKU's rate through hours without a sale.
    pub long_s: f64,
}

impl Default for HalfLives {
    fn default() -> Self {
        HalfLives {
            fast_s: 30.0,
            slow_s: 900.0,
            peak_s: 60.0,
            long_s: 86_400.0,
        }
    }
}

/// `2^(−dt / half_life)`: what a count keeps after `dt` seconds.
fn kept(dt_s: f64, half_life_s: f64) -> f64 {
    if half_life_s > 0.0 {
        (-dt_s / half_life_s * LN_2).exp()
    } else {
        0.0
    }
}

/// A decayed count of units in a half-life, as units per second.
fn per_second(count: f64, half_life_s: f64) -> f64 {
    if half_life_s > 0.0 {
        count * LN_2 / half_life_s
    } else {
        0.0
    }
}

/// One SKU's sales on one channel: decayed unit counts and a decayed peak, as of `at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    fast: f64,
    /// Sales (not units) in the fast count, decayed alike.
    fast_sales: f64,
    slow: f64,
    /// The day-long count. Not in a [`Rate`]'s serialized form: snapshots keep it apart
    /// (`AdaptiveImage::long`), so the formats before it read as they were written.
    #[serde(skip)]
    long: f64,
    /// The highest fast rate seen (units/s), decayed.
    peak: f64,
    /// Log time (µs) the numbers are as of.
    at: i64,
}

/// A rate's numbers at one moment, in units per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RateNow {
    pub fast: f64,
    pub slow: f64,
    pub peak: f64,
    /// A slow mover's rate: one unit over the time since the last sale (see
    /// [`Rate::floor`]).
    pub floor: f64,
    /// The day-long rate: what a steady SKU sells, read through a lull of hours that
    /// leaves its slow rate and floor under it. It counts up from 0 in a freshly
    /// started engine and only ever raises the estimate, so it is not corrected then.
    pub long: f64,
    /// The estimate CONTRACT 13 uses: the largest of the five.
    pub rate: f64,
}

impl Rate {
    /// The counts decayed to `now` (never backwards: a time before `at` is `at`).
    fn decayed(&self, now: i64, hl: &HalfLives) -> Rate {
        if now <= self.at {
            return *self;
        }
        let dt = (now - self.at) as f64 / MICROS;
        Rate {
            fast: self.fast * kept(dt, hl.fast_s),
            fast_sales: self.fast_sales * kept(dt, hl.fast_s),
            slow: self.slow * kept(dt, hl.slow_s),
            long: self.long * kept(dt, hl.long_s),
            peak: self.peak * kept(dt, hl.peak_s),
            at: now,
        }
    }

    /// The fast rate: a lone sale is not a rate, so one sale's worth of units in the
    /// fast window is not counted (one order of 40 units would otherwise read as a
    /// surge of 40 units in a half-life).
    fn fast_rate(&self, hl: &HalfLives) -> f64 {
        if self.fast_sales <= 1.0 {
            return 0.0;
        }
        per_second(self.fast * (1.0 - 1.0 / self.fast_sales), hl.fast_s)
    }

    /// One unit over the time since the last sale plus the slow window (`slow_s / ln 2`,
    /// so it starts at one unit's slow rate). A SKU that sells once in hours has no
    /// decayed rate between its sales: one sale's slow rate fades within six slow
    /// half-lives, and its buffer with it, while a feed still shows its last units for
    /// half an hour. This reads its rate as about one over the time between its sales
    /// instead, and lets it fade a week after the last one. Falling as 1/t, it never
    /// raises a buffer past a lone unit's slow rate, nor keeps a surge's.
    fn floor(&self, now: i64, hl: &HalfLives) -> f64 {
        if self.slow <= 0.0 || hl.slow_s <= 0.0 {
            return 0.0;
        }
        let since_s = now.saturating_sub(self.at).max(0) as f64 / MICROS;
        (1.0 / (since_s + hl.slow_s / LN_2)).min(MAX_UNITS)
    }

    /// Counts one sale of `units` at log time `now`.
    pub fn add(&mut self, units: i64, now: i64, hl: &HalfLives) {
        let mut r = self.decayed(now, hl);
        let u = units.max(0) as f64;
        r.fast = (r.fast + u).min(MAX_UNITS);
        r.fast_sales = (r.fast_sales + 1.0).min(MAX_UNITS);
        r.slow = (r.slow + u).min(MAX_UNITS);
        r.long = (r.long + u).min(MAX_UNITS);
        r.peak = r.peak.max(r.fast_rate(hl));
        *self = r;
    }

    /// The estimates at log time `now`.
    pub fn at(&self, now: i64, hl: &HalfLives) -> RateNow {
        let r = self.decayed(now, hl);
        let fast = r.fast_rate(hl);
        let slow = per_second(r.slow, hl.slow_s);
        let floor = self.floor(now, hl);
        let long = per_second(r.long, hl.long_s);
        RateNow {
            fast,
            slow,
            peak: r.peak,
            floor,
            long,
            rate: fast.max(slow).max(r.peak).max(floor).max(long),
        }
    }

    /// The log time (µs) of the last sale counted.
    pub fn last_sale(&self) -> i64 {
        self.at
    }

    /// The day-long count, as of [`Self::last_sale`] (kept apart in snapshots).
    pub fn long_count(&self) -> f64 {
        self.long
    }

    /// This rate with its day-long count, as a snapshot kept it.
    pub fn with_long_count(self, long: f64) -> Rate {
        Rate {
            long: long.clamp(0.0, MAX_UNITS),
            ..self
        }
    }
}

impl RateNow {
    /// Whether nothing is left worth keeping (below one unit a week).
    pub fn faded(&self) -> bool {
        self.rate < FADED_BELOW
    }

    /// The rates of an engine that began counting `counting_s` seconds ago. A decayed
    /// count that began at 0 reads low until it has run for a few half-lives: steady
    /// sales of r a second count r × (1 − 2^(−t / slow_s)) × slow_s / ln 2 after t
    /// seconds, so a freshly started engine sees every slow rate at half its value after
    /// one half-life. The slow rate is divided by that share (at most doubled: the
    /// first sales are too few to be multiplied further), until [`WARM_AFTER_HALF_LIVES`].
    /// `share`: [`warm_share`] of the engine's counting time, worked out once per reading.
    pub fn warmed(self, share: f64) -> RateNow {
        if share >= 1.0 {
            return self;
        }
        let slow = self.slow / share;
        RateNow {
            slow,
            rate: self.rate.max(slow),
            ..self
        }
    }

    /// The same rates counted in lots of `per` units (a component's sales in kits).
    pub fn in_lots_of(&self, per: i64) -> RateNow {
        let per = per.max(1) as f64;
        RateNow {
            fast: self.fast / per,
            slow: self.slow / per,
            peak: self.peak / per,
            floor: self.floor / per,
            long: self.long / per,
            rate: self.rate / per,
        }
    }

    /// Seconds from this moment the rate is sure not to have faded if it sells nothing
    /// more.
    pub fn lasts_s(&self, hl: &HalfLives) -> f64 {
        decays_to(self.slow, FADED_BELOW, hl.slow_s)
            .max(decays_to(self.peak, FADED_BELOW, hl.peak_s))
            .max(decays_to(self.long, FADED_BELOW, hl.long_s))
            .max(if self.floor > 0.0 {
                falls_to(1.0, 1.0 / self.floor, FADED_BELOW)
            } else {
                0.0
            })
    }
}

/// A freshly started engine's slow rates are corrected for this many half-lives.
const WARM_AFTER_HALF_LIVES: f64 = 8.0;

/// The share of a steady rate a slow count that began `counting_s` ago holds: 1 once
/// it has run [`WARM_AFTER_HALF_LIVES`], never below one half.
pub fn warm_share(counting_s: f64, hl: &HalfLives) -> f64 {
    let warming = counting_s < WARM_AFTER_HALF_LIVES * hl.slow_s; // false for NaN
    if !warming || hl.slow_s <= 0.0 {
        return 1.0;
    }
    (1.0 - kept(counting_s.max(0.0), hl.slow_s)).max(0.5)
}

/// Half-lives no slower than the corrected rates of an engine counting for `counting_s`
/// fall at, for the bounds of how long a number holds ([`RateNow::lasts_s`],
/// [`buffer_holds_s`]). As the share a count holds grows, a corrected slow rate falls
/// up to `1 / share` times as fast as the count decays: its half-life is at least
/// `slow_s × (1 − 2^(−counting_s / slow_s))` (0 at the start: no bound).
pub fn while_warming(counting_s: f64, hl: &HalfLives) -> HalfLives {
    if warm_share(counting_s, hl) >= 1.0 {
        return *hl;
    }
    HalfLives {
        slow_s: hl.slow_s * (1.0 - kept(counting_s.max(0.0), hl.slow_s)),
        ..*hl
    }
}

/// Seconds until an engine counting for `counting_s` stops correcting its slow rates
/// (0 once it has): the correction's last step changes them at once.
pub fn warm_for_s(counting_s: f64, hl: &HalfLives) -> f64 {
    if warm_share(counting_s, hl) >= 1.0 {
        return f64::INFINITY;
    }
    (WARM_AFTER_HALF_LIVES * hl.slow_s - counting_s).max(0.0)
}

/// How long (s) `value`, halving every `half_life_s`, stays above `floor` (0 when it is
/// not above it now, or is no number).
fn decays_to(value: f64, floor: f64, half_life_s: f64) -> f64 {
    let above = floor * (1.0 + MARGIN) + MARGIN;
    if value > above && half_life_s > 0.0 {
        half_life_s * (value / above).log2()
    } else {
        0.0
    }
}

/// How long (s) `units / (a + t)`, falling as a [`Rate::floor`] does, stays above
/// `floor` (0 when it is not above it now, or is no number).
fn falls_to(units: f64, a: f64, floor: f64) -> f64 {
    let above = floor * (1.0 + MARGIN) + MARGIN;
    let holds = units / above - a;
    if units / a > above && holds > 0.0 {
        holds
    } else {
        0.0
    }
}

/// How long (s) `scale × Σ lag / (a + t)` over `floors` (lag, a) stays above `floor`: a
/// lower bound by Newton's method, whose steps on a convex falling sum never pass the
/// time it falls to `floor` (0 when it is not above it now, or is no number).
fn floors_fall_to(floors: &[(f64, f64)], scale: f64, floor: f64) -> f64 {
    let above = floor * (1.0 + MARGIN) + MARGIN;
    let mut t = 0.0f64;
    for _ in 0..8 {
        let (mut units, mut slope) = (0.0, 0.0);
        for &(lag, a) in floors {
            units += scale * lag / (a + t);
            slope += scale * lag / ((a + t) * (a + t));
        }
        if !(units > above && slope > 0.0) {
            break;
        }
        t += (units - above) / slope;
    }
    if t.is_finite() {
        t
    } else {
        0.0
    }
}

/// Buckets of the delay histogram: bucket 0 holds delays up to [`FIRST_BOUND_S`],
/// bucket i up to `FIRST_BOUND_S × GROWTH^i`; the last one everything above.
const BUCKETS: usize = 128;
const FIRST_BOUND_S: f64 = 0.01;
const GROWTH: f64 = 1.15;
/// Until this many delays were seen, a p99 is not a measurement.
pub const MIN_SAMPLES: u64 = 20;
/// Half-life of the delay histogram (log time): an hour-old delay counts half.
const DELAY_HALF_LIFE_S: f64 = 3_600.0;
/// Weights are rescaled once they grow past 2^this (forward decay, see `DelayP99::add`).
const RESCALE_HALF_LIVES: f64 = 512.0;

/// A p99 of a delay (an order's `ts` to the log, say), decayed in log time.
///
/// Forward decay: a sample at time t weighs `2^((t − base) / half-life)`, so adding one
/// touches one bucket; the weights are rescaled to a new `base` when they grow large.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayP99 {
    weights: Vec<f64>,
    base: i64,
    samples: u64,
}

impl Default for DelayP99 {
    fn default() -> Self {
        DelayP99 {
            weights: vec![0.0; BUCKETS],
            base: i64::MIN,
            samples: 0,
        }
    }
}

fn bound(bucket: usize) -> f64 {
    FIRST_BOUND_S * GROWTH.powi(bucket as i32)
}

fn bucket_of(delay_s: f64) -> usize {
    if delay_s.is_nan() || delay_s <= FIRST_BOUND_S {
        return 0;
    }
    let b = ((delay_s / FIRST_BOUND_S).ln() / GROWTH.ln()).ceil();
    (b as usize).min(BUCKETS - 1)
}

impl DelayP99 {
    /// Adds one delay (seconds, clamped to 0..MAX_DELAY_S) observed at log time `now`.
    pub fn add(&mut self, delay_s: f64, now: i64) {
        if self.weights.len() != BUCKETS {
            *self = DelayP99::default();
        }
        if self.base == i64::MIN || now < self.base {
            // The first sample, or a clock that went back: weigh from here.
            self.rescale(now);
        }
        let mut half_lives = (now - self.base) as f64 / MICROS / DELAY_HALF_LIFE_S;
        if half_lives > RESCALE_HALF_LIVES {
            self.rescale(now);
            half_lives = 0.0;
        }
        let delay = delay_s.clamp(0.0, MAX_DELAY_S);
        self.weights[bucket_of(delay)] += half_lives.exp2();
        self.samples = self.samples.saturating_add(1);
    }

    fn rescale(&mut self, now: i64) {
        if self.base != i64::MIN && now > self.base {
            let shift = ((now - self.base) as f64 / MICROS / DELAY_HALF_LIFE_S).exp2();
            for w in &mut self.weights {
                *w /= shift;
            }
        }
        self.base = now;
    }

    /// The decayed p99 (the upper bound of its bucket, so never below the true one),
    /// once [`MIN_SAMPLES`] delays were seen.
    pub fn p99(&self) -> Option<f64> {
        if self.samples < MIN_SAMPLES {
            return None;
        }
        let total: f64 = self.weights.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut seen = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            seen += w;
            if seen >= 0.99 * total {
                return Some(bound(i));
            }
        }
        Some(bound(BUCKETS - 1))
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// A float count of units as a whole number of units, rounded up, within 0..=i64::MAX
/// (NaN is 0).
pub fn whole_units(units: f64) -> i64 {
    if units.is_nan() || units <= 0.0 {
        0
    } else {
        // `as` saturates at i64::MAX.
        units.ceil() as i64
    }
}

/// The rule of an automatic buffer (policy `buffer = "auto"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoBuffer {
    pub min: i64,
    pub max: Option<i64>,
    pub risk: f64,
}

/// Above this mean a Poisson count's p99 is its Cornish-Fisher approximation.
const POISSON_EXACT_UP_TO: f64 = 100.0;
/// Φ⁻¹(0.99).
const Z99: f64 = 2.326_347_874_040_841;

/// The p99 of a Poisson count of mean `mean`: the fewest units n with P(N > n) ≤ 1 %.
/// Nondecreasing in `mean`. Every automatic buffer asks it, so up to
/// [`POISSON_EXACT_UP_TO`] it is looked up among the means where the exact p99 steps
/// up ([`exact_steps`]); above, it is a formula.
pub fn poisson_p99(mean: f64) -> i64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    if mean > POISSON_EXACT_UP_TO {
        return whole_units(mean + Z99 * mean.sqrt() + (Z99 * Z99 - 1.0) / 6.0);
    }
    exact_steps().partition_point(|&step| step <= mean) as i64
}

/// The exact p99 by summing the Poisson terms (up to [`POISSON_EXACT_UP_TO`]).
fn exact_p99(mean: f64) -> i64 {
    let mut term = (-mean).exp();
    let mut at_most = term;
    let mut n = 0i64;
    // P(N ≤ n) passes 0.99 by n = 125 at a mean of 100; the bound only ends the loop.
    while at_most < 0.99 && n < 1_000 {
        n += 1;
        term *= mean / n as f64;
        at_most += term;
    }
    n
}

/// Where the exact p99 steps up, worked out once: entry u − 1 is the least mean (to
/// the last bit) whose p99 is at least u, for every u the exact p99 reaches.
fn exact_steps() -> &'static [f64] {
    static STEPS: OnceLock<Vec<f64>> = OnceLock::new();
    STEPS.get_or_init(|| {
        (1..=exact_p99(POISSON_EXACT_UP_TO))
            .map(|units| reaches(units, exact_p99))
            .collect()
    })
}

/// A mean above which [`clumps`] is at least `units`: where the exact p99 steps up,
/// else found by bisection where the p99 is a formula.
fn clumps_reach(units: i64) -> f64 {
    match usize::try_from(units) {
        Ok(0) | Err(_) => 0.0,
        Ok(n) => exact_steps()
            .get(n - 1)
            .copied()
            .unwrap_or_else(|| reaches(units, poisson_p99)),
    }
}

/// The least mean (bisection, to the last bit, from above) at which `p99` is at least
/// `units`.
fn reaches(units: i64, p99: fn(f64) -> i64) -> f64 {
    if units <= 0 {
        return 0.0;
    }
    // A count's p99 is above its mean, so a mean of `units` reaches it.
    let (mut below, mut above) = (0.0, units as f64);
    for _ in 0..64 {
        let mid = 0.5 * (below + above);
        if p99(mid) >= units {
            above = mid;
        } else {
            below = mid;
        }
    }
    above
}

/// The units every channel d sells while channel c's number is corrected:
/// `Σ_d v_d × (push_lag_c + order_lag_d)`. `sellers` are (v_d units/s, order_lag_d s).
pub fn window_units(push_lag_s: f64, sellers: impl Iterator<Item = (f64, f64)>) -> f64 {
    let push = push_lag_s.clamp(0.0, MAX_DELAY_S);
    sellers
        .map(|(v, order_lag)| v.clamp(0.0, MAX_UNITS) * (push + order_lag.clamp(0.0, MAX_DELAY_S)))
        .sum()
}

/// The clumps a steady rate sells in: the p99 of a Poisson count of `units`. Sales at a
/// steady rate come in clumps, so a window expected to sell `units` sells more than
/// `ceil(risk × units)` now and then: 0.7 expected sell 2 or more one time in six, and
/// 8 sell more than 12 one time in sixteen. Over a catalog and a day of windows those are
/// oversells. `risk` covers the error of the rates; the clumps, the spread of the sales.
pub fn clumps(units: f64) -> i64 {
    poisson_p99(units)
}

/// CONTRACT 13: `ceil(risk × units)` with `units` the [`window_units`], and never below
/// its [`clumps`], bounded by the rule's min and max. `sellers` are (v_d units/s, order_lag_d s) of every channel d
/// selling the SKU. Returns (the formula's value, the bounded buffer).
pub fn auto_buffer(
    rule: &AutoBuffer,
    push_lag_s: f64,
    sellers: impl Iterator<Item = (f64, f64)>,
) -> (i64, i64) {
    let units = window_units(push_lag_s, sellers);
    let raw = whole_units(rule.risk.clamp(0.0, 100.0) * units).max(clumps(units));
    let mut bounded = raw.max(rule.min);
    if let Some(max) = rule.max {
        bounded = bounded.min(max);
    }
    (raw, bounded.max(0))
}

/// How long (s) an automatic buffer of `current` units surely keeps its value while no
/// channel sells: between sales every rate only decays, and never below the largest of
/// its slow rate, its peak and its day-long rate, which halve every `slow_s`, `peak_s`
/// and `long_s`, and its floor,
/// which falls as `1 / (1 / floor + t)`; so the formula's units only fall, and `current`
/// holds while `risk` × them stays above `current − 1` or their [`clumps`] reach it. `sellers` are (rate now, order_lag_d s)
/// of every channel d selling the SKU. A lower bound: recomputed at that time the buffer may
/// still be `current`, never changed before (infinite when no decay can move it).
pub fn buffer_holds_s(
    rule: &AutoBuffer,
    push_lag_s: f64,
    sellers: &[(RateNow, f64)],
    current: i64,
    hl: &HalfLives,
) -> f64 {
    let floor = auto_buffer(rule, push_lag_s, std::iter::empty()).1;
    if current <= floor {
        return f64::INFINITY;
    }
    let push = push_lag_s.clamp(0.0, MAX_DELAY_S);
    let risk = rule.risk.clamp(0.0, 100.0);
    let (mut slow, mut peak, mut long) = (0.0, 0.0, 0.0);
    // The floors' units: Σ lag_d / (a_d + t) with a_d = 1 / floor_d now.
    let mut floors: SmallVec<[(f64, f64); 4]> = SmallVec::new();
    for (now, order_lag) in sellers {
        let lag = push + order_lag.clamp(0.0, MAX_DELAY_S);
        slow += now.slow.clamp(0.0, MAX_UNITS) * lag;
        peak += now.peak.clamp(0.0, MAX_UNITS) * lag;
        long += now.long.clamp(0.0, MAX_UNITS) * lag;
        if now.floor > 0.0 {
            floors.push((lag, 1.0 / now.floor));
        }
    }
    // How long `scale` × the units stay above `threshold` (by one lower bound or another).
    let stays_above = |scale: f64, threshold: f64| {
        decays_to(scale * slow, threshold, hl.slow_s)
            .max(decays_to(scale * peak, threshold, hl.peak_s))
            .max(decays_to(scale * long, threshold, hl.long_s))
            .max(floors_fall_to(&floors, scale, threshold))
    };
    // `current` holds while ceil(risk × units) or their clumps reach it.
    let clumps_hold = match clumps_reach(current) {
        reach if reach.is_finite() => stays_above(1.0, reach),
        _ => 0.0,
    };
    let holds = stays_above(risk, (current - 1) as f64).max(clumps_hold);
    if holds.is_nan() {
        0.0
    } else {
        holds
    }
}

/// EMSR-b nested protection levels. `tiers` are (unit value, mean demand over the
/// horizon) by tier, highest priority first; demand is taken as Poisson (variance =
/// mean). Returns y_1..y_n: y_j is how many units tiers ≤ j keep from every tier below
/// (nondecreasing; y_n is y_(n−1), as no tier is below the last).
pub fn emsr_b(tiers: &[(f64, f64)]) -> Vec<i64> {
    let mut levels = Vec::with_capacity(tiers.len());
    let (mut mean, mut weighted) = (0.0f64, 0.0f64);
    let mut last = 0i64;
    for j in 0..tiers.len() {
        let (value, demand) = tiers[j];
        let demand = demand.clamp(0.0, MAX_UNITS);
        mean += demand;
        weighted += value.clamp(0.0, f64::MAX / MAX_UNITS) * demand;
        let level = match tiers.get(j + 1) {
            Some(&(next_value, _)) if mean > 0.0 => {
                let avg_value = weighted / mean;
                let ratio = next_value / avg_value;
                if ratio.is_nan() || ratio >= 1.0 {
                    0
                } else {
                    let z = inverse_normal(1.0 - ratio.max(0.0));
                    whole_units(mean + mean.sqrt() * z)
                }
            }
            _ => last,
        };
        last = last.max(level);
        levels.push(last);
    }
    levels
}

/// Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9), for p clamped to [1e-12, 1 − 1e-12].
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    const LOW: f64 = 0.02425;
    let p = if p.is_nan() {
        0.5
    } else {
        p.clamp(1e-12, 1.0 - 1e-12)
    };
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn a_steady_rate_is_read_back() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        // 2 units/s for an hour.
        for t in 0..3_600 {
            r.add(2, t * S, &hl);
        }
        let now = r.at(3_600 * S, &hl);
        assert!((now.slow - 2.0).abs() < 0.2, "{now:?}");
        assert!((now.rate - 2.0).abs() < 0.3, "{now:?}");
    }

    #[test]
    fn the_estimate_follows_a_two_minute_ramp_where_a_slow_rate_trails() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        // 0 → 10 units/s over 120 s, one sale every 1/rate seconds.
        let mut t = 0.0f64;
        while t < 120.0 {
            let rate = 10.0 * t / 120.0;
            r.add(1, (t * 1e6) as i64, &hl);
            t += 1.0 / rate.max(0.5);
        }
        let now = r.at(120 * S, &hl);
        assert!(now.rate > 6.0, "the estimate keeps up: {now:?}");
        assert!(now.slow < 2.0, "a slow rate alone trails: {now:?}");
    }

    #[test]
    fn a_peak_outlasts_the_fast_rate_and_then_fades() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        for i in 0..600 {
            r.add(1, i * S / 10, &hl);
        }
        // A peak half-life after the burst, its peak holds half of it; the fast rate less.
        let burst = r.at(60 * S, &hl).rate;
        let later = r.at(120 * S, &hl);
        assert!(
            later.peak > later.fast && later.rate > 0.45 * burst,
            "{later:?}"
        );
        let day = r.at(86_400 * S, &hl);
        assert!(day.slow < 1e-6 && day.peak < 1e-6, "{day:?}");
        // What is left a day on is the floor and the day-long rate of the 600 units
        // (halving each day): under one unit a week after about 11.5 days.
        assert!(!day.faded());
        assert!(!r.at(11 * 86_400 * S, &hl).faded());
        assert!(r.at(12 * 86_400 * S, &hl).faded());
    }

    #[test]
    fn a_steady_sellers_day_long_rate_holds_through_a_lull() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        // Twelve a day, one every two hours, for three days; then four hours without one.
        for i in 0..36 {
            r.add(1, i * 7_200 * S, &hl);
        }
        let lull = r.at(35 * 7_200 * S + 4 * 3_600 * S, &hl);
        let per_day = 12.0 / 86_400.0;
        // The floor reads one unit over the four hours; the day-long rate about the SKU's
        // true rate (low by its three days of counting and the lull's decay).
        assert!(lull.floor < 0.5 * per_day, "{lull:?}");
        assert!(lull.long > 0.7 * per_day && lull.long < per_day, "{lull:?}");
        assert_eq!(lull.rate, lull.long);
        // A snapshot keeps the count apart; a rate restored with it reads the same.
        let restored = Rate { long: 0.0, ..r }.with_long_count(r.long_count());
        assert_eq!(restored.at(40 * 7_200 * S, &hl), r.at(40 * 7_200 * S, &hl));
    }

    #[test]
    fn a_slow_movers_rate_is_about_one_over_the_time_between_its_sales() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        // One sale every two hours: the decayed rates forget each sale long before the
        // next one; the floor reads about one unit per two hours till then.
        for i in 0..5 {
            r.add(1, i * 7_200 * S, &hl);
        }
        let before_next = r.at(5 * 7_200 * S - S, &hl);
        assert!(before_next.slow < 1e-5, "{before_next:?}");
        let per_two_hours = 1.0 / 7_200.0;
        assert!(
            (0.8 * per_two_hours..=per_two_hours).contains(&before_next.rate),
            "{before_next:?}"
        );
        assert!(!r.at(5 * 7_200 * S, &hl).faded());
        // Right after a sale the floor is no more than that unit's slow rate.
        let after = r.at(4 * 7_200 * S, &hl);
        assert!(after.floor <= after.slow + 1e-12, "{after:?}");
        // It fades a week after the last sale, soon after `lasts_s` (a lower bound).
        let last = 4 * 7_200 * S;
        let lasts = r.at(last, &hl).lasts_s(&hl);
        assert!((603_000.0..604_800.0).contains(&lasts), "{lasts}");
        assert!(!r.at(last + (lasts * 1e6) as i64, &hl).faded());
        // `lasts_s` stops short by its margin (about 6 minutes on a week).
        assert!(r.at(last + ((lasts + 600.0) * 1e6) as i64, &hl).faded());
    }

    #[test]
    fn a_lone_sale_is_not_a_surge_however_many_units() {
        let hl = HalfLives::default();
        let mut r = Rate::default();
        r.add(40, 0, &hl);
        let now = r.at(0, &hl);
        assert_eq!((now.fast, now.peak), (0.0, 0.0));
        assert!(now.slow > 0.0);
        // A second order of 40 within the window is: half the units count.
        r.add(40, 0, &hl);
        let two = r.at(0, &hl);
        assert!((two.fast - 40.0 * LN_2 / hl.fast_s).abs() < 1e-9, "{two:?}");
    }

    #[test]
    fn the_p99_of_delays_is_the_bound_of_its_bucket() {
        let mut d = DelayP99::default();
        for i in 0..(MIN_SAMPLES - 1) {
            d.add(3.0, i as i64 * S);
        }
        assert_eq!(d.p99(), None, "not measured yet");
        d.add(3.0, 100 * S);
        let p = d.p99().expect("measured");
        assert!((3.0..3.0 * GROWTH).contains(&p), "{p}");
        // One slow delay among a thousand is not the p99; twenty are.
        for i in 0..1_000 {
            d.add(if i % 50 == 0 { 600.0 } else { 3.0 }, (200 + i) * S);
        }
        assert!(d.p99().expect("measured") >= 600.0);
    }

    #[test]
    fn old_delays_fade_and_weights_stay_finite_over_years() {
        let mut d = DelayP99::default();
        for i in 0..100 {
            d.add(1_000.0, i * S);
        }
        let year = 365 * 86_400 * S;
        for i in 0..100 {
            d.add(2.0, year + i * S);
        }
        let p = d.p99().expect("measured");
        assert!(p < 3.0, "{p}");
        assert!(d.weights.iter().all(|w| w.is_finite()));
    }

    #[test]
    fn the_buffer_counts_every_channel_during_this_channels_push_lag() {
        let rule = AutoBuffer {
            min: 0,
            max: None,
            risk: 1.5,
        };
        // walmart pushes in 1800 s; shopify (0 order lag) sells 0.01/s, amazon 0.02/s
        // with a 60 s order lag.
        let (raw, b) = auto_buffer(&rule, 1_800.0, [(0.01, 0.0), (0.02, 60.0)].into_iter());
        assert_eq!(
            raw,
            (1.5f64 * (0.01 * 1_800.0 + 0.02 * 1_860.0)).ceil() as i64
        );
        assert_eq!(b, raw);
        let bounded = AutoBuffer {
            min: 2,
            max: Some(50),
            risk: 1.5,
        };
        assert_eq!(auto_buffer(&bounded, 0.0, std::iter::empty()).1, 2);
        assert_eq!(
            auto_buffer(&bounded, 1e300, [(1e300, 1e300)].into_iter()),
            (i64::MAX, 50)
        );
        let nan = auto_buffer(&bounded, f64::NAN, [(f64::NAN, f64::INFINITY)].into_iter());
        assert_eq!(nan, (0, 2), "no number is not a buffer below min");
    }

    #[test]
    fn the_poisson_p99_is_exact_then_approximate_and_never_falls() {
        assert_eq!(poisson_p99(0.0), 0);
        assert_eq!(poisson_p99(f64::NAN), 0);
        // P(N ≥ 1) = 1 − e^−0.005 < 1 %: nothing to keep.
        assert_eq!(poisson_p99(0.005), 0);
        // Mean 0.7: P(N > 2) = 3.4 %, P(N > 3) = 0.58 %.
        assert_eq!(poisson_p99(0.7), 3);
        // Mean 10: P(N > 17) = 1.4 %, P(N > 18) = 0.72 %.
        assert_eq!(poisson_p99(10.0), 18);
        let mut last = 0;
        for i in 0..4_000 {
            let p = poisson_p99(i as f64 * 0.05);
            assert!(p >= last, "falls at {}", i as f64 * 0.05);
            last = p;
        }
        assert!(poisson_p99(1e300) == i64::MAX && poisson_p99(f64::INFINITY) == i64::MAX);
        // The lookup is the exact sum wherever it is not within a few bits of a step.
        for i in 1..=2_000 {
            let mean = i as f64 * 0.05 + 1e-9;
            assert_eq!(poisson_p99(mean), exact_p99(mean), "at {mean}");
        }
        for units in [1, 2, 3, 7, 50, 124, 125, 126, 300, 10_000] {
            let reach = clumps_reach(units);
            assert!(poisson_p99(reach) >= units && poisson_p99(reach * 0.999) < units);
        }
        assert_eq!(clumps_reach(0), 0.0);
    }

    #[test]
    fn a_buffer_covers_the_clumps_a_steady_rate_sells_in() {
        let rule = AutoBuffer {
            min: 0,
            max: None,
            risk: 1.5,
        };
        // 0.7 units expected during a 30-minute feed: ceil(1.5 × 0.7) = 2, the p99 is 3.
        let (raw, b) = auto_buffer(&rule, 1_800.0, [(0.7 / 1_800.0, 0.0)].into_iter());
        assert_eq!((raw, b), (3, 3));
        // 10 expected: ceil(1.5 × 10) = 15, the p99 is 18.
        let (raw, _) = auto_buffer(&rule, 100.0, [(0.1, 0.0)].into_iter());
        assert_eq!(raw, 18);
        // 100 expected: the risk's 150 is above the p99 (124).
        let (raw, _) = auto_buffer(&rule, 1_000.0, [(0.1, 0.0)].into_iter());
        assert_eq!(raw, 150);
    }

    #[test]
    fn emsr_b_protects_the_valuable_tier_and_nests() {
        // tier 1 worth 100, demand 20; tier 2 worth 60, demand 40; tier 3 worth 30.
        let levels = emsr_b(&[(100.0, 20.0), (60.0, 40.0), (30.0, 50.0)]);
        // y1 = 20 + √20 · Φ⁻¹(1 − 60/100) = 20 − 4.47 · 0.253 = 18.9 → 19 (rounded up)
        assert_eq!(levels[0], 19);
        assert!(levels[1] >= levels[0] && levels[2] == levels[1]);
        // Equal values protect nothing; no demand protects nothing.
        assert_eq!(emsr_b(&[(50.0, 30.0), (50.0, 30.0)]), vec![0, 0]);
        assert_eq!(emsr_b(&[(100.0, 0.0), (10.0, 30.0)]), vec![0, 0]);
    }

    #[test]
    fn the_normal_quantile_is_accurate() {
        assert!(inverse_normal(0.5).abs() < 1e-9);
        assert!((inverse_normal(0.975) - 1.959964).abs() < 1e-5);
        assert!((inverse_normal(0.01) + 2.326348).abs() < 1e-5);
        assert!(inverse_normal(0.0).is_finite() && inverse_normal(1.0).is_finite());
    }
}
