"""The push queue on a lane whose call updates one parent (TikTok's product, Shopee's
item): every batch is one parent's, built around the most urgent change and filled
with that parent's other changes, within the batch cap, keeping every other rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from invsync.gateway.platforms.base import Outcome
from invsync.gateway.scheduler import Batch, PushQueue
from tests.gateway.fake_profile import (
    PARENT,
    FakeClock,
    FakeLane,
    FakeProfile,
    child,
    per_parent_lane,
)

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def queue_for(lane: FakeLane) -> tuple[PushQueue, FakeClock]:
    clock = FakeClock()
    return PushQueue(FakeProfile([lane]), clock, rng=random.Random(7)), clock


def put(queue: PushQueue, sku: str, parent: str, shown: int, qty: int) -> None:
    queue.known[f"{sku}-new"] = shown
    queue.put(child(sku, parent), qty, TS)


def take(queue: PushQueue, now: float) -> Batch:
    batch = queue.take(now)
    assert isinstance(batch, Batch), f"nothing to send, wait {batch}"
    return batch


def apply_all(queue: PushQueue, batch: Batch, now: float) -> None:
    queue.sent(batch)
    queue.settle(batch, [Outcome(applied=True)] * len(batch.items), now)


def drain(queue: PushQueue, clock: FakeClock) -> list[list[str]]:
    """Every batch the queue hands out, applied, as lists of SKUs."""
    batches = []
    for _ in range(100):
        if not queue.backlog():
            break
        batch = take(queue, clock())
        batches.append([item.listing.sku for item in batch.items])
        apply_all(queue, batch, clock())
    return batches


def test_the_most_urgent_change_leads_and_its_siblings_of_any_class_ride_along() -> None:
    queue, clock = queue_for(per_parent_lane(batch=10))
    put(queue, "P1-UP", "P1", shown=1, qty=5)
    put(queue, "P2-UP", "P2", shown=1, qty=5)
    put(queue, "P2-DOWN", "P2", shown=9, qty=4)
    put(queue, "P1-DOWN", "P1", shown=9, qty=3)
    put(queue, "P2-ZERO", "P2", shown=5, qty=0)
    put(queue, "P3-DOWN", "P3", shown=9, qty=2)
    # P2's zero goes first with all of P2; then the oldest decrease, P1's, with P1's
    # increase; then P3. Within a batch: most urgent first, then by arrival.
    assert drain(queue, clock) == [
        ["P2-ZERO", "P2-DOWN", "P2-UP"],
        ["P1-DOWN", "P1-UP"],
        ["P3-DOWN"],
    ]


def test_a_parent_with_more_changes_than_a_call_takes_is_split_most_urgent_first() -> None:
    queue, clock = queue_for(per_parent_lane(batch=2))
    for n in range(3):
        put(queue, f"UP{n}", "P1", shown=0, qty=5)
    put(queue, "OTHER", "P2", shown=9, qty=1)
    put(queue, "DOWN", "P1", shown=9, qty=1)
    put(queue, "ZERO", "P1", shown=9, qty=0)
    assert drain(queue, clock) == [["ZERO", "DOWN"], ["OTHER"], ["UP0", "UP1"], ["UP2"]]


def test_a_sibling_in_flight_or_backing_off_is_left_for_a_later_call() -> None:
    queue, clock = queue_for(per_parent_lane(batch=10))
    put(queue, "A", "P1", shown=9, qty=1)
    first = take(queue, clock())
    put(queue, "A", "P1", shown=9, qty=2)  # A again while its first request is out
    put(queue, "B", "P1", shown=9, qty=1)
    put(queue, "C", "P1", shown=9, qty=1)
    put(queue, "Z", "P2", shown=0, qty=1)
    failed = take(queue, clock())
    assert [item.listing.sku for item in failed.items] == ["B", "C"]
    queue.sent(failed)
    queue.settle(failed, [Outcome(applied=True), Outcome(False, "E500", retry=True)], clock())
    apply_all(queue, first, clock())
    # A's newer quantity goes now; C waits for its backoff instead of riding along.
    assert [item.listing.sku for item in take(queue, clock()).items] == ["A"]
    assert [item.listing.sku for item in take(queue, clock()).items] == ["Z"]
    clock.advance(60)
    assert [item.listing.sku for item in take(queue, clock()).items] == ["C"]


def test_a_newer_quantity_replaces_the_queued_one_and_a_moved_listing_joins_its_new_parent() -> (
    None
):
    queue, clock = queue_for(per_parent_lane(batch=10))
    put(queue, "A", "P1", shown=9, qty=1)
    put(queue, "B", "P2", shown=9, qty=2)
    put(queue, "C", "P2", shown=9, qty=2)
    put(queue, "B", "P1", shown=9, qty=3)  # the listing map now puts B under P1
    batch = take(queue, clock())
    assert [(item.listing.ids[PARENT], item.listing.sku, item.qty) for item in batch.items] == [
        ("P1", "A", 1),
        ("P1", "B", 3),
    ]
    apply_all(queue, batch, clock())
    assert [item.listing.sku for item in take(queue, clock()).items] == ["C"]


def test_a_batch_of_one_parent_is_paid_as_one_call_and_waits_for_the_budget() -> None:
    queue, clock = queue_for(per_parent_lane(rate=1, burst=1, batch=10))
    for n in range(5):
        put(queue, f"A{n}", "P1", shown=0, qty=1)
        put(queue, f"B{n}", "P2", shown=0, qty=1)
    assert len(take(queue, clock()).items) == 5
    wait = queue.take(clock())
    assert isinstance(wait, float) and 0 < wait < float("inf")
    clock.advance(wait)
    assert [item.listing.sku for item in take(queue, clock()).items] == [f"B{n}" for n in range(5)]
