"""Push quantities through the shared scheduler until the platform answered every one: how
the channel tests show a profile clearing a backlog as `invsync connect` would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import anyio
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.base import Listing, Price, Profile
from invsync.gateway.scheduler import HoldReport, Scheduler

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def push_all(
    profile: Profile,
    http: aiohttp.ClientSession,
    pushes: Sequence[tuple[Listing, int, int]],
    timeout_s: float = 20.0,
    holds: list[tuple[str, int, int, str]] | None = None,
    prices: Sequence[tuple[Listing, Price]] = (),
) -> tuple[list[bool], list[str]]:
    """Queue each (listing, quantity shown now, quantity to show) and each (listing,
    price), and run the scheduler until every push is settled; returns whether each was
    applied (in the order the platform answered), and the alerts. `holds` collects each
    platform hold as (stock SKU, decided, held, reason)."""
    alerts: list[str] = []
    settled: list[bool] = []
    done = anyio.Event()

    def heard(applied: bool, reason: str | None) -> None:
        settled.append(applied)
        if len(settled) == len(pushes) + len(prices):
            done.set()

    scheduler = Scheduler(
        profile,
        http,
        GatewayMetrics(CollectorRegistry()).channel(profile.platform),
        lambda listing, reason: alerts.append(reason),
        report_hold=None if holds is None else _collect(holds),
    )
    for listing, shown, qty in pushes:
        scheduler.queue.known[profile.listing_key(listing)] = shown
        scheduler.put(listing, qty, TS, heard)
    for listing, price in prices:
        scheduler.put_price(listing, price, TS, heard)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(scheduler.run)
        with anyio.fail_after(timeout_s):
            await done.wait()
        tasks.cancel_scope.cancel()
    return settled, alerts


def _collect(holds: list[tuple[str, int, int, str]]) -> HoldReport:
    def report(listing: Listing, decided: int, held: int, reason: str) -> None:
        holds.append((listing.sku, decided, held, reason))

    return report
