//! Policy adoption: deriving what the policy decides for every key, swapping in a new
//! policy, and loading a snapshot. Locations and channels are stored by index; both a
//! reload and a restore carry them over by id with one remap.

use super::{Adaptive, AdaptiveImage, KeyInfo, LogImage, Persisted, State, MICROS};
use crate::counters::Counters;
use crate::effects::Effects;
use crate::error::{CoreError, CoreResult};
use crate::hash::Map;
use crate::parking::Parking;
use crate::policy::{Kind, Part, Policy, Refusal};

/// Index of an id the new policy drops (allowed only while nothing uses it).
const DROPPED: u16 = u16::MAX;

/// The policy tables whose entries the state refers to by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Locations,
    Channels,
}

impl Table {
    /// The table's key in the policy file, for a refusal's path.
    fn key(self) -> &'static str {
        match self {
            Table::Locations => "locations",
            Table::Channels => "channels",
        }
    }

    /// One entry of the table, in words.
    fn noun(self) -> &'static str {
        match self {
            Table::Locations => "location",
            Table::Channels => "channel",
        }
    }
}

/// Old index → new index of every location and channel; [`DROPPED`] for an id the
/// new policy no longer lists.
struct Remaps {
    locations: Vec<u16>,
    channels: Vec<u16>,
}

impl Remaps {
    pub(super) fn location(&self, old: u16) -> u16 {
        self.locations.get(old as usize).copied().unwrap_or(DROPPED)
    }

    pub(super) fn channel(&self, old: u16) -> u16 {
        self.channels.get(old as usize).copied().unwrap_or(DROPPED)
    }
}

impl State {
    pub(super) fn adopt_policy(&mut self, c: &Counters) {
        c.set_protect(&self.policy.tables.protect);
        let channels = self.policy.channel_count();
        self.adaptive.order_lag.resize(channels, Default::default());
        self.adaptive.push_lag.resize(channels, None);
        self.adopt_lags();
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
            .filter(|s| self.owns(&s.id))
            .map(|s| s.id.clone())
            .collect();
        for sku in listed {
            // Listed SKUs exist from the start, so a gift card is shown before any event
            // names it (in the partition that owns it).
            let _ = self.intern(c, &sku, "new");
        }
        self.last_shown = vec![-1; self.keys.len() * self.policy.channel_count()];
        for idx in 0..self.keys.len() as u32 {
            c.mark_dirty(idx);
        }
    }

    /// Swaps in a new policy: location and channel references are carried over by id.
    pub fn set_policy(&mut self, c: &Counters, policy: Policy) -> CoreResult<Effects> {
        let remaps = self.policy_remaps(&policy)?;
        self.renumber(&remaps);
        self.policy = policy;
        self.adopt_policy(c);
        let mut fx = Effects::default();
        for idx in 0..self.keys.len() as u32 {
            self.recount(c, idx, &mut fx);
        }
        let now = self.now;
        self.recompute_all(c, now);
        Ok(fx)
    }

    /// Loads a decoded snapshot into this (fresh) state, then re-derives the policy parts.
    pub fn load(
        &mut self,
        c: &Counters,
        p: Persisted,
        log: LogImage,
        adaptive: AdaptiveImage,
    ) -> CoreResult<()> {
        let consistent = p.keys.len() == p.avail.len()
            && p.conditions.first().map(String::as_str) == Some("new")
            && p.keys
                .iter()
                .all(|k| (k.condition as usize) < p.conditions.len());
        if !consistent {
            return Err(CoreError::Snapshot("inconsistent snapshot".into()));
        }
        if adaptive
            .demand
            .iter()
            .any(|(k, _)| *k as usize >= p.keys.len())
        {
            return Err(CoreError::Snapshot(
                "inconsistent snapshot: demand of an unknown key".into(),
            ));
        }
        self.keys = p.keys;
        self.registry = p.registry;
        self.adaptive = Adaptive::from_image(adaptive);
        // Same channels in the same order: the automatic numbers stand as computed.
        let same_channels = p.channel_ids
            == self
                .policy
                .tables
                .channels
                .iter()
                .map(|ch| ch.id.clone())
                .collect::<Vec<_>>();
        let snapshot = |e: Refusal| CoreError::Snapshot(e.to_string());
        let remaps = Remaps {
            locations: self
                .remap(
                    &p.location_ids,
                    &self.policy.location_index,
                    Table::Locations,
                )
                .map_err(snapshot)?,
            channels: self
                .remap(&p.channel_ids, &self.policy.channel_index, Table::Channels)
                .map_err(snapshot)?,
        };
        self.renumber(&remaps);
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
        self.newest = p.now;
        self.adopt_policy(c);
        self.registry.events.restamp(&log.event_stamps, self.now);
        self.parking = Parking::from_image(log.parked);
        let mut fx = Effects::default();
        for idx in 0..self.keys.len() as u32 {
            self.recount(c, idx, &mut fx);
        }
        if !same_channels {
            self.recompute_all(c, self.now);
        }
        Ok(())
    }

    /// Rewrites every stored location and channel index through `remaps`: stock at a
    /// dropped location, routes to it and orders of a dropped channel go.
    fn renumber(&mut self, remaps: &Remaps) {
        for k in &mut self.keys {
            for l in &mut k.stock.locs {
                l.loc = remaps.location(l.loc);
            }
            k.stock.locs.retain(|l| l.loc != DROPPED);
        }
        for o in self.registry.orders.values_mut() {
            o.channel = remaps.channel(o.channel);
            for line in &mut o.lines {
                for r in &mut line.routes {
                    r.1 = remaps.location(r.1);
                }
                line.routes.retain(|r| r.1 != DROPPED);
            }
        }
        self.registry.orders.retain(|_, o| o.channel != DROPPED);
        self.renumber_adaptive(&remaps.channels, DROPPED);
    }

    /// What `set_policy` checks against the live state, without changing anything: a
    /// reload is refused here before it is appended to the log.
    pub fn check_policy(&self, policy: &Policy) -> Result<(), Refusal> {
        self.policy_remaps(policy).map(|_| ())
    }

    /// Old index → new index for a new policy; refuses dropping an id still in use.
    fn policy_remaps(&self, policy: &Policy) -> Result<Remaps, Refusal> {
        self.refuse_partition_moves(policy)?;
        let ids = |table: Table| -> Vec<String> {
            let t = &self.policy.tables;
            match table {
                Table::Locations => t.locations.iter().map(|l| l.id.clone()).collect(),
                Table::Channels => t.channels.iter().map(|c| c.id.clone()).collect(),
            }
        };
        Ok(Remaps {
            locations: self.remap(
                &ids(Table::Locations),
                &policy.location_index,
                Table::Locations,
            )?,
            channels: self.remap(
                &ids(Table::Channels),
                &policy.channel_index,
                Table::Channels,
            )?,
        })
    }

    /// Refuses a policy under which a SKU either policy names would belong to another
    /// partition: its state would be left behind. Judged from the two policies alone,
    /// so every partition applying the reload decides the same way.
    fn refuse_partition_moves(&self, policy: &Policy) -> Result<(), Refusal> {
        let n = self.partition.count;
        if n == 1 {
            return Ok(());
        }
        let (old, new) = (&self.policy, policy);
        let named = old.tables.skus.iter().chain(&new.tables.skus);
        for rule in named {
            let sku = rule.id.as_str();
            let (was, will) = (
                old.families.partition(sku, n),
                new.families.partition(sku, n),
            );
            if was != will {
                let mut path = vec![Part::Key("skus")];
                if let Some(&i) = new.sku_rules.get(sku) {
                    path.push(Part::Index(i));
                    if new.tables.skus[i].family.is_some() {
                        path.push(Part::Key("family"));
                    }
                }
                return Err(Refusal::at(
                    &path,
                    format!(
                        "SKU {sku:?} would move from partition {was} to {will} of {n} \
                         (its family key changes from {:?} to {:?}); a running partition \
                         cannot hand its state over: resize offline (docs/scaling.md)",
                        old.families.key(sku),
                        new.families.key(sku)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether entry `i` of `table` holds anything: stock at a location, an order on a
    /// channel.
    fn in_use(&self, table: Table, i: u16) -> bool {
        match table {
            Table::Locations => self.keys.iter().any(|k| {
                k.stock.get(i).is_some_and(|l| {
                    l.on_hand != 0 || l.quarantined != 0 || l.damaged != 0 || l.inbound != 0
                })
            }),
            Table::Channels => self.registry.orders.values().any(|o| o.channel == i),
        }
    }

    /// Old index → new index by id; refuses a policy that drops an id still in use.
    fn remap(
        &self,
        old: &[String],
        new: &Map<String, u16>,
        table: Table,
    ) -> Result<Vec<u16>, Refusal> {
        old.iter()
            .enumerate()
            .map(|(i, id)| match new.get(id) {
                Some(&n) => Ok(n),
                None if !self.in_use(table, i as u16) => Ok(DROPPED),
                None => Err(Refusal::at(
                    &[Part::Key(table.key())],
                    format!(
                        "{} {id:?} is still in use and missing from the new policy",
                        table.noun()
                    ),
                )),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, policy, World, LOCATIONS, MICROS};
    use super::super::StockMove;
    use crate::core::Core;
    use crate::partition::Partition;

    #[test]
    fn a_policy_dropping_a_location_with_stock_is_refused_and_changes_nothing() {
        let mut w = World::new();
        w.stock("A", "east", 4);
        w.place("o1", &[line("1", "A", 1)]).expect("o1");
        let before = w.image();
        let without_east = policy(&["wh"]);
        let refusal = w
            .state
            .check_policy(&without_east)
            .expect_err("east holds stock");
        assert!(refusal.message.contains("\"east\""), "{}", refusal.message);
        assert!(w.state.set_policy(&w.c, without_east).is_err());
        assert_eq!(w.image(), before);
        assert_eq!(w.state.policy.tables.locations.len(), 2);
    }

    #[test]
    fn a_reload_carries_stock_and_routes_over_by_location_id() {
        let mut w = World::new();
        w.stock("A", "east", 4);
        w.place("o1", &[line("1", "A", 1)]).expect("o1");
        w.state
            .set_policy(&w.c, policy(&["east", "spare", "wh"]))
            .expect("reordered locations");
        assert_eq!((w.on_hand("A", "east"), w.on_hand("A", "wh")), (4, 0));
        let east = w.state.policy.location_index["east"];
        assert_eq!(w.state.registry.orders["o1"].lines[0].routes[0].1, east);
        // An empty location may go.
        w.state
            .set_policy(&w.c, policy(&["east"]))
            .expect("wh and spare are empty");
        assert_eq!(w.on_hand("A", "east"), 4);
    }

    #[test]
    fn a_snapshot_restores_by_location_id() {
        let core = Core::new(policy(&LOCATIONS));
        core.event("e1", 1, MICROS, |s, c, ts| {
            let k = s.intern(c, "A", "new")?;
            s.stock_at(c, k, StockMove::Set, "east", 7, ts)
        })
        .expect("stock.set");
        let data = core.snapshot().expect("snapshot");
        let back =
            Core::restore(policy(&["east", "wh"]), Partition::WHOLE, &data).expect("restore");
        let k = back.intern("A", "new").expect("known");
        let a = back.explain(k).expect("explained");
        assert_eq!(a.on_hand, 7);
        assert!(a
            .locations
            .iter()
            .any(|l| l.location == "east" && l.on_hand == 7));
        assert!(
            Core::restore(policy(&["wh"]), Partition::WHOLE, &data).is_err(),
            "east holds stock"
        );
    }
}
