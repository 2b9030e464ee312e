"""How much of a Shopify store's cost budget the gateway uses under a backlog, how
much it overspends (the store's throttled counter), and how soon a sold-out listing's
zero reaches the store behind the backlog.

Run:  python bench/load/shopify_budget.py [--listings 150000] [--window 20] [--plan standard]

In process, on loopback: the Shopify sandbox (the store), the Shopify profile and the
shared push scheduler (the gateway's sending side). The whole backlog is queued at
once; after the store's bucket has drained, the share of the budget used is the cost
of the requests the store accepted in `--window` seconds over what the plan restores
in that time. Then one listing's zero is queued behind what is left of the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import aiohttp
import anyio

from invsync.gateway.metrics import ChannelMetrics, GatewayMetrics
from invsync.gateway.platforms.base import Listing, ProfileSettings
from invsync.gateway.platforms.shopify import PROFILE
from invsync.gateway.scheduler import Scheduler
from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopify as doc
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import ShopifySandbox

TOKEN = Secret("bench", "shpat_bench")
TS = datetime(2026, 12, 5, tzinfo=UTC)
MAX_RUN_S = 600.0


def listing(n: int) -> Listing:
    ids = {
        "inventory_item_id": f"gid://shopify/InventoryItem/{n}",
        "location_id": "gid://shopify/Location/1",
    }
    return Listing(f"S{n}", "new", ids)


async def run(listings: int, window_s: float, plan: str) -> None:
    market = Market("shopify", "bench", options={"plan": plan})
    store = ShopifySandbox(market, {"access_token": TOKEN}, SandboxSettings())
    front = Storefront(
        store, ("inventory_item_id", "location_id"), lambda li: li.ids["inventory_item_id"]
    )
    for n in range(listings):
        front.add(listing(n), qty=1)
    rate = store.bucket.rate
    alerts: list[str] = []
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
        anyio.create_task_group() as tasks,
    ):
        settings = ProfileSettings(
            "bench", f"http://127.0.0.1:{port}", {"access_token": TOKEN}, {"plan": plan}, {}
        )
        scheduler = Scheduler(
            PROFILE(settings),
            http,
            ChannelMetrics(GatewayMetrics(), "bench"),
            lambda _listing, reason: alerts.append(reason),
        )
        tasks.start_soon(scheduler.run)
        started = time.monotonic()
        for n in range(listings):
            scheduler.put(listing(n), 5, TS)  # increases: 1 -> 5
        # Wait until the store's bucket is drained: from then on only the restore
        # rate limits, which is the budget to use.
        with anyio.fail_after(MAX_RUN_S):
            while store.bucket.available() > 2 * doc.SET_QUANTITIES_COST:
                await anyio.sleep(0.05)
        counters = market.counters
        accepted_before = counters.requests - counters.throttled - counters.rejected
        left_before, t0 = store.bucket.available(), time.monotonic()
        await anyio.sleep(window_s)
        left_after, elapsed = store.bucket.available(), time.monotonic() - t0
        accepted = counters.requests - counters.throttled - counters.rejected - accepted_before
        # What the store restored in the window, and how much of it was spent (the
        # points left in the bucket at the start were not restored in the window).
        spent = accepted * doc.SET_QUANTITIES_COST - (left_before - left_after)
        used = spent / (rate * elapsed)
        backlog = scheduler.queue.backlog()

        sold_out = listing(listings - 1)  # its increase is still at the back of the queue
        key = sold_out.ids["inventory_item_id"]
        queued_at = time.monotonic()
        scheduler.put(sold_out, 0, TS)
        with anyio.fail_after(MAX_RUN_S):
            while market.listings[key].qty != 0:
                await anyio.sleep(0.001)
        zero_s = time.monotonic() - queued_at
        tasks.cancel_scope.cancel()
    slot_s = doc.SET_QUANTITIES_COST / rate
    print(
        f"Shopify plan {plan}: restore {rate:g} points/s, {doc.SET_QUANTITIES_COST} points per request of up to {doc.MAX_INPUT_ITEMS}"
    )
    print(
        f"backlog {listings:,} increases; {backlog:,} still queued after {time.monotonic() - started:.1f} s"
    )
    print(
        f"budget used over {elapsed:.1f} s after the bucket drained: {used:.1%} ({accepted} requests accepted)"
    )
    print(
        f"throttled requests (over budget): {counters.throttled}; refused: {counters.rejected}; alerts: {len(alerts)}"
    )
    print(
        f"a zero queued behind the backlog reached the store in {zero_s * 1000:.0f} ms (one budget slot = {slot_s * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=150_000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--plan", default=doc.DEFAULT_PLAN, choices=sorted(doc.PLAN_RESTORE_RATES))
    args = parser.parse_args()
    asyncio.run(run(args.listings, args.window, args.plan))


if __name__ == "__main__":
    main()
