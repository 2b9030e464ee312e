//! The key table: SKU + condition → dense key index, condition names, bundle links,
//! and what the policy says about each key.

use hashbrown::HashTable;

use super::{raw_mode, KeyInfo, KeyState, State};
use crate::counters::Counters;
use crate::error::{CoreError, CoreResult};
use crate::policy::Kind;

/// Bundle links of a key, kept aside: most keys have none, and two empty vectors on
/// every key would cost more memory than the rest of the key's state.
#[derive(Clone, Debug, Default)]
pub struct Links {
    /// (component key, units per bundle) of a bundle.
    pub components: Vec<(u32, i64)>,
    /// Bundles this key is a component of.
    pub bundles_of: Vec<u32>,
}

/// SKU + condition → key index. The table holds only the index: the SKU text lives
/// once, in the key's state, which saves a string per key at a million keys.
#[derive(Default)]
pub struct KeyIndex {
    hasher: ahash::RandomState,
    by_condition: Vec<HashTable<u32>>,
}

impl KeyIndex {
    pub fn find(&self, keys: &[KeyState], condition: u16, sku: &str) -> Option<u32> {
        let table = self.by_condition.get(condition as usize)?;
        let hash = self.hasher.hash_one(sku);
        table
            .find(hash, |&i| &*keys[i as usize].sku == sku)
            .copied()
    }

    /// Adds `idx`, whose state must already be in `keys`.
    pub fn insert(&mut self, keys: &[KeyState], idx: u32) {
        let key = &keys[idx as usize];
        let cond = key.condition as usize;
        if self.by_condition.len() <= cond {
            self.by_condition.resize_with(cond + 1, HashTable::new);
        }
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&*key.sku);
        self.by_condition[cond]
            .insert_unique(hash, idx, |&i| hasher.hash_one(&*keys[i as usize].sku));
    }

    pub fn rebuild(&mut self, keys: &[KeyState]) {
        self.by_condition.clear();
        for idx in 0..keys.len() as u32 {
            self.insert(keys, idx);
        }
    }
}

impl State {
    pub(super) fn condition(&mut self, name: &str) -> u16 {
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

    /// Whether this state applies `sku`'s lines (every SKU unless partitioned).
    pub fn owns(&self, sku: &str) -> bool {
        let part = self.partition;
        part.is_whole() || self.policy.families.partition(sku, part.count) == part.index
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
    pub(super) fn derive_info(&mut self, c: &Counters, idx: u32) {
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

    pub fn components(&self, idx: u32) -> &[(u32, i64)] {
        self.links.get(&idx).map_or(&[], |l| &l.components)
    }

    pub fn bundles_of(&self, idx: u32) -> &[u32] {
        self.links.get(&idx).map_or(&[], |l| &l.bundles_of)
    }

    pub(super) fn link(&mut self, bundle: u32, component: u32, qty: i64) {
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

    pub(super) fn mark_bundles(&self, c: &Counters, idx: u32) {
        for &b in self.bundles_of(idx) {
            c.mark_dirty(b);
        }
    }

    pub fn preorder_limit(&self, idx: u32) -> i64 {
        self.preorder_rules.get(&idx).map_or(0, |r| r.1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::World;

    #[test]
    fn a_key_is_interned_once_per_sku_and_condition() {
        let mut w = World::new();
        let a = w.key("A");
        assert_eq!(w.key("A"), a);
        let used = w.state.intern(&w.c, "A", "used").expect("used A");
        assert_ne!(used, a);
        assert_eq!(w.state.lookup("A", "used"), Some(used));
        assert!(w.state.intern(&w.c, "", "new").is_err());
        assert!(w.state.intern(&w.c, "A", "").is_err());
    }

    #[test]
    fn a_bundle_is_linked_to_its_components_in_its_condition() {
        let mut w = World::new();
        let kit = w.state.intern(&w.c, "KIT", "used").expect("kit");
        let a = w
            .state
            .lookup("A", "used")
            .expect("component interned with it");
        let b = w
            .state
            .lookup("B", "used")
            .expect("component interned with it");
        assert_eq!(w.state.components(kit), [(a, 1), (b, 2)]);
        assert_eq!(w.state.bundles_of(b), [kit]);
    }
}
