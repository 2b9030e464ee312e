//! Holds: pre-sale reservations (tier-aware, all lines or none), their expiry, and the
//! preorder clock that turns preorders into stock-backed lines at the hold date.

use compact_str::CompactString;
use smallvec::{smallvec, SmallVec};

use super::{raw_mode, LineIn, State, MICROS};
use crate::counters::Counters;
use crate::effects::Effects;
use crate::error::{add, mul, CoreError, CoreResult};
use crate::hash::Map;
use crate::policy::Kind;
use crate::reservation::{Decision, Line, LineRef, Order, REASONS};

impl State {
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
                } else if self.promo_room(idx, ch).is_some_and(|room| *qty > room) {
                    // A promotion's channel holds no more than its waves released.
                    reasons[n] = Some("insufficient");
                    break;
                } else if self.take_tier(c, idx, *qty, tier, Some(ch)) {
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
                self.sold(c, idx, ch, qty, ts);
            }
            self.checkout_delay(ch);
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
            self.release_order_lines(c, &order_id, now, &mut fx);
            fx.expired.push(order_id.to_string());
        }
        fx
    }

    /// Releases a live hold before its time (a cross-partition reservation aborted);
    /// an order already placed on it is left alone.
    pub fn drop_hold(&mut self, c: &Counters, order_id: &str, now: i64, fx: &mut Effects) {
        let Some(exp) = self
            .registry
            .orders
            .get(order_id)
            .and_then(|o| o.hold_expires)
        else {
            return;
        };
        self.registry
            .holds
            .remove(&(exp, CompactString::from(order_id)));
        self.release_order_lines(c, order_id, now, fx);
    }

    fn release_order_lines(&mut self, c: &Counters, order_id: &str, now: i64, fx: &mut Effects) {
        let n = self
            .registry
            .orders
            .get(order_id)
            .map_or(0, |o| o.lines.len());
        for i in 0..n {
            let idx = self.registry.orders[order_id].lines[i].key;
            self.touch(idx, now);
            self.release_line(c, order_id, i, fx);
        }
        self.close_if_done(order_id);
    }

    /// Moves the clock forward; keys whose hold date has come sell from stock, and their
    /// preorders are committed from it.
    pub fn advance(&mut self, c: &Counters, ts: i64, fx: &mut Effects) {
        if ts <= self.now {
            return;
        }
        self.now = ts;
        self.newest = self.newest.max(ts);
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
                if let Some(l) = self.line_mut(&r.order_id, r.line as usize) {
                    l.preordered = 0;
                }
                if is_hold {
                    // A preorder hold becomes a normal hold on the stock that is there now.
                    let got = self.take_up_to(c, idx, line.preordered);
                    if let Some(l) = self.line_mut(&r.order_id, r.line as usize) {
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

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World, MICROS, PRE_FROM};
    use crate::reservation::Decision;

    fn hold(w: &mut World, id: &str, lines: &[crate::state::LineIn], seconds: i64) -> Decision {
        let (decision, _) = w
            .state
            .reserve(&w.c, id, id, "shop", lines, seconds, MICROS)
            .expect("reserve");
        decision
    }

    #[test]
    fn expiry_releases_the_units_at_the_tick() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        assert!(matches!(
            hold(&mut w, "h1", &[line("1", "A", 2)], 60),
            Decision::Held(_)
        ));
        assert_eq!(w.avail("A"), 3);
        let early = w.state.expire(&w.c, 60 * MICROS);
        assert!(early.expired.is_empty(), "expires at 61 s, not before");
        assert_eq!(w.avail("A"), 3);
        let due = w.state.expire(&w.c, 61 * MICROS);
        assert_eq!(due.expired, ["h1"]);
        assert_eq!(w.avail("A"), 5);
        assert!(!w.state.order_known("h1") || w.state.registry.was_closed("h1"));
    }

    #[test]
    fn a_hold_takes_all_lines_or_none() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        w.stock("B", "wh", 1);
        let before = w.image();
        let decision = hold(&mut w, "h1", &[line("1", "A", 2), line("2", "B", 2)], 60);
        assert!(matches!(decision, Decision::Refused(_)));
        assert_eq!(w.avail("A"), 5, "A was given back when B was short");
        assert_eq!(w.image(), before);
    }

    #[test]
    fn the_hold_date_turns_preorders_into_reserved_stock() {
        let mut w = World::new();
        w.stock("PRE", "wh", 10);
        w.place("o1", &[line("1", "PRE", 3)]).expect("o1");
        let k = w.key("PRE");
        assert_eq!(w.state.keys[k as usize].preordered, 3);
        assert_eq!(w.avail("PRE"), 10, "preorders do not touch stock");
        let mut fx = crate::effects::Effects::default();
        w.state.advance(&w.c, PRE_FROM, &mut fx);
        assert_eq!(w.state.keys[k as usize].preordered, 0);
        assert_eq!(w.avail("PRE"), 7);
        assert_eq!(fx.routes.iter().map(|r| r.qty).sum::<i64>(), 3);
    }
}
