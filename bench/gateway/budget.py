"""Per platform, how much of its documented request budget the gateway's scheduler uses
under a backlog, and whether the sandbox (which enforces the same budget) throttled it;
then time to zero: one SKU sells out while 10,000 increases are queued.

    PYTHONPATH=python python bench/gateway/budget.py [--window 10]

Sandbox and scheduler run in this process on loopback. Every loop is bounded in count
and time. The budget used is what the lane's bucket allows over the window (its burst
plus its refill), in requests; a share under 100% is time the scheduler left unused.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio

from invsync.flashsale.marketplaces import environment, new_credentials, write_channels
from invsync.gateway.budget import RevisionBudget
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import profile_factory
from invsync.gateway.scheduler import Scheduler
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings

PLATFORMS = ("shopify", "amazon", "ebay")
QUEUED_INCREASES = 10_000
MAX_LISTINGS = 20_000


async def one_platform(platform: str, window_s: float, folder: Path) -> dict[str, float]:
    probe = write_channels(folder, {platform: platform}, ["probe"], base_url="http://127.0.0.1:1")
    channel = load_channels(probe).channels[0]
    lane = profile_factory(platform)(channel.settings(channel.secrets(folder))).lanes[0].limits
    per_request = lane.cost(lane.batch)
    allowance = (lane.burst + lane.rate * window_s) / per_request
    count = min(MAX_LISTINGS, int(allowance * lane.batch * 1.3) + QUEUED_INCREASES // 10)
    skus = [f"S{n:05d}" for n in range(count)]
    # Amazon's feed lane would take the backlog; this measures the per-item lane.
    path = write_channels(folder, {platform: platform}, skus)
    sandbox = Sandbox(storefronts(load_channels(path), SandboxSettings()), OrderBook(None))
    (market,) = sandbox.markets
    async with (
        serving(sandbox, port=0) as port,
        aiohttp.ClientSession() as http,
        anyio.create_task_group() as tasks,
    ):
        path = write_channels(folder, {platform: platform}, skus, f"http://127.0.0.1:{port}")
        channel = load_channels(path).channels[0]
        options = dict(channel.options)
        if platform == "amazon":
            options["feed_processing_s"] = "1e9"
        settings = channel.settings(channel.secrets(folder))
        settings = type(settings)(**{**settings.__dict__, "options": options})
        profile = profile_factory(platform)(settings)
        listings = read_listing_csv(channel.listings_path(folder), profile.id_fields)
        revisions = (
            None if profile.daily_revisions is None else RevisionBudget(profile.daily_revisions)
        )
        scheduler = Scheduler(
            profile,
            http,
            GatewayMetrics().channel(platform),
            lambda _l, _r: None,
            revisions=revisions,
        )
        tasks.start_soon(scheduler.run)
        now = datetime.now(UTC)
        for listing in listings:
            scheduler.put(listing, 5, now)
        start = time.monotonic()
        await anyio.sleep(window_s)
        used = market.counters.requests
        # Time to zero: the first listing sells out behind everything still queued.
        for listing in listings[1:]:
            scheduler.put(listing, 6, datetime.now(UTC))
        zero_at = time.monotonic()
        scheduler.put(listings[0], 0, datetime.now(UTC))
        key = profile.listing_key(listings[0])
        with anyio.move_on_after(60):
            while market.listings[key].qty != 0:
                await anyio.sleep(0.005)
        to_zero = time.monotonic() - zero_at
        tasks.cancel_scope.cancel()
    return {
        "rate_per_s": lane.rate / per_request,
        "allowance": allowance,
        "requests": used,
        "share": used / allowance,
        "throttled": market.counters.throttled,
        "elapsed": time.monotonic() - start,
        "to_zero_s": to_zero,
        "slot_s": per_request / lane.rate,
    }


async def main(window_s: float) -> None:
    print(f"window {window_s:.0f} s per platform; budget = burst + refill over the window")
    print("platform  budget req/s  allowed  sent  share  throttled  time to zero  one slot")
    for platform in PLATFORMS:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            with environment(new_credentials({platform: platform})):
                r = await one_platform(platform, window_s, folder)
        print(
            f"{platform:<8}  {r['rate_per_s']:>12.2f}  {r['allowance']:>7.0f}  "
            f"{r['requests']:>4.0f}  {r['share']:>5.1%}  {r['throttled']:>9.0f}  "
            f"{r['to_zero_s']:>10.3f} s  {r['slot_s']:.3f} s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0)
    anyio.run(main, parser.parse_args().window)
