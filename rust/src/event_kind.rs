//! The contract's event kinds the core applies, in one list: the Python tag table
//! (`_core.EVENT_KINDS`) and the dispatch in `py::events` come from [`EventKind`]. Adding a kind is one line here plus its handler.
//!
//! The numbers are part of saved state: an event's fingerprint (see `dedupe`) starts
//! with its kind's number, so a kind keeps its number for good and new kinds go last.

macro_rules! event_kinds {
    ($($kind:ident = $n:literal => $tag:literal,)+) => {
        /// An event kind by its number, as Python passes it to `Core.apply_events`.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventKind {
            $($kind = $n,)+
        }

        impl EventKind {
            /// Every kind, in number order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind,)+];

            /// The contract's `type` of this kind.
            pub const fn tag(self) -> &'static str {
                match self {
                    $(EventKind::$kind => $tag,)+
                }
            }

            /// The kind with this number, if there is one.
            pub const fn from_number(n: u8) -> Option<EventKind> {
                match n {
                    $($n => Some(EventKind::$kind),)+
                    _ => None,
                }
            }
        }
    };
}

event_kinds! {
    StockSet = 0 => "stock.set",
    StockAdjust = 1 => "stock.adjust",
    StockReceived = 2 => "stock.received",
    StockReleased = 3 => "stock.released",
    StockDamaged = 4 => "stock.damaged",
    StockInbound = 5 => "stock.inbound",
    StockTransfer = 6 => "stock.transfer",
    OrderPlaced = 7 => "order.placed",
    OrderCancelled = 8 => "order.cancelled",
    OrderShipped = 9 => "order.shipped",
    OrderFulfillmentFailed = 10 => "order.fulfillment_failed",
    OrderReturned = 11 => "order.returned",
    ClockTick = 12 => "clock.tick",
    PriceSet = 13 => "price.set",
    PromoSet = 14 => "promo.set",
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn numbers_are_positions_and_round_trip() {
        for (n, kind) in EventKind::ALL.iter().enumerate() {
            let n = u8::try_from(n).expect("fewer than 256 kinds");
            assert_eq!(*kind as u8, n);
            assert_eq!(EventKind::from_number(n), Some(*kind));
        }
        let past = u8::try_from(EventKind::ALL.len()).expect("fewer than 256 kinds");
        assert_eq!(EventKind::from_number(past), None);
    }

    #[test]
    fn saved_numbers_do_not_move() {
        // Fingerprints in snapshots start with these numbers.
        assert_eq!(EventKind::StockSet as u8, 0);
        assert_eq!(EventKind::StockTransfer as u8, 6);
        assert_eq!(EventKind::OrderPlaced as u8, 7);
        assert_eq!(EventKind::ClockTick as u8, 12);
    }
}
