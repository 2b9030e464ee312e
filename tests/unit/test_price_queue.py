"""Prices in the push queue: the same coalescing, ranks, budgets and one-request-per-
listing rule as quantities; a listing's price and quantity in one entry where the
platform's call sets both; an increase waiting for a new listing's first price."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from invsync.gateway.platforms.base import Price
from invsync.gateway.scheduler import Batch, PushQueue
from tests.gateway.fake_profile import (
    FakeClock,
    FakeLane,
    FakeProfile,
    listing,
    per_item_lane,
    price_lane,
    price_quantity_lane,
)

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KEY = listing("A").ids["item_id"]


def queue_for(*lanes: FakeLane) -> tuple[PushQueue, FakeClock]:
    clock = FakeClock()
    return PushQueue(FakeProfile(list(lanes)), clock, None, random.Random(7)), clock


def send(queue: PushQueue, lane: FakeLane, now: float) -> Batch:
    """Take the next batch, have `lane` answer it, and settle it."""
    batch = queue.take(now)
    assert isinstance(batch, Batch), f"nothing to send, wait {batch}"
    assert queue.profile.lanes[batch.lane] is lane, f"sent on {queue.profile.lanes[batch.lane]}"
    outcomes = lane.answer(batch.changes(queue.known))
    queue.sent(batch)
    queue.settle(batch, outcomes, now)
    return batch


def test_a_pending_price_and_quantity_of_one_listing_go_in_one_entry() -> None:
    lane = price_quantity_lane()
    queue, clock = queue_for(lane)
    queue.known[KEY] = 3
    queue.put(listing("A"), 5, TS)
    queue.put_price(listing("A"), Price("19.99", "USD"), TS)
    send(queue, lane, clock())
    ((change,),) = lane.requests
    assert (change.qty, change.price) == (5, Price("19.99", "USD"))
    assert lane.shown[KEY] == 5 and lane.priced[KEY] == Price("19.99", "USD")
    assert queue.backlog() == 0


def test_the_latest_price_wins_and_answers_every_waiter() -> None:
    lane = price_quantity_lane()
    queue, clock = queue_for(lane)
    heard: list[tuple[str, bool]] = []
    queue.put_price(listing("A"), Price("10.00", "USD"), TS, lambda ok, _: heard.append(("a", ok)))
    queue.put_price(listing("A"), Price("12.00", "USD"), TS, lambda ok, _: heard.append(("b", ok)))
    send(queue, lane, clock())
    assert [[c.price for c in request] for request in lane.requests] == [[Price("12.00", "USD")]]
    assert heard == [("a", True), ("b", True)]


def test_an_increase_waits_for_the_first_price_on_a_separate_price_call() -> None:
    quantities, prices = per_item_lane(), price_lane()
    queue, clock = queue_for(quantities, prices)
    queue.known[KEY] = 0
    queue.put(listing("A"), 8, TS)
    queue.put_price(listing("A"), Price("5.00", "USD"), TS)
    send(queue, prices, clock())
    assert quantities.requests == []
    send(queue, quantities, clock())
    assert quantities.shown[KEY] == 8 and prices.priced[KEY] == Price("5.00", "USD")


def test_a_decrease_does_not_wait_for_a_price() -> None:
    quantities, prices = per_item_lane(), price_lane()
    queue, clock = queue_for(quantities, prices)
    queue.known[KEY] = 9
    queue.put(listing("A"), 0, TS)
    queue.put_price(listing("A"), Price("5.00", "USD"), TS)
    send(queue, quantities, clock())
    assert quantities.shown[KEY] == 0


def test_one_request_per_listing_whatever_it_carries() -> None:
    quantities, prices = per_item_lane(), price_lane()
    queue, clock = queue_for(quantities, prices)
    queue.known_prices[KEY] = Price("4.00", "USD")
    queue.known[KEY] = 1
    queue.put_price(listing("A"), Price("5.00", "USD"), TS)
    in_flight = queue.take(clock())
    assert isinstance(in_flight, Batch) and in_flight.lane == 1
    queue.put(listing("A"), 3, TS)
    assert not isinstance(queue.take(clock()), Batch)  # waits for the price's request
    queue.sent(in_flight)
    queue.settle(in_flight, prices.answer(in_flight.changes(queue.known)), clock())
    send(queue, quantities, clock())
    assert quantities.shown[KEY] == 3


def test_a_refused_entry_is_split_so_a_bad_price_never_blocks_a_quantity() -> None:
    lane = price_quantity_lane()
    lane.refuse_prices[KEY] = "25709: Invalid value for price"
    queue, clock = queue_for(lane)
    queue.known[KEY] = 5
    heard: list[tuple[str, bool, str | None]] = []
    queue.put(listing("A"), 0, TS, lambda ok, why: heard.append(("qty", ok, why)))
    queue.put_price(
        listing("A"), Price("9.99", "USD"), TS, lambda ok, why: heard.append(("price", ok, why))
    )
    send(queue, lane, clock())  # both together: refused whole
    assert heard == []
    send(queue, lane, clock())
    send(queue, lane, clock())
    carried = [[(c.qty, c.price is not None) for c in request] for request in lane.requests]
    assert carried == [[(0, True)], [(0, False)], [(None, True)]]
    assert lane.shown[KEY] == 0
    assert heard == [("qty", True, None), ("price", False, "25709: Invalid value for price")]
    assert queue.backlog() == 0
