//! A small world for the state machine's unit tests: two warehouses, two channels of
//! different tiers, two standard SKUs, a bundle of them and a preorder.

use super::{LineIn, State};
use crate::counters::Counters;
use crate::effects::Effects;
use crate::error::CoreResult;
use crate::policy::Policy;

pub const MICROS: i64 = 1_000_000;
/// The preorder SKU `PRE` sells from stock from this time on.
pub const PRE_FROM: i64 = 1_000 * MICROS;

/// The policy every test starts from, with these online warehouses in priority order.
pub fn policy(locations: &[&str]) -> Policy {
    let locations: Vec<String> = locations
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"id": "{id}", "kind": "warehouse", "online": true, "priority": {i},
                    "count_pct": 100, "release_gate": false}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{
        "safety": 0, "non_inventory_qty": 999, "protect": [10, 0],
        "locations": [{}],
        "channels": [
            {{"id": "shop", "tier": 1, "conditions": ["new"]}},
            {{"id": "market", "tier": 2, "conditions": ["new"]}}
        ],
        "profiles": [[
            {{"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0}},
            {{"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0}}
        ]],
        "skus": [
            {{"id": "A", "profile": 0, "safety": 0, "kind": "standard", "sellable_from": null, "preorder_limit": 0, "components": []}},
            {{"id": "B", "profile": 0, "safety": 0, "kind": "standard", "sellable_from": null, "preorder_limit": 0, "components": []}},
            {{"id": "KIT", "profile": 0, "safety": 0, "kind": "bundle", "sellable_from": null, "preorder_limit": 0, "components": [["A", 1], ["B", 2]]}},
            {{"id": "PRE", "profile": 0, "safety": 0, "kind": "preorder", "sellable_from": {PRE_FROM}, "preorder_limit": 5, "components": []}}
        ]}}"#,
        locations.join(", ")
    );
    Policy::from_json(json.as_bytes()).expect("test policy")
}

pub const LOCATIONS: [&str; 2] = ["wh", "east"];

pub struct World {
    pub state: State,
    pub c: Counters,
}

impl World {
    pub fn new() -> World {
        World::partition(crate::partition::Partition::WHOLE)
    }

    /// The world as one partition of several sees it (`A`, `B`, `KIT` and `PRE` are in
    /// partition 0 of 2; `D` is in partition 1).
    pub fn partition(partition: crate::partition::Partition) -> World {
        let c = Counters::default();
        let mut state = State::new(policy(&LOCATIONS), &c, partition);
        state.now = MICROS;
        World { state, c }
    }

    pub fn key(&mut self, sku: &str) -> u32 {
        self.state.intern(&self.c, sku, "new").expect("key")
    }

    pub fn stock(&mut self, sku: &str, loc: &str, on_hand: i64) {
        let k = self.key(sku);
        self.state
            .stock_at(&self.c, k, super::StockMove::Set, loc, on_hand, MICROS)
            .expect("stock.set");
    }

    pub fn place(&mut self, order_id: &str, lines: &[LineIn]) -> CoreResult<Effects> {
        self.state
            .order_placed(&self.c, order_id, "shop", lines, MICROS)
    }

    /// A clock tick at `ts`, as `Core::tick` runs it.
    pub fn tick(&mut self, ts: i64) {
        let mut fx = self.state.expire(&self.c, ts);
        self.state.advance(&self.c, ts, &mut fx);
        self.state.adaptive_tick(&self.c, ts);
    }

    pub fn ship(&mut self, order_id: &str, line_id: &str, qty: i64, loc: &str) {
        let lines = [(line_id.to_string(), qty, loc.to_string())];
        self.state
            .order_shipped(&self.c, order_id, &lines, MICROS)
            .expect("order.shipped");
    }

    pub fn on_hand(&self, sku: &str, loc: &str) -> i64 {
        let k = self.state.lookup(sku, "new").expect("known key");
        let loc = self.state.policy.location_index[loc];
        self.state.keys[k as usize]
            .stock
            .get(loc)
            .map_or(0, |l| l.on_hand)
    }

    pub fn avail(&self, sku: &str) -> i64 {
        self.c
            .avail(self.state.lookup(sku, "new").expect("known key"))
    }

    /// Everything a refused event must leave as it was: keys, counters, orders, holds,
    /// backorders and preorders (not the remembered replies: a refusal is remembered).
    pub fn image(&self) -> String {
        let avail: Vec<i64> = (0..self.state.keys.len() as u32)
            .map(|k| self.c.avail(k))
            .collect();
        let r = &self.state.registry;
        format!(
            "{:?}\n{avail:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            self.state.keys, r.orders, r.holds, r.closed_orders, r.backorders, r.preorders
        )
    }
}

/// An order line of condition `new`.
pub fn line<'a>(id: &'a str, sku: &'a str, qty: i64) -> LineIn<'a> {
    (id, sku, "new", qty)
}
