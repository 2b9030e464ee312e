//! Hash maps keyed by producer-chosen strings: aHash is fast and, randomly seeded,
//! resists crafted collisions (order ids come from outside).

pub type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
pub type Set<K> = std::collections::HashSet<K, ahash::RandomState>;
