"""Shopify under load: how much of a store's cost budget the gateway uses under a
backlog, how much it overspends (the store's throttled counter), how soon a sold-out
listing's zero reaches the store behind the backlog, and the push latency at a steady
rate of changes.

Run:  python bench/load/shopify_budget.py [--listings 150000] [--window 20] [--plan standard]
                                          [--rate 1000] [--skus 10000] [--duration 20]

In process, on loopback: the Shopify sandbox (the store), the Shopify profile and the
shared push scheduler (the gateway's sending side).
- Backlog: every listing's increase is queued at once; after the store's bucket has
  drained, the share of the budget used is the cost of the requests the store
  accepted in `--window` seconds over what the plan restored in that time. Then one
  listing's zero is queued behind what is left of the backlog.
- Latency: `--rate` changes per second spread over `--skus` listings for
  `--duration` seconds, each timed from being queued to the store accepting it.
  The floor the budget sets is one request slot (a request's cost over the restore
  rate): a change waits at most that long for the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import anyio

from invsync.gateway.metrics import ChannelMetrics, GatewayMetrics
from invsync.gateway.platforms.base import Listing, ProfileSettings
from invsync.gateway.platforms.shopify import PROFILE
from invsync.gateway.scheduler import Scheduler, Settled
from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopify as doc
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import ShopifySandbox

TOKEN = Secret("bench", "shpat_bench")
TS = datetime(2026, 12, 5, tzinfo=UTC)
MAX_WAIT_S = 600.0


def listing(n: int) -> Listing:
    ids = {
        "inventory_item_id": f"gid://shopify/InventoryItem/{n}",
        "location_id": "gid://shopify/Location/1",
    }
    return Listing(f"S{n}", "new", ids)


def key(n: int) -> str:
    return listing(n).ids["inventory_item_id"]


@dataclass
class Rig:
    scheduler: Scheduler
    store: ShopifySandbox
    alerts: list[str]

    @property
    def market(self) -> Market:
        return self.store.market

    def accepted(self) -> int:
        c = self.market.counters
        return c.requests - c.throttled - c.rejected


@asynccontextmanager
async def rig(listings: int, plan: str) -> AsyncIterator[Rig]:
    store = ShopifySandbox(
        Market("shopify", "bench", options={"plan": plan}),
        {"access_token": TOKEN},
        SandboxSettings(),
    )
    front = Storefront(
        store, ("inventory_item_id", "location_id"), lambda li: li.ids["inventory_item_id"]
    )
    for n in range(listings):
        front.add(listing(n), qty=1)
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
        yield Rig(scheduler, store, alerts)
        tasks.cancel_scope.cancel()


async def backlog(listings: int, window_s: float, plan: str) -> None:
    async with rig(listings, plan) as r:
        rate = r.store.bucket.rate
        started = time.monotonic()
        for n in range(listings):
            r.scheduler.put(listing(n), 5, TS)  # increases: 1 -> 5
        # From the moment the bucket is drained only the restore rate limits.
        with anyio.fail_after(MAX_WAIT_S):
            while r.store.bucket.available() > 2 * doc.SET_QUANTITIES_COST:
                await anyio.sleep(0.05)
        before, left_before, t0 = r.accepted(), r.store.bucket.available(), time.monotonic()
        await anyio.sleep(window_s)
        left_after, elapsed = r.store.bucket.available(), time.monotonic() - t0
        accepted = r.accepted() - before
        # Points spent out of what was restored in the window (those left in the
        # bucket when it opened were not).
        used = (accepted * doc.SET_QUANTITIES_COST - (left_before - left_after)) / (rate * elapsed)
        queued = r.scheduler.queue.backlog()

        last = listings - 1  # its increase is still at the back of the queue
        queued_at = time.monotonic()
        r.scheduler.put(listing(last), 0, TS)
        with anyio.fail_after(MAX_WAIT_S):
            while r.market.listings[key(last)].qty != 0:
                await anyio.sleep(0.001)
        zero_s = time.monotonic() - queued_at
        counters = r.market.counters
    slot_s = doc.SET_QUANTITIES_COST / rate
    print(
        f"Shopify plan {plan}: restore {rate:g} points/s, {doc.SET_QUANTITIES_COST} points a request"
    )
    print(
        f"backlog of {listings:,} increases: {queued:,} still queued after {t0 + elapsed - started:.1f} s"
    )
    print(
        f"budget used over {elapsed:.1f} s once the bucket drained: {used:.1%} ({accepted} requests)"
    )
    print(
        f"throttled (over budget): {counters.throttled}; refused: {counters.rejected}; alerts: {len(r.alerts)}"
    )
    print(
        f"a zero behind the backlog reached the store in {zero_s * 1000:.0f} ms (one slot: {slot_s * 1000:.0f} ms)"
    )


async def latency(rate: float, skus: int, duration_s: float, plan: str) -> None:
    waits: list[float] = []
    async with rig(skus, plan) as r:

        def timed(queued_at: float) -> Settled:
            def settled(applied: bool, _reason: str | None) -> None:
                if applied:
                    waits.append(time.monotonic() - queued_at)

            return settled

        total = int(rate * duration_s)
        start = time.monotonic()
        for i in range(total):  # paced: change i is due at start + i / rate
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                await anyio.sleep(ahead)
            r.scheduler.put(listing(i % skus), 2 + i % 7, TS, timed(time.monotonic()))
        with anyio.fail_after(MAX_WAIT_S):
            while r.scheduler.queue.backlog():
                await anyio.sleep(0.01)
        sent_rate = total / (time.monotonic() - start)
        counters = r.market.counters
        slot_s = doc.SET_QUANTITIES_COST / r.store.bucket.rate
    cuts = statistics.quantiles(waits, n=100)
    print(f"{total:,} changes at {rate:g}/s over {skus:,} listings ({sent_rate:.0f}/s achieved)")
    print(
        f"queued -> accepted: p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms over {len(waits):,} accepted"
    )
    print(
        f"budget floor: one slot {slot_s * 1000:.0f} ms; throttled: {counters.throttled}; alerts: {len(r.alerts)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=150_000, help="backlog size")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of budget measured")
    parser.add_argument("--plan", default=doc.DEFAULT_PLAN, choices=sorted(doc.PLAN_RESTORE_RATES))
    parser.add_argument("--rate", type=float, default=1000.0, help="changes per second")
    parser.add_argument("--skus", type=int, default=10_000, help="listings the changes spread over")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady changes")
    args = parser.parse_args()
    asyncio.run(backlog(args.listings, args.window, args.plan))
    asyncio.run(latency(args.rate, args.skus, args.duration, args.plan))


if __name__ == "__main__":
    main()
