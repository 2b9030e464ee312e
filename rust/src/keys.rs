//! SKU + condition → dense key index. The table holds only the index: the SKU text
//! lives once, in the key's state, which saves a string per key at a million keys.

use hashbrown::HashTable;

use crate::state::KeyState;

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
