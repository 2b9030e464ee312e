//! Taking and giving back units: tier-aware takes, post-sale takes, routing a line's
//! units to locations, backorders and how new stock fills them, and releasing a line.

use compact_str::CompactString;
use smallvec::{smallvec, SmallVec};

use super::State;
use crate::counters::{Counters, Take};
use crate::effects::{AlertOut, BackorderOut, Effects, RouteOut};
use crate::error::{CoreError, CoreResult};
use crate::ledger;
use crate::policy::Kind;
use crate::reservation::{Line, LineRef};

impl State {
    /// Line `i` of a live order; None once the order is closed.
    pub(super) fn line_mut(&mut self, order_id: &str, i: usize) -> Option<&mut Line> {
        self.registry
            .orders
            .get_mut(order_id)
            .map(|o| &mut o.lines[i])
    }

    /// The keys whose counters a line of `idx` moves, with units per line unit.
    pub(super) fn parts(&self, idx: u32) -> SmallVec<[(u32, i64); 1]> {
        match self.info[idx as usize].kind {
            Kind::Bundle => SmallVec::from_slice(self.components(idx)),
            _ => smallvec![(idx, 1)],
        }
    }

    pub(super) fn counted(&self, idx: u32) -> bool {
        !matches!(self.info[idx as usize].kind, Kind::NonInventory)
    }

    /// Tier-aware take of `qty` line units, all parts or none; for channel `ch`, above
    /// what running promotions set aside for other channels.
    pub(super) fn take_tier(
        &self,
        c: &Counters,
        idx: u32,
        qty: i64,
        tier: u8,
        ch: Option<u16>,
    ) -> bool {
        if !self.counted(idx) {
            return true;
        }
        let parts = self.parts(idx);
        for (n, &(k, m)) in parts.iter().enumerate() {
            let units = qty.saturating_mul(m);
            let set_aside = ch.map_or(0, |ch| self.set_aside(c, k, ch));
            let floor = self.floor_of(c, k, tier).saturating_add(set_aside);
            if c.take(k, units, floor) == Take::Refused {
                for &(k2, m2) in &parts[..n] {
                    c.add(k2, qty.saturating_mul(m2));
                }
                return false;
            }
        }
        true
    }

    /// Post-sale take: as many whole line units as every part can cover above 0.
    pub(super) fn take_up_to(&self, c: &Counters, idx: u32, qty: i64) -> i64 {
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

    pub(super) fn give_back(&mut self, c: &Counters, idx: u32, qty: i64, fx: &mut Effects) {
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

    /// Refuses lines whose units could overflow a count: a bundle's parts (qty × units per
    /// bundle) and, for a sale (`may_backorder`), each key's backorders and preorders if
    /// every unit of it ended up there. Checked before anything moves, so such an event
    /// is refused whole instead of saturating a count that a later cancel would drive
    /// below zero.
    pub(super) fn check_room(
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
    pub(super) fn unroute(
        &mut self,
        order_id: &str,
        line_i: usize,
        k: u32,
        at: Option<u16>,
        units: i64,
    ) -> Vec<(u16, i64)> {
        let mut left = units;
        let mut freed = vec![];
        let Some(line) = self.line_mut(order_id, line_i) else {
            return freed;
        };
        let routes = &mut line.routes;
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
    pub(super) fn fill_backorders(&mut self, c: &Counters, idx: u32, fx: &mut Effects) {
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
            if let Some(line) = self.line_mut(&front.order_id, line_i) {
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
    pub(super) fn release_line(
        &mut self,
        c: &Counters,
        order_id: &str,
        line_i: usize,
        fx: &mut Effects,
    ) {
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
        if let Some(l) = self.line_mut(order_id, line_i) {
            l.reserved = 0;
            l.backordered = 0;
            l.preordered = 0;
            l.closed = true;
        }
        c.mark_dirty(idx);
        self.mark_bundles(c, idx);
        self.give_back(c, idx, line.reserved, fx);
    }

    /// Makes a committed line's holdings equal its quantity: give back any excess hold,
    /// take the shortfall at floor 0 (or against the preorder limit), backorder the rest.
    pub(super) fn settle_line(
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
            if let Some(l) = self.line_mut(order_id, i) {
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
            if let Some(l) = self.line_mut(order_id, i) {
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
        if let Some(l) = self.line_mut(order_id, i) {
            l.reserved += got;
            l.backordered += need - got;
        }
        let reserved = self.registry.orders[order_id].lines[i].reserved;
        self.route_line(order_id, i, idx, reserved, fx);
        self.backorder(order_id, i, idx, need - got, ch, fx);
        c.mark_dirty(idx);
        self.mark_bundles(c, idx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World};

    #[test]
    fn a_bundle_take_is_all_parts_or_none() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        w.stock("B", "wh", 3);
        let kit = w.key("KIT");
        // Two kits need 2 A and 4 B: B is one short, so neither part moves.
        assert!(!w.state.take_tier(&w.c, kit, 2, 1, None));
        assert_eq!((w.avail("A"), w.avail("B")), (5, 3));
        assert!(w.state.take_tier(&w.c, kit, 1, 1, None));
        assert_eq!((w.avail("A"), w.avail("B")), (4, 1));
    }

    #[test]
    fn a_post_sale_take_covers_whole_bundles_only() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        w.stock("B", "wh", 5);
        let kit = w.key("KIT");
        assert_eq!(w.state.take_up_to(&w.c, kit, 4), 2, "5 B make 2 kits");
        assert_eq!((w.avail("A"), w.avail("B")), (3, 1));
    }

    #[test]
    fn new_stock_fills_the_oldest_backorder_first() {
        let mut w = World::new();
        w.stock("A", "wh", 1);
        w.place("o1", &[line("1", "A", 2)]).expect("o1");
        w.place("o2", &[line("1", "A", 1)]).expect("o2");
        let k = w.key("A");
        assert_eq!(w.state.keys[k as usize].backordered, 2);
        let fx = w
            .state
            .stock_at(&w.c, k, super::super::StockMove::Set, "wh", 2, 1);
        let routed: Vec<_> = fx
            .expect("stock.set")
            .routes
            .iter()
            .map(|r| (r.order_id.clone(), r.qty))
            .collect();
        assert_eq!(routed, [("o1".to_string(), 1)]);
        assert_eq!(w.state.keys[k as usize].backordered, 1);
        let o2 = &w.state.registry.orders["o2"].lines[0];
        assert_eq!((o2.reserved, o2.backordered), (0, 1));
    }

    #[test]
    fn releasing_a_line_gives_back_its_units_and_routes() {
        let mut w = World::new();
        w.stock("A", "wh", 4);
        w.place("o1", &[line("1", "A", 3)]).expect("o1");
        assert_eq!(w.avail("A"), 1);
        let mut fx = crate::effects::Effects::default();
        w.state.release_line(&w.c, "o1", 0, &mut fx);
        assert_eq!(w.avail("A"), 4);
        let k = w.key("A");
        assert_eq!(
            w.state.keys[k as usize].stock.get(0).map(|l| l.routed),
            Some(0)
        );
        assert!(w.state.line_mut("o1", 0).is_some_and(|l| l.closed));
    }
}
