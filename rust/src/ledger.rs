//! Stock per key and location: on hand, quarantined, damaged, inbound, and what is
//! already routed there. Everything here runs under the state lock.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::error::{CoreError, CoreResult};
use crate::policy::Policy;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocStock {
    pub loc: u16,
    pub on_hand: i64,
    pub quarantined: i64,
    pub damaged: i64,
    pub inbound: i64,
    /// Units of committed order lines routed here and not yet shipped.
    pub routed: i64,
}

/// The counts a stock event can touch, named in audit records as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockField {
    OnHand,
    Quarantined,
    Damaged,
    Inbound,
}

impl StockField {
    pub const ALL: [StockField; 4] = [
        StockField::OnHand,
        StockField::Quarantined,
        StockField::Damaged,
        StockField::Inbound,
    ];

    /// The field's name in an audit record.
    pub fn name(self) -> &'static str {
        match self {
            StockField::OnHand => "on_hand",
            StockField::Quarantined => "quarantined",
            StockField::Damaged => "damaged",
            StockField::Inbound => "inbound",
        }
    }
}

impl LocStock {
    pub fn count(&self, field: StockField) -> i64 {
        match field {
            StockField::OnHand => self.on_hand,
            StockField::Quarantined => self.quarantined,
            StockField::Damaged => self.damaged,
            StockField::Inbound => self.inbound,
        }
    }
}

/// The per-location stock of one key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stock {
    /// Most keys sit at one location: it is stored inline, with no allocation.
    pub locs: SmallVec<[LocStock; 1]>,
}

impl Stock {
    pub fn get(&self, loc: u16) -> Option<&LocStock> {
        self.locs.iter().find(|l| l.loc == loc)
    }

    pub fn entry(&mut self, loc: u16) -> &mut LocStock {
        let pos = match self.locs.iter().position(|l| l.loc == loc) {
            Some(p) => p,
            None => {
                self.locs.push(LocStock {
                    loc,
                    ..Default::default()
                });
                self.locs.len() - 1
            }
        };
        &mut self.locs[pos]
    }

    /// Σ over online locations of floor(on hand × count_pct / 100); None if it overflows.
    pub fn sellable(&self, policy: &Policy) -> Option<i64> {
        let mut sum: i128 = 0;
        for l in &self.locs {
            if let Some(p) = policy.tables.locations.get(l.loc as usize) {
                if p.online {
                    sum += counted(l.on_hand, p.count_pct) as i128;
                }
            }
        }
        i64::try_from(sum).ok()
    }

    pub fn total(&self, f: impl Fn(&LocStock) -> i64) -> i64 {
        self.locs
            .iter()
            .map(f)
            .fold(0i64, |a, b| a.saturating_add(b))
    }
}

/// The share of a location's on hand that counts (dropship trust).
pub fn counted(on_hand: i64, count_pct: i64) -> i64 {
    ((on_hand.max(0) as i128 * count_pct as i128) / 100) as i64
}

/// A checked change of one field: refuses to go below zero or to overflow.
pub fn shift(field: &str, value: &mut i64, delta: i64, what: &str) -> CoreResult<()> {
    let new = value
        .checked_add(delta)
        .ok_or_else(|| CoreError::bad(field, "quantity overflows 64 bits"))?;
    if new < 0 {
        return Err(CoreError::bad(
            field,
            format!("{what} has only {value}, cannot remove {}", -delta),
        ));
    }
    *value = new;
    Ok(())
}

/// Picks where a committed line ships from: the online location of lowest priority
/// that covers it alone; split in priority order only when none can.
pub fn route(stock: &Stock, policy: &Policy, qty: i64) -> Vec<(u16, i64)> {
    let free = |loc: u16| {
        stock.get(loc).map_or(0, |l| {
            (counted(l.on_hand, policy.location(loc).count_pct) - l.routed).max(0)
        })
    };
    if qty <= 0 {
        return vec![];
    }
    if let Some(&loc) = policy.routing_order.iter().find(|&&loc| free(loc) >= qty) {
        return vec![(loc, qty)];
    }
    let mut left = qty;
    let mut out = vec![];
    for &loc in &policy.routing_order {
        let n = free(loc).min(left);
        if n > 0 {
            out.push((loc, n));
            left -= n;
        }
    }
    if left > 0 {
        // Units reserved through the raw counters have no route; the first location takes them.
        match (out.first_mut(), policy.routing_order.first()) {
            (Some(first), _) => first.1 += left,
            (None, Some(&loc)) => out.push((loc, left)),
            (None, None) => {}
        }
    }
    out
}
