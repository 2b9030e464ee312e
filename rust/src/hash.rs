//! Hash maps keyed by producer-chosen strings: aHash is fast and, randomly seeded,
//! resists crafted collisions (order ids come from outside).

use std::borrow::Borrow;
use std::hash::Hash;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
pub type Set<K> = std::collections::HashSet<K, ahash::RandomState>;

/// Tables a [`ShardedMap`] is split in.
const SHARDS: usize = 64;

/// A map that never stops the engine to grow: its entries are spread over
/// [`SHARDS`] tables by key hash, and each table grows on its own.
///
/// A single table doubles by rehashing every entry at once; at a million open
/// orders that stalls the events queued behind it (bench/RESULTS.md has the
/// figures). Here one growth step moves a 64th of the entries, and the steps fall
/// on different events.
///
/// Serialized as one map in key order, so snapshots are reproducible and read
/// the same as a plain map's.
#[derive(Clone, Debug)]
pub struct ShardedMap<K, V> {
    pick: ahash::RandomState,
    shards: Vec<Map<K, V>>,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            pick: ahash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Map::default()).collect(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The top bits: the tables index their buckets with the low bits of their own hash.
        (self.pick.hash_one(key) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        self.shards[s].get_mut(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].contains_key(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let s = self.shard(&key);
        self.shards[s].insert(key, value)
    }

    pub fn entry(&mut self, key: K) -> std::collections::hash_map::Entry<'_, K, V> {
        let s = self.shard(&key);
        self.shards[s].entry(key)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        self.shards[s].remove(key)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in &mut self.shards {
            shard.retain(&mut keep);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flatten()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(Map::values)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.shards.iter_mut().flat_map(Map::values_mut)
    }
}

impl<K, V, Q> std::ops::Index<&Q> for ShardedMap<K, V>
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    /// Panics where the key is missing, like a map's index: for keys known to be there.
    fn index(&self, key: &Q) -> &V {
        &self.shards[self.shard(key)][key]
    }
}

impl<K: Serialize + Ord + Hash + Eq, V: Serialize> Serialize for ShardedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ordered: std::collections::BTreeMap<&K, &V> = self.iter().collect();
        ordered.serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for ShardedMap<K, V>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ShardedVisitor(std::marker::PhantomData))
    }
}

/// Reads a map's entries straight into the shards.
struct ShardedVisitor<K, V>(std::marker::PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for ShardedVisitor<K, V>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
{
    type Value = ShardedMap<K, V>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let mut map = ShardedMap::default();
        while let Some((k, v)) = entries.next_entry()? {
            map.insert(k, v);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::ShardedMap;

    #[test]
    fn behaves_as_one_map() {
        let mut m: ShardedMap<String, usize> = ShardedMap::default();
        for i in 0..10_000 {
            assert_eq!(m.insert(format!("o-{i}"), i), None);
        }
        assert_eq!(m.insert("o-7".into(), 70), Some(7));
        assert_eq!(m.iter().count(), 10_000);
        assert_eq!(m.get("o-7"), Some(&70));
        assert_eq!(m["o-9999"], 9999);
        assert!(m.contains_key("o-0") && !m.contains_key("o-10000"));
        assert_eq!(m.remove("o-0"), Some(0));
        m.retain(|_, v| *v % 2 == 1); // o-7 now holds 70: gone too
        assert_eq!(m.iter().count(), 4_999);
        assert!(m.values().all(|v| v % 2 == 1));
        for v in m.values_mut() {
            *v += 1;
        }
        assert_eq!(m.get("o-1"), Some(&2));
    }

    #[test]
    fn serializes_in_key_order_and_reads_back() {
        let mut a: ShardedMap<String, u32> = ShardedMap::default();
        let mut b: ShardedMap<String, u32> = ShardedMap::default();
        for i in 0..1000u32 {
            a.insert(format!("k{i}"), i);
            b.insert(format!("k{}", 999 - i), 999 - i);
        }
        let (ja, jb) = (
            serde_json::to_string(&a).unwrap_or_default(),
            serde_json::to_string(&b).unwrap_or_default(),
        );
        assert_eq!(ja, jb);
        let back: ShardedMap<String, u32> = serde_json::from_str(&ja).unwrap_or_default();
        assert_eq!(back.iter().count(), 1000);
        assert_eq!(back.get("k500"), Some(&500));
    }
}
