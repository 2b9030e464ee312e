//! Which partition applies a SKU: `fnv1a_64(family key) % n`. Every allocator of every
//! partition reads the whole log and applies only the lines of its own SKUs, so the
//! function must never change: it decides where saved state lives.
//!
//! A SKU's family key is its explicit `family` from the policy, else the smallest SKU id
//! of its bundle-graph component (a bundle and its components are applied together),
//! else its own id.

use crate::hash::Map;
use crate::policy::{Part, Refusal, SkuRule};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`: stable across builds, platforms and releases.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The partition of a family key among `n` (n ≥ 1).
pub fn partition_of(key: &str, n: u32) -> u32 {
    // The remainder is below n, so it fits in u32.
    (fnv1a_64(key.as_bytes()) % u64::from(n.max(1))) as u32
}

/// This engine's share of the SKUs: partition `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// The whole SKU space: one partition, the default.
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Partition, String> {
        if count == 0 {
            return Err("partitions must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "partition {index} does not exist among {count} (0 to {})",
                count - 1
            ));
        }
        Ok(Partition { index, count })
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether this partition reports what belongs to no SKU (whole-event bad input).
    pub fn is_first(self) -> bool {
        self.index == 0
    }
}

/// Family keys of the SKUs the policy groups (explicitly or by bundles); any other SKU
/// is its own family.
#[derive(Clone, Debug, Default)]
pub struct Families {
    key_of: Map<String, String>,
}

impl Families {
    /// Groups the policy's SKUs by bundle-graph component (`skus` with their direct
    /// components); refuses a component whose SKUs name different explicit families,
    /// since those would be split across partitions.
    pub fn build(skus: &[SkuRule], index: &Map<String, usize>) -> Result<Families, Refusal> {
        let mut parent: Vec<usize> = (0..skus.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for (i, s) in skus.iter().enumerate() {
            for (c, _) in &s.components {
                if let Some(&j) = index.get(c) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        // Per component root: (the first SKU with an explicit family, the smallest id).
        let mut explicit: Map<usize, usize> = Map::default();
        let mut smallest: Map<usize, usize> = Map::default();
        for (i, s) in skus.iter().enumerate() {
            let r = root(&mut parent, i);
            let least = smallest.entry(r).or_insert(i);
            if s.id < skus[*least].id {
                *least = i;
            }
            let Some(family) = &s.family else { continue };
            match explicit.get(&r) {
                None => {
                    explicit.insert(r, i);
                }
                Some(&first) if skus[first].family.as_ref() != Some(family) => {
                    return Err(Refusal::at(
                        &[Part::Key("skus"), Part::Index(i), Part::Key("family")],
                        format!(
                            "family {family:?} splits a bundle family: '{}' is bundled with \
                             '{}', whose family is {:?}; a bundle and its components must \
                             share one family (or leave it out)",
                            s.id,
                            skus[first].id,
                            skus[first].family.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut key_of = Map::default();
        for (i, s) in skus.iter().enumerate() {
            let r = root(&mut parent, i);
            let key = match explicit.get(&r) {
                Some(&e) => skus[e].family.clone().unwrap_or_default(),
                None => skus[smallest[&r]].id.clone(),
            };
            if key != s.id {
                key_of.insert(s.id.clone(), key);
            }
        }
        Ok(Families { key_of })
    }

    /// The family key of `sku`: what `partition_of` hashes.
    pub fn key<'a>(&'a self, sku: &'a str) -> &'a str {
        self.key_of.get(sku).map_or(sku, String::as_str)
    }

    pub fn partition(&self, sku: &str, n: u32) -> u32 {
        partition_of(self.key(sku), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn one_partition_takes_everything() {
        assert_eq!(partition_of("anything", 1), 0);
    }

    #[test]
    fn a_partition_outside_the_count_is_refused() {
        assert!(Partition::new(2, 2).is_err());
        assert!(Partition::new(0, 0).is_err());
        assert_eq!(Partition::new(1, 2), Ok(Partition { index: 1, count: 2 }));
    }
}
