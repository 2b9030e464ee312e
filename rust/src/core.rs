//! `Core`: the lock-free counters plus the state machine behind one lock. Event entry
//! points de-duplicate by event id and move the clock; raw batch calls touch only the
//! counters and never wait for the lock.

use serde::Serialize;
use std::sync::{Mutex, MutexGuard};

use crate::allocation::{Changes, ShownWhy};
use crate::counters::Counters;
use crate::effects::{AlertOut, Effects};
use crate::error::{CoreError, CoreResult};
use crate::partition::Partition;
use crate::policy::{Kind, Policy};
use crate::pricing::{PriceDrain, PriceWhy, Pricing};
use crate::reservation::Decision;
use crate::snapshot;
use crate::state::{CrossAnswer, LineIn, Persisted, ProtectWhy, Share, State, VelocityWhy};
use crate::timefmt;

pub struct Core {
    pub counters: Counters,
    /// Which SKUs this core applies; outside the lock, so the whole-space case costs one branch.
    partition: Partition,
    state: Mutex<State>,
}

#[derive(Serialize)]
pub struct LocationView {
    pub location: String,
    pub on_hand: i64,
    pub counted: i64,
    pub online: bool,
    pub quarantined: i64,
    pub damaged: i64,
    pub inbound: i64,
}

/// Every number behind one key's shown quantities (CONTRACT section 7).
#[derive(Serialize)]
pub struct Explanation {
    pub sku: String,
    pub condition: String,
    pub kind: Kind,
    pub ats: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub backordered: i64,
    pub preordered: i64,
    pub preorder_limit: i64,
    pub safety: i64,
    pub inbound: i64,
    pub quarantined: i64,
    pub damaged: i64,
    pub locations: Vec<LocationView>,
    pub components: Vec<(String, i64, i64)>,
    pub channels: Vec<ShownWhy>,
    /// Sales rate per channel that sold the key (CONTRACT 13).
    pub velocity: Vec<VelocityWhy>,
    /// Protection per tier with its EMSR-b inputs, when a tier's level is automatic.
    pub protect: Vec<ProtectWhy>,
    /// Each priced channel's price of the SKU, with its formula and guards (CONTRACT 14).
    pub prices: Vec<PriceWhy>,
}

impl Core {
    pub fn new(policy: Policy) -> Core {
        Core::partitioned(policy, Partition::WHOLE)
    }

    /// A core that applies only the SKUs of `partition` (see `crate::partition`).
    pub fn partitioned(policy: Policy, partition: Partition) -> Core {
        let counters = Counters::default();
        let state = State::new(policy, &counters, partition);
        Core {
            counters,
            partition,
            state: Mutex::new(state),
        }
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Whether `sku` belongs to another partition: its lines are skipped, touching nothing.
    pub fn elsewhere(&self, sku: &str) -> bool {
        !self.partition.is_whole() && !self.state().owns(sku)
    }

    /// The state lock; a panic while holding it cannot leave a half-applied event behind
    /// in a way we could repair, so a poisoned lock is still used (every op validates first).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one producer event: skipped as duplicate when its id was applied within the
    /// dedupe horizon (with an alert when its content differs), recorded only if it
    /// succeeds. `op` gets the event's time as the core uses it: bounded, and no further
    /// ahead of the log's clock than the policy's `max_clock_skew_s`. Producer events
    /// never move the clock; only ticks do.
    pub fn event(
        &self,
        event_id: &str,
        fingerprint: u64,
        ts: i64,
        op: impl FnOnce(&mut State, &Counters, i64) -> CoreResult<Effects>,
    ) -> CoreResult<Effects> {
        timefmt::check_time("ts", ts)?;
        let mut st = self.state();
        if let Some(fx) = st.duplicate(event_id, fingerprint) {
            return Ok(fx);
        }
        let taken = st.producer_time(ts);
        let mut fx = op(&mut st, &self.counters, taken)?;
        st.took_producer_time(ts, taken, &mut fx);
        st.remember_event(event_id, fingerprint, taken, &mut fx);
        Ok(fx)
    }

    /// A clock tick from the service's log: the one way time moves. Releases holds that
    /// expired by `ts`, commits preorders whose date has come, forgets old event ids,
    /// takes the push lags the service measured (channel id, p99 seconds) and, on its
    /// cadence, recomputes the automatic buffers and protection levels.
    pub fn tick(&self, event_id: &str, ts: i64, push_lags: &[(&str, f64)]) -> CoreResult<Effects> {
        timefmt::check_time("ts", ts)?;
        let mut st = self.state();
        if let Some(fx) = st.duplicate(event_id, 0) {
            return Ok(fx);
        }
        st.set_push_lags(push_lags)?;
        let before = st.now;
        let mut fx = st.expire(&self.counters, ts);
        st.time_out_cross(&self.counters, ts, &mut fx);
        st.advance(&self.counters, ts, &mut fx);
        st.clock_moved(&self.counters, before);
        st.adaptive_tick(&self.counters, ts);
        st.expire_parked(&mut fx);
        st.remember_event(event_id, 0, ts, &mut fx);
        Ok(fx)
    }

    pub fn intern(&self, sku: &str, condition: &str) -> CoreResult<u32> {
        self.state().intern(&self.counters, sku, condition)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn reserve(
        &self,
        request_id: &str,
        order_id: &str,
        channel: &str,
        lines: &[LineIn],
        hold_seconds: i64,
        ts: i64,
    ) -> CoreResult<(Decision, Effects)> {
        timefmt::check_time("ts", ts)?;
        let mut st = self.state();
        let taken = st.producer_time(ts);
        let (reply, mut fx) = st.reserve(
            &self.counters,
            request_id,
            order_id,
            channel,
            lines,
            hold_seconds,
            taken,
        )?;
        st.took_producer_time(ts, taken, &mut fx);
        Ok((reply, fx))
    }

    /// A reservation in a partitioned core: decided here when all its lines are this
    /// partition's, prepared (with the vote to append) when some are, else skipped.
    /// `reply_to` is kept with a prepared request for the coordinator's answer.
    #[allow(clippy::too_many_arguments)]
    pub fn reserve_share(
        &self,
        request_id: &str,
        order_id: &str,
        channel: &str,
        lines: &[LineIn],
        hold_seconds: i64,
        ts: i64,
        reply_to: Option<&str>,
    ) -> CoreResult<(Share, Effects)> {
        timefmt::check_time("ts", ts)?;
        let mut st = self.state();
        let taken = st.producer_time(ts);
        let (share, mut fx) = st.reserve_share(
            &self.counters,
            request_id,
            order_id,
            channel,
            lines,
            hold_seconds,
            taken,
            reply_to,
        )?;
        if !matches!(share, Share::Elsewhere) {
            st.took_producer_time(ts, taken, &mut fx);
        }
        Ok((share, fx))
    }

    /// A partition's vote on a cross-partition request, read from the log.
    pub fn vote(
        &self,
        request_id: &str,
        partition: u32,
        ok: bool,
        lines: &[(&str, Option<&str>)],
    ) -> CoreResult<Effects> {
        self.state()
            .vote(&self.counters, request_id, partition, ok, lines)
    }

    /// Cross-partition requests decided since the last call that this partition answers.
    pub fn take_cross_answers(&self) -> Vec<CrossAnswer> {
        std::mem::take(&mut self.state().cross_answers)
    }

    /// Moves the clock to `now` as a tick would (for embedding callers without a log).
    pub fn expire(&self, now: i64) -> CoreResult<Effects> {
        timefmt::check_time("now", now)?;
        let mut st = self.state();
        let before = st.now;
        let mut fx = st.expire(&self.counters, now);
        st.advance(&self.counters, now, &mut fx);
        st.adaptive_tick(&self.counters, now);
        st.clock_moved(&self.counters, before);
        Ok(fx)
    }

    pub fn set_policy(&self, policy: Policy) -> CoreResult<Effects> {
        let mut st = self.state();
        let fx = st.set_policy(&self.counters, policy)?;
        let st = &mut *st;
        st.pricing.adopt(&st.policy);
        st.reshow_carved(&self.counters);
        Ok(fx)
    }

    /// Recomputes up to `max_skus` SKUs whose prices may have moved: what to publish,
    /// and what the guards held back.
    pub fn drain_prices(&self, max_skus: usize) -> PriceDrain {
        let mut st = self.state();
        let st = &mut *st;
        st.pricing.drain(&st.policy, st.now, max_skus)
    }

    /// Whether `set_policy` would take `policy` now; changes nothing.
    pub fn check_policy(&self, policy: &Policy) -> Result<(), crate::policy::Refusal> {
        self.state().check_policy(policy)
    }

    pub fn drain(&self, max_keys: usize) -> Changes {
        let mut out = Changes::default();
        self.state().drain(&self.counters, max_keys, &mut out);
        out
    }

    /// `pause` and `reserve_low` alerts raised by drains since the last call.
    pub fn take_alerts(&self) -> Vec<AlertOut> {
        std::mem::take(&mut self.state().pending_alerts)
    }

    pub fn explain(&self, idx: u32) -> CoreResult<Explanation> {
        let st = self.state();
        let c = &self.counters;
        let key = st
            .keys
            .get(idx as usize)
            .ok_or_else(|| CoreError::bad("sku", "unknown stock key"))?;
        let info = &st.info[idx as usize];
        let locations = key
            .stock
            .locs
            .iter()
            .map(|l| {
                let p = st.policy.location(l.loc);
                LocationView {
                    location: p.id.clone(),
                    on_hand: l.on_hand,
                    counted: crate::ledger::counted(l.on_hand, p.count_pct),
                    online: p.online,
                    quarantined: l.quarantined,
                    damaged: l.damaged,
                    inbound: l.inbound,
                }
            })
            .collect();
        Ok(Explanation {
            sku: key.sku.to_string(),
            condition: st.conditions[key.condition as usize].clone(),
            kind: info.kind,
            ats: st.ats(c, idx),
            on_hand: key.sellable,
            reserved: st.reserved(c, idx),
            backordered: key.backordered,
            preordered: key.preordered,
            preorder_limit: st.preorder_limit(idx),
            safety: info.safety,
            inbound: key.stock.total(|l| l.inbound),
            quarantined: key.stock.total(|l| l.quarantined),
            damaged: key.stock.total(|l| l.damaged),
            locations,
            components: st
                .components(idx)
                .iter()
                .map(|&(k, q)| (st.keys[k as usize].sku.to_string(), q, st.ats(c, k)))
                .collect(),
            channels: (0..st.policy.channel_count())
                .map(|ch| st.shown_why(c, idx, ch))
                .collect(),
            velocity: st.velocity_why(idx),
            protect: st.protect_why(c, idx),
            prices: st.pricing.explain(&st.policy, &key.sku, st.now),
        })
    }

    pub fn snapshot(&self) -> CoreResult<Vec<u8>> {
        let st = self.state();
        let p = Persisted {
            conditions: st.conditions.clone(),
            keys: st.keys.clone(),
            avail: (0..st.keys.len() as u32)
                .map(|i| self.counters.avail(i))
                .collect(),
            registry: st.registry.clone(),
            now: st.now,
            location_ids: st
                .policy
                .tables
                .locations
                .iter()
                .map(|l| l.id.clone())
                .collect(),
            channel_ids: st
                .policy
                .tables
                .channels
                .iter()
                .map(|c| c.id.clone())
                .collect(),
        };
        snapshot::encode(
            &p,
            &st.log_image(),
            &st.adaptive.image(),
            &st.cross,
            &st.pricing.image(),
        )
    }

    /// Rebuilds a core from a snapshot, adopting `policy` (locations and channels are
    /// matched by id, so a reload between snapshot and restart is fine).
    pub fn restore(policy: Policy, partition: Partition, data: &[u8]) -> CoreResult<Core> {
        Core::from_sections(policy, partition, snapshot::decode(data)?)
    }

    /// Partition `partition` of `partition.count`, built from the snapshots of the old
    /// partitions (`olds[j]` is old partition j's), all at one log position: see
    /// `crate::split`.
    pub fn split(policy: Policy, partition: Partition, olds: &[&[u8]]) -> CoreResult<Core> {
        let sections = olds
            .iter()
            .map(|data| snapshot::decode(data))
            .collect::<CoreResult<Vec<_>>>()?;
        let merged = crate::split::split(&policy, sections, partition)?;
        Core::from_sections(policy, partition, merged)
    }

    fn from_sections(
        policy: Policy,
        partition: Partition,
        (p, log, adaptive, cross, pricing): snapshot::Sections,
    ) -> CoreResult<Core> {
        let core = Core::partitioned(policy, partition);
        {
            let mut st = core.state();
            st.load(&core.counters, p, log, adaptive)?;
            st.cross = cross;
            let now = st.now;
            st.pricing = Pricing::from_image(&st.policy, pricing, now);
        }
        Ok(core)
    }
}
