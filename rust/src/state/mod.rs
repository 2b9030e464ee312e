//! The state machine: applies one event at a time, in log order, under one lock.
//! Every operation validates first and mutates after, so bad input changes nothing.
//!
//! This file holds the state itself, its snapshot image, the log's clock and event ids,
//! the quantities read from it, and the checks every order line passes. The rules live
//! by concept, one file each, and each calls only those before it in this list:
//! `keys` (the key table, bundle links), `units` (taking and giving back units,
//! routing, backorders), `stock` (stock moves), `parked` (order events that arrived
//! before their order), `orders` (placed, cancelled, shipped, failed, returned),
//! `holds` (reservations, expiry, the preorder clock), `adopt` (a policy reload or a
//! snapshot restore). `adaptive` (sales rates, lags and the automatic buffers and
//! protection levels) is called from `orders`, `holds` and `adopt` and calls none of
//! them.

mod adaptive;
mod adopt;
mod cross;
mod holds;
mod keys;
mod orders;
mod parked;
mod promos;
mod stock;
mod units;

#[cfg(test)]
mod fixture;

pub use adaptive::{
    Adaptive, AdaptiveImage, AdaptiveImageV4, AdaptiveImageV5, BufferWhy, KeyDemand, Lag,
    ProtectWhy, VelocityWhy,
};
pub use cross::{CrossAnswer, CrossImage, CrossRequest, Share, Vote};
pub use orders::Disposition;
pub use stock::StockMove;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::counters::{Counters, RawMode};
use crate::dedupe::{Seen, Stamps};
use crate::effects::{AlertOut, Effects};
use crate::error::{CoreError, CoreResult};
use crate::hash::{Map, Set};
use crate::ledger::Stock;
use crate::parking::{Parked, Parking};
use crate::partition::Partition;
use crate::policy::{Kind, Policy};
use crate::pricing::Pricing;
use crate::reservation::Registry;
use crate::timefmt;
use keys::{KeyIndex, Links};

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

/// A page of one channel's last published quantities (`State::published_page`).
#[derive(Debug, Default, PartialEq)]
pub struct PublishedPage {
    /// (key, quantity) in key order.
    pub items: Vec<(u32, i64)>,
    /// Where the next page starts; None when this page is the last.
    pub next: Option<u32>,
}

/// An order line as it arrives: (line_id, sku, condition, qty).
pub type LineIn<'a> = (&'a str, &'a str, &'a str, i64);

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
    /// The newest time an applied entry carried (a producer's as clamped, a tick's): a
    /// quantity no event stands behind (a bundle moved by its parts, say) is stamped
    /// with it, so its sync latency counts from the newest change, not the last tick.
    pub newest: i64,
    /// (sellable_from, key) of keys whose hold date has not passed.
    pending_preorders: BTreeSet<(i64, u32)>,
    /// Last shown quantity per key × channel, saturated to 32 bits (no channel lists
    /// two billion units, and this is the largest table per key); −1 = never published.
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
    /// Sales rates, delays and the automatic buffers and protection levels (CONTRACT 13).
    pub adaptive: Adaptive,
    /// The SKUs this state applies (all of them unless partitioned).
    pub partition: Partition,
    /// Reservations spanning partitions, prepared here and not yet decided.
    pub cross: CrossImage,
    /// Decided cross-partition requests this partition answers, until taken.
    pub cross_answers: Vec<CrossAnswer>,
    /// The inboxes of repeats of undecided requests this partition answers, by request
    /// id. Not in snapshots: a repeat lost with a restart is retried by its client, and
    /// a retry of a decided request is answered from the remembered decision.
    pub cross_repeats: BTreeMap<String, Vec<String>>,
    /// Base prices, promotions and the prices last published (CONTRACT 14).
    pub pricing: Pricing,
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
    pub fn new(policy: Policy, c: &Counters, partition: Partition) -> State {
        let pricing = Pricing::new(&policy);
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
            newest: NO_TIME,
            pending_preorders: BTreeSet::new(),
            last_shown: vec![],
            pending_alerts: vec![],
            skew_alerted: NO_TIME,
            dedupe_alerted: NO_TIME,
            parking: Parking::default(),
            discontinued_in_stock: Set::default(),
            adaptive: Adaptive::default(),
            partition,
            cross: CrossImage::default(),
            cross_answers: Vec::new(),
            cross_repeats: BTreeMap::new(),
            pricing,
        };
        s.condition("new");
        s.adopt_policy(c);
        s
    }

    // ---- the log's clock and event ids ------------------------------------------------

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
    pub fn producer_time(&self, ts: i64) -> i64 {
        if self.now == NO_TIME {
            return ts;
        }
        let skew = self.policy.tables.log.max_clock_skew_s;
        ts.min(self.now.saturating_add(skew.saturating_mul(MICROS)))
    }

    /// After a producer's entry applied: `taken` (its time as `producer_time` gave it)
    /// becomes the newest applied time, and a clamped `sent` time is alerted, at most
    /// once a minute. Called only on success, so a refused entry changes neither.
    pub fn took_producer_time(&mut self, sent: i64, taken: i64, fx: &mut Effects) {
        self.newest = self.newest.max(taken);
        if sent == taken || self.now.saturating_sub(self.skew_alerted) < LOG_ALERT_EVERY {
            return;
        }
        self.skew_alerted = self.now;
        fx.alerts.push(AlertOut {
            kind: "clock_skew",
            sku: None,
            channel: None,
            detail: format!(
                "a producer stamped {}, {} s ahead of the log's clock {} \
                 (max_clock_skew_s {}); taken as {}",
                timefmt::rfc3339(sent),
                (sent - self.now) / MICROS,
                timefmt::rfc3339(self.now),
                self.policy.tables.log.max_clock_skew_s,
                timefmt::rfc3339(taken),
            ),
        });
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

    /// The parts of the state format 2 snapshots add.
    pub fn log_image(&self) -> LogImage {
        LogImage {
            event_stamps: self.registry.events.stamps(),
            parked: self.parking.image(),
        }
    }

    // ---- prices and promotions ----------------------------------------------------------

    /// The log's clock moved on from `before`: prices and promotion set-asides follow.
    pub fn clock_moved(&mut self, c: &Counters, before: i64) {
        self.pricing.clock_moved(&self.policy, before, self.now);
        self.reshow_carved(c);
    }

    /// Units of key `k` a take on channel `ch` must leave: the unsold set-aside of a
    /// running promotion `ch` is not part of (at most the key's ATS).
    pub(super) fn set_aside(&self, c: &Counters, k: u32, ch: u16) -> i64 {
        match self.carve_of(k) {
            Some(cv) if cv.mask & (1 << ch) == 0 => cv.unsold().min(self.ats(c, k)).max(0),
            _ => 0,
        }
    }

    /// What channel `ch` may still take of key `k` under a running promotion with a
    /// `stock_cap` that names it (released and not sold); None when none does.
    pub(super) fn promo_room(&self, k: u32, ch: u16) -> Option<i64> {
        self.carve_of(k)
            .filter(|cv| cv.mask & (1 << ch) != 0)
            .map(|cv| cv.left(self.now))
    }

    /// Counts the lines of a placed order against its channel's running set-asides.
    pub fn promotion_sales(&mut self, channel: &str, lines: &[LineIn]) {
        let Some(&ch) = self.policy.channel_index.get(channel) else {
            return;
        };
        for &(_, sku, condition, qty) in lines {
            if condition == "new" {
                self.pricing.sold(ch, sku, qty);
            }
        }
    }

    /// Marks the keys whose promotion set-aside changed, so their quantities are
    /// published again.
    pub fn reshow_carved(&mut self, c: &Counters) {
        for sku in self.pricing.take_reshow() {
            if let Some(idx) = self.lookup(&sku, "new") {
                c.mark_dirty(idx);
            }
        }
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
            _ => self
                .ats(c, idx)
                .saturating_sub(self.cum_protect_of(c, idx, tier))
                .max(0),
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

    /// Whether a resync of channel `ch` lists key `idx`, and at what quantity: what was
    /// last published there, for a key the channel sells or one shown above 0 anyway (a
    /// non-inventory SKU). A key never published, or at 0 on a channel that does not sell
    /// its condition, is left out: a connector shows 0 for a listing no page names.
    fn published(&self, idx: usize, ch: usize) -> Option<i64> {
        let shown = self.last_shown[idx * self.policy.channel_count() + ch];
        let sold_here = self.info[idx].channel_mask & (1 << ch) != 0;
        (shown > 0 || (shown == 0 && sold_here)).then_some(i64::from(shown))
    }

    /// One page of channel `ch`'s last published quantities, keys in index order from
    /// `start` on: at most `limit` (key, qty), and the key the next page starts at (None
    /// on the last page). Key indices never change, so a cursor stays valid while the
    /// quantities behind it move on.
    pub fn published_page(&self, ch: usize, start: u32, limit: usize) -> CoreResult<PublishedPage> {
        if ch >= self.policy.channel_count() {
            return Err(CoreError::bad("channel", "unknown channel index"));
        }
        let mut page = PublishedPage::default();
        for idx in (start as usize)..self.keys.len() {
            let Some(qty) = self.published(idx, ch) else {
                continue;
            };
            // `idx` < keys.len(), which `intern` keeps within u32.
            let key = idx as u32;
            if page.items.len() == limit {
                page.next = Some(key);
                break;
            }
            page.items.push((key, qty));
        }
        Ok(page)
    }

    // ---- what every order and hold checks before anything moves ------------------------

    fn channel(&self, id: &str) -> CoreResult<u16> {
        self.policy
            .channel_index
            .get(id)
            .copied()
            .ok_or_else(|| CoreError::bad("channel", format!("unknown channel {id:?}")))
    }

    /// At least one line, line ids unique, no negative quantity.
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
}

#[cfg(test)]
mod tests {
    use super::fixture::{World, MICROS};
    use crate::effects::Effects;

    #[test]
    fn a_producer_clock_far_ahead_is_clamped_and_alerted_once_a_minute() {
        let mut w = World::new();
        let skew = w.state.policy.tables.log.max_clock_skew_s;
        let limit = w.state.now + skew * MICROS;
        let mut fx = Effects::default();
        for sent in [limit, limit + 3600 * MICROS, limit + 7200 * MICROS] {
            let taken = w.state.producer_time(sent);
            assert_eq!(taken, limit);
            w.state.took_producer_time(sent, taken, &mut fx);
        }
        let kinds: Vec<_> = fx.alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["clock_skew"]);
    }

    #[test]
    fn a_resent_event_id_is_a_duplicate_and_alerts_when_its_content_differs() {
        let mut w = World::new();
        assert!(w.state.duplicate("e1", 7).is_none());
        w.state
            .remember_event("e1", 7, MICROS, &mut Effects::default());
        let same = w.state.duplicate("e1", 7).expect("seen");
        assert!(same.duplicate && same.alerts.is_empty());
        let other = w.state.duplicate("e1", 8).expect("seen");
        assert_eq!(
            other.alerts.iter().map(|a| a.kind).collect::<Vec<_>>(),
            ["duplicate"]
        );
    }

    #[test]
    fn a_channel_pages_through_what_was_last_published_in_key_order() {
        use crate::allocation::Changes;
        let mut w = World::new();
        for (sku, n) in [("A", 50), ("B", 0), ("C", 70), ("D", 20)] {
            w.stock(sku, "wh", n);
        }
        let used = w.state.intern(&w.c, "E", "used").expect("key");
        w.state
            .stock_at(&w.c, used, crate::state::StockMove::Set, "wh", 4, MICROS)
            .expect("stock.set");
        w.state.drain(&w.c, usize::MAX, &mut Changes::default());
        // F appears after the drain: a page shows what went out, not what is pending.
        let unpublished = w.key("F");
        w.state
            .stock_at(
                &w.c,
                unpublished,
                crate::state::StockMove::Set,
                "wh",
                9,
                MICROS,
            )
            .expect("stock.set");
        let shop = w.state.policy.channel_index["shop"] as usize;
        let mut start = 0;
        let mut seen = vec![];
        let mut pages = 0;
        loop {
            let page = w.state.published_page(shop, start, 2).expect("page");
            assert!(page.items.len() <= 2);
            seen.extend(
                page.items
                    .iter()
                    .map(|&(k, q)| (w.state.keys[k as usize].sku.to_string(), q)),
            );
            pages += 1;
            match page.next {
                Some(next) => start = next,
                None => break,
            }
        }
        let sku = |s: &str| w.state.lookup(s, "new").expect("key");
        let mut want: Vec<(String, i64)> = w
            .state
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.condition == 0 && k.sku.as_ref() != "F")
            .map(|(i, k)| (k.sku.to_string(), w.state.shown(&w.c, i as u32, shop)))
            .collect();
        assert!(want.iter().any(|&(_, q)| q > 0));
        want.sort_by_key(|(s, _)| sku(s));
        assert_eq!(
            seen, want,
            "every published key the channel sells, F not yet, E never"
        );
        assert_eq!(pages, want.len().div_ceil(2), "no empty last page");
        assert!(w.state.published_page(9, 0, 2).is_err());
    }
}
