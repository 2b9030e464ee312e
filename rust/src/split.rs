//! Changing the partition count at a log position: partition k of M built from the
//! snapshots of the N old partitions, all taken at the same stream sequence.
//!
//! Replaying the log under M would decide again what the old partitions decided
//! through their votes, so the state is moved instead of rebuilt. Everything that
//! belongs to a SKU goes to the new partition of the SKU's family (keys with their
//! stock and counters, the lines of orders and holds, backorder and preorder queues,
//! demand, prices, promotion sales counts); every promotion is kept whole, as each
//! partition judges one on all its SKUs; an order whose lines were spread over several
//! old partitions becomes one order with the lines the new partition owns. What the
//! whole log shares is merged:
//! - event ids: union, ordered by the log time each was applied at;
//! - request decisions, closed orders and shipped lines (windows without times):
//!   union, the old windows aligned at their newest entry, so the newest of each
//!   stay the newest and a full window forgets the oldest first;
//! - every order an old partition knew of and the new one holds no open line of is
//!   closed here, so later events naming it are recognised, not parked;
//! - parked order events: union by event id, in the order they were parked;
//! - the clock: the latest; measured lags: per channel, the order delay measured on
//!   the most orders, and the larger push lag and lags in use (the automatic buffers
//!   then err towards holding back).
//!
//! Reservations that span partitions and are still undecided cannot be moved: their
//! decision waits for votes of old partitions that no longer run. They are refused
//! here; the resize tool says what to do.

use std::collections::{BTreeMap, BTreeSet};

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::dedupe::{EventWindow, Stamps};
use crate::error::{CoreError, CoreResult};
use crate::hash::{Map, Set};
use crate::parking::Parked;
use crate::partition::Partition;
use crate::policy::Policy;
use crate::pricing::{PricingImage, Promo};
use crate::reservation::{
    stable_hash, Decision, Line, LineRef, Order, Registry, ShippedLine, EVENT_WINDOW,
    REQUEST_WINDOW,
};
use crate::snapshot::Sections;
use crate::state::{AdaptiveImage, CrossImage, KeyState, LogImage, Persisted};
use crate::velocity::DelayP99;

fn refused(message: impl Into<String>) -> CoreError {
    CoreError::Snapshot(message.into())
}

/// Where one old partition's keys and order lines went.
#[derive(Default)]
struct Moves {
    /// Old key index → new key index, for the keys that move here.
    keys: Vec<Option<u32>>,
    /// (order id, old line index) → new line index in the merged order.
    lines: Map<(CompactString, u32), u32>,
}

impl Moves {
    fn key(&self, old: u32) -> Option<u32> {
        self.keys.get(old as usize).copied().flatten()
    }
}

/// Partition `target` of `target.count`, from `olds[j]` = old partition j's snapshot
/// sections (all at the same log position, `olds.len()` old partitions), under
/// `policy` (whose families place every SKU).
pub fn split(policy: &Policy, olds: Vec<Sections>, target: Partition) -> CoreResult<Sections> {
    let n = u32::try_from(olds.len()).map_err(|_| refused("too many old partitions"))?;
    let Some(first) = olds.first() else {
        return Err(refused("no old partition to split"));
    };
    let (location_ids, channel_ids) = (first.0.location_ids.clone(), first.0.channel_ids.clone());
    for (j, old) in olds.iter().enumerate() {
        if old.0.location_ids != location_ids || old.0.channel_ids != channel_ids {
            return Err(refused(format!(
                "old partition {j} lists other locations or channels than partition 0: \
                 the snapshots are not of one log position"
            )));
        }
        if let Some(id) = old.3.pending.keys().next() {
            return Err(refused(format!(
                "old partition {j} still waits for the votes on {} reservation(s) \
                 spanning partitions (request {id:?}): they cannot be moved undecided",
                old.3.pending.len()
            )));
        }
    }
    let families = &policy.families;
    // A SKU's state is its owner's under the old count; it moves here when its family
    // is the target's under the new one.
    let moves_here = |sku: &str, j: usize| {
        families.partition(sku, n) as usize == j
            && families.partition(sku, target.count) == target.index
    };

    let mut p = Persisted {
        // A state's first condition is always "new" (see `State::new`).
        conditions: vec!["new".to_string()],
        location_ids,
        channel_ids,
        now: olds
            .iter()
            .map(|o| o.0.now)
            .max()
            .unwrap_or(crate::state::NO_TIME),
        ..Default::default()
    };
    let mut moves: Vec<Moves> = Vec::with_capacity(olds.len());
    let mut seen_keys: Set<(Box<str>, u16)> = Set::default();
    for (j, old) in olds.iter().enumerate() {
        let mut m = Moves {
            keys: vec![None; old.0.keys.len()],
            ..Default::default()
        };
        for (i, key) in old.0.keys.iter().enumerate() {
            if !moves_here(&key.sku, j) {
                continue;
            }
            let condition_name = old
                .0
                .conditions
                .get(key.condition as usize)
                .ok_or_else(|| refused(format!("old partition {j}: key {i} has no condition")))?;
            let condition = condition_index(&mut p.conditions, condition_name)?;
            if !seen_keys.insert((key.sku.clone(), condition)) {
                return Err(refused(format!(
                    "SKU {:?} ({condition_name}) is held by two old partitions",
                    key.sku
                )));
            }
            let avail = *old
                .0
                .avail
                .get(i)
                .ok_or_else(|| refused(format!("old partition {j}: key {i} has no counter")))?;
            let new = u32::try_from(p.keys.len()).map_err(|_| refused("too many keys"))?;
            p.keys.push(KeyState {
                condition,
                ..key.clone()
            });
            p.avail.push(avail);
            m.keys[i] = Some(new);
        }
        moves.push(m);
    }
    p.registry = merge_registry(&olds, &mut moves)?;
    let (events, event_stamps) = merge_events(&olds);
    p.registry.events = events;
    let log = LogImage {
        event_stamps,
        parked: merge_parked(&olds),
    };
    let adaptive = merge_adaptive(&olds, &moves);
    let pricing = merge_pricing(&olds, &moves_here);
    Ok((p, log, adaptive, CrossImage::default(), pricing))
}

fn condition_index(conditions: &mut Vec<String>, name: &str) -> CoreResult<u16> {
    if let Some(i) = conditions.iter().position(|c| c == name) {
        return Ok(i as u16);
    }
    conditions.push(name.to_string());
    u16::try_from(conditions.len() - 1).map_err(|_| refused("too many conditions"))
}

/// The lists merged oldest first, aligned at their newest entries (an entry `d` from
/// the end of its list sits with the others `d` from the end); an id in several lists
/// keeps its newest place. At most `cap` ids, the newest.
fn aligned<'a>(lists: impl IntoIterator<Item = Vec<&'a u64>>, cap: usize) -> Vec<u64> {
    let lists: Vec<Vec<&u64>> = lists.into_iter().collect();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let mut merged = Vec::new();
    for depth in (0..longest).rev() {
        for list in &lists {
            if let Some(at) = list.len().checked_sub(depth + 1) {
                merged.push(*list[at]);
            }
        }
    }
    let mut seen = Set::default();
    let mut newest_first: Vec<u64> = merged
        .into_iter()
        .rev()
        .filter(|h| seen.insert(*h))
        .collect();
    newest_first.truncate(cap);
    newest_first.reverse();
    newest_first
}

fn merge_registry(olds: &[Sections], moves: &mut [Moves]) -> CoreResult<Registry> {
    let mut r = Registry::default();
    // Orders, in id order so the result does not depend on hash order.
    let mut orders: BTreeMap<CompactString, Order> = BTreeMap::new();
    let mut known: BTreeSet<CompactString> = BTreeSet::new();
    for (j, old) in olds.iter().enumerate() {
        let m = &mut moves[j];
        let mut ids: Vec<&CompactString> = old.0.registry.orders.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        for id in ids {
            known.insert(id.clone());
            let Some(order) = old.0.registry.orders.get(id) else {
                continue;
            };
            for (i, line) in order.lines.iter().enumerate() {
                let Some(key) = m.key(line.key) else {
                    continue;
                };
                let routes = line
                    .routes
                    .iter()
                    .map(|&(k, loc, units)| {
                        m.key(k).map(|k| (k, loc, units)).ok_or_else(|| {
                            refused(format!(
                                "order {id:?} line {:?} ships a component of another family",
                                line.line_id
                            ))
                        })
                    })
                    .collect::<CoreResult<Vec<_>>>()?;
                let merged = orders.entry(id.clone()).or_insert_with(|| Order {
                    channel: order.channel,
                    hold_expires: order.hold_expires,
                    lines: SmallVec::new(),
                });
                if merged.line(&line.line_id).is_some() {
                    return Err(refused(format!(
                        "order {id:?} line {:?} is held by two old partitions",
                        line.line_id
                    )));
                }
                let at =
                    u32::try_from(merged.lines.len()).map_err(|_| refused("too many lines"))?;
                merged.lines.push(Line {
                    key,
                    routes,
                    ..line.clone()
                });
                m.lines.insert((id.clone(), i as u32), at);
            }
        }
    }
    // Shipped lines of closed orders, by order id hash.
    let mut shipped: Map<u64, Vec<ShippedLine>> = Map::default();
    for (j, old) in olds.iter().enumerate() {
        let mut hashes: Vec<&u64> = old.0.registry.shipped_order.iter().collect();
        hashes.dedup();
        for h in hashes {
            let Some(lines) = old.0.registry.shipped.get(h) else {
                continue;
            };
            for line in lines {
                if let Some(key) = moves[j].key(line.key) {
                    shipped.entry(*h).or_default().push(ShippedLine {
                        key,
                        ..line.clone()
                    });
                }
            }
        }
    }
    // An order open here whose other lines shipped in an old partition that closed it:
    // those lines come back into the order, closed, so a return still finds them.
    for (id, order) in &mut orders {
        if let Some(lines) = shipped.remove(&stable_hash(id)) {
            for s in lines {
                if order.line(&s.line_id).is_none() {
                    order.lines.push(Line {
                        line_id: s.line_id,
                        key: s.key,
                        qty: s.shipped,
                        shipped: s.shipped,
                        returned: s.returned,
                        closed: true,
                        ..Default::default()
                    });
                }
            }
        }
    }
    let (open, done): (Vec<_>, Vec<_>) = orders
        .into_iter()
        .partition(|(_, o)| o.lines.iter().any(Line::is_open));
    // Closed orders: the old windows, then every order known before and not open here.
    let closed = aligned(
        olds.iter()
            .map(|o| o.0.registry.closed_orders.iter().collect()),
        EVENT_WINDOW,
    );
    let open_ids: Set<u64> = open.iter().map(|(id, _)| stable_hash(id)).collect();
    for h in closed.into_iter().filter(|h| !open_ids.contains(h)) {
        r.closed_orders.insert(h);
    }
    for id in known
        .iter()
        .filter(|id| !open_ids.contains(&stable_hash(id)))
    {
        r.closed_orders.insert(stable_hash(id));
    }
    for (id, order) in done {
        r.close(&id, Some(Box::new(order)));
    }
    let shipped_order = aligned(
        olds.iter()
            .map(|o| o.0.registry.shipped_order.iter().collect()),
        EVENT_WINDOW,
    );
    for h in shipped_order {
        if let Some(lines) = shipped.remove(&h) {
            if r.shipped.insert(h, lines).is_none() {
                r.shipped_order.push_back(h);
            }
        }
    }
    // Holds: the old partitions' entries of the orders that stay open holds here.
    let expiry: Map<&CompactString, Option<i64>> =
        open.iter().map(|(id, o)| (id, o.hold_expires)).collect();
    for old in olds {
        for (expires, id) in &old.0.registry.holds {
            if expiry.get(id) == Some(&Some(*expires)) {
                r.holds.insert((*expires, id.clone()));
            }
        }
    }
    // Backorder and preorder queues: a key's queue comes whole from its one old owner.
    let requeue = |m: &Moves, refs: &[LineRef]| -> Vec<LineRef> {
        refs.iter()
            .filter_map(|lr| {
                let at = m.lines.get(&(lr.order_id.clone(), lr.line))?;
                Some(LineRef {
                    order_id: lr.order_id.clone(),
                    line: *at,
                })
            })
            .collect()
    };
    for (j, old) in olds.iter().enumerate() {
        for (key, queue) in &old.0.registry.backorders {
            if let Some(new) = moves[j].key(*key) {
                let refs: Vec<LineRef> = queue.iter().cloned().collect();
                let kept = requeue(&moves[j], &refs);
                if !kept.is_empty() {
                    r.backorders.insert(new, kept.into());
                }
            }
        }
        for (key, refs) in &old.0.registry.preorders {
            if let Some(new) = moves[j].key(*key) {
                let kept = requeue(&moves[j], refs);
                if !kept.is_empty() {
                    r.preorders.insert(new, kept);
                }
            }
        }
    }
    for (id, order) in open {
        r.orders.insert(id, Box::new(order));
    }
    // Decisions: every old partition's, so a retried request gets its first answer.
    let replies = aligned(
        olds.iter()
            .map(|o| o.0.registry.reply_order.iter().collect()),
        REQUEST_WINDOW,
    );
    for h in replies {
        let decision: Option<&Decision> = olds.iter().find_map(|o| o.0.registry.replies.get(&h));
        if let Some(d) = decision {
            r.replies.insert(h, d.clone());
            r.reply_order.push_back(h);
        }
    }
    Ok(r)
}

/// Every old partition's remembered event ids, ordered by the log time each was
/// applied at, with their stamps. An old window without stamps (an older format)
/// counts as applied at its state's clock.
fn merge_events(olds: &[Sections]) -> (EventWindow, Stamps) {
    let mut all: Vec<(i64, u64, u64)> = Vec::new();
    for old in olds {
        let stamps = &old.1.event_stamps;
        let whole = stamps.times.len() == old.0.registry.events.len()
            && stamps.fingerprints.len() == stamps.times.len();
        for (i, id) in old.0.registry.events.ids().enumerate() {
            let (at, fingerprint) = if whole {
                (stamps.times[i], stamps.fingerprints[i])
            } else {
                (old.0.now, 0)
            };
            all.push((at, id, fingerprint));
        }
    }
    all.sort_by_key(|&(at, _, _)| at); // stable: ties keep partition order
    let mut window = EventWindow::new(i64::MAX, usize::MAX);
    let mut stamps = Stamps::default();
    let mut seen = Set::default();
    for (at, id, fingerprint) in all {
        if seen.insert(id) {
            window.insert(id, fingerprint, at);
            stamps.times.push(at);
            stamps.fingerprints.push(fingerprint);
        }
    }
    (window, stamps)
}

/// Every old partition parks the same order events (each knows every order): their
/// union, each once, in the order they were parked.
fn merge_parked(olds: &[Sections]) -> Vec<Parked> {
    let mut all: Vec<&Parked> = olds.iter().flat_map(|o| o.1.parked.iter()).collect();
    all.sort_by_key(|p| p.since);
    let mut seen = Set::default();
    all.into_iter()
        .filter(|p| seen.insert(p.event_id.clone()))
        .cloned()
        .collect()
}

fn merge_adaptive(olds: &[Sections], moves: &[Moves]) -> AdaptiveImage {
    let mut demand = Vec::new();
    let mut long = Vec::new();
    for (j, old) in olds.iter().enumerate() {
        for (key, d) in &old.2.demand {
            if let Some(new) = moves[j].key(*key) {
                demand.push((new, d.clone()));
            }
        }
        for &(key, ch, count) in &old.2.long {
            if let Some(new) = moves[j].key(key) {
                long.push((new, ch, count));
            }
        }
    }
    demand.sort_unstable_by_key(|(k, _)| *k);
    long.sort_unstable_by_key(|&(k, ch, _)| (k, ch));
    let channels = olds.iter().map(|o| o.2.order_lag.len()).max().unwrap_or(0);
    let order_lag = (0..channels)
        .map(|ch| {
            olds.iter()
                .filter_map(|o| o.2.order_lag.get(ch))
                .max_by_key(|d| d.samples())
                .cloned()
                .unwrap_or_else(DelayP99::default)
        })
        .collect();
    let channels = olds.iter().map(|o| o.2.push_lag.len()).max().unwrap_or(0);
    let push_lag = (0..channels)
        .map(|ch| {
            olds.iter()
                .filter_map(|o| o.2.push_lag.get(ch).copied().flatten())
                .reduce(f64::max)
        })
        .collect();
    let channels = olds.iter().map(|o| o.2.lags.len()).max().unwrap_or(0);
    let longer =
        |a: crate::state::Lag, b: crate::state::Lag| if b.seconds > a.seconds { b } else { a };
    let lags = (0..channels)
        .map(|ch| {
            olds.iter()
                .filter_map(|o| o.2.lags.get(ch).copied())
                .reduce(|(pa, oa), (pb, ob)| (longer(pa, pb), longer(oa, ob)))
                .unwrap_or_default()
        })
        .collect();
    AdaptiveImage {
        demand,
        order_lag,
        push_lag,
        lags,
        next_at: olds.iter().map(|o| o.2.next_at).min().unwrap_or_default(),
        counting_since: olds.iter().filter_map(|o| o.2.counting_since).min(),
        long,
    }
}

/// Prices of the SKUs that move here, and every promotion whole: each partition
/// judges a promotion on all its SKUs (state/promos.rs), so each keeps all of them;
/// a promotion's sales counts follow their SKUs.
fn merge_pricing(olds: &[Sections], moves_here: &impl Fn(&str, usize) -> bool) -> PricingImage {
    let mut out = PricingImage::default();
    let mut promos: Vec<Promo> = Vec::new();
    let mut listed: Map<String, Set<String>> = Map::default();
    for (j, old) in olds.iter().enumerate() {
        let image = &old.4;
        out.prices.extend(
            image
                .prices
                .iter()
                .filter(|(sku, _)| moves_here(sku, j))
                .cloned(),
        );
        out.published.extend(
            image
                .published
                .iter()
                .filter(|(sku, _, _)| moves_here(sku, j))
                .cloned(),
        );
        for promo in &image.promos {
            let sold = promo.sold.iter().filter(|(s, _)| moves_here(s, j));
            let merged = match promos.iter_mut().find(|p| p.id == promo.id) {
                Some(p) => p,
                None => {
                    promos.push(Promo {
                        skus: Vec::new(),
                        sold: BTreeMap::new(),
                        ..promo.clone()
                    });
                    let last = promos.len() - 1;
                    &mut promos[last]
                }
            };
            // Snapshots from before promotions were kept whole hold a partition's
            // share of one: the union over the old partitions is the whole list.
            let listed = listed.entry(promo.id.clone()).or_default();
            for sku in &promo.skus {
                if listed.insert(sku.clone()) {
                    merged.skus.push(sku.clone());
                }
            }
            merged.sold.extend(sold.map(|(s, n)| (s.clone(), *n)));
        }
    }
    out.promos = promos;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Core;
    use crate::state::{LineIn, StockMove};

    const S: i64 = 1_000_000;
    const SKUS: usize = 12;

    fn policy() -> Policy {
        let skus: Vec<String> = (0..SKUS)
            .map(|i| {
                format!(
                    r#"{{"id": "S{i}", "profile": 0, "safety": 0, "kind": "standard",
                        "sellable_from": null, "preorder_limit": 0, "components": []}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{
            "safety": 0, "non_inventory_qty": 999, "protect": [0, 0],
            "locations": [{{"id": "wh", "kind": "warehouse", "online": true, "priority": 0,
                            "count_pct": 100, "release_gate": false}}],
            "channels": [
                {{"id": "shop", "tier": 1, "conditions": ["new"]}},
                {{"id": "market", "tier": 2, "conditions": ["new"]}}
            ],
            "profiles": [[
                {{"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0}},
                {{"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0}}
            ]],
            "skus": [{}]}}"#,
            skus.join(", ")
        );
        Policy::from_json(json.as_bytes()).expect("test policy")
    }

    fn sku(i: usize) -> String {
        format!("S{i}")
    }

    /// N partitions of one log: every event goes to each, as the service applies it.
    struct Log {
        parts: Vec<Core>,
        seq: u64,
    }

    impl Log {
        fn new(n: u32) -> Log {
            let parts = (0..n)
                .map(|k| Core::partitioned(policy(), Partition::new(k, n).expect("partition")))
                .collect();
            let log = Log { parts, seq: 0 };
            log.tick(S);
            log
        }

        fn id(&mut self) -> String {
            self.seq += 1;
            format!("e{}", self.seq)
        }

        fn tick(&self, ts: i64) {
            for p in &self.parts {
                p.tick(&format!("tick-{ts}"), ts, &[]).expect("tick");
            }
        }

        fn stock(&mut self, sku: &str, on_hand: i64) {
            let id = self.id();
            for p in &self.parts {
                if p.elsewhere(sku) {
                    continue;
                }
                p.event(&id, 1, S, |s, c, ts| {
                    let k = s.intern(c, sku, "new")?;
                    s.stock_at(c, k, StockMove::Set, "wh", on_hand, ts)
                })
                .expect("stock.set");
            }
        }

        fn place(&mut self, order_id: &str, lines: &[LineIn]) {
            let id = self.id();
            for p in &self.parts {
                p.event(&id, 2, S, |s, c, ts| {
                    let mine: Vec<LineIn> = lines.iter().copied().filter(|l| s.owns(l.1)).collect();
                    s.order_placed_share(c, order_id, "shop", lines, &mine, ts)
                })
                .expect("order.placed");
            }
        }

        /// A reservation through the log: prepared where it spans partitions, with
        /// every vote then read back, unless `silent` partitions never vote.
        fn reserve(&mut self, request_id: &str, lines: &[LineIn], silent: &[u32]) {
            let mut votes = Vec::new();
            for p in &self.parts {
                let (share, _) = p
                    .reserve_share(request_id, request_id, "shop", lines, 600, S, None)
                    .expect("reserve");
                if let crate::state::Share::Prepared(v) = share {
                    votes.push(v);
                }
            }
            for v in votes.iter().filter(|v| !silent.contains(&v.partition)) {
                let outcome: Vec<(String, Option<&str>)> = v
                    .lines
                    .iter()
                    .map(|&(i, r)| {
                        let reason = r.and_then(|r| crate::reservation::REASONS.get(r as usize));
                        (lines[i as usize].0.to_string(), reason.copied())
                    })
                    .collect();
                let outcome: Vec<(&str, Option<&str>)> =
                    outcome.iter().map(|(l, r)| (l.as_str(), *r)).collect();
                for p in &self.parts {
                    p.vote(request_id, v.partition, v.ok, &outcome)
                        .expect("vote");
                }
            }
        }

        fn split(&self, m: u32) -> Vec<Core> {
            let snapshots: Vec<Vec<u8>> = self
                .parts
                .iter()
                .map(|p| p.snapshot().expect("snapshot"))
                .collect();
            let olds: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
            (0..m)
                .map(|k| {
                    let target = Partition::new(k, m).expect("partition");
                    Core::split(policy(), target, &olds).expect("split")
                })
                .collect()
        }
    }

    /// Per SKU: (on hand, available, backordered); per open order: its lines as
    /// (line id, sku, qty, reserved, backordered, shipped) and its hold expiry;
    /// the live holds. Over all the partitions given: each SKU in one of them.
    type Union = (
        BTreeMap<String, (i64, i64, i64)>,
        BTreeMap<String, (Vec<(String, String, i64, i64, i64, i64)>, Option<i64>)>,
        BTreeSet<(i64, String)>,
    );

    fn union(parts: &[Core]) -> Union {
        let mut keys = BTreeMap::new();
        let mut orders: BTreeMap<String, (Vec<_>, Option<i64>)> = BTreeMap::new();
        let mut holds = BTreeSet::new();
        for p in parts {
            let st = p.state();
            for (i, k) in st.keys.iter().enumerate() {
                let on_hand = k.stock.total(|l| l.on_hand);
                let avail = p.counters.avail(i as u32);
                let had = keys.insert(k.sku.to_string(), (on_hand, avail, k.backordered));
                assert!(had.is_none(), "{} in two partitions", k.sku);
            }
            for (id, o) in st.registry.orders.iter() {
                let entry = orders.entry(id.to_string()).or_default();
                entry.1 = o.hold_expires;
                for l in &o.lines {
                    let sku = st.keys[l.key as usize].sku.to_string();
                    entry.0.push((
                        l.line_id.to_string(),
                        sku,
                        l.qty,
                        l.reserved,
                        l.backordered,
                        l.shipped,
                    ));
                }
                entry.0.sort();
            }
            holds.extend(st.registry.holds.iter().map(|(t, id)| (*t, id.to_string())));
        }
        (keys, orders, holds)
    }

    /// Two SKUs of old partition 0 and two of old partition 1 (of 2).
    fn spanning() -> ([String; 2], [String; 2]) {
        let families = &policy().families;
        let of = |k: u32| -> Vec<String> {
            (0..SKUS)
                .map(sku)
                .filter(|s| families.partition(s, 2) == k)
                .take(2)
                .collect()
        };
        let (zero, one) = (of(0), of(1));
        (
            [zero[0].clone(), zero[1].clone()],
            [one[0].clone(), one[1].clone()],
        )
    }

    #[test]
    fn splitting_two_partitions_into_three_or_one_moves_every_sku_order_and_hold() {
        let mut log = Log::new(2);
        for i in 0..SKUS {
            log.stock(&sku(i), 10);
        }
        let ([a, _], [b, c]) = spanning();
        log.place("o1", &[("1", &a, "new", 3), ("2", &b, "new", 12)]); // b backorders 2
        log.reserve(
            "committed",
            &[("1", &a, "new", 2), ("2", &c, "new", 1)],
            &[],
        );
        log.reserve("refused", &[("1", &a, "new", 1), ("2", &c, "new", 99)], &[]);
        log.reserve("single", &[("1", &sku(5), "new", 4)], &[]);
        let before = union(&log.parts);
        assert_eq!(before.2.len(), 2, "the committed and the single hold");
        for m in [3, 1, 2] {
            let new = log.split(m);
            assert_eq!(union(&new), before, "2 -> {m}");
            for (k, p) in new.iter().enumerate() {
                let st = p.state();
                assert_eq!(p.partition(), Partition::new(k as u32, m).expect("k"));
                for key in &st.keys {
                    assert!(st.owns(&key.sku), "{} is not partition {k}'s", key.sku);
                }
                // Every decision is remembered everywhere: a retried request is
                // answered as before, never decided again.
                for request in ["committed", "refused", "single"] {
                    assert!(st.registry.decision(request).is_some(), "{request} in {k}");
                }
                assert!(st.registry.decision("refused").is_some_and(|d| !d.ok()));
            }
        }
    }

    #[test]
    fn a_backordered_line_of_a_merged_order_is_filled_by_the_right_line() {
        let mut log = Log::new(2);
        let ([a, _], [b, _]) = spanning();
        log.stock(&a, 5);
        log.stock(&b, 0);
        // In old partition 1 the backordered line is line 0 of its share; after a
        // split into one partition it sits behind a's line.
        log.place("o1", &[("la", &a, "new", 2), ("lb", &b, "new", 3)]);
        let whole = log.split(1);
        let core = &whole[0];
        let id = "restock";
        core.event(id, 3, S, |s, c, ts| {
            let k = s.intern(c, &b, "new")?;
            s.stock_at(c, k, StockMove::Set, "wh", 3, ts)
        })
        .expect("restock");
        let st = core.state();
        let order = &st.registry.orders["o1"];
        let lb = &order.lines[order.line("lb").expect("lb")];
        assert_eq!((lb.reserved, lb.backordered), (3, 0));
        let la = &order.lines[order.line("la").expect("la")];
        assert_eq!((la.reserved, la.backordered), (2, 0));
    }

    #[test]
    fn an_order_closed_in_one_old_partition_is_known_to_a_new_one_holding_none_of_it() {
        let mut log = Log::new(2);
        let ([a, _], [b, _]) = spanning();
        log.stock(&a, 5);
        log.stock(&b, 5);
        log.place("o1", &[("la", &a, "new", 1), ("lb", &b, "new", 1)]);
        for p in log.split(3) {
            let st = p.state();
            assert!(
                st.holds_order("o1") || st.registry.was_closed("o1"),
                "partition {:?} would park events of o1",
                p.partition()
            );
        }
    }

    #[test]
    fn an_undecided_spanning_reservation_is_refused_with_its_request_id() {
        let mut log = Log::new(2);
        let ([a, _], [b, _]) = spanning();
        log.stock(&a, 5);
        log.stock(&b, 5);
        log.reserve("waiting", &[("1", &a, "new", 1), ("2", &b, "new", 1)], &[1]);
        let snapshots: Vec<Vec<u8>> = log.parts.iter().map(|p| p.snapshot().expect("s")).collect();
        let olds: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
        let err = Core::split(policy(), Partition::new(0, 3).expect("p"), &olds)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("\"waiting\""), "{err}");
        // Once the log decides it (the timeout), the split goes through.
        log.tick(S + 3600 * S);
        assert_eq!(log.split(3).len(), 3);
    }

    #[test]
    fn an_event_applied_before_the_split_is_a_duplicate_in_every_new_partition() {
        let mut log = Log::new(2);
        for i in 0..SKUS {
            log.stock(&sku(i), 4); // event ids e1.. with fingerprint 1
        }
        for p in log.split(3) {
            let st = p.state();
            for n in 1..=SKUS {
                assert!(st.duplicate(&format!("e{n}"), 1).is_some(), "e{n}");
            }
            assert!(st.duplicate("never-sent", 1).is_none());
        }
    }

    #[test]
    fn prices_and_promotion_sales_follow_their_skus_and_promotions_stay_whole() {
        let log = Log::new(2);
        let skus: Vec<String> = (0..SKUS).map(sku).collect();
        for p in &log.parts {
            let mut st = p.state();
            let owned: Vec<String> = skus.iter().filter(|s| st.owns(s)).cloned().collect();
            for s in &owned {
                st.pricing
                    .price_set(s, "EUR", "19.00", None, None)
                    .expect("price");
            }
            let mut image = st.pricing.image();
            image.promos.push(Promo {
                id: "sale".into(),
                channels: vec!["shop".into()],
                skus: owned.clone(),
                discount_bp: 1000,
                starts: 0,
                ends: i64::MAX,
                stock_cap: Some(10),
                sold: owned.iter().map(|s| (s.clone(), 1)).collect(),
            });
            let now = st.now;
            st.pricing = crate::pricing::Pricing::from_image(&st.policy, image, now);
        }
        let new = log.split(3);
        let mut sorted_skus = skus.clone();
        sorted_skus.sort();
        let mut priced = Vec::new();
        for p in &new {
            let st = p.state();
            let image = st.pricing.image();
            for (s, _) in &image.prices {
                assert!(st.owns(s), "{s} priced outside its partition");
                priced.push(s.clone());
            }
            let promo = image.promos.iter().find(|pr| pr.id == "sale");
            let Some(pr) = promo else {
                panic!("every partition keeps every promotion")
            };
            let mut listed = pr.skus.clone();
            listed.sort();
            assert_eq!(listed, sorted_skus, "the promotion is kept whole");
            assert!(
                pr.sold.keys().all(|s| st.owns(s)),
                "sales counts follow their SKUs"
            );
            assert_eq!(pr.sold.len(), skus.iter().filter(|s| st.owns(s)).count());
        }
        priced.sort();
        let mut want = skus.clone();
        want.sort();
        assert_eq!(priced, want, "every price moved once");
    }

    #[test]
    fn snapshots_of_other_positions_or_nothing_are_refused() {
        assert!(Core::split(policy(), Partition::WHOLE, &[]).is_err());
        assert!(Core::split(policy(), Partition::WHOLE, &[b"junk".as_slice()]).is_err());
    }
}
