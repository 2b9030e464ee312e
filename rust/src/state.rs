//! The state machine: applies one event at a time, in log order, under one lock.
//! Every operation validates first and mutates after, so bad input changes nothing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::hash::{Map, Set};
use crate::keys::KeyIndex;
use compact_str::CompactString;
use smallvec::{smallvec, SmallVec};

use crate::counters::{Counters, RawMode, Take};
use crate::dedupe::{Seen, Stamps};
use crate::error::{add, mul, CoreError, CoreResult};
use crate::ledger::{self, shift, LocStock, Stock, STOCK_FIELDS};
use crate::parking::{Parked, Parking, Waiting};
use crate::policy::{Kind, Part, Policy, Refusal};
use crate::reservation::{Decision, Line, LineRef, Order, Registry, REASONS};
use crate::timefmt;

pub const NO_TIME: i64 = i64::MIN;
const MICROS: i64 = 1_000_000;
/// Alerts about the log itself (clock skew, a short dedupe window) at most this often.
const LOG_ALERT_EVERY: i64 = 60 * MICROS;

/// What the policy says about one key, derived again on every policy change.
#[derive(Clone, Debug, Default)]
pub struct KeyInfo {
    pub profile: u32,
    pub safety: i64,
    pub kind: Kind,
    /// Bit c set: channel c sells this key's condition.
    pub channel_mask: u64,
}

/// Bundle links of a key, kept aside: most keys have none, and a million keys each
/// carrying two empty vectors would cost 48 MB.
#[derive(Clone, Debug, Default)]
pub struct Links {
    /// (component key, units per bundle) of a bundle.
    pub components: Vec<(u32, i64)>,
    /// Bundles this key is a component of.
    pub bundles_of: Vec<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyState {
    pub sku: Box<str>,
    pub condition: u16,
    pub stock: Stock,
    pub sellable: i64,
    pub backordered: i64,
    pub preordered: i64,
    /// `ts` of the newest event that changed this key (µs), for `source_ts`.
    pub source_ts: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOut {
    pub order_id: String,
    pub line_id: String,
    pub sku: String,
    pub qty: i64,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertOut {
    pub kind: &'static str,
    pub sku: Option<String>,
    pub channel: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackorderOut {
    pub order_id: String,
    pub line_id: String,
    pub sku: String,
    pub condition: String,
    pub channel: String,
    pub qty: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOut {
    pub sku: String,
    pub condition: String,
    pub location: Option<String>,
    pub field: &'static str,
    pub before: i64,
    pub after: i64,
}

/// What one event did, for the service to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub duplicate: bool,
    pub routes: Vec<RouteOut>,
    pub alerts: Vec<AlertOut>,
    pub backorders: Vec<BackorderOut>,
    pub audit: Vec<AuditOut>,
    /// Order ids whose holds expired.
    pub expired: Vec<String>,
    /// Events set aside earlier that are now refused, for the dead-letter subject.
    pub dead: Vec<DeadOut>,
}

impl Effects {
    /// Adds what another step of the same event did.
    pub fn absorb(&mut self, other: Effects) {
        self.routes.extend(other.routes);
        self.alerts.extend(other.alerts);
        self.backorders.extend(other.backorders);
        self.audit.extend(other.audit);
        self.expired.extend(other.expired);
        self.dead.extend(other.dead);
    }
}

/// An event the core set aside earlier and now refuses: its contract JSON, the dead
/// letter reason (`bad_input`, `order_missing`) and the error in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadOut {
    pub event_id: String,
    pub event_json: String,
    pub reason: &'static str,
    pub error: String,
}

/// An order line as it arrives: (line_id, sku, condition, qty).
pub type LineIn<'a> = (&'a str, &'a str, &'a str, i64);

/// The stock events that change one location of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockMove {
    Set,
    Adjust,
    Received,
    Released,
    Damaged,
    Inbound,
}

impl StockMove {
    /// From the contract's event `type`.
    pub fn parse(kind: &str) -> CoreResult<Self> {
        Ok(match kind {
            "stock.set" => StockMove::Set,
            "stock.adjust" => StockMove::Adjust,
            "stock.received" => StockMove::Received,
            "stock.released" => StockMove::Released,
            "stock.damaged" => StockMove::Damaged,
            "stock.inbound" => StockMove::Inbound,
            _ => {
                return Err(CoreError::bad(
                    "type",
                    format!("not a stock event: {kind:?}"),
                ))
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Inspect,
    Restock,
    Damaged,
}

impl Disposition {
    pub fn parse(s: &str, field: &str) -> CoreResult<Self> {
        match s {
            "inspect" => Ok(Disposition::Inspect),
            "restock" => Ok(Disposition::Restock),
            "damaged" => Ok(Disposition::Damaged),
            _ => Err(CoreError::bad(field, format!("unknown disposition {s:?}"))),
        }
    }
}

/// The serializable part of the state (everything but what the policy derives).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Persisted {
    pub conditions: Vec<String>,
    pub keys: Vec<KeyState>,
    pub avail: Vec<i64>,
    pub registry: Registry,
    pub now: i64,
    pub location_ids: Vec<String>,
    pub channel_ids: Vec<String>,
}

/// What snapshot format 2 adds after format 1's [`Persisted`] image.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LogImage {
    /// Log time and content fingerprint of each remembered event id, in window order.
    pub event_stamps: Stamps,
    /// Order events waiting for their order, oldest first.
    pub parked: Vec<Parked>,
}

pub struct State {
    pub policy: Policy,
    pub keys: Vec<KeyState>,
    pub info: Vec<KeyInfo>,
    links: Map<u32, Links>,
    /// (hold date, preorder_limit) of keys with a hold date, and of every preorder key.
    preorder_rules: Map<u32, (Option<i64>, i64)>,
    pub conditions: Vec<String>,
    condition_index: Map<String, u16>,
    index: KeyIndex,
    pub registry: Registry,
    pub now: i64,
    /// (sellable_from, key) of keys whose hold date has not passed.
    pending_preorders: BTreeSet<(i64, u32)>,
    /// Last shown quantity per key × channel, saturated to 32 bits (no channel lists
    /// two billion units; halving this table saves 32 MB at a million keys × 8 channels);
    /// −1 = never published.
    pub last_shown: Vec<i32>,
    /// `pause`, `reserve_low` and `sold_out_discontinued` alerts found by drains, until taken.
    pub pending_alerts: Vec<AlertOut>,
    /// Log time of the last `clock_skew` and `dedupe_window_short` alerts.
    skew_alerted: i64,
    dedupe_alerted: i64,
    /// Order events that arrived before their order.
    pub parking: Parking,
    /// Discontinued keys a drain last saw with ATS above 0: the next drain that sees
    /// one at 0 raises `sold_out_discontinued`, once per fall to 0.
    pub discontinued_in_stock: Set<u32>,
}

/// What the raw counter path may do with a key of `kind`, `held` before its hold date.
fn raw_mode(kind: Kind, held: bool) -> RawMode {
    match kind {
        Kind::Standard | Kind::Discontinued if !held => RawMode::Counted,
        Kind::NonInventory => RawMode::Unlimited,
        _ => RawMode::Refused,
    }
}

impl State {
    pub fn new(policy: Policy, c: &Counters) -> State {
        let mut s = State {
            policy,
            keys: vec![],
            info: vec![],
            links: Map::default(),
            preorder_rules: Map::default(),
            conditions: vec![],
            condition_index: Map::default(),
            index: KeyIndex::default(),
            registry: Registry::default(),
            now: NO_TIME,
            pending_preorders: BTreeSet::new(),
            last_shown: vec![],
            pending_alerts: vec![],
            skew_alerted: NO_TIME,
            dedupe_alerted: NO_TIME,
            parking: Parking::default(),
            discontinued_in_stock: Set::default(),
        };
        s.condition("new");
        s.adopt_policy(c);
        s
    }

    // ---- the log's clock and event ids ---------------------------------------------------

    /// What a re-sent event does: nothing, plus a `duplicate` alert when its content
    /// differs from what was applied under its id. None when the id is new.
    pub fn duplicate(&self, event_id: &str, fingerprint: u64) -> Option<Effects> {
        let seen = self.registry.applied(event_id, fingerprint);
        if seen == Seen::New {
            return None;
        }
        let mut fx = Effects {
            duplicate: true,
            ..Default::default()
        };
        if seen == Seen::Different {
            fx.alerts.push(AlertOut {
                kind: "duplicate",
                sku: None,
                channel: None,
                detail: format!(
                    "event {event_id:?} was applied before with other content; \
                     this one changed nothing (a producer reusing event ids?)"
                ),
            });
        }
        Some(fx)
    }

    /// A producer's time as the core uses it: at most `max_clock_skew_s` ahead of the
    /// log's clock. A producer's clock is data; an event stamped years ahead must not
    /// pin its keys' `source_ts` or hold stock until then.
    pub fn producer_time(&mut self, ts: i64, fx: &mut Effects) -> i64 {
        if self.now == NO_TIME {
            return ts;
        }
        let skew = self.policy.tables.log.max_clock_skew_s;
        let limit = self.now.saturating_add(skew.saturating_mul(MICROS));
        if ts <= limit {
            return ts;
        }
        if self.now.saturating_sub(self.skew_alerted) >= LOG_ALERT_EVERY {
            self.skew_alerted = self.now;
            fx.alerts.push(AlertOut {
                kind: "clock_skew",
                sku: None,
                channel: None,
                detail: format!(
                    "a producer stamped {}, {} s ahead of the log's clock {} \
                     (max_clock_skew_s {skew}); taken as {}",
                    timefmt::rfc3339(ts),
                    (ts - self.now) / MICROS,
                    timefmt::rfc3339(self.now),
                    timefmt::rfc3339(limit),
                ),
            });
        }
        limit
    }

    /// Records an applied event id at log time (the event's own time before the first
    /// tick); alerts when the id cap forgets ids younger than the dedupe horizon.
    pub fn remember_event(&mut self, event_id: &str, fingerprint: u64, ts: i64, fx: &mut Effects) {
        let at = if self.now == NO_TIME { ts } else { self.now };
        let cut_short = self.registry.remember_event(event_id, fingerprint, at);
        if cut_short && at.saturating_sub(self.dedupe_alerted) >= LOG_ALERT_EVERY {
            self.dedupe_alerted = at;
            let log = self.policy.tables.log;
            fx.alerts.push(AlertOut {
                kind: "dedupe_window_short",
                sku: None,
                channel: None,
                detail: format!(
                    "more than dedupe_max_ids {} event ids within dedupe_horizon_s {}: \
                     the oldest are forgotten early, so a late re-send of one would apply again",
                    log.dedupe_max_ids, log.dedupe_horizon_s
                ),
            });
        }
    }

    // ---- keys -------------------------------------------------------------------------

    fn condition(&mut self, name: &str) -> u16 {
        if let Some(&i) = self.condition_index.get(name) {
            return i;
        }
        let i = self.conditions.len() as u16;
        self.conditions.push(name.to_string());
        self.condition_index.insert(name.to_string(), i);
        i
    }

    pub fn lookup(&self, sku: &str, condition: &str) -> Option<u32> {
        let cond = *self.condition_index.get(condition)?;
        self.index.find(&self.keys, cond, sku)
    }

    /// A SKU is known when the policy lists it or any event has named it.
    pub fn is_known(&self, sku: &str, condition: &str) -> bool {
        self.policy.rule(sku).is_some() || self.lookup(sku, condition).is_some()
    }

    pub fn intern(&mut self, c: &Counters, sku: &str, condition: &str) -> CoreResult<u32> {
        if sku.is_empty() {
            return Err(CoreError::bad("sku", "must not be empty"));
        }
        if condition.is_empty() {
            return Err(CoreError::bad("condition", "must not be empty"));
        }
        if let Some(i) = self.lookup(sku, condition) {
            return Ok(i);
        }
        if self.conditions.len() >= u16::MAX as usize
            && !self.condition_index.contains_key(condition)
        {
            return Err(CoreError::bad("condition", "too many distinct conditions"));
        }
        let cond = self.condition(condition);
        let idx = u32::try_from(self.keys.len())
            .map_err(|_| CoreError::bad("sku", "too many stock keys"))?;
        c.ensure(idx);
        self.keys.push(KeyState {
            sku: sku.into(),
            condition: cond,
            ..Default::default()
        });
        self.info.push(KeyInfo::default());
        self.index.insert(&self.keys, idx);
        self.last_shown
            .extend(std::iter::repeat_n(-1, self.policy.channel_count()));
        self.derive_info(c, idx);
        let rule = self.policy.rule(sku).cloned();
        if let Some(rule) = rule.filter(|r| r.kind == Kind::Bundle) {
            for (comp, q) in &rule.components {
                let ci = self.intern(c, comp, condition)?;
                self.link(idx, ci, *q);
            }
        }
        let bundles = self
            .policy
            .bundles_by_component
            .get(sku)
            .cloned()
            .unwrap_or_default();
        for b in bundles {
            self.intern(c, &b, condition)?;
        }
        c.mark_dirty(idx);
        Ok(idx)
    }

    /// Policy-derived fields of one key (not its bundle links).
    fn derive_info(&mut self, c: &Counters, idx: u32) {
        let key = &self.keys[idx as usize];
        let cond = &self.conditions[key.condition as usize];
        let t = &self.policy.tables;
        let mut info = KeyInfo {
            safety: t.safety,
            ..Default::default()
        };
        if let Some(r) = self.policy.rule(&key.sku) {
            info.profile = r.profile;
            info.safety = r.safety;
            info.kind = r.kind;
            let from = self.policy.hold_date(r);
            if r.kind == Kind::Preorder || from.is_some() {
                self.preorder_rules.insert(idx, (from, r.preorder_limit));
            }
        }
        for (ci, ch) in t.channels.iter().enumerate() {
            if ch.conditions.iter().any(|x| x == cond) {
                info.channel_mask |= 1 << ci;
            }
        }
        let from = self.preorder_rules.get(&idx).and_then(|r| r.0);
        let held = match from.filter(|_| info.kind.honours_hold_date()) {
            Some(from) if self.now < from => {
                self.pending_preorders.insert((from, idx));
                true
            }
            _ => false,
        };
        c.set_key_policy(idx, info.safety, raw_mode(info.kind, held));
        self.info[idx as usize] = info;
    }

    /// Re-derives everything the policy decides, for every key (start, reload, restore).
    fn adopt_policy(&mut self, c: &Counters) {
        c.set_protect(&self.policy.tables.protect);
        let log = self.policy.tables.log;
        self.registry.events.set_limits(
            log.dedupe_horizon_s.saturating_mul(MICROS),
            usize::try_from(log.dedupe_max_ids).unwrap_or(usize::MAX),
        );
        self.pending_preorders.clear();
        self.links.clear();
        self.preorder_rules.clear();
        for idx in 0..self.keys.len() as u32 {
            self.derive_info(c, idx);
        }
        for idx in 0..self.keys.len() {
            let sku = self.keys[idx].sku.to_string();
            let cond = self.conditions[self.keys[idx].condition as usize].clone();
            if let Some(rule) = self
                .policy
                .rule(&sku)
                .filter(|r| r.kind == Kind::Bundle)
                .cloned()
            {
                for (comp, q) in &rule.components {
                    if let Ok(ci) = self.intern(c, comp, &cond) {
                        self.link(idx as u32, ci, *q);
                    }
                }
            }
        }
        let listed: Vec<String> = self
            .policy
            .tables
            .skus
            .iter()
            .map(|s| s.id.clone())
            .collect();
        for sku in listed {
            // Listed SKUs exist from the start, so a gift card is shown before any event names it.
            let _ = self.intern(c, &sku, "new");
        }
        self.last_shown = vec![-1; self.keys.len() * self.policy.channel_count()];
        for idx in 0..self.keys.len() as u32 {
            c.mark_dirty(idx);
        }
    }

    /// The parts of the state format 2 snapshots add.
    pub fn log_image(&self) -> LogImage {
        LogImage {
            event_stamps: self.registry.events.stamps(),
            parked: self.parking.image(),
        }
    }

    /// Swaps in a new policy: location and channel references are carried over by id.
    pub fn set_policy(&mut self, c: &Counters, policy: Policy) -> CoreResult<Effects> {
        let (loc_map, ch_map) = self.policy_remaps(&policy)?;
        let mut keys = self.keys.clone();
        for k in &mut keys {
            for l in &mut k.stock.locs {
                l.loc = loc_map[l.loc as usize];
            }
            k.stock.locs.retain(|l| l.loc != u16::MAX);
        }
        let mut registry = self.registry.clone();
        for o in registry.orders.values_mut() {
            o.channel = ch_map[o.channel as usize];
            for line in &mut o.lines {
                for r in &mut line.routes {
                    r.1 = loc_map[r.1 as usize];
                }
                line.routes.retain(|r| r.1 != u16::MAX);
            }
        }
        self.keys = keys;
        self.registry = registry;
        self.policy = policy;
        self.adopt_policy(c);
        let mut fx = Effects::default();
        for idx in 0..self.keys.len() as u32 {
            self.recount(c, idx, &mut fx);
        }
        Ok(fx)
    }

    /// Loads a decoded snapshot into this (fresh) state, then re-derives the policy parts.
    pub fn load(&mut self, c: &Counters, p: Persisted, log: LogImage) -> CoreResult<()> {
        let consistent = p.keys.len() == p.avail.len()
            && p.conditions.first().map(String::as_str) == Some("new")
            && p.keys
                .iter()
                .all(|k| (k.condition as usize) < p.conditions.len());
        if !consistent {
            return Err(CoreError::Snapshot("inconsistent snapshot".into()));
        }
        self.keys = p.keys;
        self.registry = p.registry;
        let loc_map = self
            .remap(&p.location_ids, &self.policy.location_index, "location")
            .map_err(|e| CoreError::Snapshot(e.to_string()))?;
        let ch_map = self
            .remap(&p.channel_ids, &self.policy.channel_index, "channel")
            .map_err(|e| CoreError::Snapshot(e.to_string()))?;
        let loc = |i: u16| loc_map.get(i as usize).copied().unwrap_or(u16::MAX);
        for k in &mut self.keys {
            for l in &mut k.stock.locs {
                l.loc = loc(l.loc);
            }
            k.stock.locs.retain(|l| l.loc != u16::MAX);
        }
        for o in self.registry.orders.values_mut() {
            o.channel = ch_map.get(o.channel as usize).copied().unwrap_or(u16::MAX);
            for line in &mut o.lines {
                for r in &mut line.routes {
                    r.1 = loc(r.1);
                }
                line.routes.retain(|r| r.1 != u16::MAX);
            }
        }
        self.registry.orders.retain(|_, o| o.channel != u16::MAX);
        self.conditions = p.conditions;
        self.condition_index = self
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        self.index.rebuild(&self.keys);
        self.info = vec![KeyInfo::default(); self.keys.len()];
        for i in 0..self.keys.len() {
            c.ensure(i as u32);
            c.set_avail(i as u32, p.avail[i]);
        }
        self.now = p.now;
        self.adopt_policy(c);
        self.registry.events.restamp(&log.event_stamps, self.now);
        self.parking = Parking::from_image(log.parked);
        let mut fx = Effects::default();
        for idx in 0..self.keys.len() as u32 {
            self.recount(c, idx, &mut fx);
        }
        Ok(())
    }

    fn location_ids(&self) -> Vec<String> {
        self.policy
            .tables
            .locations
            .iter()
            .map(|l| l.id.clone())
            .collect()
    }

    fn channel_ids(&self) -> Vec<String> {
        self.policy
            .tables
            .channels
            .iter()
            .map(|c| c.id.clone())
            .collect()
    }

    /// What `set_policy` checks against the live state, without changing anything: a
    /// reload is refused here before it is appended to the log.
    pub fn check_policy(&self, policy: &Policy) -> Result<(), Refusal> {
        self.policy_remaps(policy).map(|_| ())
    }

    /// (location, channel) old index → new index; refuses dropping an id still in use.
    fn policy_remaps(&self, policy: &Policy) -> Result<(Vec<u16>, Vec<u16>), Refusal> {
        Ok((
            self.remap(&self.location_ids(), &policy.location_index, "location")?,
            self.remap(&self.channel_ids(), &policy.channel_index, "channel")?,
        ))
    }

    /// Old index → new index by id; refuses a policy that drops an id still in use.
    fn remap(
        &self,
        old: &[String],
        new: &Map<String, u16>,
        what: &str,
    ) -> Result<Vec<u16>, Refusal> {
        let used = |i: u16| match what {
            "location" => self.keys.iter().any(|k| {
                k.stock.get(i).is_some_and(|l| {
                    l.on_hand != 0 || l.quarantined != 0 || l.damaged != 0 || l.inbound != 0
                })
            }),
            _ => self.registry.orders.values().any(|o| o.channel == i),
        };
        old.iter()
            .enumerate()
            .map(|(i, id)| match new.get(id) {
                Some(&n) => Ok(n),
                None if !used(i as u16) => Ok(u16::MAX),
                None => Err(Refusal::at(
                    &[Part::Key(if what == "location" {
                        "locations"
                    } else {
                        "channels"
                    })],
                    format!("{what} {id:?} is still in use and missing from the new policy"),
                )),
            })
            .collect()
    }

    pub fn components(&self, idx: u32) -> &[(u32, i64)] {
        self.links.get(&idx).map_or(&[], |l| &l.components)
    }

    pub fn bundles_of(&self, idx: u32) -> &[u32] {
        self.links.get(&idx).map_or(&[], |l| &l.bundles_of)
    }

    fn link(&mut self, bundle: u32, component: u32, qty: i64) {
        self.links
            .entry(bundle)
            .or_default()
            .components
            .push((component, qty));
        self.links
            .entry(component)
            .or_default()
            .bundles_of
            .push(bundle);
    }

    pub fn preorder_limit(&self, idx: u32) -> i64 {
        self.preorder_rules.get(&idx).map_or(0, |r| r.1)
    }

    // ---- quantities ---------------------------------------------------------------------

    pub fn reserved(&self, c: &Counters, idx: u32) -> i64 {
        self.keys[idx as usize]
            .sellable
            .saturating_sub(c.avail(idx))
    }

    /// ATS of a key; a bundle's is the min over its components.
    pub fn ats(&self, c: &Counters, idx: u32) -> i64 {
        let info = &self.info[idx as usize];
        match info.kind {
            Kind::Bundle => self
                .components(idx)
                .iter()
                .map(|&(k, q)| self.ats(c, k) / q.max(1))
                .min()
                .unwrap_or(0),
            _ => {
                let k = &self.keys[idx as usize];
                c.avail(idx)
                    .saturating_sub(k.backordered)
                    .saturating_sub(info.safety)
                    .max(0)
            }
        }
    }

    /// The pool of tier t: ATS − Σ protect[s] for s < t.
    pub fn pool(&self, c: &Counters, idx: u32, tier: u8) -> i64 {
        let info = &self.info[idx as usize];
        match info.kind {
            Kind::Bundle => self
                .components(idx)
                .iter()
                .map(|&(k, q)| self.pool(c, k, tier) / q.max(1))
                .min()
                .unwrap_or(0),
            _ => self.ats(c, idx).saturating_sub(c.cum_protect(tier)).max(0),
        }
    }

    /// Whether the key is before its hold date: it sells only against `preorder_limit`.
    pub fn in_preorder(&self, idx: u32) -> bool {
        let info = &self.info[idx as usize];
        info.kind.honours_hold_date()
            && self
                .preorder_rules
                .get(&idx)
                .and_then(|r| r.0)
                .is_some_and(|f| self.now < f)
    }

    // ---- stock events -------------------------------------------------------------------

    fn location(&self, field: &str, id: &str) -> CoreResult<u16> {
        self.policy
            .location_index
            .get(id)
            .copied()
            .ok_or_else(|| CoreError::bad(field, format!("unknown location {id:?}")))
    }

    /// Applies `change` to a copy of the key's stock; commits only if it succeeds and the
    /// sellable total still fits in 64 bits. Records audit lines and settles availability.
    fn stock_change(
        &mut self,
        c: &Counters,
        idx: u32,
        ts: i64,
        fx: &mut Effects,
        change: impl FnOnce(&mut Stock) -> CoreResult<()>,
    ) -> CoreResult<()> {
        let mut stock = self.keys[idx as usize].stock.clone();
        change(&mut stock)?;
        if stock.sellable(&self.policy).is_none() {
            return Err(CoreError::bad("qty", "sellable total overflows 64 bits"));
        }
        let key = &self.keys[idx as usize];
        for new in &stock.locs {
            let old = key.stock.get(new.loc).cloned().unwrap_or(LocStock {
                loc: new.loc,
                ..Default::default()
            });
            for field in STOCK_FIELDS {
                if old.field(field) != new.field(field) {
                    fx.audit.push(AuditOut {
                        sku: key.sku.to_string(),
                        condition: self.conditions[key.condition as usize].clone(),
                        location: Some(self.policy.location(new.loc).id.clone()),
                        field,
                        before: old.field(field),
                        after: new.field(field),
                    });
                }
            }
        }
        self.keys[idx as usize].stock = stock;
        self.touch(idx, ts);
        self.recount(c, idx, fx);
        Ok(())
    }

    fn touch(&mut self, idx: u32, ts: i64) {
        let k = &mut self.keys[idx as usize];
        k.source_ts = k.source_ts.max(ts);
    }

    /// Brings `sellable` and the availability counter in line with the stock, then fills
    /// backorders from any new availability.
    fn recount(&mut self, c: &Counters, idx: u32, fx: &mut Effects) {
        let new = self.keys[idx as usize]
            .stock
            .sellable(&self.policy)
            .unwrap_or(i64::MAX);
        let old = self.keys[idx as usize].sellable;
        self.keys[idx as usize].sellable = new;
        if new != old {
            c.add(idx, new.saturating_sub(old));
        }
        if new < old && c.avail(idx) < 0 {
            let k = &self.keys[idx as usize];
            fx.alerts.push(AlertOut {
                kind: "oversell",
                sku: Some(k.sku.to_string()),
                channel: None,
                detail: format!(
                    "stock change leaves {} reserved units uncovered (sellable {new}, reserved {})",
                    -c.avail(idx),
                    self.reserved(c, idx)
                ),
            });
        }
        c.mark_dirty(idx);
        self.mark_bundles(c, idx);
        if new > old || c.avail(idx) > 0 {
            self.fill_backorders(c, idx, fx);
            for b in self.bundles_of(idx).to_vec() {
                self.fill_backorders(c, b, fx);
            }
        }
    }

    fn mark_bundles(&self, c: &Counters, idx: u32) {
        for &b in self.bundles_of(idx) {
            c.mark_dirty(b);
        }
    }

    /// A stock event at one location (`qty` is the signed `delta` for an adjustment).
    pub fn stock_at(
        &mut self,
        c: &Counters,
        idx: u32,
        mv: StockMove,
        loc: &str,
        qty: i64,
        ts: i64,
    ) -> CoreResult<Effects> {
        let loc = self.location("location", loc)?;
        if qty < 0 && mv != StockMove::Adjust {
            return Err(CoreError::bad("qty", "must be ≥ 0"));
        }
        let gated = self.policy.location(loc).release_gate;
        let mut fx = Effects::default();
        self.stock_change(c, idx, ts, &mut fx, |s| {
            let l = s.entry(loc);
            match mv {
                StockMove::Set => {
                    l.on_hand = qty;
                    Ok(())
                }
                StockMove::Adjust => shift("delta", &mut l.on_hand, qty, "on hand"),
                StockMove::Received => {
                    // Expected units arrive: what was inbound here is inbound no longer.
                    l.inbound -= l.inbound.min(qty);
                    let bucket = if gated {
                        &mut l.quarantined
                    } else {
                        &mut l.on_hand
                    };
                    shift("qty", bucket, qty, "location")
                }
                StockMove::Released => {
                    shift("qty", &mut l.quarantined, -qty, "quarantine")?;
                    shift("qty", &mut l.on_hand, qty, "on hand")
                }
                StockMove::Damaged => {
                    shift("qty", &mut l.on_hand, -qty, "on hand")?;
                    shift("qty", &mut l.damaged, qty, "damaged")
                }
                StockMove::Inbound => shift("qty", &mut l.inbound, qty, "inbound"),
            }
        })?;
        Ok(fx)
    }

    /// Bulk absolute counts (a cycle count) at one location.
    pub fn stock_set_many(
        &mut self,
        c: &Counters,
        keys: &[u32],
        loc: &str,
        on_hand: &[i64],
        ts: i64,
    ) -> CoreResult<Effects> {
        let loc = self.location("location", loc)?;
        if keys.len() != on_hand.len() {
            return Err(CoreError::bad("on_hand", "needs one count per key"));
        }
        if let Some(bad) = keys.iter().find(|&&k| k as usize >= self.keys.len()) {
            return Err(CoreError::bad("idx", format!("unknown stock key {bad}")));
        }
        if on_hand.iter().any(|&q| q < 0) {
            return Err(CoreError::bad("on_hand", "must be ≥ 0"));
        }
        let mut fx = Effects::default();
        for (&k, &q) in keys.iter().zip(on_hand) {
            self.keys[k as usize].stock.entry(loc).on_hand = q;
            self.touch(k, ts);
            self.recount(c, k, &mut fx);
        }
        Ok(fx)
    }

    pub fn stock_transfer(
        &mut self,
        c: &Counters,
        idx: u32,
        from: &str,
        to: &str,
        qty: i64,
        ts: i64,
    ) -> CoreResult<Effects> {
        let from = self.location("from_location", from)?;
        let to = self.location("to_location", to)?;
        if from == to {
            return Err(CoreError::bad("to_location", "same as from_location"));
        }
        let mut fx = Effects::default();
        self.stock_change(c, idx, ts, &mut fx, |s| {
            shift("qty", &mut s.entry(from).on_hand, -qty, "from_location")?;
            shift("qty", &mut s.entry(to).on_hand, qty, "to_location")
        })?;
        Ok(fx)
    }

    // ---- taking and giving back units -----------------------------------------------------

    /// The keys whose counters a line of `idx` moves, with units per line unit.
    fn parts(&self, idx: u32) -> SmallVec<[(u32, i64); 1]> {
        match self.info[idx as usize].kind {
            Kind::Bundle => SmallVec::from_slice(self.components(idx)),
            _ => smallvec![(idx, 1)],
        }
    }

    fn counted(&self, idx: u32) -> bool {
        !matches!(self.info[idx as usize].kind, Kind::NonInventory)
    }

    /// Tier-aware take of `qty` line units, all parts or none.
    fn take_tier(&self, c: &Counters, idx: u32, qty: i64, tier: u8) -> bool {
        if !self.counted(idx) {
            return true;
        }
        let parts = self.parts(idx);
        for (n, &(k, m)) in parts.iter().enumerate() {
            let units = qty.saturating_mul(m);
            if c.take(k, units, c.floor(k, tier)) == Take::Refused {
                for &(k2, m2) in &parts[..n] {
                    c.add(k2, qty.saturating_mul(m2));
                }
                return false;
            }
        }
        true
    }

    /// Post-sale take: as many whole line units as every part can cover above 0.
    fn take_up_to(&self, c: &Counters, idx: u32, qty: i64) -> i64 {
        if !self.counted(idx) {
            return qty;
        }
        let parts = self.parts(idx);
        let mut n = qty;
        for &(k, m) in &parts {
            n = n.min(c.avail(k).max(0) / m.max(1));
        }
        if n <= 0 {
            return 0;
        }
        for (i, &(k, m)) in parts.iter().enumerate() {
            let got = c.take_up_to(k, n * m);
            if got < n * m {
                // A raw-counter caller took units in between: give everything back and stop.
                c.add(k, got);
                for &(k2, m2) in &parts[..i] {
                    c.add(k2, n * m2);
                }
                return 0;
            }
        }
        n
    }

    fn give_back(&mut self, c: &Counters, idx: u32, qty: i64, fx: &mut Effects) {
        if qty <= 0 || !self.counted(idx) {
            return;
        }
        for (k, m) in self.parts(idx) {
            c.add(k, qty.saturating_mul(m));
            self.mark_bundles(c, k);
            self.fill_backorders(c, k, fx);
            for b in self.bundles_of(k).to_vec() {
                self.fill_backorders(c, b, fx);
            }
        }
        c.mark_dirty(idx);
    }

    /// Routes `qty` units of a line and records them on the line and the locations.
    fn route_line(&mut self, order_id: &str, line_i: usize, idx: u32, qty: i64, fx: &mut Effects) {
        if qty <= 0 || !self.counted(idx) {
            return;
        }
        for (k, m) in self.parts(idx) {
            let plan = ledger::route(&self.keys[k as usize].stock, &self.policy, qty * m);
            for (loc, units) in plan {
                self.keys[k as usize].stock.entry(loc).routed += units;
                if let Some(o) = self.registry.orders.get_mut(order_id) {
                    let line = &mut o.lines[line_i];
                    match line.routes.iter_mut().find(|r| r.0 == k && r.1 == loc) {
                        Some(r) => r.2 += units,
                        None => line.routes.push((k, loc, units)),
                    }
                    fx.routes.push(RouteOut {
                        order_id: order_id.to_string(),
                        line_id: line.line_id.to_string(),
                        sku: self.keys[k as usize].sku.to_string(),
                        qty: units,
                        location: self.policy.location(loc).id.clone(),
                    });
                }
            }
        }
    }

    /// Removes up to `units` of a line's routes for key `k`, preferring location `at`.
    fn unroute(
        &mut self,
        order_id: &str,
        line_i: usize,
        k: u32,
        at: Option<u16>,
        units: i64,
    ) -> Vec<(u16, i64)> {
        let mut left = units;
        let mut freed = vec![];
        let Some(o) = self.registry.orders.get_mut(order_id) else {
            return freed;
        };
        let routes = &mut o.lines[line_i].routes;
        routes.sort_by_key(|r| (Some(r.1) != at, r.1));
        for r in routes.iter_mut().filter(|r| r.0 == k) {
            let n = r.2.min(left);
            if n > 0 {
                r.2 -= n;
                left -= n;
                freed.push((r.1, n));
            }
        }
        routes.retain(|r| r.2 > 0);
        for &(loc, n) in &freed {
            let l = self.keys[k as usize].stock.entry(loc);
            l.routed = (l.routed - n).max(0);
        }
        freed
    }

    fn backorder(
        &mut self,
        order_id: &str,
        line_i: usize,
        idx: u32,
        qty: i64,
        channel: u16,
        fx: &mut Effects,
    ) {
        if qty <= 0 {
            return;
        }
        let key = &mut self.keys[idx as usize];
        key.backordered = key.backordered.saturating_add(qty);
        let line_id = self.registry.orders[order_id].lines[line_i].line_id.clone();
        self.registry
            .backorders
            .entry(idx)
            .or_default()
            .push_back(LineRef {
                order_id: CompactString::from(order_id),
                line: line_i as u32,
            });
        let sku = self.keys[idx as usize].sku.to_string();
        let channel = self.policy.tables.channels[channel as usize].id.clone();
        fx.backorders.push(BackorderOut {
            order_id: order_id.to_string(),
            line_id: line_id.to_string(),
            sku: sku.clone(),
            condition: self.conditions[self.keys[idx as usize].condition as usize].clone(),
            channel: channel.clone(),
            qty,
        });
        fx.alerts.push(AlertOut {
            kind: "oversell",
            sku: Some(sku),
            channel: Some(channel),
            detail: format!(
                "order {order_id} line {line_id}: {qty} units backordered, no stock to cover them"
            ),
        });
    }

    /// Turns backordered units into reserved ones, oldest first, while stock allows.
    fn fill_backorders(&mut self, c: &Counters, idx: u32, fx: &mut Effects) {
        loop {
            let Some(front) = self
                .registry
                .backorders
                .get(&idx)
                .and_then(|q| q.front())
                .cloned()
            else {
                return;
            };
            let line_i = front.line as usize;
            let waiting = self
                .registry
                .orders
                .get(&front.order_id)
                .and_then(|o| o.lines.get(line_i))
                .map_or(0, |l| l.backordered);
            if waiting <= 0 {
                self.pop_backorder(idx);
                continue;
            }
            let got = self.take_up_to(c, idx, waiting);
            if got <= 0 {
                return;
            }
            if let Some(line) = self
                .registry
                .orders
                .get_mut(&front.order_id)
                .map(|o| &mut o.lines[line_i])
            {
                line.backordered -= got;
                line.reserved += got;
            }
            let key = &mut self.keys[idx as usize];
            key.backordered -= got;
            c.mark_dirty(idx);
            self.route_line(&front.order_id, line_i, idx, got, fx);
            if got < waiting {
                return;
            }
            self.pop_backorder(idx);
        }
    }

    fn pop_backorder(&mut self, idx: u32) {
        if let Some(q) = self.registry.backorders.get_mut(&idx) {
            q.pop_front();
            if q.is_empty() {
                self.registry.backorders.remove(&idx);
            }
        }
    }

    /// Gives back everything a line still holds: reserved units, backorders, preorders.
    fn release_line(&mut self, c: &Counters, order_id: &str, line_i: usize, fx: &mut Effects) {
        let Some(line) = self
            .registry
            .orders
            .get(order_id)
            .map(|o| o.lines[line_i].clone())
        else {
            return;
        };
        let idx = line.key;
        for (k, _) in self.parts(idx) {
            self.unroute(order_id, line_i, k, None, i64::MAX);
        }
        if line.backordered > 0 {
            let key = &mut self.keys[idx as usize];
            key.backordered -= line.backordered;
            if let Some(q) = self.registry.backorders.get_mut(&idx) {
                q.retain(|r| !(r.order_id == order_id && r.line as usize == line_i));
                if q.is_empty() {
                    self.registry.backorders.remove(&idx);
                }
            }
        }
        if line.preordered > 0 {
            self.keys[idx as usize].preordered -= line.preordered;
            if let Some(v) = self.registry.preorders.get_mut(&idx) {
                v.retain(|r| !(r.order_id == order_id && r.line as usize == line_i));
            }
        }
        if let Some(l) = self
            .registry
            .orders
            .get_mut(order_id)
            .map(|o| &mut o.lines[line_i])
        {
            l.reserved = 0;
            l.backordered = 0;
            l.preordered = 0;
            l.closed = true;
        }
        c.mark_dirty(idx);
        self.mark_bundles(c, idx);
        self.give_back(c, idx, line.reserved, fx);
    }

    fn close_if_done(&mut self, order_id: &str) {
        let done = self
            .registry
            .orders
            .get(order_id)
            .is_some_and(|o| o.lines.iter().all(|l| !l.is_open()));
        if done {
            let order = self.registry.orders.remove(order_id);
            if let Some(exp) = order.as_ref().and_then(|o| o.hold_expires) {
                self.registry
                    .holds
                    .remove(&(exp, CompactString::from(order_id)));
            }
            self.registry.close(order_id, order);
        }
    }

    // ---- orders -------------------------------------------------------------------------

    fn channel(&self, id: &str) -> CoreResult<u16> {
        self.policy
            .channel_index
            .get(id)
            .copied()
            .ok_or_else(|| CoreError::bad("channel", format!("unknown channel {id:?}")))
    }

    fn check_lines(lines: &[LineIn]) -> CoreResult<()> {
        if lines.is_empty() {
            return Err(CoreError::bad("lines", "an order needs at least one line"));
        }
        for (i, (line_id, _, _, qty)) in lines.iter().enumerate() {
            // Orders have a handful of lines: a pairwise check beats building a set.
            if lines[..i].iter().any(|l| l.0 == *line_id) {
                return Err(CoreError::bad(
                    format!("lines[{i}].line_id"),
                    format!("duplicate line_id {line_id:?}"),
                ));
            }
            if *qty < 0 {
                return Err(CoreError::bad(format!("lines[{i}].qty"), "must be ≥ 0"));
            }
        }
        Ok(())
    }

    /// Refuses lines whose units could overflow a count: a bundle's parts (qty × units per
    /// bundle) and, for a sale (`may_backorder`), each key's backorders and preorders if
    /// every unit of it ended up there. Checked before anything moves, so such an event
    /// is refused whole instead of saturating a count that a later cancel would drive
    /// below zero.
    fn check_room(
        &self,
        lines: impl Iterator<Item = (usize, u32, i64)>,
        may_backorder: bool,
    ) -> CoreResult<()> {
        let overflow =
            |n: usize| CoreError::bad(format!("lines[{n}].qty"), "quantity overflows 64 bits");
        let mut per_key: SmallVec<[(u32, i64); 4]> = SmallVec::new();
        for (n, idx, qty) in lines {
            for (_, m) in self.parts(idx) {
                qty.checked_mul(m).ok_or_else(|| overflow(n))?;
            }
            let total = match per_key.iter_mut().find(|(k, _)| *k == idx) {
                Some((_, total)) => {
                    *total = total.checked_add(qty).ok_or_else(|| overflow(n))?;
                    *total
                }
                None => {
                    per_key.push((idx, qty));
                    qty
                }
            };
            let key = &self.keys[idx as usize];
            if may_backorder
                && (key.backordered.checked_add(total).is_none()
                    || key.preordered.checked_add(total).is_none())
            {
                return Err(overflow(n));
            }
        }
        Ok(())
    }

    /// A marketplace sale: converts a live hold, commits the rest at floor 0, backorders
    /// what stock cannot cover, routes every committed unit.
    pub fn order_placed(
        &mut self,
        c: &Counters,
        order_id: &str,
        channel: &str,
        lines: &[LineIn],
        ts: i64,
    ) -> CoreResult<Effects> {
        let ch = self.channel(channel)?;
        Self::check_lines(lines)?;
        let mut fx = Effects::default();
        let committed = match self.registry.orders.get(order_id) {
            Some(o) => o.hold_expires.is_none(),
            None => self.registry.was_closed(order_id),
        };
        if committed {
            fx.duplicate = true;
            fx.alerts.push(AlertOut {
                kind: "duplicate",
                sku: None,
                channel: Some(channel.to_string()),
                detail: format!("order {order_id} was already placed; ignored"),
            });
            return Ok(fx);
        }
        let mut keys = Vec::with_capacity(lines.len());
        let mut unknown = Vec::with_capacity(lines.len());
        for (_, sku, cond, _) in lines {
            unknown.push(!self.is_known(sku, cond));
            keys.push(self.intern(c, sku, cond)?);
        }
        self.check_room(
            keys.iter()
                .zip(lines)
                .enumerate()
                .map(|(n, (&k, l))| (n, k, l.3)),
            true,
        )?;
        let hold = self.registry.orders.remove(order_id);
        if let Some(h) = &hold {
            if let Some(exp) = h.hold_expires {
                self.registry
                    .holds
                    .remove(&(exp, CompactString::from(order_id)));
            }
        }
        let mut held: Vec<Option<Line>> = hold
            .map(|h| h.lines.into_iter().map(Some).collect())
            .unwrap_or_default();
        let mut order = Order {
            channel: ch,
            hold_expires: None,
            lines: SmallVec::new(),
        };
        for (((line_id, sku, _, qty), &idx), &unknown) in lines.iter().zip(&keys).zip(&unknown) {
            let pos = held
                .iter()
                .position(|h| {
                    h.as_ref()
                        .is_some_and(|h| h.line_id == *line_id && h.key == idx)
                })
                .or_else(|| {
                    held.iter()
                        .position(|h| h.as_ref().is_some_and(|h| h.key == idx))
                });
            let from_hold = pos.and_then(|p| held[p].take());
            let line = Line {
                line_id: (*line_id).into(),
                key: idx,
                qty: *qty,
                reserved: from_hold.as_ref().map_or(0, |h| h.reserved),
                preordered: from_hold.as_ref().map_or(0, |h| h.preordered),
                ..Default::default()
            };
            if unknown {
                fx.alerts.push(AlertOut {
                    kind: "oversell",
                    sku: Some(sku.to_string()),
                    channel: Some(channel.to_string()),
                    detail: format!(
                        "order {order_id}: SKU {sku:?} has no stock record; backordered"
                    ),
                });
            }
            order.lines.push(line);
        }
        self.registry
            .orders
            .insert(CompactString::from(order_id), Box::new(order));
        // Hold lines the order does not name go back to the pool.
        for h in held.into_iter().flatten() {
            let q = h.reserved;
            if h.preordered > 0 {
                self.keys[h.key as usize].preordered -= h.preordered;
            }
            self.give_back(c, h.key, q, &mut fx);
        }
        for (i, &idx) in keys.iter().enumerate() {
            self.touch(idx, ts);
            self.settle_line(c, order_id, i, idx, ch, &mut fx);
        }
        self.unpark(c, order_id, &mut fx);
        self.close_if_done(order_id);
        Ok(fx)
    }

    // ---- order events that arrived before their order ---------------------------------

    /// Whether the log has seen this order (live, or closed within the window).
    pub fn order_known(&self, order_id: &str) -> bool {
        self.registry.orders.contains_key(order_id) || self.registry.was_closed(order_id)
    }

    /// Sets aside an event for an order not seen yet, until its `order.placed` arrives or
    /// `park_window_s` passes. Refused when parking is off (window 0) or full.
    pub fn park(
        &mut self,
        event_id: &str,
        order_id: &str,
        ts: i64,
        waiting: Waiting,
    ) -> CoreResult<Effects> {
        let window = self.policy.tables.log.park_window_s;
        if window == 0 || self.parking.is_full() {
            let why = if window == 0 {
                "park_window_s is 0".to_string()
            } else {
                format!(
                    "{} events already wait for their orders",
                    self.parking.len()
                )
            };
            return Err(CoreError::bad(
                "order_id",
                format!("unknown or closed order {order_id:?}, and it cannot wait: {why}"),
            ));
        }
        self.parking.park(Parked {
            event_id: event_id.to_string(),
            order_id: order_id.to_string(),
            ts,
            since: if self.now == NO_TIME { ts } else { self.now },
            waiting,
        });
        Ok(Effects::default())
    }

    /// Applies the events that waited for `order_id`, in the order they arrived; one the
    /// order now refuses is dead-lettered with the reason.
    fn unpark(&mut self, c: &Counters, order_id: &str, fx: &mut Effects) {
        for p in self.parking.take(order_id) {
            let done = match &p.waiting {
                Waiting::Shipped(lines) => self.order_shipped(c, order_id, lines, p.ts),
                Waiting::Cancelled(line_ids) => {
                    self.order_cancelled(c, order_id, line_ids.as_deref(), p.ts)
                }
                Waiting::FulfillmentFailed {
                    line_id,
                    disposition,
                } => self.order_fulfillment_failed(c, order_id, line_id, disposition, p.ts),
            };
            match done {
                Ok(more) => fx.absorb(more),
                Err(refusal) => fx.dead.push(DeadOut {
                    event_json: p.contract_json(),
                    event_id: p.event_id,
                    reason: "bad_input",
                    error: refusal.to_string(),
                }),
            }
        }
    }

    /// Dead-letters the events whose order did not arrive within `park_window_s`.
    pub fn expire_parked(&mut self, fx: &mut Effects) {
        let window = self.policy.tables.log.park_window_s;
        let before = self.now.saturating_sub(window.saturating_mul(MICROS));
        for p in self.parking.expire(before) {
            fx.dead.push(DeadOut {
                event_json: p.contract_json(),
                error: format!(
                    "order {:?} did not arrive within park_window_s {window}",
                    p.order_id
                ),
                event_id: p.event_id,
                reason: "order_missing",
            });
        }
    }

    /// Makes a committed line's holdings equal its quantity: give back any excess hold,
    /// take the shortfall at floor 0 (or against the preorder limit), backorder the rest.
    fn settle_line(
        &mut self,
        c: &Counters,
        order_id: &str,
        i: usize,
        idx: u32,
        ch: u16,
        fx: &mut Effects,
    ) {
        let line = self.registry.orders[order_id].lines[i].clone();
        let have = line.reserved + line.preordered;
        if have > line.qty {
            let extra = have - line.qty;
            let from_pre = extra.min(line.preordered);
            let from_res = extra - from_pre;
            self.keys[idx as usize].preordered -= from_pre;
            if let Some(l) = self
                .registry
                .orders
                .get_mut(order_id)
                .map(|o| &mut o.lines[i])
            {
                l.preordered -= from_pre;
                l.reserved -= from_res;
            }
            self.give_back(c, idx, from_res, fx);
        }
        let need = (line.qty - have).max(0);
        if self.in_preorder(idx) {
            let key = &mut self.keys[idx as usize];
            key.preordered = key.preordered.saturating_add(need);
            let over = key.preordered - self.preorder_limit(idx);
            if let Some(l) = self
                .registry
                .orders
                .get_mut(order_id)
                .map(|o| &mut o.lines[i])
            {
                l.preordered += need;
            }
            if need > 0 {
                self.registry
                    .preorders
                    .entry(idx)
                    .or_default()
                    .push(LineRef {
                        order_id: CompactString::from(order_id),
                        line: i as u32,
                    });
            }
            if need > 0 && over > 0 {
                fx.alerts.push(AlertOut {
                    kind: "oversell",
                    sku: Some(self.keys[idx as usize].sku.to_string()),
                    channel: Some(self.policy.tables.channels[ch as usize].id.clone()),
                    detail: format!("preorder limit exceeded by {over} units"),
                });
            }
            c.mark_dirty(idx);
            return;
        }
        let got = self.take_up_to(c, idx, need);
        if let Some(l) = self
            .registry
            .orders
            .get_mut(order_id)
            .map(|o| &mut o.lines[i])
        {
            l.reserved += got;
            l.backordered += need - got;
        }
        let reserved = self.registry.orders[order_id].lines[i].reserved;
        self.route_line(order_id, i, idx, reserved, fx);
        self.backorder(order_id, i, idx, need - got, ch, fx);
        c.mark_dirty(idx);
        self.mark_bundles(c, idx);
    }

    fn order_lines(&self, order_id: &str) -> CoreResult<&Order> {
        self.registry
            .orders
            .get(order_id)
            .map(|o| &**o)
            .ok_or_else(|| {
                CoreError::bad("order_id", format!("unknown or closed order {order_id:?}"))
            })
    }

    fn line_index(&self, order_id: &str, line_id: &str, field: &str) -> CoreResult<usize> {
        self.order_lines(order_id)?.line(line_id).ok_or_else(|| {
            CoreError::bad(field, format!("order {order_id:?} has no line {line_id:?}"))
        })
    }

    pub fn order_cancelled(
        &mut self,
        c: &Counters,
        order_id: &str,
        line_ids: Option<&[String]>,
        ts: i64,
    ) -> CoreResult<Effects> {
        let lines: Vec<usize> = match line_ids {
            None => (0..self.order_lines(order_id)?.lines.len()).collect(),
            Some(ids) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| self.line_index(order_id, id, &format!("line_ids[{i}]")))
                .collect::<CoreResult<_>>()?,
        };
        let mut fx = Effects::default();
        for i in lines {
            let idx = self.registry.orders[order_id].lines[i].key;
            self.touch(idx, ts);
            self.release_line(c, order_id, i, &mut fx);
        }
        self.close_if_done(order_id);
        Ok(fx)
    }

    pub fn order_shipped(
        &mut self,
        c: &Counters,
        order_id: &str,
        lines: &[(String, i64, String)],
        ts: i64,
    ) -> CoreResult<Effects> {
        // Validate every line before touching anything.
        let mut plan = vec![];
        let mut taking: Map<usize, i64> = Map::default();
        for (n, (line_id, qty, loc)) in lines.iter().enumerate() {
            let i = self.line_index(order_id, line_id, &format!("lines[{n}].line_id"))?;
            let loc_i = self.location(&format!("lines[{n}].location"), loc)?;
            let line = &self.registry.orders[order_id].lines[i];
            let total = taking.entry(i).or_insert(0);
            *total = add(&format!("lines[{n}].qty"), *total, *qty)?;
            if *total > line.reserved {
                return Err(CoreError::bad(
                    format!("lines[{n}].qty"),
                    format!(
                        "line {line_id:?} has {} reserved units, cannot ship {total}",
                        line.reserved
                    ),
                ));
            }
            if self.counted(line.key) {
                for (k, m) in self.parts(line.key) {
                    let units = mul(&format!("lines[{n}].qty"), *qty, m)?;
                    let have = self.keys[k as usize]
                        .stock
                        .get(loc_i)
                        .map_or(0, |l| l.on_hand);
                    if have < units {
                        return Err(CoreError::bad(
                            format!("lines[{n}].location"),
                            format!(
                                "{loc} has {have} on hand of {}, cannot ship {units}",
                                self.keys[k as usize].sku
                            ),
                        ));
                    }
                }
            }
            plan.push((i, *qty, loc_i));
        }
        let mut fx = Effects::default();
        for (i, qty, loc_i) in plan {
            let idx = self.registry.orders[order_id].lines[i].key;
            if let Some(l) = self
                .registry
                .orders
                .get_mut(order_id)
                .map(|o| &mut o.lines[i])
            {
                l.reserved -= qty;
                l.shipped += qty;
            }
            if self.counted(idx) {
                for (k, m) in self.parts(idx) {
                    let units = qty * m;
                    self.unroute(order_id, i, k, Some(loc_i), units);
                    let key = &mut self.keys[k as usize];
                    let before = key.stock.entry(loc_i).on_hand;
                    key.stock.entry(loc_i).on_hand -= units;
                    fx.audit.push(AuditOut {
                        sku: key.sku.to_string(),
                        condition: self.conditions[key.condition as usize].clone(),
                        location: Some(self.policy.location(loc_i).id.clone()),
                        field: "on_hand",
                        before,
                        after: before - units,
                    });
                    // The reservation ends and the stock leaves: availability is unchanged.
                    c.add(k, units);
                    self.touch(k, ts);
                    self.recount(c, k, &mut fx);
                }
            }
            c.mark_dirty(idx);
        }
        self.close_if_done(order_id);
        Ok(fx)
    }

    pub fn order_fulfillment_failed(
        &mut self,
        c: &Counters,
        order_id: &str,
        line_id: &str,
        disposition: &str,
        ts: i64,
    ) -> CoreResult<Effects> {
        let i = self.line_index(order_id, line_id, "line_id")?;
        let d = Disposition::parse(disposition, "disposition")?;
        if d == Disposition::Inspect {
            return Err(CoreError::bad("disposition", "must be restock or damaged"));
        }
        let line = self.registry.orders[order_id].lines[i].clone();
        let mut fx = Effects::default();
        if d == Disposition::Damaged && self.counted(line.key) {
            // The units picked for this line are damaged where they were routed.
            for &(k, loc, units) in &line.routes {
                let key = &mut self.keys[k as usize];
                let l = key.stock.entry(loc);
                let n = units.min(l.on_hand);
                l.on_hand -= n;
                l.damaged += n;
            }
        }
        self.touch(line.key, ts);
        self.release_line(c, order_id, i, &mut fx);
        if d == Disposition::Damaged {
            for (k, _) in self.parts(line.key) {
                self.recount(c, k, &mut fx);
            }
        }
        self.close_if_done(order_id);
        Ok(fx)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn order_returned(
        &mut self,
        c: &Counters,
        order_id: &str,
        line_id: &str,
        sku: &str,
        loc: &str,
        qty: i64,
        disposition: &str,
        ts: i64,
    ) -> CoreResult<Effects> {
        let loc_i = self.location("location", loc)?;
        let d = Disposition::parse(disposition, "disposition")?;
        // The line, live or in a closed order's shipped record: (key, shipped, returned).
        let live = self.registry.orders.get(order_id).and_then(|o| {
            o.line(line_id)
                .map(|i| (o.lines[i].key, o.lines[i].shipped, o.lines[i].returned))
        });
        let known = live.or_else(|| {
            self.registry
                .shipped_line(order_id, line_id)
                .map(|l| (l.key, l.shipped, l.returned))
        });
        let idx = match known {
            Some((key, _, _)) if &*self.keys[key as usize].sku != sku => {
                return Err(CoreError::bad(
                    "sku",
                    format!(
                        "line {line_id:?} of order {order_id:?} sold {:?}, not {sku:?}",
                        self.keys[key as usize].sku
                    ),
                ));
            }
            Some((key, shipped, returned)) => {
                if returned.saturating_add(qty) > shipped {
                    return Err(CoreError::bad(
                        "qty",
                        format!(
                            "line {line_id:?} shipped {shipped} and returned {returned}, \
                             cannot return {qty} more"
                        ),
                    ));
                }
                key
            }
            None if self.registry.orders.contains_key(order_id)
                || self.registry.was_closed(order_id) =>
            {
                return Err(CoreError::bad(
                    "line_id",
                    format!("order {order_id:?} shipped no line {line_id:?}"),
                ));
            }
            // A return of an order shipped before this ledger knew it: only the stock moves.
            None => self.intern(c, sku, "new")?,
        };
        let units: Vec<(u32, i64)> = self
            .parts(idx)
            .iter()
            .map(|&(k, m)| mul("qty", qty, m).map(|u| (k, u)))
            .collect::<CoreResult<_>>()?;
        let mut fx = Effects::default();
        for (k, units) in units {
            self.stock_change(c, k, ts, &mut fx, |s| {
                let l = s.entry(loc_i);
                let bucket = match d {
                    Disposition::Inspect => &mut l.quarantined,
                    Disposition::Restock => &mut l.on_hand,
                    Disposition::Damaged => &mut l.damaged,
                };
                shift("qty", bucket, units, "location")
            })?;
        }
        if known.is_some_and(|(key, _, _)| key == idx) {
            let live = self
                .registry
                .orders
                .get_mut(order_id)
                .and_then(|o| o.lines.iter_mut().find(|l| l.line_id == line_id));
            match live {
                Some(l) => l.returned += qty,
                None => {
                    if let Some(l) = self.registry.shipped_line(order_id, line_id) {
                        l.returned += qty;
                    }
                }
            }
        }
        Ok(fx)
    }

    // ---- reservations ---------------------------------------------------------------------

    /// A pre-sale hold: tier-aware, all lines or none, idempotent by request id.
    #[allow(clippy::too_many_arguments)]
    pub fn reserve(
        &mut self,
        c: &Counters,
        request_id: &str,
        order_id: &str,
        channel: &str,
        lines: &[LineIn],
        hold_seconds: i64,
        ts: i64,
    ) -> CoreResult<(Decision, Effects)> {
        if let Some(r) = self.registry.decision(request_id) {
            let fx = Effects {
                duplicate: true,
                ..Default::default()
            };
            return Ok((r.clone(), fx));
        }
        let ch = self.channel(channel)?;
        Self::check_lines(lines)?;
        if hold_seconds < 0 {
            return Err(CoreError::bad("hold_seconds", "must be ≥ 0"));
        }
        let expires =
            mul("hold_seconds", hold_seconds, MICROS).and_then(|h| add("hold_seconds", ts, h))?;
        if self.registry.orders.contains_key(order_id) || self.registry.was_closed(order_id) {
            return Err(CoreError::bad(
                "order_id",
                format!("order {order_id:?} already holds or held stock"),
            ));
        }
        let tier = self.policy.tables.channels[ch as usize].tier;
        // Per-line scratch on the stack: a request has a handful of lines.
        let mut reasons: SmallVec<[Option<&'static str>; 4]> = smallvec![None; lines.len()];
        let mut keys: SmallVec<[Option<u32>; 4]> = smallvec![None; lines.len()];
        for (n, (_, sku, cond, _)) in lines.iter().enumerate() {
            let idx = match self.lookup(sku, cond) {
                Some(idx) => idx,
                None if self.policy.rule(sku).is_some() => self.intern(c, sku, cond)?,
                None => {
                    reasons[n] = Some("unknown_sku");
                    continue;
                }
            };
            keys[n] = Some(idx);
            let info = &self.info[idx as usize];
            if info.channel_mask & (1 << ch) == 0 {
                reasons[n] = Some("paused");
            } else if info.kind != Kind::NonInventory && !self.in_preorder(idx) {
                let pause_below =
                    self.policy.tables.profiles[info.profile as usize][ch as usize].pause_below;
                if pause_below > 0 && self.ats(c, idx) < pause_below {
                    reasons[n] = Some("paused");
                }
            }
        }
        let known = keys.iter().zip(lines).enumerate();
        self.check_room(
            known.filter_map(|(n, (k, l))| k.map(|k| (n, k, l.3))),
            false,
        )?;
        let mut taken: SmallVec<[(usize, u32, i64, bool); 4]> = SmallVec::new();
        let mut pre_taken: Map<u32, i64> = Map::default();
        if reasons.iter().all(|r| r.is_none()) {
            for (n, (_, _, _, qty)) in lines.iter().enumerate() {
                let Some(idx) = keys[n] else { continue };
                if self.in_preorder(idx) {
                    let used = pre_taken.entry(idx).or_insert(0);
                    let room =
                        self.preorder_limit(idx) - self.keys[idx as usize].preordered - *used;
                    if *qty <= room {
                        *used += qty;
                        taken.push((n, idx, *qty, true));
                    } else {
                        reasons[n] = Some("insufficient");
                        break;
                    }
                } else if self.take_tier(c, idx, *qty, tier) {
                    taken.push((n, idx, *qty, false));
                } else {
                    reasons[n] = Some("insufficient");
                    break;
                }
            }
        }
        let ok = reasons.iter().all(|r| r.is_none());
        let mut fx = Effects::default();
        if !ok {
            for &(_, idx, qty, pre) in &taken {
                if !pre {
                    self.give_back(c, idx, qty, &mut fx);
                }
            }
        }
        let reply = if ok {
            Decision::Held(expires)
        } else {
            Decision::Refused(
                reasons
                    .iter()
                    .enumerate()
                    .filter_map(|(n, r)| {
                        let code = REASONS.iter().position(|x| Some(*x) == *r)?;
                        Some((n as u32, code as u8))
                    })
                    .collect(),
            )
        };
        if ok {
            let mut order = Order {
                channel: ch,
                hold_expires: Some(expires),
                lines: SmallVec::new(),
            };
            for (n, idx, qty, pre) in taken {
                order.lines.push(Line {
                    line_id: lines[n].0.into(),
                    key: idx,
                    qty,
                    reserved: if pre { 0 } else { qty },
                    preordered: if pre { qty } else { 0 },
                    ..Default::default()
                });
                if pre {
                    let key = &mut self.keys[idx as usize];
                    key.preordered += qty;
                    self.registry
                        .preorders
                        .entry(idx)
                        .or_default()
                        .push(LineRef {
                            order_id: CompactString::from(order_id),
                            line: (order.lines.len() - 1) as u32,
                        });
                }
                self.touch(idx, ts);
                c.mark_dirty(idx);
                self.mark_bundles(c, idx);
            }
            self.registry
                .orders
                .insert(CompactString::from(order_id), Box::new(order));
            self.registry
                .holds
                .insert((expires, CompactString::from(order_id)));
        }
        self.registry.remember_reply(request_id, reply.clone());
        Ok((reply, fx))
    }

    /// Releases every hold whose `expires_at` ≤ now.
    pub fn expire(&mut self, c: &Counters, now: i64) -> Effects {
        let mut fx = Effects::default();
        while let Some((exp, order_id)) = self.registry.holds.first().cloned() {
            if exp > now {
                break;
            }
            self.registry.holds.pop_first();
            let n = self
                .registry
                .orders
                .get(&order_id)
                .map_or(0, |o| o.lines.len());
            for i in 0..n {
                let idx = self.registry.orders[&order_id].lines[i].key;
                self.touch(idx, now);
                self.release_line(c, &order_id, i, &mut fx);
            }
            self.close_if_done(&order_id);
            fx.expired.push(order_id.to_string());
        }
        fx
    }

    /// Moves the clock forward; keys whose hold date has come sell from stock, and their
    /// preorders are committed from it.
    pub fn advance(&mut self, c: &Counters, ts: i64, fx: &mut Effects) {
        if ts <= self.now {
            return;
        }
        self.now = ts;
        self.registry.events.expire(ts);
        while let Some(&(from, idx)) = self.pending_preorders.first() {
            if from > ts {
                break;
            }
            self.pending_preorders.pop_first();
            let info = &self.info[idx as usize];
            c.set_key_policy(idx, info.safety, raw_mode(info.kind, false));
            let refs = self.registry.preorders.remove(&idx).unwrap_or_default();
            for r in refs {
                let Some(line) = self
                    .registry
                    .orders
                    .get(&r.order_id)
                    .map(|o| o.lines[r.line as usize].clone())
                else {
                    continue;
                };
                let ch = self.registry.orders[&r.order_id].channel;
                let is_hold = self.registry.orders[&r.order_id].hold_expires.is_some();
                self.keys[idx as usize].preordered -= line.preordered;
                if let Some(l) = self
                    .registry
                    .orders
                    .get_mut(&r.order_id)
                    .map(|o| &mut o.lines[r.line as usize])
                {
                    l.preordered = 0;
                }
                if is_hold {
                    // A preorder hold becomes a normal hold on the stock that is there now.
                    let got = self.take_up_to(c, idx, line.preordered);
                    if let Some(l) = self
                        .registry
                        .orders
                        .get_mut(&r.order_id)
                        .map(|o| &mut o.lines[r.line as usize])
                    {
                        l.reserved += got;
                        l.qty = l.reserved;
                    }
                } else {
                    self.settle_line(c, &r.order_id, r.line as usize, idx, ch, fx);
                }
            }
            c.mark_dirty(idx);
        }
    }
}
