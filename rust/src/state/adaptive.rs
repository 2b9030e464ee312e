//! Adaptive protection (CONTRACT 13) in the state: sales rates per key and channel,
//! delays per channel, and the automatic buffers and protection levels derived from
//! them. A key's rates move on its sales, and its buffers are recomputed then; the
//! automatic numbers are recomputed on a cadence in log time (rates decay between sales,
//! protection levels change only then). Everything runs on log time at log positions,
//! so a replay computes the same numbers.
//!
//! A cadence recomputes only the keys whose numbers may have moved: each key is due at
//! the next cadence after a sale, else when its decaying rates could first change one
//! of its buffers or fade (`velocity::buffer_holds_s`, `RateNow::lasts_s`). Lags that moved
//! beyond [`LAG_TOLERANCE`], a new policy, and automatic protection (its levels do not
//! move one way as rates decay) recompute every key. Either way the numbers are those
//! of recomputing every key.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::BTreeSet;

use super::{State, NO_TIME};
use crate::counters::Counters;
use crate::error::{CoreError, CoreResult};
use crate::hash::ShardedMap;
use crate::policy::Kind;
use crate::velocity::{self, AutoBuffer, DelayP99, HalfLives, Rate, RateNow};

/// One key's demand and the automatic numbers last computed from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyDemand {
    /// (channel index, its sales rate) of each channel that sold the key.
    pub rates: SmallVec<[(u16, Rate); 2]>,
    /// Log time (µs) of the key's last sale, change of lags or policy, or recomputation
    /// that changed its buffers, whichever is latest: the buffers in use are those of
    /// its rates as of then, so explanations read the rates at `at`. (A recomputation
    /// that changes nothing leaves it: it does not depend on which cadences recompute
    /// the key.)
    pub at: i64,
    /// The automatic buffer by channel index (empty until computed).
    pub buffers: Vec<i64>,
    /// Σ protect[s] for s < t at index t − 1, automatic tiers' levels included (empty
    /// until computed).
    pub cum_protect: Vec<i64>,
    /// The mean demand per tier `cum_protect` was computed from.
    pub protect_demand: Vec<f64>,
    /// Log time (µs) of the cadence that must recompute these numbers; its entry in
    /// [`Adaptive::schedule`]. Derived, so not in the snapshot.
    #[serde(skip)]
    pub due: i64,
}

impl KeyDemand {
    fn rate_on(&self, ch: u16) -> Option<&Rate> {
        self.rates.iter().find(|(c, _)| *c == ch).map(|(_, r)| r)
    }

    /// Counts one sale of `units` on channel `ch` at log time `now`.
    fn add(&mut self, ch: u16, units: i64, now: i64, hl: &HalfLives) {
        match self.rates.iter_mut().find(|(c, _)| *c == ch) {
            Some((_, r)) => r.add(units, now, hl),
            None => {
                let mut r = Rate::default();
                r.add(units, now, hl);
                self.rates.push((ch, r));
            }
        }
    }
}

/// The adaptive part of the state.
#[derive(Clone, Debug, Default)]
pub struct Adaptive {
    /// By key, for keys that sold lately (sharded: it grows with the keys that sell,
    /// and never stops the engine to rehash them all at once).
    pub demand: ShardedMap<u32, KeyDemand>,
    /// Each channel's sale-to-order delay (`order.placed` `ts` to the log), by index.
    pub order_lag: Vec<DelayP99>,
    /// Each channel's push-to-accept p99 (s) as the service measured it from acks.
    pub push_lag: Vec<Option<f64>>,
    /// The (push, order) lags every automatic buffer uses, by channel: taken from the
    /// measurements on the cadence only, so each buffer in use and its explanation
    /// share one set of lags.
    pub lags: Vec<(Lag, Lag)>,
    /// Log time of the next cadence.
    pub next_at: i64,
    /// (due, key) of every key in `demand`: what each cadence must recompute.
    pub schedule: BTreeSet<(i64, u32)>,
    /// Log time (µs) the engine began counting sales: its first tick or sale (None
    /// before either; `i64::MIN` for rates restored from a format that did not keep
    /// it, which had counted long enough).
    pub counting_since: Option<i64>,
}

/// A measured lag replaces the one in use when it moved by more than this share of it:
/// a p99 wanders by a few percent from one cadence to the next, and every change of a
/// lag recomputes every key.
pub const LAG_TOLERANCE: f64 = 0.1;

/// What snapshot format 3 adds: [`Adaptive`] with its keys in order, so a snapshot
/// of the same state is the same bytes (format 5 adds `counting_since`, format 6 the
/// day-long counts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveImage {
    pub demand: Vec<(u32, KeyDemand)>,
    pub order_lag: Vec<DelayP99>,
    pub push_lag: Vec<Option<f64>>,
    pub lags: Vec<(Lag, Lag)>,
    pub next_at: i64,
    pub counting_since: Option<i64>,
    /// (key, channel index, count) of every rate's day-long count above 0, in key
    /// order: kept apart from the rates, whose form the earlier formats share.
    pub long: Vec<(u32, u16, f64)>,
}

/// [`AdaptiveImage`] as formats 3 and 4 wrote it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdaptiveImageV4 {
    pub demand: Vec<(u32, KeyDemand)>,
    pub order_lag: Vec<DelayP99>,
    pub push_lag: Vec<Option<f64>>,
    pub lags: Vec<(Lag, Lag)>,
    pub next_at: i64,
}

/// [`AdaptiveImage`] as format 5 wrote it: format 4's, then `counting_since` (bincode
/// writes a struct's fields one after another, a nested struct's too).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdaptiveImageV5 {
    pub v4: AdaptiveImageV4,
    pub counting_since: Option<i64>,
}

impl From<AdaptiveImageV4> for AdaptiveImageV5 {
    /// Its rates had counted since before the snapshot: long enough to need no
    /// correction for a fresh start.
    fn from(v4: AdaptiveImageV4) -> AdaptiveImageV5 {
        AdaptiveImageV5 {
            v4,
            counting_since: Some(i64::MIN),
        }
    }
}

impl From<AdaptiveImageV5> for AdaptiveImage {
    /// Without day-long counts: they count up from the restore.
    fn from(old: AdaptiveImageV5) -> AdaptiveImage {
        let AdaptiveImageV5 { v4, counting_since } = old;
        AdaptiveImage {
            demand: v4.demand,
            order_lag: v4.order_lag,
            push_lag: v4.push_lag,
            lags: v4.lags,
            next_at: v4.next_at,
            counting_since,
            long: Vec::new(),
        }
    }
}

impl From<AdaptiveImageV4> for AdaptiveImage {
    fn from(v4: AdaptiveImageV4) -> AdaptiveImage {
        AdaptiveImageV5::from(v4).into()
    }
}

impl Adaptive {
    pub fn image(&self) -> AdaptiveImage {
        let mut demand: Vec<(u32, KeyDemand)> =
            self.demand.iter().map(|(&k, d)| (k, d.clone())).collect();
        demand.sort_unstable_by_key(|(k, _)| *k);
        let long = demand
            .iter()
            .flat_map(|(k, d)| d.rates.iter().map(move |(ch, r)| (*k, *ch, r.long_count())))
            .filter(|(_, _, count)| *count > 0.0)
            .collect();
        AdaptiveImage {
            demand,
            order_lag: self.order_lag.clone(),
            push_lag: self.push_lag.clone(),
            lags: self.lags.clone(),
            next_at: self.next_at,
            counting_since: self.counting_since,
            long,
        }
    }

    pub fn from_image(image: AdaptiveImage) -> Adaptive {
        // The schedule is not kept: every key is due at the first cadence.
        let mut demand = ShardedMap::default();
        let mut schedule = BTreeSet::new();
        for (k, mut d) in image.demand {
            d.due = i64::MIN;
            schedule.insert((d.due, k));
            demand.insert(k, d);
        }
        for (k, ch, count) in image.long {
            let rate = demand
                .get_mut(&k)
                .and_then(|d| d.rates.iter_mut().find(|(c, _)| *c == ch));
            if let Some((_, r)) = rate {
                *r = r.with_long_count(count);
            }
        }
        Adaptive {
            demand,
            order_lag: image.order_lag,
            push_lag: image.push_lag,
            lags: image.lags,
            next_at: image.next_at,
            schedule,
            counting_since: image.counting_since,
        }
    }
}

/// Where a lag came from: measured, or the policy's value until one is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub seconds: f64,
    pub measured: bool,
}

/// (v_d units/s, order_lag_d s) of every channel d selling a key: a buffer's inputs.
type Terms = SmallVec<[(f64, f64); 4]>;

/// (rate now, order_lag_d s) of every channel d selling a key: what bounds how long its
/// buffer holds.
type RatesAndLags = SmallVec<[(RateNow, f64); 4]>;

/// What a key's automatic buffers are computed from: its own sales, and for a kit each
/// part's sales counted in kits, since singles and sibling kits take the parts a kit is
/// shown from. A buffer is the largest of its sources'.
struct Source {
    /// The part and its units per kit; None for the key's own sales.
    part: Option<(u32, i64)>,
    /// (channel, rate now in the key's or part's units, order lag) of every channel
    /// selling it.
    sellers: SmallVec<[(u16, RateNow, f64); 4]>,
}

impl Source {
    /// Units per sale of the key: a part's units per kit, else 1.
    fn per(&self) -> i64 {
        self.part.map_or(1, |(_, m)| m.max(1))
    }

    /// (v_d, order_lag_d) of every seller, in the key's units.
    fn terms(&self) -> Terms {
        let per = self.per() as f64;
        self.sellers
            .iter()
            .map(|(_, r, lag)| (r.rate / per, *lag))
            .collect()
    }
}

/// Reads rates at one log time: the half-lives and the warm-up share worked out once.
#[derive(Clone, Copy)]
struct RateReader {
    hl: HalfLives,
    now: i64,
    share: f64,
}

impl RateReader {
    fn read(&self, r: &Rate) -> RateNow {
        r.at(self.now, &self.hl).warmed(self.share)
    }
}

/// One channel's term of an automatic buffer: its rate and its order lag.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SellerWhy {
    pub channel: String,
    pub rate: f64,
    pub order_lag: Lag,
}

/// The part whose sales decide a kit's automatic buffer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartWhy {
    pub sku: String,
    /// The part's units in one kit.
    pub per_kit: i64,
}

/// The inputs of one automatic buffer, as of the log time it was computed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BufferWhy {
    /// `max(ceil(risk × units), clumps)` before `min` and `max`, with `units` =
    /// `Σ rate × (push_lag + order_lag)`.
    pub formula: i64,
    /// The clumps a steady rate sells in: the p99 of a Poisson count of `units`
    /// (`velocity::clumps`).
    pub clumps: i64,
    pub risk: f64,
    pub min: i64,
    pub max: Option<i64>,
    pub push_lag: Lag,
    pub sellers: Vec<SellerWhy>,
    /// For a kit whose parts' sales decide its buffer: that part (its `sellers` are
    /// its sales in kits: its rates over `per_kit`).
    pub part: Option<PartWhy>,
    /// When the buffer was computed (µs; None: no sale seen, the buffer is `min`).
    pub at: Option<i64>,
}

/// One channel's sales rate of a key, now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VelocityWhy {
    pub channel: String,
    #[serde(flatten)]
    pub now: RateNow,
    /// While a freshly started engine corrects its slow rates: the share of a steady
    /// rate its counts hold yet, which `slow` was divided by (None once warm).
    pub slow_share: Option<f64>,
}

/// One tier's protection level of a key and, when automatic, its EMSR-b inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtectWhy {
    pub tier: u8,
    pub protect: i64,
    pub auto: bool,
    pub value: f64,
    /// Mean demand over the policy's horizon (units), as of the last recomputation.
    pub demand: f64,
}

impl State {
    fn log_now(&self, ts: i64) -> i64 {
        if self.now == NO_TIME {
            ts
        } else {
            self.now
        }
    }

    /// Seconds the engine has counted sales at log time `now`.
    fn counting_s(&self, now: i64) -> f64 {
        match self.adaptive.counting_since {
            Some(since) => now.saturating_sub(since).max(0) as f64 / 1e6,
            None => 0.0,
        }
    }

    /// Reads rates at log time `now`, their slow parts corrected for how long the engine
    /// has counted ([`RateNow::warmed`]).
    fn reader(&self, now: i64) -> RateReader {
        let hl = self.policy.tables.adaptive.half_lives;
        RateReader {
            hl,
            now,
            share: velocity::warm_share(self.counting_s(now), &hl),
        }
    }

    /// Counts `units` of key `idx` sold on channel `ch` at `ts` (a bundle's sale also
    /// counts on its components) and recomputes the buffers of the keys it moved.
    pub(super) fn sold(&mut self, c: &Counters, idx: u32, ch: u16, units: i64, ts: i64) {
        if units <= 0 {
            // A line whose units a hold already counted (or a line of 0) is no sale.
            return;
        }
        let now = self.log_now(ts);
        self.adaptive.counting_since.get_or_insert(now);
        let hl = self.policy.tables.adaptive.half_lives;
        let mut moved: SmallVec<[(u32, i64); 2]> = SmallVec::new();
        moved.push((idx, units));
        if self.info[idx as usize].kind == Kind::Bundle {
            moved.extend(
                self.components(idx)
                    .iter()
                    .map(|&(k, m)| (k, units.saturating_mul(m))),
            );
        }
        // A kit is shown from its parts, so a part's sale moves every kit it is in.
        let mut recompute: SmallVec<[u32; 4]> = moved.iter().map(|&(k, _)| k).collect();
        for &(k, n) in &moved {
            self.due_at_next_cadence(k).add(ch, n, now, &hl);
            for &b in self.bundles_of(k) {
                if !recompute.contains(&b) {
                    recompute.push(b);
                }
            }
        }
        for &k in &recompute {
            self.due_at_next_cadence(k);
            self.recompute_buffers(c, k, now, true);
        }
    }

    /// Key `idx`'s demand, due at the next cadence at the latest (new when it had none).
    fn due_at_next_cadence(&mut self, idx: u32) -> &mut KeyDemand {
        let next = self.adaptive.next_at;
        let a = &mut self.adaptive;
        let d = a.demand.entry(idx).or_insert_with(|| KeyDemand {
            due: i64::MAX,
            ..KeyDemand::default()
        });
        if d.due > next {
            a.schedule.remove(&(d.due, idx));
            d.due = next;
            a.schedule.insert((next, idx));
        }
        d
    }

    /// Records how long channel `ch`'s sale at `ts` took to reach the log.
    pub(super) fn order_delay(&mut self, ch: u16, ts: i64) {
        if self.now == NO_TIME {
            return;
        }
        let delay_s = (self.now.saturating_sub(ts)).max(0) as f64 / 1e6;
        if let Some(d) = self.adaptive.order_lag.get_mut(ch as usize) {
            d.add(delay_s, self.now);
        }
    }

    /// A reservation: the channel's sale reached the log as it happened.
    pub(super) fn checkout_delay(&mut self, ch: u16) {
        if self.now == NO_TIME {
            return;
        }
        if let Some(d) = self.adaptive.order_lag.get_mut(ch as usize) {
            d.add(0.0, self.now);
        }
    }

    /// The push-to-accept p99 per channel as the service measured it from acks (carried
    /// by a tick); the buffers take it at the next cadence. Channels the policy no
    /// longer lists are skipped; a lag that is no number of seconds refuses the tick.
    pub fn set_push_lags(&mut self, lags: &[(&str, f64)]) -> CoreResult<()> {
        if let Some((id, _)) = lags.iter().find(|(_, s)| !s.is_finite() || *s < 0.0) {
            return Err(CoreError::bad(
                format!("push_lag_s.{id}"),
                "a lag is a finite number of seconds ≥ 0",
            ));
        }
        for (id, s) in lags {
            if let Some(&ch) = self.policy.channel_index.get(*id) {
                self.adaptive.push_lag[ch as usize] = Some(s.min(velocity::MAX_DELAY_S));
            }
        }
        Ok(())
    }

    /// On a tick: when the cadence is due, the keys whose automatic numbers may have
    /// moved are recomputed as of `now` (every key when the lags in use or automatic
    /// protection ask for it).
    pub fn adaptive_tick(&mut self, c: &Counters, now: i64) {
        self.adaptive.counting_since.get_or_insert(now);
        self.cadence(c, now, false);
    }

    /// A cadence at `now` if one is due; `everything` recomputes every key (what the
    /// schedule must match).
    fn cadence(&mut self, c: &Counters, now: i64, everything: bool) {
        if now < self.adaptive.next_at {
            return;
        }
        let every = self.policy.tables.adaptive.every_s.max(1);
        self.adaptive.next_at = now.saturating_add(every.saturating_mul(super::MICROS));
        let lags = self.lags_to_use();
        if lags != self.adaptive.lags {
            self.adaptive.lags = lags;
            self.recompute_keys(c, now, |_| true, true);
        } else if everything || self.policy.auto_protect {
            self.recompute_keys(c, now, |_| true, false);
        } else {
            self.recompute_keys(c, now, |due| due <= now, false);
        }
    }

    /// Recomputes every automatic number as of `now` from the lags measured now (a
    /// policy change).
    pub(super) fn recompute_all(&mut self, c: &Counters, now: i64) {
        self.adaptive.lags = (0..self.policy.channel_count())
            .map(|ch| (self.measured_push_lag(ch), self.measured_order_lag(ch)))
            .collect();
        self.recompute_keys(c, now, |_| true, true);
    }

    /// Recomputes, in key order, the keys whose due time `due` picks: each one's faded
    /// rates are forgotten, its automatic numbers recomputed, and its next due time set.
    /// `inputs_moved`: the lags or the policy changed.
    fn recompute_keys(
        &mut self,
        c: &Counters,
        now: i64,
        due: impl Fn(i64) -> bool,
        inputs_moved: bool,
    ) {
        let mut keys: Vec<u32> = Vec::new();
        while let Some(&(at, k)) = self.adaptive.schedule.first() {
            if !due(at) {
                break;
            }
            self.adaptive.schedule.pop_first();
            keys.push(k);
        }
        keys.sort_unstable();
        let reader = self.reader(now);
        for k in keys {
            let Some(d) = self.adaptive.demand.get_mut(&k) else {
                continue;
            };
            // Each rate read once at `now`: the buffers and the due time use these.
            let mut rates: SmallVec<[(u16, RateNow); 4]> = SmallVec::new();
            d.rates.retain(|&mut (ch, r)| {
                let at = reader.read(&r);
                let kept = !at.faded();
                if kept {
                    rates.push((ch, at));
                }
                kept
            });
            let sources = self.buffer_sources(k, &rates, &reader);
            if rates.is_empty() && sources.iter().all(|s| s.sellers.is_empty()) {
                // Its buffers fall back to `min` and its protection to the static levels.
                self.adaptive.demand.remove(&k);
                c.mark_dirty(k);
                self.touch_with_bundles(k, now);
                continue;
            }
            let buffers = self.recompute_buffers_from(c, k, now, inputs_moved, &sources);
            let protect = self.recompute_protect(c, k, now);
            if buffers || protect {
                self.touch_with_bundles(k, now);
            }
            let next = self.next_change(k, now, &rates, &sources);
            if let Some(d) = self.adaptive.demand.get_mut(&k) {
                d.due = next;
                self.adaptive.schedule.insert((next, k));
            }
        }
    }

    /// The earliest log time key `idx`'s numbers, just recomputed at `now`, may change
    /// if nothing sells: when one of its or its parts' rates may fade, or one of its
    /// automatic buffers may fall (when the last of its sources falls below it).
    /// `rates`: its rates read at `now`; `sources`: its buffers' (from those rates).
    fn next_change(&self, idx: u32, now: i64, rates: &[(u16, RateNow)], sources: &[Source]) -> i64 {
        let Some(d) = self.adaptive.demand.get(&idx) else {
            return now;
        };
        // A fresh engine's corrected slow rates fall faster than they decay, and once
        // more when the correction ends.
        let counting_s = self.counting_s(now);
        let policy_hl = self.policy.tables.adaptive.half_lives;
        let hl = velocity::while_warming(counting_s, &policy_hl);
        let parts = sources.iter().filter(|s| s.part.is_some());
        let mut holds_s = rates
            .iter()
            .map(|(_, r)| r.lasts_s(&hl))
            .chain(parts.flat_map(|s| s.sellers.iter().map(|(_, r, _)| r.lasts_s(&hl))))
            .fold(velocity::warm_for_s(counting_s, &policy_hl), f64::min);
        if self.policy.auto_buffers {
            // Each source's sellers in the key's units.
            let in_lots: SmallVec<[RatesAndLags; 2]> = sources
                .iter()
                .map(|s| {
                    let per = s.per();
                    let scale = |r: &RateNow| if per == 1 { *r } else { r.in_lots_of(per) };
                    s.sellers
                        .iter()
                        .map(|(_, r, lag)| (scale(r), *lag))
                        .collect()
                })
                .collect();
            let profile = &self.policy.tables.profiles[self.info[idx as usize].profile as usize];
            for (ch, rule) in profile.iter().enumerate() {
                if let (Some(auto), Some(&current)) = (&rule.auto, d.buffers.get(ch)) {
                    let push = self.lags_of(ch).0.seconds;
                    let last_source_falls = in_lots
                        .iter()
                        .map(|sellers| velocity::buffer_holds_s(auto, push, sellers, current, &hl))
                        .fold(0.0, f64::max);
                    holds_s = holds_s.min(last_source_falls);
                }
            }
        }
        // Whole microseconds, rounded down; beyond the clock's range, never.
        let micros = (holds_s * 1e6).floor();
        if micros.is_nan() || micros <= 0.0 {
            now
        } else {
            now.saturating_add(micros.min(i64::MAX as f64) as i64)
        }
    }

    /// The (push, order) lags every buffer uses from this cadence on: what is measured
    /// now, where it moved beyond [`LAG_TOLERANCE`] of the lag in use (or became
    /// measured).
    fn lags_to_use(&self) -> Vec<(Lag, Lag)> {
        let keep = |in_use: Lag, now: Lag| {
            let near = (now.seconds - in_use.seconds).abs() <= LAG_TOLERANCE * in_use.seconds;
            if in_use.measured == now.measured && near {
                in_use
            } else {
                now
            }
        };
        (0..self.policy.channel_count())
            .map(|ch| {
                let now = (self.measured_push_lag(ch), self.measured_order_lag(ch));
                match self.adaptive.lags.get(ch) {
                    Some(&(push, order)) => (keep(push, now.0), keep(order, now.1)),
                    None => now,
                }
            })
            .collect()
    }

    /// The recomputation at `now` is the newest event behind what it moved: the key's
    /// and its bundles' `source_ts` (CONTRACT 5), not the sale seconds before, which
    /// would count the cadence's wait as sync latency.
    fn touch_with_bundles(&mut self, idx: u32, now: i64) {
        self.touch(idx, now);
        let bundles: SmallVec<[u32; 4]> = self.bundles_of(idx).iter().copied().collect();
        for b in bundles {
            self.touch(b, now);
        }
    }

    /// New channels' lags in use, from what is measured now (a policy adds channels).
    pub(super) fn adopt_lags(&mut self) {
        let channels = self.policy.channel_count();
        self.adaptive.lags.truncate(channels);
        for ch in self.adaptive.lags.len()..channels {
            let lags = (self.measured_push_lag(ch), self.measured_order_lag(ch));
            self.adaptive.lags.push(lags);
        }
    }

    /// The lag channel `ch`'s shown quantity takes to reach its marketplace, as
    /// measured now.
    fn measured_push_lag(&self, ch: usize) -> Lag {
        match self.adaptive.push_lag.get(ch).copied().flatten() {
            Some(seconds) => Lag {
                seconds,
                measured: true,
            },
            None => Lag {
                seconds: self.policy.tables.channels[ch].lag_s.unwrap_or(0.0),
                measured: false,
            },
        }
    }

    /// How long channel `ch`'s sales take to reach the log as orders, as measured now.
    fn measured_order_lag(&self, ch: usize) -> Lag {
        match self.adaptive.order_lag.get(ch).and_then(DelayP99::p99) {
            Some(seconds) => Lag {
                seconds,
                measured: true,
            },
            None => Lag {
                seconds: self.policy.tables.channels[ch].order_lag_s,
                measured: false,
            },
        }
    }

    /// The (push, order) lags in use for channel `ch`.
    fn lags_of(&self, ch: usize) -> (Lag, Lag) {
        self.adaptive.lags.get(ch).copied().unwrap_or_default()
    }

    /// (channel, rate, order lag) of every channel selling key `idx`, at log time `at`.
    fn sellers(&self, d: &KeyDemand, mask: u64, at: i64) -> SmallVec<[(usize, f64, Lag); 4]> {
        let reader = self.reader(at);
        d.rates
            .iter()
            .filter(|(ch, _)| mask & (1 << ch) != 0)
            .map(|(ch, r)| {
                (
                    *ch as usize,
                    reader.read(r).rate,
                    self.lags_of(*ch as usize).1,
                )
            })
            .collect()
    }

    /// The sources of key `idx`'s automatic buffers (see [`Source`]), from its own
    /// `rates` as `reader` read them; a part's faded rates are left out, as its cadence
    /// forgets them.
    fn buffer_sources(
        &self,
        idx: u32,
        rates: &[(u16, RateNow)],
        reader: &RateReader,
    ) -> SmallVec<[Source; 2]> {
        let selling = |k: u32, rates: &mut dyn Iterator<Item = (u16, RateNow)>| {
            let mask = self.info[k as usize].channel_mask;
            rates
                .filter(|(ch, _)| mask & (1 << ch) != 0)
                .map(|(ch, r)| (ch, r, self.lags_of(ch as usize).1.seconds))
                .collect()
        };
        let mut sources: SmallVec<[Source; 2]> = SmallVec::new();
        sources.push(Source {
            part: None,
            sellers: selling(idx, &mut rates.iter().copied()),
        });
        if self.info[idx as usize].kind == Kind::Bundle {
            for &(k, m) in self.components(idx) {
                let Some(d) = self.adaptive.demand.get(&k) else {
                    continue;
                };
                let mut live = d
                    .rates
                    .iter()
                    .map(|(ch, r)| (*ch, reader.read(r)))
                    .filter(|(_, r)| !r.faded());
                sources.push(Source {
                    part: Some((k, m)),
                    sellers: selling(k, &mut live),
                });
            }
        }
        sources
    }

    /// Key `idx`'s automatic buffers as of `now`; true when they changed. `inputs_moved`
    /// (a sale, new lags, a new policy) moves `at` even when they did not.
    fn recompute_buffers(&mut self, c: &Counters, idx: u32, now: i64, inputs_moved: bool) -> bool {
        let Some(d) = self.adaptive.demand.get(&idx) else {
            return false;
        };
        if !self.policy.auto_buffers {
            return false;
        }
        let reader = self.reader(now);
        let rates: SmallVec<[(u16, RateNow); 4]> = d
            .rates
            .iter()
            .map(|(ch, r)| (*ch, reader.read(r)))
            .collect();
        let sources = self.buffer_sources(idx, &rates, &reader);
        self.recompute_buffers_from(c, idx, now, inputs_moved, &sources)
    }

    /// [`Self::recompute_buffers`] from key `idx`'s buffer sources at `now`.
    fn recompute_buffers_from(
        &mut self,
        c: &Counters,
        idx: u32,
        now: i64,
        inputs_moved: bool,
        sources: &[Source],
    ) -> bool {
        if !self.policy.auto_buffers || !self.adaptive.demand.contains_key(&idx) {
            return false;
        }
        let info = &self.info[idx as usize];
        let profile = &self.policy.tables.profiles[info.profile as usize];
        let terms: SmallVec<[Terms; 2]> = sources.iter().map(Source::terms).collect();
        let buffers: Vec<i64> = profile
            .iter()
            .enumerate()
            .map(|(ch, rule)| match &rule.auto {
                Some(auto) => {
                    let push = self.lags_of(ch).0.seconds;
                    terms
                        .iter()
                        .map(|t| velocity::auto_buffer(auto, push, t.iter().copied()).1)
                        .max()
                        .unwrap_or(0)
                }
                None => rule.buffer,
            })
            .collect();
        let Some(d) = self.adaptive.demand.get_mut(&idx) else {
            return false;
        };
        let changed = d.buffers != buffers;
        if changed || inputs_moved {
            d.at = now;
        }
        if changed {
            d.buffers = buffers;
            c.mark_dirty(idx);
            self.mark_bundles(c, idx);
        }
        changed
    }

    /// Mean demand per tier over the protection horizon at log time `at`, tier t at
    /// index t − 1.
    fn tier_demand(&self, d: &KeyDemand, idx: u32, at: i64) -> Vec<f64> {
        let t = &self.policy.tables;
        let mut demand = vec![0.0; t.protect.len()];
        for (ch, rate, _) in self.sellers(d, self.info[idx as usize].channel_mask, at) {
            let tier = t.channels[ch].tier as usize;
            if let Some(slot) = demand.get_mut(tier.wrapping_sub(1)) {
                *slot += rate * t.adaptive.protect_horizon_s.max(0.0);
            }
        }
        demand
    }

    /// Protection per tier for key `idx`: EMSR-b levels on automatic tiers, the static
    /// level elsewhere; tier t at index t − 1.
    fn protect_levels(&self, demand: &[f64]) -> Vec<i64> {
        let t = &self.policy.tables;
        let tiers: Vec<(f64, f64)> = demand
            .iter()
            .enumerate()
            .map(|(i, &m)| (t.values.get(i).copied().unwrap_or(0.0), m))
            .collect();
        let nested = velocity::emsr_b(&tiers);
        (0..t.protect.len())
            .map(|i| {
                if t.protect_auto.get(i).copied().unwrap_or(false) {
                    let below = if i == 0 { 0 } else { nested[i - 1] };
                    nested[i].saturating_sub(below)
                } else {
                    t.protect[i]
                }
            })
            .collect()
    }

    /// Key `idx`'s automatic protection levels as of `now`; true when they changed.
    fn recompute_protect(&mut self, c: &Counters, idx: u32, now: i64) -> bool {
        if !self.policy.auto_protect || self.info[idx as usize].kind == Kind::Bundle {
            return false;
        }
        let Some(d) = self.adaptive.demand.get(&idx) else {
            return false;
        };
        let demand = self.tier_demand(d, idx, now);
        let mut cum = Vec::with_capacity(demand.len());
        let mut sum = 0i64;
        for p in self.protect_levels(&demand) {
            cum.push(sum);
            sum = sum.saturating_add(p);
        }
        let Some(d) = self.adaptive.demand.get_mut(&idx) else {
            return false;
        };
        d.protect_demand = demand;
        let changed = d.cum_protect != cum;
        if changed {
            d.cum_protect = cum;
            c.mark_dirty(idx);
            self.mark_bundles(c, idx);
        }
        changed
    }

    /// Key `idx`'s demand, where a policy with automatic buffers needs it.
    pub fn demand_of(&self, idx: u32) -> Option<&KeyDemand> {
        if self.policy.auto_buffers {
            self.adaptive.demand.get(&idx)
        } else {
            None
        }
    }

    /// Σ protect[s] for s < `tier` of key `idx`: its automatic levels where computed.
    pub fn cum_protect_of(&self, c: &Counters, idx: u32, tier: u8) -> i64 {
        if self.policy.auto_protect {
            let auto = self
                .adaptive
                .demand
                .get(&idx)
                .and_then(|d| d.cum_protect.get((tier as usize).wrapping_sub(1)).copied());
            if let Some(level) = auto {
                return level;
            }
        }
        c.cum_protect(tier)
    }

    /// floor[t] of key `idx`: safety + its protection above tier t; tier 0 is post-sale.
    pub fn floor_of(&self, c: &Counters, idx: u32, tier: u8) -> i64 {
        if tier == 0 {
            return 0;
        }
        c.safety(idx)
            .saturating_add(self.cum_protect_of(c, idx, tier))
    }

    /// The inputs of key `idx`'s automatic buffer on channel `ch`: of the source that
    /// decides it (a kit's own sales, or one part's in kits, whichever asks for more).
    pub fn buffer_why(&self, idx: u32, ch: usize, rule: &AutoBuffer) -> BufferWhy {
        let push_lag = self.lags_of(ch).0;
        let empty = KeyDemand::default();
        let d = self.adaptive.demand.get(&idx).unwrap_or(&empty);
        let at = (!d.buffers.is_empty()).then_some(d.at);
        let reader = self.reader(d.at);
        let rates: SmallVec<[(u16, RateNow); 4]> =
            d.rates.iter().map(|(c, r)| (*c, reader.read(r))).collect();
        // Before its buffers are computed a key's buffer is `min`, from no sales at all.
        let mut sources = match at {
            Some(_) => self.buffer_sources(idx, &rates, &reader),
            None => SmallVec::from_iter([Source {
                part: None,
                sellers: SmallVec::new(),
            }]),
        };
        // The first of the largest: the key's own sales where a part asks for no more.
        let mut decides = 0;
        let mut most = i64::MIN;
        for (i, s) in sources.iter().enumerate() {
            let buffer = velocity::auto_buffer(rule, push_lag.seconds, s.terms().into_iter()).1;
            if buffer > most {
                (decides, most) = (i, buffer);
            }
        }
        let source = sources.swap_remove(decides);
        let terms = source.terms();
        let formula = velocity::auto_buffer(rule, push_lag.seconds, terms.iter().copied()).0;
        let clumps = velocity::clumps(velocity::window_units(
            push_lag.seconds,
            terms.iter().copied(),
        ));
        let mut by_channel: SmallVec<[(u16, f64); 4]> = source
            .sellers
            .iter()
            .zip(&terms)
            .map(|(&(c, _, _), &(rate, _))| (c, rate))
            .collect();
        by_channel.sort_unstable_by_key(|&(c, _)| c);
        let sellers = by_channel
            .into_iter()
            .map(|(c, rate)| SellerWhy {
                channel: self.policy.tables.channels[c as usize].id.clone(),
                rate,
                order_lag: self.lags_of(c as usize).1,
            })
            .collect();
        BufferWhy {
            formula,
            clumps,
            risk: rule.risk,
            min: rule.min,
            max: rule.max,
            push_lag,
            sellers,
            part: source.part.map(|(k, per_kit)| PartWhy {
                sku: self.keys[k as usize].sku.to_string(),
                per_kit,
            }),
            at,
        }
    }

    /// Key `idx`'s sales rate on every channel that sold it, as of the log's clock
    /// (before the first tick: as of its last sale, as there is no clock to decay by).
    pub fn velocity_why(&self, idx: u32) -> Vec<VelocityWhy> {
        let Some(d) = self.adaptive.demand.get(&idx) else {
            return vec![];
        };
        let last_sale = d.rates.iter().map(|(_, r)| r.last_sale()).max();
        let now = self.log_now(last_sale.unwrap_or(NO_TIME));
        let reader = self.reader(now);
        (0..self.policy.channel_count() as u16)
            .filter_map(|ch| {
                d.rate_on(ch).map(|r| VelocityWhy {
                    channel: self.policy.tables.channels[ch as usize].id.clone(),
                    now: reader.read(r),
                    slow_share: (reader.share < 1.0).then_some(reader.share),
                })
            })
            .collect()
    }

    /// Key `idx`'s protection per tier (empty unless a tier's level is automatic).
    pub fn protect_why(&self, c: &Counters, idx: u32) -> Vec<ProtectWhy> {
        let t = &self.policy.tables;
        if !self.policy.auto_protect {
            return vec![];
        }
        let demand = self.adaptive.demand.get(&idx).map(|d| &d.protect_demand);
        let n = t.protect.len();
        (0..n)
            .map(|i| {
                let tier = (i + 1) as u8;
                let auto = t.protect_auto.get(i).copied().unwrap_or(false);
                // No tier is below the last: its level keeps nothing from anyone.
                let protect = if i + 1 < n {
                    let below = self.cum_protect_of(c, idx, tier.saturating_add(1));
                    below.saturating_sub(self.cum_protect_of(c, idx, tier))
                } else if auto {
                    0
                } else {
                    t.protect[i]
                };
                ProtectWhy {
                    tier,
                    protect,
                    auto,
                    value: t.values.get(i).copied().unwrap_or(0.0),
                    demand: demand.and_then(|d| d.get(i)).copied().unwrap_or(0.0),
                }
            })
            .collect()
    }

    /// Channel indices of the adaptive state through a reload's or a restore's remap
    /// (old index → new, `dropped` for a channel that went). New channels get their
    /// lags in `adopt_policy`; buffers are by index, so they are recomputed after.
    pub(super) fn renumber_adaptive(&mut self, remap: &[u16], dropped: u16) {
        let at = |old: usize| remap.get(old).copied().unwrap_or(dropped);
        let channels = remap
            .iter()
            .filter(|&&n| n != dropped)
            .map(|&n| n as usize + 1)
            .max()
            .unwrap_or(0);
        let a = &mut self.adaptive;
        for d in a.demand.values_mut() {
            d.rates.retain(|(ch, _)| at(*ch as usize) != dropped);
            for (ch, _) in &mut d.rates {
                *ch = at(*ch as usize);
            }
        }
        let mut order_lag = vec![DelayP99::default(); channels];
        let mut push_lag = vec![None; channels];
        for (old, (o, p)) in a.order_lag.drain(..).zip(a.push_lag.drain(..)).enumerate() {
            if let Some(slot) = order_lag.get_mut(at(old) as usize) {
                *slot = o;
                push_lag[at(old) as usize] = p;
            }
        }
        a.order_lag = order_lag;
        a.push_lag = push_lag;
        let mut lags = vec![None; channels];
        for (old, l) in a.lags.drain(..).enumerate() {
            if let Some(slot) = lags.get_mut(at(old) as usize) {
                *slot = Some(l);
            }
        }
        // A channel that is new here gets its lags in `adopt_lags`.
        a.lags = lags.into_iter().map_while(|l| l).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World, MICROS};
    use crate::policy::Policy;
    use crate::velocity::AutoBuffer;

    fn auto(w: &mut World, lag_s: f64) {
        auto_with(
            w,
            lag_s,
            AutoBuffer {
                min: 0,
                max: None,
                risk: 1.5,
            },
        );
    }

    fn auto_with(w: &mut World, lag_s: f64, rule: AutoBuffer) {
        let mut tables = w.state.policy.tables.clone();
        for ch in &mut tables.channels {
            ch.lag_s = Some(lag_s);
        }
        for profile in &mut tables.profiles {
            for r in profile.iter_mut() {
                r.auto = Some(rule);
            }
        }
        let policy = Policy::new(tables).expect("policy");
        w.state.set_policy(&w.c, policy).expect("reload");
    }

    /// A small seeded generator (xorshift64*), so a failing case can be replayed.
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// What a cadence decides, key by key: when the buffers last changed, rates,
    /// buffers, protection, shown quantities and the `source_ts` a recomputation stamps.
    fn decided(w: &World) -> String {
        let mut out = String::new();
        for idx in 0..w.state.keys.len() as u32 {
            let d = w.state.adaptive.demand.get(&idx);
            let shown: Vec<i64> = (0..w.state.policy.channel_count())
                .map(|ch| w.state.shown(&w.c, idx, ch))
                .collect();
            out += &format!(
                "{idx}: {:?} {:?} {:?} {:?} {shown:?} {}\n",
                d.map(|d| d.at),
                d.map(|d| &d.rates),
                d.map(|d| &d.buffers),
                d.map(|d| &d.cum_protect),
                w.state.keys[idx as usize].source_ts,
            );
        }
        out
    }

    #[test]
    fn the_schedule_recomputes_what_recomputing_every_key_does() {
        for seed in 1..=60u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let rule = AutoBuffer {
                min: dice.below(3) as i64,
                max: [None, Some(4), Some(40)][dice.below(3) as usize],
                risk: 1.0 + dice.below(5) as f64 / 4.0,
            };
            let lag_s = [5.0, 60.0, 1_800.0][dice.below(3) as usize];
            let (mut scheduled, mut every) = (World::new(), World::new());
            for w in [&mut scheduled, &mut every] {
                auto_with(w, lag_s, rule);
                for sku in ["A", "B"] {
                    w.stock(sku, "wh", 10_000);
                }
            }
            let mut now = 2 * MICROS;
            for step in 0..400 {
                // Bursts of seconds, lulls of minutes to hours: rates rise, decay, fade.
                now += match dice.below(10) {
                    0..=5 => (dice.below(3_000) as i64 + 1) * MICROS / 1_000,
                    6..=8 => (dice.below(600) as i64 + 1) * MICROS,
                    _ => (dice.below(20_000) as i64 + 1) * MICROS,
                };
                let sku = ["A", "B", "KIT"][dice.below(3) as usize];
                let channel = ["shop", "market"][dice.below(2) as usize];
                let qty = dice.below(4) as i64 + 1;
                let sold_at = now - dice.below(120) as i64 * MICROS;
                let push = [("market", dice.below(90) as f64)];
                for (w, everything) in [(&mut scheduled, false), (&mut every, true)] {
                    let mut fx = w.state.expire(&w.c, now);
                    w.state.advance(&w.c, now, &mut fx);
                    if step % 7 == 0 {
                        w.state.set_push_lags(&push).expect("lags");
                    }
                    w.state.cadence(&w.c, now, everything);
                    let id = format!("o{step}");
                    w.state
                        .order_placed(&w.c, &id, channel, &[line("1", sku, qty)], sold_at)
                        .expect("order");
                }
                assert_eq!(
                    decided(&scheduled),
                    decided(&every),
                    "seed {seed}, step {step}, t {now}"
                );
            }
        }
    }

    #[test]
    fn a_cadence_leaves_a_key_alone_while_its_buffers_cannot_move() {
        let mut w = World::new();
        auto(&mut w, 60.0);
        w.stock("A", "wh", 1_000);
        w.stock("B", "wh", 1_000);
        // Counting began two hours before: no rate is corrected for a fresh start.
        w.tick(0);
        let t0 = 2 * 3_600 * MICROS;
        let sell = |w: &mut World, id: &str, sku: &str, ts: i64| {
            w.state
                .order_placed(&w.c, id, "shop", &[line("1", sku, 1)], ts)
                .expect("order");
        };
        for i in 0..20 {
            w.tick(t0 + i * MICROS);
            sell(&mut w, &format!("o{i}"), "A", t0 + i * MICROS);
        }
        sell(&mut w, "b", "B", t0 + 19 * MICROS);
        // The cadence after the sales takes them in; a lone sale keeps B's buffer at 1
        // for an hour and more, so the cadences after it leave B alone, while A's
        // buffer falls and A is recomputed within a minute.
        w.tick(t0 + 30 * MICROS);
        let (a, b) = (w.key("A"), w.key("B"));
        let due = |w: &World, k: u32| w.state.adaptive.demand[&k].due;
        assert!(due(&w, b) > t0 + 3_600 * MICROS, "{}", due(&w, b));
        assert!(due(&w, a) <= t0 + 90 * MICROS, "{}", due(&w, a));
        let b_due = due(&w, b);
        w.tick(t0 + 60 * MICROS);
        w.tick(t0 + 90 * MICROS);
        assert_eq!(due(&w, b), b_due);
        assert_eq!(w.state.adaptive.demand[&b].buffers, vec![1, 1]);
        assert_eq!(
            w.state.adaptive.demand[&a].at,
            t0 + 90 * MICROS,
            "A's buffer falls"
        );
    }

    #[test]
    fn a_freshly_started_engine_reads_a_steady_rate_at_its_value() {
        // One unit a second from the engine's first tick: twenty minutes on, a slow count
        // (15-minute half-life) holds 60 % of a steady one's; the rate read is corrected
        // for it. Started two hours earlier, the same sales need no correction.
        let slow_after = |started_s: i64| {
            let mut w = World::new();
            w.stock("A", "wh", 100_000);
            w.tick(0);
            let t0 = started_s * MICROS;
            for i in 0..1_200 {
                let now = t0 + i * MICROS;
                w.tick(now);
                w.state
                    .order_placed(&w.c, &format!("o{i}"), "shop", &[line("1", "A", 1)], now)
                    .expect("order");
            }
            w.tick(t0 + 1_200 * MICROS);
            let idx = w.key("A");
            w.state.velocity_why(idx)[0].now.slow
        };
        let fresh = slow_after(0);
        let warm = slow_after(2 * 3_600);
        assert!((0.9..1.1).contains(&fresh), "{fresh}");
        assert!((0.55..0.65).contains(&warm), "{warm}");
    }

    #[test]
    fn sales_on_one_channel_raise_every_channels_buffer() {
        let mut w = World::new();
        auto(&mut w, 60.0);
        w.stock("A", "wh", 1_000);
        let idx = w.key("A");
        let shop = w.state.policy.channel_index["shop"] as usize;
        let before = w.state.shown(&w.c, idx, shop);
        for i in 0..40 {
            w.tick(i * MICROS);
            w.place(&format!("o{i}"), &[line("1", "A", 1)])
                .expect("order");
        }
        let after = w.state.shown(&w.c, idx, shop);
        let buffers = &w.state.adaptive.demand[&idx].buffers;
        assert!(buffers.iter().all(|&b| b > 0), "{buffers:?}");
        assert!(after < before - 40, "{before} -> {after}");
    }

    /// Key `sku`'s sales rate per channel id, now.
    fn rates(w: &World, sku: &str) -> Vec<(String, f64)> {
        let idx = w.state.lookup(sku, "new").expect("key");
        let mut out: Vec<(String, f64)> = w
            .state
            .velocity_why(idx)
            .into_iter()
            .map(|v| (v.channel, v.now.slow))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn a_reload_that_reorders_channels_keeps_each_channels_rate() {
        let mut w = World::new();
        w.stock("A", "wh", 100);
        w.place("o1", &[line("1", "A", 3)]).expect("shop order");
        w.state
            .order_placed(&w.c, "o2", "market", &[line("1", "A", 1)], MICROS)
            .expect("market order");
        let before = rates(&w, "A");
        assert_eq!(before.len(), 2);
        let mut tables = w.state.policy.tables.clone();
        tables.channels.reverse();
        for profile in &mut tables.profiles {
            profile.reverse();
        }
        w.state
            .set_policy(&w.c, Policy::new(tables).expect("policy"))
            .expect("reload");
        assert_eq!(rates(&w, "A"), before);
    }

    #[test]
    fn a_bundle_sale_counts_on_its_components() {
        let mut w = World::new();
        w.stock("A", "wh", 100);
        w.stock("B", "wh", 100);
        w.place("o1", &[line("1", "KIT", 2)]).expect("order");
        let slow = |sku: &str| rates(&w, sku)[0].1;
        assert!((slow("B") - 2.0 * slow("A")).abs() < 1e-12);
        assert!((slow("KIT") - slow("A")).abs() < 1e-12);
    }

    #[test]
    fn a_parts_sales_raise_the_buffer_of_every_kit_it_is_in() {
        // KIT = A + 2 B. B sells alone on the shop and the kit never sold: the market
        // shows the kit from B, so it must hold back what B's sales may take while its
        // number is late, in kits.
        let mut w = World::new();
        auto(&mut w, 60.0);
        w.stock("A", "wh", 1_000);
        w.stock("B", "wh", 1_000);
        let (b, kit) = (w.key("B"), w.key("KIT"));
        let market = w.state.policy.channel_index["market"] as usize;
        for i in 0..40 {
            w.tick(i * MICROS);
            w.place(&format!("o{i}"), &[line("1", "B", 2)])
                .expect("order");
        }
        let part = w.state.adaptive.demand[&b].buffers[market];
        let in_kits = w.state.adaptive.demand[&kit].buffers[market];
        assert!(in_kits > 10, "{in_kits}");
        assert!(
            (part / 2 - 1..=part / 2 + 1).contains(&in_kits),
            "{part} {in_kits}"
        );
        let why = w.state.buffer_why(
            kit,
            market,
            &w.state.policy.tables.profiles[0][market]
                .auto
                .expect("auto"),
        );
        assert_eq!(
            why.part.as_ref().map(|p| (p.sku.as_str(), p.per_kit)),
            Some(("B", 2))
        );
        assert_eq!(why.formula, in_kits);
        // The kit's own sales alone ask for less: the part decides while it sells more.
        w.place("k", &[line("1", "KIT", 1)]).expect("order");
        assert!(w.state.adaptive.demand[&kit].buffers[market] >= in_kits);
        // When B's sales fade (its 82 units' day-long rate is under one unit a week
        // after about 8.6 days), so does the kit's buffer from them.
        w.tick(10 * 24 * 3_600 * MICROS);
        assert!(w.state.adaptive.demand.get(&kit).is_none());
    }

    #[test]
    fn a_slow_mover_keeps_its_buffer_through_a_long_push_lag() {
        // One sale every two hours on the shop; the market's feed takes 30 minutes. The
        // market must keep its last unit back between the sales, or it sells it while
        // the shop's next sale is on its way.
        let mut w = World::new();
        auto(&mut w, 1_800.0);
        w.stock("A", "wh", 100);
        let idx = w.key("A");
        let market = w.state.policy.channel_index["market"] as usize;
        let hour = 3_600 * MICROS;
        let mut now = MICROS;
        for sale in 0..6 {
            w.tick(now);
            w.place(&format!("o{sale}"), &[line("1", "A", 1)])
                .expect("order");
            let sold_at = now;
            while now < sold_at + 2 * hour {
                now += 60 * MICROS;
                w.tick(now);
                let d = w.state.adaptive.demand.get(&idx);
                let buffer = d.map_or(0, |d| d.buffers[market]);
                let since_s = (now - sold_at) / MICROS;
                assert!(buffer >= 1, "sale {sale}, {since_s} s after it");
            }
        }
        // A week without a sale forgets it.
        w.tick(now + 6 * 24 * hour);
        assert!(w.state.adaptive.demand.get(&idx).is_some());
        w.tick(now + 7 * 24 * hour + hour);
        assert!(w.state.adaptive.demand.get(&idx).is_none());
    }

    #[test]
    fn the_cadence_lets_a_buffer_fall_after_sales_stop() {
        let mut w = World::new();
        auto(&mut w, 60.0);
        w.stock("A", "wh", 1_000);
        for i in 0..40 {
            w.tick(i * MICROS);
            w.place(&format!("o{i}"), &[line("1", "A", 1)])
                .expect("order");
        }
        let idx = w.key("A");
        let high = w.state.adaptive.demand[&idx].buffers[0];
        w.tick(7_200 * MICROS);
        let low = w.state.adaptive.demand[&idx].buffers[0];
        assert!(low < high / 4, "{high} -> {low}");
    }
}
