//! The reservation registry: orders and holds with their lines, request replies kept
//! for idempotency, and a bounded window of applied event ids.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::{BTreeSet, VecDeque};

use crate::dedupe::{EventWindow, Seen};
use crate::hash::{Map, Set, ShardedMap};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Line {
    /// Inline up to 24 bytes: line ids are short, and a hold should not cost an allocation each.
    pub line_id: CompactString,
    pub key: u32,
    pub qty: i64,
    /// Open reserved units (bundle units for a bundle key), not yet shipped.
    pub reserved: i64,
    pub backordered: i64,
    /// Units sold against a preorder's limit before its `sellable_from`.
    pub preordered: i64,
    pub shipped: i64,
    pub returned: i64,
    /// Where the reserved units ship from, per component key: (key, location, units).
    pub routes: Vec<(u32, u16, i64)>,
    pub closed: bool,
}

impl Line {
    pub fn is_open(&self) -> bool {
        !self.closed && (self.reserved > 0 || self.backordered > 0 || self.preordered > 0)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub channel: u16,
    /// Some(expires_at µs) while the order is a checkout hold; None once committed.
    pub hold_expires: Option<i64>,
    /// Most orders have one line: it is stored inline.
    pub lines: SmallVec<[Line; 1]>,
}

impl Order {
    pub fn line(&self, line_id: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.line_id == line_id)
    }
}

/// Why a reservation line was refused, as the contract names it.
/// `timeout`: a cross-partition request aborted because a partition did not vote in time.
pub const REASONS: [&str; 4] = ["insufficient", "unknown_sku", "paused", "timeout"];

/// The answer to a reservation request, kept small: a quarter million of them are
/// remembered by request id, and the reply is rebuilt from the request's own lines.
/// A request is granted whole, with an expiry, or refused with the lines that failed,
/// so one of the two is stored (16 bytes, where the three fields took 48).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DecisionImage", into = "DecisionImage")]
pub enum Decision {
    /// Every line is held until this time (µs).
    Held(i64),
    /// (line index, index into [`REASONS`]) of the lines that were refused.
    Refused(Box<[(u32, u8)]>),
}

/// A decision as snapshots store it: the reply's own fields.
#[derive(Serialize, Deserialize)]
pub struct DecisionImage {
    ok: bool,
    expires_at: Option<i64>,
    refused: Vec<(u32, u8)>,
}

impl From<DecisionImage> for Decision {
    fn from(d: DecisionImage) -> Self {
        match (d.ok, d.expires_at) {
            (true, Some(at)) => Decision::Held(at),
            _ => Decision::Refused(d.refused.into()),
        }
    }
}

impl From<Decision> for DecisionImage {
    fn from(d: Decision) -> Self {
        DecisionImage {
            ok: d.ok(),
            expires_at: d.expires_at(),
            refused: match d {
                Decision::Held(_) => Vec::new(),
                Decision::Refused(lines) => lines.into_vec(),
            },
        }
    }
}

impl Decision {
    pub fn ok(&self) -> bool {
        matches!(self, Decision::Held(_))
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Decision::Held(at) => Some(*at),
            Decision::Refused(_) => None,
        }
    }

    pub fn reason(&self, line: usize) -> Option<&'static str> {
        let Decision::Refused(refused) = self else {
            return None;
        };
        refused
            .iter()
            .find(|r| r.0 as usize == line)
            .and_then(|r| REASONS.get(r.1 as usize).copied())
    }
}

/// What a closed order's line shipped, kept so a later return still finds its line
/// (its condition, and how much may come back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedLine {
    pub line_id: CompactString,
    pub key: u32,
    pub shipped: i64,
    pub returned: i64,
}

/// A backordered line waiting for stock, oldest first per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRef {
    pub order_id: CompactString,
    pub line: u32,
}

/// Remembers the most recent `capacity` identifiers, forgetting the oldest first.
/// Serialized as its ordered list only, so snapshots are byte-for-byte reproducible.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "WindowImage<K>", into = "WindowImage<K>")]
#[serde(bound(serialize = "K: Serialize + std::hash::Hash + Eq + Clone"))]
#[serde(bound(deserialize = "K: Deserialize<'de> + std::hash::Hash + Eq + Clone"))]
pub struct Window<K: std::hash::Hash + Eq + Clone> {
    capacity: usize,
    order: VecDeque<K>,
    seen: Set<K>,
}

#[derive(Serialize, Deserialize)]
pub struct WindowImage<K> {
    capacity: usize,
    order: VecDeque<K>,
}

impl<K: std::hash::Hash + Eq + Clone> From<WindowImage<K>> for Window<K> {
    fn from(w: WindowImage<K>) -> Self {
        let mut window = Window::new(w.capacity);
        for k in w.order {
            window.insert(k);
        }
        window
    }
}

impl<K: std::hash::Hash + Eq + Clone> From<Window<K>> for WindowImage<K> {
    fn from(w: Window<K>) -> Self {
        WindowImage {
            capacity: w.capacity,
            order: w.order,
        }
    }
}

/// Serializes a hash map in key order, so equal states give equal snapshots.
fn sorted<S, K, V>(map: &Map<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    K: Serialize + Ord,
    V: Serialize,
{
    let ordered: std::collections::BTreeMap<&K, &V> = map.iter().collect();
    ordered.serialize(s)
}

impl<K: std::hash::Hash + Eq + Clone> Window<K> {
    /// Sized for a full window up front (one more while the oldest is evicted): a busy
    /// engine fills it, and each growth step on the way would rehash it whole.
    pub fn new(capacity: usize) -> Self {
        // Bounded: a capacity read from a damaged snapshot must not allocate the world.
        let room = capacity.min(EVENT_WINDOW.max(REQUEST_WINDOW)) + 1;
        Window {
            capacity,
            order: VecDeque::with_capacity(room),
            seen: Set::with_capacity_and_hasher(room, Default::default()),
        }
    }

    pub fn contains(&self, k: &K) -> bool {
        self.seen.contains(k)
    }

    /// The remembered identifiers, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.order.iter()
    }

    /// Returns the identifier that fell out of the window, if any.
    pub fn insert(&mut self, k: K) -> Option<K> {
        if !self.seen.insert(k.clone()) {
            return None;
        }
        self.order.push_back(k);
        if self.order.len() > self.capacity {
            let old = self.order.pop_front()?;
            self.seen.remove(&old);
            return Some(old);
        }
        None
    }
}

/// FNV-1a: a stable 64-bit hash, so a snapshot's event window means the same after an upgrade.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How many closed orders the core remembers, so a late duplicate cannot reopen one.
pub const EVENT_WINDOW: usize = 1 << 18;

pub const REQUEST_WINDOW: usize = 1 << 18;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registry {
    /// Boxed: a table of pointers rehashes cheaply as holds pile up, where moving
    /// whole orders on every growth step touched hundreds of megabytes; sharded, so
    /// no growth step moves more than a small part of them at once.
    pub orders: ShardedMap<CompactString, Box<Order>>,
    /// (expires_at µs, order_id) of live holds.
    pub holds: BTreeSet<(i64, CompactString)>,
    #[serde(serialize_with = "sorted")]
    /// Decisions by stable hash of request id: a 64-bit hash, not the string, keeps
    /// a quarter million remembered requests small.
    pub replies: Map<u64, Decision>,
    /// The order requests were first decided in, oldest first (the map is the set).
    pub reply_order: VecDeque<u64>,
    pub events: EventWindow,
    /// Orders fully shipped, cancelled or released: a late duplicate must not reopen them.
    pub closed_orders: Window<u64>,
    /// Shipped lines of closed orders, by stable hash of order id, for returns.
    #[serde(serialize_with = "sorted")]
    pub shipped: Map<u64, Vec<ShippedLine>>,
    pub shipped_order: VecDeque<u64>,
    #[serde(serialize_with = "sorted")]
    pub backorders: Map<u32, VecDeque<LineRef>>,
    /// Per preorder key, the lines sold against its limit.
    #[serde(serialize_with = "sorted")]
    pub preorders: Map<u32, Vec<LineRef>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            orders: ShardedMap::default(),
            holds: BTreeSet::new(),
            // Sized for a full window up front (one more while the oldest is evicted):
            // a busy engine fills it, and growing it step by step rehashes and copies
            // the whole window each time.
            replies: Map::with_capacity_and_hasher(REQUEST_WINDOW + 1, Default::default()),
            reply_order: VecDeque::with_capacity(REQUEST_WINDOW + 1),
            events: EventWindow::new(i64::MAX, usize::MAX),
            closed_orders: Window::new(EVENT_WINDOW),
            shipped: Map::default(),
            shipped_order: VecDeque::new(),
            backorders: Map::default(),
            preorders: Map::default(),
        }
    }
}

impl Registry {
    /// Whether an event id was applied within the dedupe horizon, and with what content.
    pub fn applied(&self, event_id: &str, fingerprint: u64) -> Seen {
        self.events.seen(stable_hash(event_id), fingerprint)
    }

    /// Records an event id as applied at log time `now`; true when the id cap, not the
    /// horizon, made room (the window is shorter than configured).
    pub fn remember_event(&mut self, event_id: &str, fingerprint: u64, now: i64) -> bool {
        self.events.insert(stable_hash(event_id), fingerprint, now)
    }

    pub fn decision(&self, request_id: &str) -> Option<&Decision> {
        self.replies.get(&stable_hash(request_id))
    }

    /// Forgets a finished order but for its id and what it shipped (bounded windows).
    pub fn close(&mut self, order_id: &str, order: Option<Box<Order>>) {
        let h = stable_hash(order_id);
        self.closed_orders.insert(h);
        let shipped: Vec<ShippedLine> = order
            .map(|o| o.lines.into_iter())
            .into_iter()
            .flatten()
            .filter(|l| l.shipped > 0)
            .map(|l| ShippedLine {
                line_id: l.line_id,
                key: l.key,
                shipped: l.shipped,
                returned: l.returned,
            })
            .collect();
        if !shipped.is_empty() && self.shipped.insert(h, shipped).is_none() {
            self.shipped_order.push_back(h);
            if self.shipped_order.len() > EVENT_WINDOW {
                if let Some(old) = self.shipped_order.pop_front() {
                    self.shipped.remove(&old);
                }
            }
        }
    }

    pub fn shipped_line(&mut self, order_id: &str, line_id: &str) -> Option<&mut ShippedLine> {
        self.shipped
            .get_mut(&stable_hash(order_id))?
            .iter_mut()
            .find(|l| l.line_id == line_id)
    }

    pub fn was_closed(&self, order_id: &str) -> bool {
        self.closed_orders.contains(&stable_hash(order_id))
    }

    pub fn remember_reply(&mut self, request_id: &str, reply: Decision) {
        let h = stable_hash(request_id);
        if self.replies.insert(h, reply).is_none() {
            self.reply_order.push_back(h);
            if self.reply_order.len() > REQUEST_WINDOW {
                if let Some(old) = self.reply_order.pop_front() {
                    self.replies.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_the_oldest() {
        let mut w = Window::new(2);
        w.insert(1);
        w.insert(2);
        assert_eq!(w.insert(3), Some(1));
        assert!(!w.contains(&1) && w.contains(&2) && w.contains(&3));
    }

    #[test]
    fn decisions_keep_their_snapshot_form() {
        let held = Decision::Held(7);
        let refused = Decision::Refused(vec![(1, 2)].into());
        for d in [held, refused] {
            let image = bincode::serialize(&d).expect("encode");
            let plain = DecisionImage::from(d.clone());
            assert_eq!(image, bincode::serialize(&plain).expect("encode plain"));
            assert_eq!(bincode::deserialize::<Decision>(&image).expect("decode"), d);
        }
        assert_eq!(std::mem::size_of::<Decision>(), 16);
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
