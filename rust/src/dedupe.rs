//! Which event ids were applied, remembered for a horizon of log time.
//!
//! A producer that re-sends an event after JetStream's own duplicate window (minutes)
//! must still change nothing, so ids are kept for `horizon` of log time (the clock the
//! service's ticks move), not for a count of events: a count is a horizon that shrinks as
//! the rate grows. A cap on the number of ids bounds memory at flash-sale rates; when the
//! cap, not the horizon, forgets an id, the caller is told so it can alert.
//!
//! Each id keeps a fingerprint of its event's content, so a re-send that differs from
//! what was applied (a producer reusing ids) is told apart from a plain redelivery.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::hash::ShardedMap;

/// What the window knows of an event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    /// Applied before, with the same content.
    Same,
    /// Applied before, with other content.
    Different,
}

/// A stable 64-bit digest of an event's content (its kind and fields, not its id or
/// time), built field by field as the fields are read. Never 0: 0 means "unknown".
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint(u64);

impl Fingerprint {
    pub fn new(kind: u8) -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325).bytes(&[kind])
    }

    fn bytes(self, data: &[u8]) -> Self {
        Fingerprint(data.iter().fold(self.0, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }))
    }

    /// A text field, length first, so ("ab", "c") and ("a", "bc") differ.
    pub fn text(self, s: &str) -> Self {
        self.bytes(&(s.len() as u64).to_le_bytes())
            .bytes(s.as_bytes())
    }

    pub fn int(self, n: i64) -> Self {
        self.bytes(&n.to_le_bytes())
    }

    pub fn finish(self) -> u64 {
        self.0.max(1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "Image", into = "Image")]
pub struct EventWindow {
    horizon: i64,
    cap: usize,
    /// (log time applied, id hash), oldest first.
    order: VecDeque<(i64, u64)>,
    /// id hash → content fingerprint; sharded, so growing it never rehashes millions at once.
    content: ShardedMap<u64, u64>,
}

/// The snapshot form: ids in order (the layout earlier snapshots wrote), times and
/// fingerprints are carried beside it (see `Persisted` and `snapshot`).
#[derive(Serialize, Deserialize)]
struct Image {
    capacity: usize,
    order: VecDeque<u64>,
}

impl From<Image> for EventWindow {
    fn from(image: Image) -> Self {
        let mut w = EventWindow::new(i64::MAX, image.capacity);
        for id in image.order {
            w.insert(id, 0, i64::MIN);
        }
        w
    }
}

impl From<EventWindow> for Image {
    fn from(w: EventWindow) -> Self {
        Image {
            capacity: w.cap,
            order: w.order.into_iter().map(|(_, id)| id).collect(),
        }
    }
}

/// Log time and fingerprint of each remembered id, in window order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stamps {
    pub times: Vec<i64>,
    pub fingerprints: Vec<u64>,
}

impl EventWindow {
    /// `horizon` in µs of log time; at most `cap` ids.
    pub fn new(horizon: i64, cap: usize) -> Self {
        EventWindow {
            horizon,
            cap,
            order: VecDeque::new(),
            content: ShardedMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The remembered id hashes, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.order.iter().map(|&(_, id)| id)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// New limits (a policy change); applied from the next insert or expiry on.
    pub fn set_limits(&mut self, horizon: i64, cap: usize) {
        self.horizon = horizon;
        self.cap = cap;
    }

    pub fn seen(&self, id: u64, fingerprint: u64) -> Seen {
        match self.content.get(&id) {
            None => Seen::New,
            // 0: an id restored from a snapshot that kept no fingerprints.
            Some(&f) if f == fingerprint || f == 0 => Seen::Same,
            Some(_) => Seen::Different,
        }
    }

    /// Remembers an id applied at log time `now`. Returns true when the cap forced out
    /// an id younger than the horizon (the window is shorter than configured).
    pub fn insert(&mut self, id: u64, fingerprint: u64, now: i64) -> bool {
        if self.content.insert(id, fingerprint).is_some() {
            return false;
        }
        self.order.push_back((now, id));
        let mut cut_short = false;
        while self.order.len() > self.cap {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            self.content.remove(&old);
            cut_short |= !self.older_than_horizon(at, now);
        }
        cut_short
    }

    /// Forgets ids applied more than the horizon before `now`.
    pub fn expire(&mut self, now: i64) {
        while let Some(&(at, id)) = self.order.front() {
            if !self.older_than_horizon(at, now) {
                break;
            }
            self.order.pop_front();
            self.content.remove(&id);
        }
    }

    fn older_than_horizon(&self, at: i64, now: i64) -> bool {
        now.saturating_sub(at) > self.horizon
    }

    pub fn stamps(&self) -> Stamps {
        Stamps {
            times: self.order.iter().map(|&(t, _)| t).collect(),
            fingerprints: self
                .order
                .iter()
                .map(|&(_, id)| self.content[&id])
                .collect(),
        }
    }

    /// Puts back the times and fingerprints a snapshot kept beside the ids; a snapshot
    /// without them (an older format) stamps every id `now`, so it lives one more horizon.
    pub fn restamp(&mut self, stamps: &Stamps, now: i64) {
        let whole =
            stamps.times.len() == self.order.len() && stamps.fingerprints.len() == self.order.len();
        for (i, entry) in self.order.iter_mut().enumerate() {
            entry.0 = if whole { stamps.times[i] } else { now };
            if whole {
                self.content.insert(entry.1, stamps.fingerprints[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn fingerprints_tell_fields_apart() {
        let a = Fingerprint::new(0).text("ab").text("c").finish();
        let b = Fingerprint::new(0).text("a").text("bc").finish();
        let c = Fingerprint::new(1).text("ab").text("c").finish();
        assert!(a != b && a != c);
        assert_eq!(a, Fingerprint::new(0).text("ab").text("c").finish());
    }

    #[test]
    fn ids_are_forgotten_after_the_horizon_of_log_time() {
        let mut w = EventWindow::new(60 * S, 100);
        w.insert(1, 7, 0);
        w.expire(60 * S);
        assert_eq!(w.seen(1, 7), Seen::Same);
        w.expire(60 * S + 1);
        assert_eq!(w.seen(1, 7), Seen::New);
    }

    #[test]
    fn a_reused_id_with_other_content_is_told_apart() {
        let mut w = EventWindow::new(60 * S, 100);
        w.insert(1, 7, 0);
        assert_eq!(w.seen(1, 8), Seen::Different);
        assert_eq!(w.seen(2, 7), Seen::New);
    }

    #[test]
    fn the_cap_bounds_memory_and_says_when_it_cut_the_horizon_short() {
        let mut w = EventWindow::new(60 * S, 2);
        assert!(!w.insert(1, 1, 0));
        assert!(!w.insert(2, 1, 0));
        assert!(w.insert(3, 1, S));
        assert_eq!(w.len(), 2);
        assert_eq!(w.seen(1, 1), Seen::New);
        let mut old = EventWindow::new(S, 1);
        old.insert(1, 1, 0);
        assert!(!old.insert(2, 1, 5 * S), "an id past its horizon may go");
    }

    #[test]
    fn stamps_survive_the_snapshot_form() {
        let mut w = EventWindow::new(60 * S, 10);
        w.insert(1, 11, 5);
        w.insert(2, 22, 6);
        let stamps = w.stamps();
        let image = bincode::serialize(&w).expect("encode");
        let mut back: EventWindow = bincode::deserialize(&image).expect("decode");
        back.set_limits(60 * S, 10);
        back.restamp(&stamps, 0);
        assert_eq!(back.stamps().times, vec![5, 6]);
        assert_eq!(back.seen(2, 23), Seen::Different);
    }

    #[test]
    fn an_older_snapshot_without_stamps_keeps_ids_one_horizon_from_now() {
        let mut w = EventWindow::new(60 * S, 10);
        w.insert(1, 11, 5);
        let image = bincode::serialize(&w).expect("encode");
        let mut back: EventWindow = bincode::deserialize(&image).expect("decode");
        back.set_limits(60 * S, 10);
        back.restamp(&Stamps::default(), 100 * S);
        back.expire(150 * S);
        assert_eq!(back.seen(1, 99), Seen::Same);
        back.expire(161 * S);
        assert_eq!(back.seen(1, 99), Seen::New);
    }
}
