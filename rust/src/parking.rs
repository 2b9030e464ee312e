//! Order events that arrived before their order.
//!
//! The OMS that ships and the marketplace feed that places orders are often different
//! producers, so an `order.shipped` can reach the log before its `order.placed`. Such an
//! event waits here, in log order, until the order arrives (then it is applied) or the
//! park window passes (then it is dead-lettered). It is part of the state, so a replay
//! decides the same way.

use std::collections::VecDeque;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::hash::Map;
use crate::timefmt::rfc3339;

/// At most this many events wait at once; beyond it an event for an unknown order is
/// refused, so a producer sending events for orders that never come cannot fill memory.
pub const MAX_PARKED: usize = 1 << 16;

/// What the waiting event asks for, with its fields as they arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Waiting {
    /// (line_id, qty, location) per shipped line.
    Shipped(Vec<(String, i64, String)>),
    /// The line ids, or None for every line.
    Cancelled(Option<Vec<String>>),
    FulfillmentFailed {
        line_id: String,
        disposition: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    pub event_id: String,
    pub order_id: String,
    /// The event's own time, as the core took it.
    pub ts: i64,
    /// Log time it was parked at.
    pub since: i64,
    pub waiting: Waiting,
}

impl Parked {
    /// The event as a producer would send it again (its `type`, ids, time and fields).
    pub fn contract_json(&self) -> String {
        let head = serde_json::json!({
            "event_id": self.event_id,
            "ts": rfc3339(self.ts),
            "order_id": self.order_id,
        });
        let mut event = match head {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let (kind, fields) = match &self.waiting {
            Waiting::Shipped(lines) => (
                "order.shipped",
                serde_json::json!({"lines": lines
                    .iter()
                    .map(|(line_id, qty, location)| serde_json::json!({
                        "line_id": line_id, "qty": qty, "location": location
                    }))
                    .collect::<Vec<_>>()}),
            ),
            Waiting::Cancelled(line_ids) => {
                ("order.cancelled", serde_json::json!({"line_ids": line_ids}))
            }
            Waiting::FulfillmentFailed {
                line_id,
                disposition,
            } => (
                "order.fulfillment_failed",
                serde_json::json!({"line_id": line_id, "disposition": disposition}),
            ),
        };
        event.insert("type".into(), kind.into());
        if let serde_json::Value::Object(fields) = fields {
            event.extend(fields);
        }
        serde_json::Value::Object(event).to_string()
    }
}

/// The waiting events, oldest first, with a count per order for a quick "any for it?".
#[derive(Clone, Debug, Default)]
pub struct Parking {
    queue: VecDeque<Parked>,
    per_order: Map<CompactString, u32>,
}

impl Parking {
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.queue.len() >= MAX_PARKED
    }

    pub fn park(&mut self, parked: Parked) {
        *self
            .per_order
            .entry(CompactString::from(parked.order_id.as_str()))
            .or_default() += 1;
        self.queue.push_back(parked);
    }

    /// Every event waiting for `order_id`, in the order they arrived.
    pub fn take(&mut self, order_id: &str) -> Vec<Parked> {
        if self.per_order.remove(order_id).is_none() {
            return vec![];
        }
        let (mine, rest): (VecDeque<Parked>, VecDeque<Parked>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|p| p.order_id == order_id);
        self.queue = rest;
        mine.into()
    }

    /// The events parked before `before` (log time): their order did not come in time.
    pub fn expire(&mut self, before: i64) -> Vec<Parked> {
        let mut gone = vec![];
        while self.queue.front().is_some_and(|p| p.since < before) {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            if let Some(n) = self.per_order.get_mut(p.order_id.as_str()) {
                *n -= 1;
                if *n == 0 {
                    self.per_order.remove(p.order_id.as_str());
                }
            }
            gone.push(p);
        }
        gone
    }

    /// The snapshot form: the events in order.
    pub fn image(&self) -> Vec<Parked> {
        self.queue.iter().cloned().collect()
    }

    pub fn from_image(events: Vec<Parked>) -> Self {
        let mut parking = Parking::default();
        for p in events {
            parking.park(p);
        }
        parking
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel(order_id: &str, since: i64) -> Parked {
        Parked {
            event_id: format!("e-{order_id}-{since}"),
            order_id: order_id.into(),
            ts: 0,
            since,
            waiting: Waiting::Cancelled(None),
        }
    }

    #[test]
    fn an_order_takes_its_own_events_in_arrival_order() {
        let mut p = Parking::default();
        p.park(cancel("a", 1));
        p.park(cancel("b", 2));
        p.park(cancel("a", 3));
        let mine: Vec<i64> = p.take("a").iter().map(|e| e.since).collect();
        assert_eq!(mine, vec![1, 3]);
        assert_eq!(p.len(), 1);
        assert!(p.take("a").is_empty());
    }

    #[test]
    fn events_older_than_the_window_expire_oldest_first() {
        let mut p = Parking::default();
        p.park(cancel("a", 1));
        p.park(cancel("b", 5));
        let gone: Vec<String> = p.expire(3).into_iter().map(|e| e.order_id).collect();
        assert_eq!(gone, vec!["a".to_string()]);
        assert!(p.take("a").is_empty());
        assert_eq!(p.take("b").len(), 1);
    }

    #[test]
    fn a_dead_letter_reads_as_the_event_a_producer_sent() {
        let shipped = Parked {
            event_id: "e1".into(),
            order_id: "o1".into(),
            ts: 0,
            since: 0,
            waiting: Waiting::Shipped(vec![("1".into(), 2, "wh".into())]),
        };
        let v: serde_json::Value =
            serde_json::from_str(&shipped.contract_json()).expect("valid JSON");
        assert_eq!(v["type"], "order.shipped");
        assert_eq!(v["ts"], "1970-01-01T00:00:00Z");
        assert_eq!(v["lines"][0]["location"], "wh");
    }
}
