//! Order events that arrive before their order: set aside until `order.placed`
//! arrives (`orders` then applies them in arrival order) or `park_window_s` passes
//! (then dead-lettered). Partitioned, every partition sets the event aside (so each
//! applies its own lines when the order arrives, and every partition knows every
//! placed order), and partition 0 alone dead-letters it or refuses it, once.

use super::{State, MICROS, NO_TIME};
use crate::effects::{DeadOut, Effects};
use crate::error::{CoreError, CoreResult};
use crate::parking::{Parked, Waiting};

impl State {
    /// Whether the log has seen this order (live, or closed within the window).
    pub fn order_known(&self, order_id: &str) -> bool {
        self.registry.orders.contains_key(order_id) || self.registry.was_closed(order_id)
    }

    /// Sets aside an event for an order not seen yet, until its `order.placed` arrives or
    /// `park_window_s` passes. Refused when parking is off (window 0) or full.
    pub fn park(
        &mut self,
        event_id: &str,
        order_id: &str,
        ts: i64,
        waiting: Waiting,
    ) -> CoreResult<Effects> {
        let window = self.policy.tables.log.park_window_s;
        if window == 0 || self.parking.is_full() {
            let why = if window == 0 {
                "park_window_s is 0".to_string()
            } else {
                format!(
                    "{} events already wait for their orders",
                    self.parking.len()
                )
            };
            return Err(CoreError::bad(
                "order_id",
                format!("unknown or closed order {order_id:?}, and it cannot wait: {why}"),
            )
            .whole_event(self.partition));
        }
        self.parking.park(Parked {
            event_id: event_id.to_string(),
            order_id: order_id.to_string(),
            ts,
            since: if self.now == NO_TIME { ts } else { self.now },
            waiting,
        });
        Ok(Effects::default())
    }

    /// Dead-letters the events whose order did not arrive within `park_window_s`.
    pub fn expire_parked(&mut self, fx: &mut Effects) {
        let window = self.policy.tables.log.park_window_s;
        let before = self.now.saturating_sub(window.saturating_mul(MICROS));
        let reports = self.partition.is_first();
        for p in self.parking.expire(before).into_iter().filter(|_| reports) {
            fx.dead.push(DeadOut {
                event_json: p.contract_json(),
                error: format!(
                    "order {:?} did not arrive within park_window_s {window}",
                    p.order_id
                ),
                event_id: p.event_id,
                reason: "order_missing",
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World, MICROS};
    use crate::error::CoreError;
    use crate::parking::Waiting;
    use crate::partition::Partition;

    #[test]
    fn an_event_before_its_order_applies_when_the_order_arrives() {
        let mut w = World::new();
        w.stock("A", "wh", 5);
        assert!(!w.state.order_known("o1"));
        w.state
            .park("e-cancel", "o1", MICROS, Waiting::Cancelled(None))
            .expect("parked");
        w.place("o1", &[line("1", "A", 2)]).expect("o1");
        assert_eq!(w.avail("A"), 5, "the waiting cancel released the order");
        assert!(!w.state.registry.orders.contains_key("o1"));
    }

    #[test]
    fn an_event_whose_order_never_comes_is_dead_lettered() {
        let mut w = World::new();
        w.state
            .park("e-cancel", "o9", MICROS, Waiting::Cancelled(None))
            .expect("parked");
        let window = w.state.policy.tables.log.park_window_s;
        let mut fx = crate::effects::Effects::default();
        w.state.now = MICROS + window * MICROS;
        w.state.expire_parked(&mut fx);
        assert!(fx.dead.is_empty(), "still within park_window_s");
        w.state.now += 1;
        w.state.expire_parked(&mut fx);
        let dead: Vec<_> = fx
            .dead
            .iter()
            .map(|d| (d.event_id.as_str(), d.reason))
            .collect();
        assert_eq!(dead, [("e-cancel", "order_missing")]);
    }

    fn dead_letters_after_the_window(w: &mut World, order_id: &str) -> usize {
        w.state
            .park("e-cancel", order_id, MICROS, Waiting::Cancelled(None))
            .expect("parked");
        let window = w.state.policy.tables.log.park_window_s;
        w.state.now = MICROS + window * MICROS + 1;
        let mut fx = crate::effects::Effects::default();
        w.state.expire_parked(&mut fx);
        fx.dead.len()
    }

    #[test]
    fn an_order_no_partition_holds_is_dead_lettered_by_partition_0_alone() {
        let dead: Vec<usize> = [0, 1]
            .map(|k| {
                let mut w = World::partition(Partition::new(k, 2).expect("partition"));
                dead_letters_after_the_window(&mut w, "o9")
            })
            .to_vec();
        assert_eq!(dead, [1, 0]);
    }

    #[test]
    fn a_partition_that_cannot_park_leaves_the_refusal_to_partition_0() {
        for (k, reported_here) in [(0, true), (1, false)] {
            let mut w = World::partition(Partition::new(k, 2).expect("partition"));
            w.state.policy.tables.log.park_window_s = 0;
            let refused = w
                .state
                .park("e-cancel", "o9", MICROS, Waiting::Cancelled(None))
                .expect_err("parking is off");
            assert_eq!(
                matches!(refused, CoreError::BadInput { .. }),
                reported_here,
                "partition {k}"
            );
        }
    }
}
