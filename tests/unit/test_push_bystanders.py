"""An all-or-nothing request (Shopify's inventorySetQuantities) refused for one item
leaves the others unapplied through no fault of theirs: they go out again at once and
count no failed attempt, so one listing selling mid-push cannot hold back the rest."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from invsync.gateway.platforms.base import Outcome
from invsync.gateway.scheduler import ALERT_AFTER_ATTEMPTS, Batch, PushQueue
from tests.gateway.fake_profile import FakeClock, FakeProfile, listing, per_item_lane

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
STALE = Outcome(applied=False, retry=True, reason="CHANGE_FROM_QUANTITY_STALE", shown=3)
BYSTANDER = Outcome(applied=False, retry=True, reason="not applied", bystander=True)


def queue_of(*skus: str) -> tuple[PushQueue, FakeClock]:
    clock = FakeClock()
    lane = per_item_lane(rate=100, burst=100, batch=len(skus))
    queue = PushQueue(FakeProfile([lane]), clock, None, random.Random(7))
    for sku in skus:
        queue.put(listing(sku), 4, TS)
    return queue, clock


def sent(queue: PushQueue, now: float) -> Batch:
    batch = queue.take(now)
    assert isinstance(batch, Batch), f"nothing to send for {batch} s"
    queue.sent(batch)
    return batch


def test_bystanders_go_again_at_once_while_the_refused_item_backs_off() -> None:
    queue, clock = queue_of("SOLD", "B", "C")
    batch = sent(queue, clock())
    assert [i.listing.sku for i in batch.items] == ["SOLD", "B", "C"]
    queue.settle(batch, [STALE, BYSTANDER, BYSTANDER], clock())
    again = sent(queue, clock())
    assert [i.listing.sku for i in again.items] == ["B", "C"]
    assert [i.attempt for i in again.items] == [0, 0]


def test_a_bystander_is_never_alerted_as_failing() -> None:
    queue, clock = queue_of("B")
    for _ in range(ALERT_AFTER_ATTEMPTS + 2):
        batch = sent(queue, clock())
        done = queue.settle(batch, [BYSTANDER], clock())
        assert done.retry_alerts == []
