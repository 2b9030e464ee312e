"""The gateway against the sandbox, per platform and in one run: the share of the
platform's documented budget used under a backlog (and the sandbox's throttled
counter), how soon a sold-out listing's zero lands behind 10,000 queued increases,
and the push latency at 1,000 changes a second over 10,000 listings.

Run:  PYTHONPATH=python python bench/gateway/budget.py [--platform amazon ...]
          [--window 20] [--rate 1000] [--skus 10000] [--duration 20] [--patience 60]
          [--variants 10]

In process, on loopback: each platform's sandbox from a generated channels file (the
same one `invsync connect` would read), the platform's profile and the shared push
scheduler. Budgets are the documented ones (`invsync.marketplaces.<platform>`).
TikTok Shop and Shopee update one product (item) per call, Lazada any SKUs: listings
are `--variants` SKUs to a product, so such a call carries at most that many.
- Budget: after the lane's bucket has drained, requests the platform accepted in
  `--window` seconds, times their cost, over what the documented rate allows in that
  time (tokens left in the gateway's bucket at either end corrected for).
- Time to zero: 10,000 increases queued, then one listing's zero; "one slot" is one
  request's share of the budget (its cost over the rate).
- Latency: `--rate` changes a second over `--skus` listings for `--duration` seconds,
  each timed from being queued to the platform accepting it (the service's own sync
  latency, event `ts` to `inv.qty`, adds to it: see the service tables). Changes
  still unaccepted `--patience` seconds after the last one are counted, not waited
  for: Amazon's and Walmart's feeds take minutes as documented.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio

from invsync.flashsale.marketplaces import (
    PLATFORMS,
    environment,
    new_credentials,
    write_channels,
)
from invsync.gateway.budget import RevisionBudget
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import profile_factory
from invsync.gateway.platforms.base import LaneLimits, Listing, Profile
from invsync.gateway.scheduler import Scheduler, Settled
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings

QUEUED_INCREASES = 10_000
MAX_WAIT_S = 600.0
SETTLE_S = 2.0
TS = datetime(2026, 12, 5, tzinfo=UTC)


@dataclass
class Rig:
    scheduler: Scheduler
    profile: Profile
    market: Market
    listings: list[Listing]
    alerts: list[str]

    variants: int

    @property
    def lane(self) -> LaneLimits:
        return self.profile.lanes[0].limits

    @property
    def feed_s(self) -> float | None:
        """The documented processing time of the platform's feed lane, if it has one."""
        feeds = [lane.limits.processing_s for lane in self.profile.lanes if lane.asynchronous]
        return feeds[0] if feeds else None

    def per_request(self) -> int:
        """Changes one request of the per-item lane carries at most."""
        batch = self.lane.batch
        return batch if self.lane.group_by is None else min(batch, self.variants)

    def accepted(self) -> int:
        c = self.market.counters
        return c.requests - c.throttled - c.rejected

    def shown(self, listing: Listing) -> int:
        return self.market.listings[self.profile.listing_key(listing)].qty


@asynccontextmanager
async def rig(platform: str, count: int, variants: int) -> AsyncIterator[Rig]:
    """`count` listings of `platform` on a sandbox (`variants` to a product), and a
    scheduler pushing to it."""
    channels = {platform: platform}
    skus = [f"S{n:06d}" for n in range(count)]
    with (
        tempfile.TemporaryDirectory(prefix="invsync-bench-") as tmp,
        environment(new_credentials(channels)),
    ):
        folder = Path(tmp)
        path = write_channels(folder, channels, skus, variants=variants)
        sandbox = Sandbox(storefronts(load_channels(path), SandboxSettings()), OrderBook(None))
        (market,) = sandbox.markets
        alerts: list[str] = []
        async with (
            serving(sandbox, port=0) as port,
            aiohttp.ClientSession() as http,
            anyio.create_task_group() as tasks,
        ):
            path = write_channels(folder, channels, skus, f"http://127.0.0.1:{port}", variants)
            (channel,) = load_channels(path).channels
            profile = profile_factory(platform)(channel.settings(channel.secrets(folder)))
            cap = profile.daily_revisions
            scheduler = Scheduler(
                profile,
                http,
                GatewayMetrics().channel(platform),
                lambda _listing, reason: alerts.append(reason),
                revisions=None if cap is None else RevisionBudget(cap),
            )
            listings = read_listing_csv(channel.listings_path(folder), profile.id_fields)
            tasks.start_soon(scheduler.run)
            yield Rig(scheduler, profile, market, listings, alerts, variants)
            tasks.cancel_scope.cancel()


async def backlog(platform: str, window_s: float, variants: int) -> dict[str, float]:
    probe, items = await _limits(platform, variants)
    per_request = probe.cost(items)
    # Enough full requests to outlast the burst and the window (and no more: a larger
    # Amazon or Walmart backlog goes by feed, a different budget).
    needed = int((probe.burst + probe.rate * window_s * 1.5) / per_request * items)
    async with rig(platform, max(QUEUED_INCREASES, needed), variants) as r:
        budget = r.scheduler.queue.budgets[0]
        for listing in r.listings[:needed]:
            r.scheduler.put(listing, 5, TS)
        with anyio.fail_after(MAX_WAIT_S):
            while budget.available() > per_request:
                await anyio.sleep(0.01)
        # The burst's requests still in flight land first: measure from a steady state.
        await anyio.sleep(SETTLE_S)
        before, left_before, t0 = r.accepted(), budget.available(), time.monotonic()
        await anyio.sleep(window_s)
        left_after, elapsed = budget.available(), time.monotonic() - t0
        requests = r.accepted() - before
        used = (requests * per_request - (left_before - left_after)) / (r.lane.rate * elapsed)
        # Fill the queue to 10,000 increases; then a listing that shows stock sells out.
        sold_out = r.listings[0]
        assert r.shown(sold_out) == 5, "the first listing's increase was sent first"
        for listing in r.listings[needed:]:
            r.scheduler.put(listing, 5, TS)
        missing = max(0, QUEUED_INCREASES - r.scheduler.queue.backlog())
        for listing in r.listings[1 : 1 + missing]:
            r.scheduler.put(listing, 6, TS)
        queued = r.scheduler.queue.backlog()
        queued_at = time.monotonic()
        r.scheduler.put(sold_out, 0, TS)
        with anyio.fail_after(MAX_WAIT_S):
            while r.shown(sold_out) != 0:
                await anyio.sleep(0.001)
        zero_s = time.monotonic() - queued_at
        return {
            "rate": r.lane.rate / per_request,
            "requests": requests,
            "used": used,
            "throttled": r.market.counters.throttled,
            "queued": queued,
            "zero_s": zero_s,
            "slot_s": per_request / r.lane.rate,
            "alerts": len(r.alerts),
        }


async def _limits(platform: str, variants: int) -> tuple[LaneLimits, int]:
    async with rig(platform, 1, variants) as r:
        return replace(r.lane), r.per_request()


async def latency(
    platform: str, rate: float, skus: int, duration_s: float, patience_s: float, variants: int
) -> dict[str, float]:
    waits: list[float] = []
    async with rig(platform, skus, variants) as r:

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
            r.scheduler.put(r.listings[i % skus], 2 + i % 7, TS, timed(time.monotonic()))
        achieved = total / (time.monotonic() - start)
        with anyio.move_on_after(patience_s):
            while r.scheduler.queue.backlog():
                await anyio.sleep(0.01)
        left = r.scheduler.queue.backlog()
        cuts = statistics.quantiles(waits, n=100) if len(waits) > 1 else [float("nan")] * 99
        return {
            "changes": total,
            "achieved": achieved,
            "accepted": len(waits),
            "left": left,
            "p50": cuts[49],
            "p99": cuts[98],
            "slot_s": r.lane.cost(r.per_request()) / r.lane.rate,
            "capacity": r.lane.rate / r.lane.cost(r.per_request()) * r.per_request(),
            "feed_s": r.feed_s or 0.0,
            "throttled": r.market.counters.throttled,
        }


async def main(args: argparse.Namespace) -> None:
    print(
        f"budget window {args.window:g} s; latency {args.rate:g} changes/s over {args.skus:,}; "
        f"{args.variants} SKUs to a product"
    )
    print("platform  req/s  sent  used    throttled  zero behind the queue  one slot")
    for platform in args.platform:
        b = await backlog(platform, args.window, args.variants)
        print(
            f"{platform:<8}  {b['rate']:5.2f}  {b['requests']:4.0f}  {b['used']:6.1%}  "
            f"{b['throttled']:9.0f}  {b['zero_s'] * 1000:9.0f} ms ({b['queued']:,.0f} queued)"
            f"  {b['slot_s'] * 1000:.0f} ms"
        )
    print(
        "platform  changes  achieved/s  accepted  unaccepted  p50 ms  p99 ms  slot ms  "
        "lane changes/s  feed s  throttled"
    )
    for platform in args.platform:
        lat = await latency(
            platform, args.rate, args.skus, args.duration, args.patience, args.variants
        )
        print(
            f"{platform:<8}  {lat['changes']:7,.0f}  {lat['achieved']:10.0f}  "
            f"{lat['accepted']:8,.0f}  {lat['left']:10,.0f}  {lat['p50'] * 1000:6.0f}  "
            f"{lat['p99'] * 1000:6.0f}  {lat['slot_s'] * 1000:7.0f}  "
            f"{lat['capacity']:14.0f}  {lat['feed_s']:6.0f}  {lat['throttled']:9.0f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", choices=PLATFORMS)
    parser.add_argument("--window", type=float, default=20.0, help="seconds of budget measured")
    parser.add_argument("--rate", type=float, default=1000.0, help="changes per second")
    parser.add_argument("--skus", type=int, default=10_000, help="listings the changes spread over")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady changes")
    parser.add_argument(
        "--patience", type=float, default=60.0, help="seconds to wait for the last changes"
    )
    parser.add_argument(
        "--variants", type=int, default=10, help="SKUs to a product (TikTok, Shopee, Lazada)"
    )
    parsed = parser.parse_args()
    parsed.platform = parsed.platform or list(PLATFORMS)
    anyio.run(main, parsed)
