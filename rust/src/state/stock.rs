//! Stock moves: what a stock event does to one key's per-location counts, with audit
//! lines, and how the sellable total and availability follow.

use super::State;
use crate::counters::Counters;
use crate::effects::{AlertOut, AuditOut, Effects};
use crate::error::{CoreError, CoreResult};
use crate::ledger::{shift, LocStock, Stock, StockField};

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

impl State {
    pub(super) fn location(&self, field: &str, id: &str) -> CoreResult<u16> {
        self.policy
            .location_index
            .get(id)
            .copied()
            .ok_or_else(|| CoreError::bad(field, format!("unknown location {id:?}")))
    }

    /// Applies `change` to a copy of the key's stock; commits only if it succeeds and the
    /// sellable total still fits in 64 bits. Records audit lines and settles availability.
    pub(super) fn stock_change(
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
            for field in StockField::ALL {
                if old.count(field) != new.count(field) {
                    fx.audit.push(AuditOut {
                        sku: key.sku.to_string(),
                        condition: self.conditions[key.condition as usize].clone(),
                        location: Some(self.policy.location(new.loc).id.clone()),
                        field: field.name(),
                        before: old.count(field),
                        after: new.count(field),
                    });
                }
            }
        }
        self.keys[idx as usize].stock = stock;
        self.touch(idx, ts);
        self.recount(c, idx, fx);
        Ok(())
    }

    pub(super) fn touch(&mut self, idx: u32, ts: i64) {
        let k = &mut self.keys[idx as usize];
        k.source_ts = k.source_ts.max(ts);
    }

    /// Brings `sellable` and the availability counter in line with the stock, then fills
    /// backorders from any new availability.
    pub(super) fn recount(&mut self, c: &Counters, idx: u32, fx: &mut Effects) {
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
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{World, MICROS};
    use super::StockMove;

    #[test]
    fn a_move_below_zero_changes_nothing() {
        let mut w = World::new();
        w.stock("A", "wh", 3);
        let k = w.key("A");
        let before = w.image();
        let moved = w.state.stock_transfer(&w.c, k, "wh", "east", 4, 2 * MICROS);
        assert!(moved.is_err(), "only 3 on hand at wh");
        let damaged = w
            .state
            .stock_at(&w.c, k, StockMove::Damaged, "wh", 4, 2 * MICROS);
        assert!(damaged.is_err());
        assert_eq!(w.image(), before);
    }

    #[test]
    fn a_transfer_moves_on_hand_and_audits_both_ends() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        let k = w.key("A");
        let fx = w
            .state
            .stock_transfer(&w.c, k, "wh", "east", 2, 2 * MICROS)
            .expect("transfer");
        assert_eq!((w.on_hand("A", "wh"), w.on_hand("A", "east")), (3, 2));
        let changes: Vec<_> = fx
            .audit
            .iter()
            .map(|a| (a.field, a.location.as_deref(), a.before, a.after))
            .collect();
        assert_eq!(
            changes,
            [
                ("on_hand", Some("wh"), 5, 3),
                ("on_hand", Some("east"), 0, 2)
            ]
        );
    }

    #[test]
    fn a_received_unit_is_no_longer_inbound() {
        let mut w = World::new();
        let k = w.key("A");
        for (mv, qty) in [(StockMove::Inbound, 5), (StockMove::Received, 3)] {
            w.state
                .stock_at(&w.c, k, mv, "wh", qty, MICROS)
                .expect("stock move");
        }
        let l = w.state.keys[k as usize]
            .stock
            .get(0)
            .cloned()
            .unwrap_or_default();
        assert_eq!((l.inbound, l.on_hand), (2, 3));
        assert_eq!(w.avail("A"), 3);
    }
}
