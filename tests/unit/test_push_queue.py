"""The push queue's rules on a fake clock and a fake platform: what goes first, what is
coalesced, what the budgets allow, when the bulk lane is used, how failures come back."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from invsync.gateway.budget import HEADROOM, LaneBudget, RevisionBudget
from invsync.gateway.platforms.base import BudgetReport, LaneLimits, Outcome
from invsync.gateway.scheduler import Batch, PushQueue, backoff_s
from tests.gateway.fake_profile import FakeClock, FakeLane, FakeProfile, listing, per_item_lane

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def queue_for(
    *lanes: FakeLane, revisions: RevisionBudget | None = None
) -> tuple[PushQueue, FakeClock]:
    clock = FakeClock()
    return PushQueue(FakeProfile(list(lanes)), clock, revisions, random.Random(7)), clock


def take(queue: PushQueue, now: float) -> Batch:
    batch = queue.take(now)
    assert isinstance(batch, Batch), f"nothing to send, wait {batch}"
    return batch


def apply_all(queue: PushQueue, batch: Batch, now: float) -> None:
    queue.sent(batch)
    queue.settle(batch, [Outcome(applied=True)] * len(batch.items), now)


def skus(batch: Batch) -> list[str]:
    return [item.listing.sku for item in batch.items]


def test_zero_goes_first_then_decreases_then_increases_fifo_within_each() -> None:
    queue, clock = queue_for(per_item_lane(rate=100, burst=100, batch=2))
    for sku, known in [("UP1", 1), ("DOWN1", 9), ("ZERO", 5), ("UP2", 1), ("DOWN2", 9)]:
        queue.known[listing(sku).ids["item_id"]] = known
    queue.put(listing("UP1"), 5, TS)
    queue.put(listing("DOWN1"), 3, TS)
    queue.put(listing("UP2"), 5, TS)
    queue.put(listing("ZERO"), 0, TS)
    queue.put(listing("DOWN2"), 4, TS)
    order = []
    while queue.backlog():
        batch = take(queue, clock())
        order += skus(batch)
        apply_all(queue, batch, clock())
    assert order == ["ZERO", "DOWN1", "DOWN2", "UP1", "UP2"]


def test_the_latest_quantity_wins_and_answers_every_waiter() -> None:
    queue, clock = queue_for(per_item_lane())
    heard: list[tuple[str, bool]] = []
    queue.put(listing("A"), 5, TS, lambda ok, _: heard.append(("first", ok)))
    queue.put(listing("A"), 2, TS, lambda ok, _: heard.append(("second", ok)))
    batch = take(queue, clock())
    assert [(i.listing.sku, i.qty) for i in batch.items] == [("A", 2)]
    apply_all(queue, batch, clock())
    assert heard == [("first", True), ("second", True)]
    assert queue.backlog() == 0
    assert queue.take(clock()) == float("inf")


def test_a_listing_in_flight_waits_and_its_next_change_carries_what_was_accepted() -> None:
    queue, clock = queue_for(per_item_lane(batch=5))
    queue.put(listing("A"), 5, TS)
    first = take(queue, clock())
    queue.put(listing("A"), 3, TS)
    assert not isinstance(queue.take(clock()), Batch)
    apply_all(queue, first, clock())
    second = take(queue, clock())
    assert [c.known for c in second.changes(queue.known)] == [5]


def test_a_zero_overtakes_a_long_queue_of_increases() -> None:
    queue, clock = queue_for(per_item_lane(rate=1, burst=1))
    for n in range(1000):
        queue.known[f"UP{n}-new"] = 0
        queue.put(listing(f"UP{n}"), 5, TS)
    take(queue, clock())  # the head of the queue is on its way
    queue.put(listing("SOLD"), 0, TS)
    clock.advance(1.0 / HEADROOM)
    assert skus(take(queue, clock())) == ["SOLD"]


def test_the_budget_is_never_overspent_and_the_wait_is_one_refill() -> None:
    queue, clock = queue_for(per_item_lane(rate=5, burst=2))
    for n in range(10):
        queue.put(listing(f"S{n}"), 1, TS)
    start = clock()
    sent_at: list[float] = []
    for _ in range(100):
        decision = queue.take(clock())
        if isinstance(decision, Batch):
            sent_at.append(round(clock() - start, 6))
            apply_all(queue, decision, clock())
        elif decision == float("inf"):
            break
        else:
            assert decision == pytest.approx(0.2 / HEADROOM)
            clock.advance(decision)
    # two at once from the burst, then one per refill at 5 per second (less the headroom)
    assert sent_at == [round(n * 0.2 / HEADROOM, 6) for n in (0, 0, 1, 2, 3, 4, 5, 6, 7, 8)]


def test_a_429_pauses_the_lane_for_retry_after_and_halves_the_rate() -> None:
    clock = FakeClock()
    budget = LaneBudget(LaneLimits(rate=10, burst=10, batch=1), clock)
    budget.throttled(BudgetReport(retry_after_s=3.0))
    assert budget.wait_s(1) == pytest.approx(3.0)
    assert budget.rate == pytest.approx(5.0 * HEADROOM)
    clock.advance(3.0)
    assert budget.wait_s(1) == 0.0
    for _ in range(10):
        budget.accepted(BudgetReport())
    assert 5.0 < budget.rate < 10.0


def test_the_platforms_reported_budget_corrects_the_local_estimate() -> None:
    clock = FakeClock()
    budget = LaneBudget(LaneLimits(rate=100, burst=1000, batch=250, cost_per_item=10), clock)
    budget.accepted(BudgetReport(rate=50, capacity=200, available=30))
    assert budget.capacity == 200
    assert budget.available() == pytest.approx(30)
    assert budget.wait_s(80) == pytest.approx(1.0 / HEADROOM)


def test_throttled_items_keep_their_place_and_failed_ones_back_off() -> None:
    queue, clock = queue_for(per_item_lane(rate=100, burst=100, batch=2))
    for sku in "ABCD":
        queue.put(listing(sku), 1, TS)
    first = take(queue, clock())
    queue.sent(first)
    queue.give_back(first, clock(), backoff=False)
    assert skus(take(queue, clock())) == ["A", "B"]
    queue2, clock2 = queue_for(per_item_lane(rate=100, burst=100, batch=2))
    for sku in "ABCD":
        queue2.put(listing(sku), 1, TS)
    failed = take(queue2, clock2())
    queue2.sent(failed)
    queue2.give_back(failed, clock2(), backoff=True)
    assert skus(take(queue2, clock2())) == ["C", "D"]
    wait = queue2.take(clock2())
    assert isinstance(wait, float) and 0 < wait <= 0.5


def test_a_refused_item_is_answered_with_the_reason_and_not_sent_again() -> None:
    queue, clock = queue_for(per_item_lane())
    heard: list[tuple[bool, str | None]] = []
    queue.put(listing("A"), 4, TS, lambda ok, why: heard.append((ok, why)))
    batch = take(queue, clock())
    queue.sent(batch)
    done = queue.settle(batch, [Outcome(applied=False, reason="25002: listing ended")], clock())
    assert heard == [(False, "25002: listing ended")]
    assert [reason for _, reason in done.refused] == ["25002: listing ended"]
    assert queue.take(clock() + 3600) == float("inf")


def test_a_per_item_retry_comes_back_after_a_jittered_exponential_backoff() -> None:
    rng = random.Random(1)
    delays = [backoff_s(attempt, rng) for attempt in range(1, 12)]
    assert all(0.25 <= d <= 60.0 for d in delays)
    assert delays[3] > delays[0]
    assert max(delays) <= 60.0
    queue, clock = queue_for(per_item_lane())
    queue.put(listing("A"), 4, TS)
    batch = take(queue, clock())
    queue.sent(batch)
    queue.settle(batch, [Outcome(applied=False, retry=True, reason="stale", shown=7)], clock())
    assert queue.known["A-new"] == 7
    wait = queue.take(clock())
    assert isinstance(wait, float) and 0.25 <= wait <= 0.5
    clock.advance(wait)
    assert skus(take(queue, clock())) == ["A"]


def test_a_retried_item_superseded_by_a_newer_quantity_is_not_sent_again() -> None:
    queue, clock = queue_for(per_item_lane())
    heard: list[bool] = []
    queue.put(listing("A"), 4, TS, lambda ok, _: heard.append(ok))
    batch = take(queue, clock())
    queue.put(listing("A"), 9, TS)
    queue.sent(batch)
    queue.settle(batch, [Outcome(applied=False, retry=True, reason="E500")], clock())
    clock.advance(60)
    again = take(queue, clock())
    assert [i.qty for i in again.items] == [9]
    apply_all(queue, again, clock())
    assert heard == [True]


def test_revision_cap_keeps_a_reserve_for_decreases() -> None:
    day = [datetime(2026, 12, 5, 8, tzinfo=UTC)]
    revisions = RevisionBudget(10, now=lambda: day[0])
    queue, clock = queue_for(per_item_lane(rate=1000, burst=1000), revisions=revisions)
    key = "A-new"
    sent: list[int] = []
    for qty in range(1, 20):
        queue.put(listing("A"), qty, TS)
        decision = queue.take(clock())
        if isinstance(decision, Batch):
            sent.append(decision.items[0].qty)
            apply_all(queue, decision, clock())
    assert revisions.used(key) == 8  # 10 minus a reserve of 2 for decreases
    assert not isinstance(queue.take(clock()), Batch)
    queue.put(listing("A"), 0, TS)
    assert isinstance(queue.take(clock()), Batch)
    day[0] += timedelta(days=1)
    assert revisions.used(key) == 0


def bulk_lane(processing_s: float = 60.0) -> FakeLane:
    return FakeLane(
        "feed",
        LaneLimits(rate=1 / 60, burst=5, batch=10_000, processing_s=processing_s),
        asynchronous=True,
    )


def test_a_backlog_longer_than_a_feed_goes_by_feed_but_zeros_stay_on_the_fast_lane() -> None:
    queue, clock = queue_for(per_item_lane(rate=5, burst=5), bulk_lane(processing_s=60))
    queue.put(listing("SOLD"), 0, TS)
    for n in range(2000):
        queue.known[f"UP{n}-new"] = 0
        queue.put(listing(f"UP{n}"), 3, TS)
    bulk = take(queue, clock())
    assert bulk.lane == 1
    assert "SOLD" not in skus(bulk)
    # the per-item lane keeps what it can send within the feed's processing time
    assert len(bulk.items) == 2000 - int(5 * HEADROOM * 60)
    fast = take(queue, clock())
    assert (fast.lane, skus(fast)) == (0, ["SOLD"])


def test_a_short_backlog_stays_on_the_per_item_lane() -> None:
    queue, clock = queue_for(per_item_lane(rate=5, burst=5), bulk_lane(processing_s=60))
    for n in range(200):
        queue.put(listing(f"S{n}"), 3, TS)
    assert take(queue, clock()).lane == 0


def test_a_change_queued_behind_one_in_flight_is_ranked_by_what_was_then_accepted() -> None:
    queue, clock = queue_for(per_item_lane(rate=100, burst=100))
    queue.put(listing("A"), 5, TS)  # unknown shown: ranked as a decrease
    in_flight = take(queue, clock())
    queue.put(listing("A"), 7, TS)  # still unknown: a decrease too
    queue.known["B-new"] = 9
    queue.put(listing("B"), 8, TS)  # a real decrease, queued after A's 7
    apply_all(queue, in_flight, clock())  # A now shows 5, so 7 is an increase
    assert skus(take(queue, clock())) == ["B"]


def test_a_request_from_a_full_bucket_is_charged_for_its_time_on_the_way() -> None:
    """The platform's bucket stays full until the request arrives, so what ours
    refilled meanwhile is not there: the next request waits for it."""
    clock = FakeClock()
    budget = LaneBudget(LaneLimits(rate=5, burst=5, batch=1), clock)
    first = budget.spend(1)
    for _ in range(4):
        budget.spend(1)
    clock.advance(0.5)  # a token refresh, then the first reply
    budget.accepted(BudgetReport(), first)
    assert budget.available() == pytest.approx(0.0)
    assert budget.wait_s(1) == pytest.approx(1 / (5 * HEADROOM))


def test_a_request_from_a_partly_spent_bucket_costs_only_itself() -> None:
    clock = FakeClock()
    budget = LaneBudget(LaneLimits(rate=5, burst=5, batch=1), clock)
    budget.spend(1)
    second = budget.spend(1)
    clock.advance(0.1)
    budget.accepted(BudgetReport(), second)
    assert budget.available() == pytest.approx(3 + 0.1 * 5 * HEADROOM)


def test_a_rate_the_seller_lowered_is_not_raised_by_the_platforms_report() -> None:
    """Another app shares the account's budget: the platform reports the whole plan."""
    clock = FakeClock()
    budget = LaneBudget(LaneLimits(rate=3, burst=3, batch=1), clock)
    budget.accepted(BudgetReport(rate=5, capacity=5))
    assert budget.ceiling == 3 and budget.capacity == 3
    budget.accepted(BudgetReport(rate=2))
    assert budget.ceiling == 2
