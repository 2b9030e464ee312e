//! Orders: a sale placed (and the events that waited for it applied), cancelled,
//! shipped, failed in fulfillment, returned; and closing an order once none of its
//! lines holds anything.

use compact_str::CompactString;
use smallvec::SmallVec;

use super::{LineIn, State};
use crate::counters::Counters;
use crate::effects::{AlertOut, AuditOut, DeadOut, Effects};
use crate::error::{add, mul, CoreError, CoreResult};
use crate::hash::Map;
use crate::ledger::{shift, StockField};
use crate::parking::Waiting;
use crate::reservation::{Line, Order};

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

impl State {
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
        self.place(c, order_id, channel, ch, lines, ts)
    }

    /// A partitioned engine's share of an order: the whole order is checked as
    /// `order_placed` checks it, then only `mine` (this partition's lines) is placed.
    /// An order with no line here is still recorded, closed at once, so the events that
    /// name it later are known to be another partition's and not parked.
    pub fn order_placed_share(
        &mut self,
        c: &Counters,
        order_id: &str,
        channel: &str,
        all: &[LineIn],
        mine: &[LineIn],
        ts: i64,
    ) -> CoreResult<Effects> {
        let ch = self.channel(channel)?;
        Self::check_lines(all)?;
        self.place(c, order_id, channel, ch, mine, ts)
    }

    /// Whether the order is live here (placed with lines of this partition, not closed).
    pub fn holds_order(&self, order_id: &str) -> bool {
        self.registry.orders.contains_key(order_id)
    }

    /// A partitioned state's share of the items of an event on a known order: those
    /// whose line (`line_id(item)`) the order holds here. The others are another
    /// partition's lines, or of an order this partition holds nothing of, and are
    /// skipped. Unpartitioned: None (every item applies, and is checked, as it is).
    fn share<T: Clone>(
        &self,
        order_id: &str,
        items: &[T],
        line_id: impl Fn(&T) -> &str,
    ) -> Option<Vec<T>> {
        if self.partition.is_whole() {
            return None;
        }
        let order = self.registry.orders.get(order_id);
        Some(
            items
                .iter()
                .filter(|item| order.is_some_and(|o| o.line(line_id(item)).is_some()))
                .cloned()
                .collect(),
        )
    }

    fn place(
        &mut self,
        c: &Counters,
        order_id: &str,
        channel: &str,
        ch: u16,
        lines: &[LineIn],
        ts: i64,
    ) -> CoreResult<Effects> {
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
        let mut fresh: SmallVec<[i64; 4]> = SmallVec::new();
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
            // A held line's units were counted as sold when the hold was granted.
            let held_units = from_hold.as_ref().map_or(0, |h| h.qty);
            fresh.push(qty.saturating_sub(held_units).max(0));
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
            self.sold(c, idx, ch, fresh[i], ts);
        }
        if fresh.iter().any(|&n| n > 0) {
            self.order_delay(ch, ts);
        }
        self.unpark(c, order_id, &mut fx);
        self.close_if_done(order_id);
        Ok(fx)
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

    pub(super) fn close_if_done(&mut self, order_id: &str) {
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
        let here;
        let line_ids = match line_ids {
            _ if self.partition.is_whole() => line_ids,
            _ if !self.holds_order(order_id) => return Ok(Effects::default()),
            None => None,
            Some(ids) => {
                here = self
                    .share(order_id, ids, String::as_str)
                    .unwrap_or_default();
                if here.is_empty() {
                    return Ok(Effects::default());
                }
                Some(&here[..])
            }
        };
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
        let here = self.share(order_id, lines, |l| l.0.as_str());
        if here.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Effects::default());
        }
        let lines = here.as_deref().unwrap_or(lines);
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
            if let Some(l) = self.line_mut(order_id, i) {
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
                        field: StockField::OnHand.name(),
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
        if self
            .share(order_id, &[line_id], |l| l)
            .is_some_and(|h| h.is_empty())
        {
            return Ok(Effects::default());
        }
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
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World, MICROS};

    fn shipped_world() -> World {
        let mut w = World::new();
        w.stock("A", "wh", 10);
        w.place("o1", &[line("1", "A", 3)]).expect("o1");
        w.ship("o1", "1", 2, "wh");
        w
    }

    fn give_back(w: &mut World, sku: &str, qty: i64) -> crate::error::CoreResult<()> {
        w.state
            .order_returned(&w.c, "o1", "1", sku, "wh", qty, "restock", 2 * MICROS)
            .map(|_| ())
    }

    #[test]
    fn a_return_must_name_the_sku_its_line_sold() {
        let mut w = shipped_world();
        w.stock("B", "wh", 0);
        let before = w.image();
        assert!(give_back(&mut w, "B", 1).is_err());
        assert_eq!(w.image(), before);
    }

    #[test]
    fn a_return_stays_within_shipped_minus_returned() {
        let mut w = shipped_world();
        give_back(&mut w, "A", 1).expect("first unit back");
        assert_eq!(w.on_hand("A", "wh"), 9);
        let before = w.image();
        assert!(give_back(&mut w, "A", 2).is_err(), "2 shipped, 1 returned");
        assert_eq!(w.image(), before);
        give_back(&mut w, "A", 1).expect("the second unit");
        assert_eq!(w.on_hand("A", "wh"), 10);
    }

    #[test]
    fn a_shipment_beyond_the_reserved_units_changes_nothing() {
        let mut w = World::new();
        w.stock("A", "wh", 10);
        w.place("o1", &[line("1", "A", 2)]).expect("o1");
        let before = w.image();
        let lines = [("1".to_string(), 3, "wh".to_string())];
        assert!(w.state.order_shipped(&w.c, "o1", &lines, MICROS).is_err());
        assert_eq!(w.image(), before);
    }

    #[test]
    fn a_cancelled_line_gives_its_units_back() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        w.place("o1", &[line("1", "A", 2), line("2", "A", 1)])
            .expect("o1");
        assert_eq!(w.avail("A"), 2);
        let one = ["1".to_string()];
        w.state
            .order_cancelled(&w.c, "o1", Some(&one), MICROS)
            .expect("cancel line 1");
        assert_eq!(w.avail("A"), 4);
        assert!(w.state.order_known("o1"));
        w.state
            .order_cancelled(&w.c, "o1", None, MICROS)
            .expect("cancel the rest");
        assert_eq!(w.avail("A"), 5);
        assert!(!w.state.registry.orders.contains_key("o1"), "closed");
    }

    #[test]
    fn an_order_placed_twice_counts_once() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        w.place("o1", &[line("1", "A", 2)]).expect("o1");
        let fx = w.place("o1", &[line("1", "A", 2)]).expect("again");
        assert!(fx.duplicate);
        assert_eq!(w.avail("A"), 3);
    }
}
