//! The hot path: one `AtomicI64` of physical availability per stock key, tier floors,
//! and dirty bits, in a chunked table that grows without ever moving a counter.
//!
//! Readers never lock: a chunk, once allocated, lives as long as the table, so a
//! thread reserving on key 5 is never disturbed by another interning key 5,000,000.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::*};
use std::sync::OnceLock;

pub const MAX_TIERS: usize = 16;
// 4,096 keys a chunk and 65,536 chunks: 268 million keys, while an empty table (one per
// engine; tests make thousands) costs 1 MB of chunk pointers and no slots.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 1 << 16;

/// What the raw counter path may do with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RawMode {
    /// Counted stock: conditional take against the tier floor.
    Counted = 0,
    /// Never counted (gift cards, services): always granted.
    Unlimited = 1,
    /// Must go through the order registry (bundles, preorders) or is not for sale.
    Refused = 2,
}

#[derive(Default)]
pub struct Slot {
    /// sellable on hand − reserved. May go negative only when stock is lost under reservations.
    avail: AtomicI64,
    /// Safety stock of this key (floor of tier 1).
    safety: AtomicI64,
    mode: AtomicU8,
}

struct Chunk {
    slots: Box<[Slot]>,
    dirty: Box<[AtomicU64]>,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            slots: (0..CHUNK).map(|_| Slot::default()).collect(),
            dirty: (0..CHUNK / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Outcome of a conditional take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    Granted,
    Refused,
}

pub struct Counters {
    chunks: Box<[OnceLock<Box<Chunk>>]>,
    /// Σ protect[s] for s < t, indexed by t (1-based; index 0 unused).
    cum_protect: [AtomicI64; MAX_TIERS + 1],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            cum_protect: std::array::from_fn(|_| AtomicI64::new(0)),
        }
    }
}

impl Counters {
    /// Makes room for key `idx` (called when a key is interned, under the state lock).
    pub fn ensure(&self, idx: u32) {
        self.chunks[(idx >> CHUNK_BITS) as usize].get_or_init(|| Box::new(Chunk::new()));
    }

    fn chunk(&self, idx: u32) -> Option<&Chunk> {
        self.chunks
            .get((idx >> CHUNK_BITS) as usize)?
            .get()
            .map(|c| &**c)
    }

    fn slot(&self, idx: u32) -> Option<&Slot> {
        self.chunk(idx)
            .map(|c| &c.slots[idx as usize & (CHUNK - 1)])
    }

    /// Sets the nested protection levels: `protect[0]` is tier 1's.
    pub fn set_protect(&self, protect: &[i64]) {
        let mut sum = 0i64;
        for t in 1..=MAX_TIERS {
            self.cum_protect[t].store(sum, Relaxed);
            sum = sum.saturating_add(protect.get(t - 1).copied().unwrap_or(0));
        }
    }

    pub fn cum_protect(&self, tier: u8) -> i64 {
        self.cum_protect
            .get(tier as usize)
            .map_or(i64::MAX, |p| p.load(Relaxed))
    }

    pub fn set_key_policy(&self, idx: u32, safety: i64, mode: RawMode) {
        if let Some(s) = self.slot(idx) {
            s.safety.store(safety, Relaxed);
            s.mode.store(mode as u8, Relaxed);
        }
    }

    pub fn avail(&self, idx: u32) -> i64 {
        self.slot(idx).map_or(0, |s| s.avail.load(Acquire))
    }

    pub fn safety(&self, idx: u32) -> i64 {
        self.slot(idx).map_or(0, |s| s.safety.load(Relaxed))
    }

    /// floor[t] = safety + Σ protect[s] for s < t. Tier 0 means "post-sale": floor 0.
    pub fn floor(&self, idx: u32, tier: u8) -> i64 {
        if tier == 0 {
            return 0;
        }
        self.safety(idx).saturating_add(self.cum_protect(tier))
    }

    /// Adds `delta` to availability (receipts, releases, count changes).
    pub fn add(&self, idx: u32, delta: i64) {
        if let Some(s) = self.slot(idx) {
            s.avail.fetch_add(delta, AcqRel);
            self.mark_dirty(idx);
        }
    }

    /// Takes `qty` only if `avail − qty ≥ floor`: the lock-free conditional reservation.
    pub fn take(&self, idx: u32, qty: i64, floor: i64) -> Take {
        let Some(s) = self.slot(idx) else {
            return Take::Refused;
        };
        let mut cur = s.avail.load(Acquire);
        loop {
            match cur.checked_sub(qty) {
                Some(left) if left >= floor => {}
                _ => return Take::Refused,
            }
            match s
                .avail
                .compare_exchange_weak(cur, cur - qty, AcqRel, Acquire)
            {
                Ok(_) => {
                    self.mark_dirty(idx);
                    return Take::Granted;
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// Takes as much of `qty` as is above 0; returns what was taken (post-sale commits).
    pub fn take_up_to(&self, idx: u32, qty: i64) -> i64 {
        let Some(s) = self.slot(idx) else { return 0 };
        let mut cur = s.avail.load(Acquire);
        loop {
            let n = qty.min(cur.max(0));
            if n <= 0 {
                return 0;
            }
            match s.avail.compare_exchange_weak(cur, cur - n, AcqRel, Acquire) {
                Ok(_) => {
                    self.mark_dirty(idx);
                    return n;
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// The raw tier-aware take used by `reserve_batch`.
    pub fn reserve_raw(&self, idx: u32, qty: i64, tier: u8) -> bool {
        let Some(s) = self.slot(idx) else {
            return false;
        };
        if qty < 0 || tier == 0 {
            return false;
        }
        match s.mode.load(Relaxed) {
            m if m == RawMode::Counted as u8 => {
                self.take(idx, qty, self.floor(idx, tier)) == Take::Granted
            }
            m if m == RawMode::Unlimited as u8 => true,
            _ => false,
        }
    }

    /// The raw release used by `release_batch`; only counted keys hold anything.
    pub fn release_raw(&self, idx: u32, qty: i64) -> bool {
        match self.slot(idx) {
            Some(s) if qty >= 0 && s.mode.load(Relaxed) == RawMode::Counted as u8 => {
                self.add(idx, qty);
                true
            }
            _ => false,
        }
    }

    /// `reserve_raw` over aligned slices (same length, checked by the caller).
    pub fn reserve_many(&self, idx: &[u32], qty: &[i64], tier: &[u8]) -> Vec<bool> {
        idx.iter()
            .zip(qty)
            .zip(tier)
            .map(|((&i, &q), &t)| self.reserve_raw(i, q, t))
            .collect()
    }

    pub fn release_many(&self, idx: &[u32], qty: &[i64]) -> Vec<bool> {
        idx.iter()
            .zip(qty)
            .map(|(&i, &q)| self.release_raw(i, q))
            .collect()
    }

    pub fn set_avail(&self, idx: u32, value: i64) {
        if let Some(s) = self.slot(idx) {
            s.avail.store(value, Release);
        }
    }

    pub fn mark_dirty(&self, idx: u32) {
        if let Some(c) = self.chunk(idx) {
            let i = idx as usize & (CHUNK - 1);
            let word = &c.dirty[i / 64];
            let bit = 1u64 << (i % 64);
            // A load first: hot keys are already dirty, and a plain load does not bounce the line.
            if word.load(Relaxed) & bit == 0 {
                word.fetch_or(bit, Relaxed);
            }
        }
    }

    /// Takes and clears every dirty bit below `len`, in index order.
    pub fn drain_dirty(&self, len: u32, out: &mut Vec<u32>) {
        let chunks = (len as usize).div_ceil(CHUNK);
        for (ci, cell) in self.chunks.iter().take(chunks).enumerate() {
            let Some(c) = cell.get() else { continue };
            for (wi, word) in c.dirty.iter().enumerate() {
                if word.load(Relaxed) == 0 {
                    continue;
                }
                let mut bits = word.swap(0, AcqRel);
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let idx = (ci * CHUNK + wi * 64 + b) as u32;
                    if idx < len {
                        out.push(idx);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_respects_the_tier_floor() {
        let c = Counters::default();
        c.ensure(0);
        c.set_protect(&[10, 5]);
        c.set_key_policy(0, 3, RawMode::Counted);
        c.add(0, 20);
        // tier 2 floor = 3 + 10 = 13: may take 7, not 8
        assert!(!c.reserve_raw(0, 8, 2));
        assert!(c.reserve_raw(0, 7, 2));
        // tier 1 floor = 3: may take 10 more
        assert!(c.reserve_raw(0, 10, 1));
        assert_eq!(c.avail(0), 3);
    }

    #[test]
    fn drain_returns_each_dirty_key_once() {
        let c = Counters::default();
        for i in [0u32, 63, 64, 70_000] {
            c.ensure(i);
            c.mark_dirty(i);
            c.mark_dirty(i);
        }
        let mut out = vec![];
        c.drain_dirty(70_001, &mut out);
        assert_eq!(out, vec![0, 63, 64, 70_000]);
        out.clear();
        c.drain_dirty(70_001, &mut out);
        assert!(out.is_empty());
    }
}
