"""A compare-and-swap the store refused: the next push of that item goes without the
compare value, so a listing that keeps selling is set instead of refused again and
again; and when the store's bucket has no room (a backlog) no read-back is spent
beyond the budget."""

from __future__ import annotations

import pytest

from invsync.gateway.platforms.base import Change
from invsync.sandbox.market import Bucket
from tests.unit.test_shopify_profile import NOW, listing, rig

pytestmark = pytest.mark.anyio


async def test_a_stale_item_with_no_room_to_read_is_sent_next_without_the_check() -> None:
    async with rig() as r:
        await r.lane.send(r.http, [Change(listing(0), 10, None, NOW)])
        async with r.http.post(
            f"{r.url}/sandbox/sale",
            json={"platform": "shopify", "listing": listing(0).ids["inventory_item_id"], "qty": 3},
        ) as resp:
            assert resp.status == 200
        # Room for the mutation (11 points) and not for a read beside it.
        r.store.bucket = Bucket(rate=1e-9, capacity=11.0, clock=lambda: 0.0)
        counters = r.store.market.counters
        requests = counters.requests
        (stale,) = (await r.lane.send(r.http, [Change(listing(0), 4, 10, NOW)])).outcomes
        assert (stale.applied, stale.retry, stale.shown) == (False, True, None)
        assert (counters.requests - requests, counters.throttled) == (1, 0)
        r.store.bucket = Bucket(rate=100.0, capacity=1000.0)
        # The scheduler still believes 10: the store must not be asked to compare it.
        (again,) = (await r.lane.send(r.http, [Change(listing(0), 4, 10, NOW)])).outcomes
        assert again.applied
        assert r.shown(0) == 4


async def test_a_listing_that_keeps_selling_is_set_on_the_retry_after_a_stale_one() -> None:
    async with rig() as r:
        key = listing(0).ids["inventory_item_id"]

        async def sell(qty: int) -> None:
            async with r.http.post(
                f"{r.url}/sandbox/sale", json={"platform": "shopify", "listing": key, "qty": qty}
            ) as resp:
                assert resp.status == 200

        await r.lane.send(r.http, [Change(listing(0), 10, None, NOW)])
        await sell(3)
        (stale,) = (await r.lane.send(r.http, [Change(listing(0), 4, 10, NOW)])).outcomes
        assert (stale.applied, stale.shown) == (False, 7)
        await sell(1)  # between the read and the retry, as in a flash sale
        (again,) = (await r.lane.send(r.http, [Change(listing(0), 4, stale.shown, NOW)])).outcomes
        assert again.applied
        assert r.shown(0) == 4
