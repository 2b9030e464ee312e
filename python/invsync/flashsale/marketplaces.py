"""A flash sale whose marketplace channels sell through the sandbox, so the loop is closed.

For every policy channel named after a platform the sandbox emulates (shopify, amazon,
ebay, walmart, tiktok, shopee, lazada), the run generates a channels file, one listing
CSV and random credentials (handed over in environment variables, never printed), then
starts `invsync sandbox`'s marketplaces and `invsync connect`'s gateway in this process. A
marketplace order on such a channel is a sale on the sandbox (`POST /sandbox/sale`):
the sandbox refuses what its listing cannot show, and the `order.placed` reaches the
service only after the platform's order delay, through the driver (so the checker
replays it in the order the service logs it). Push lag and order lag are real.

At the end it reports per channel: push latency (the gateway's own histogram: event
`ts` to the marketplace accepting the quantity it led to; an order's `ts` is its sale,
so its order lag counts too), throttled requests, and what the marketplace shows
against what invsync last decided.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
from prometheus_client import CollectorRegistry

from invsync.events import OrderPlaced, encode_json
from invsync.flashsale.checker import BackorderCause, SkuState
from invsync.marketplaces import amazon as az
from invsync.marketplaces import lazada as lz
from invsync.marketplaces import shopee as sp
from invsync.marketplaces import tiktok as tt
from invsync.marketplaces import walmart as wm
from invsync.sandbox.orders import DeliveryError
from invsync.service.config import ConnectionOptions

# The platforms a policy channel of the same name is sold through on the sandbox.
PLATFORMS = ("shopify", "amazon", "ebay", "walmart", "tiktok", "shopee", "lazada")
CREDENTIALS: Mapping[str, tuple[str, ...]] = {
    "shopify": ("access_token",),
    "amazon": az.CREDENTIALS,
    "ebay": ("refresh_token", "client_id", "client_secret"),
    "walmart": wm.CREDENTIALS,
    "tiktok": tt.CREDENTIALS,
    "shopee": sp.CREDENTIALS,
    "lazada": lz.CREDENTIALS,
}
# A rehearsal's delays: each platform's documented order delay (Amazon's is minutes)
# and feed processing time (Amazon's minutes, Walmart's half an hour) would make a demo
# wait for minutes. Rate budgets and batch limits stay the documented ones.
ORDER_DELAY_S = 1.0
FEED_PROCESSING_S = 1.0
# The documented figures the two above stand in for (seconds), as the run reports them.
DOCUMENTED_ORDER_DELAY_S: Mapping[str, float] = {
    "amazon": az.ORDER_DELAY_S,
    "walmart": wm.ORDER_DELAY_S,
    "shopee": sp.ORDER_DELAY_S,
    "lazada": lz.ORDER_DELAY_S,
    "tiktok": tt.ORDER_DELAY_S,
}
DOCUMENTED_FEED_PROCESSING_S: Mapping[str, float] = {
    "amazon": az.FEED_PROCESSING_S,
    "walmart": wm.FEED_PROCESSING_S,
}
# The channels' options. The gateway keeps the documented feed processing times, so it
# sends by feed (Amazon, Walmart) only a backlog that the per-item lane could not clear
# in that time; the sandbox processes faster, for a short run.
SHOPIFY_LOCATION = "gid://shopify/Location/1"
TIKTOK_WAREHOUSE = "7068517275539719942"
OPTIONS: Mapping[str, Mapping[str, str]] = {
    "shopify": {"shop": "invsync-demo"},
    "amazon": {"seller_id": "A2DEMOSELLER", "marketplace_id": "ATVPDKIKX0DER"},
    "tiktok": {"shop_cipher": "ROW_invsyncdemo"},
    "shopee": {"partner_id": "2001887", "shop_id": "225383"},
    "lazada": {"app_key": "100132"},
}
GATEWAY_READY_TIMEOUT_S = 20.0
SALE_TIMEOUT_S = 5.0
# Before the sale: the opening quantities at Amazon's 5 and Walmart's 3.3 requests a
# second.
OPENING_TIMEOUT_S = 30.0
# After the sale: orders still owed by the marketplaces, then the last pushes.
ORDERS_DUE_TIMEOUT_S = 15.0
CONVERGE_MAX_S = 120.0
# With nothing left to send, a marketplace that still differs is given this long.
IDLE_GRACE_S = 3.0
POLL_S = 0.2

OrderTaker = Callable[[dict[str, Any]], Awaitable[None]]


def marketplace_channels(channels: Sequence[str]) -> dict[str, str]:
    """channel -> platform for the channels the sandbox sells on."""
    return {channel: channel for channel in channels if channel in PLATFORMS}


def shortened(platforms: Iterable[str]) -> str:
    """What a rehearsal shortens, against the documented figures of `platforms`."""

    def figures(documented: Mapping[str, float]) -> str:
        named = [f"{p} {_duration(documented[p])}" for p in platforms if p in documented]
        return f" (documented: {', '.join(named)})" if named else ""

    return (
        f"order delay {ORDER_DELAY_S:.0f} s{figures(DOCUMENTED_ORDER_DELAY_S)}; "
        f"feed processing {FEED_PROCESSING_S:.0f} s{figures(DOCUMENTED_FEED_PROCESSING_S)}"
    )


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _listing_ids(platform: str, sku: str, rank: int, variants: int) -> list[str]:
    """The platform's ids for a SKU, in the order of its listing CSV's columns; every
    `variants` SKUs in a row are one product (TikTok, Lazada) or item (Shopee)."""
    parent = rank // variants
    ids = {
        "shopify": [f"gid://shopify/InventoryItem/{1000 + rank}", SHOPIFY_LOCATION],
        "amazon": [sku],
        "ebay": [sku, str(9000 + rank)],
        "walmart": [sku],
        "tiktok": [str(1729000000 + parent), str(1729500000 + rank), TIKTOK_WAREHOUSE],
        "shopee": [str(800000 + parent), str(900000 + rank)],
        "lazada": [sku, str(300000 + parent), str(500000 + rank)],
    }
    return ids[platform]


_ID_COLUMNS = {
    "shopify": "inventory_item_id,location_id",
    "amazon": "seller_sku",
    "ebay": "ebay_sku,offer_id",
    "walmart": "walmart_sku",
    "tiktok": "product_id,sku_id,warehouse_id",
    "shopee": "item_id,model_id",
    "lazada": "seller_sku,item_id,sku_id",
}


def _variable(channel: str, name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", f"INVSYNC_SANDBOX_{channel}_{name}".upper())


def new_credentials(channels: Mapping[str, str]) -> dict[str, str]:
    """A fresh random value for every credential the channels need, by the
    environment variable that carries it."""
    return {
        _variable(channel, name): secrets.token_urlsafe(24)
        for channel, platform in channels.items()
        for name in CREDENTIALS[platform]
    }


def write_channels(
    folder: Path,
    channels: Mapping[str, str],
    skus: Sequence[str],
    base_url: str | None = None,
    variants: int = 1,
) -> Path:
    """The channels file and listing CSVs in `folder`, `variants` SKUs to a product
    where the platform has products; credentials are read from the variables
    `new_credentials` names."""
    entries = []
    for channel, platform in channels.items():
        csv = folder / f"{channel}.csv"
        rows = [f"sku,condition,{_ID_COLUMNS[platform]}"]
        rows += [
            ",".join([sku, "", *_listing_ids(platform, sku, r, variants)])
            for r, sku in enumerate(skus)
        ]
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        names = [f'{name}_env = "{_variable(channel, name)}"' for name in CREDENTIALS[platform]]
        lines = [
            "[[channels]]",
            f'id = "{channel}"',
            f'platform = "{platform}"',
            f"credentials = {{ {', '.join(names)} }}",
            f'listings = "{csv.name}"',
        ]
        if base_url is not None:
            lines.append(f'base_url = "{base_url}"')
        lines += [f'{key} = "{value}"' for key, value in OPTIONS.get(platform, {}).items()]
        entries.append("\n".join(lines))
    path = folder / "channels.toml"
    path.write_text("\n\n".join(entries) + "\n", encoding="utf-8")
    return path


@contextmanager
def quieter(loggers: Sequence[str]) -> Iterator[None]:
    """Only errors from `loggers` for the block: the gateway's and the sandbox's notices
    (connects, resyncs) would break up a run's tables. Their levels are put back after."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` set in this process's environment for the block, then removed."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


LATENCY_METRIC = "invsync_channel_push_latency_seconds"
BACKLOG_METRIC = "invsync_channel_backlog_items"


def latency_quantile(registry: CollectorRegistry, channel: str, q: float) -> float | None:
    """The q-quantile of a channel's push latency in seconds, interpolated within the
    gateway histogram's buckets as Prometheus' histogram_quantile does; None without
    samples."""
    buckets: list[tuple[float, float]] = []
    for metric in registry.collect():
        if metric.name != LATENCY_METRIC:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("channel") == channel:
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (upper - lower) * share
        lower, below = upper, count
    return lower


def pushes(registry: CollectorRegistry, channel: str) -> int:
    value = registry.get_sample_value(f"{LATENCY_METRIC}_count", {"channel": channel})
    return int(value or 0)


@dataclass(frozen=True)
class ChannelResult:
    """One marketplace channel at the end of a run."""

    channel: str
    platform: str
    sales: int
    sales_refused: int
    # Sales the sandbox did not answer in time (not counted as sold or refused).
    sales_unanswered: int
    pushes: int
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    throttled: int
    listings: int
    # (sku, what the marketplace shows, what invsync last decided) where they differ
    # other than by the listing's own sales
    differing: list[tuple[str, int, int | None]]
    # Listings showing less than invsync decided by no more than they sold: the
    # marketplace took its sales off, and invsync's quantity did not change (a cap)
    # so nothing was pushed since. Readback (CONTRACT 11) sends it again.
    sold_since_push: int = 0

    @property
    def converged(self) -> bool:
        return not self.differing


class Marketplaces:
    """The running sandbox and gateway of one sale, as the driver and the run use them."""

    def __init__(self, url: str, http: aiohttp.ClientSession, channels: Mapping[str, str]) -> None:
        self.url = url
        self.channels = dict(channels)
        # The gateway's metrics: push latency per channel.
        self.registry = CollectorRegistry()
        self._http = http
        self._listing: dict[tuple[str, str], str] = {}
        self._take: OrderTaker | None = None
        self.sales: dict[str, int] = dict.fromkeys(channels, 0)
        self.refused: dict[str, int] = dict.fromkeys(channels, 0)
        self.unanswered: dict[str, int] = dict.fromkeys(channels, 0)

    def sells(self, channel: str) -> bool:
        return channel in self.channels

    def take_orders(self, take: OrderTaker) -> None:
        """Where the marketplaces' orders go: the driver, which publishes them in order."""
        self._take = take

    async def deliver(self, channel: str, order: OrderPlaced) -> None:
        """The sandbox's order sink."""
        if self._take is None:
            raise DeliveryError("the sale has not started")
        await self._take(msgspec.json.decode(encode_json(order)))

    async def sell(self, channel: str, sku: str, qty: int) -> bool:
        """A buyer takes `qty` on the channel's marketplace; False when the listing shows
        less (the buyer could not check out)."""
        body = {"platform": self.channels[channel], "listing": self._listing[(channel, sku)]}
        try:
            async with self._http.post(
                f"{self.url}/sandbox/sale",
                json={**body, "qty": qty},
                timeout=aiohttp.ClientTimeout(total=SALE_TIMEOUT_S),
            ) as resp:
                sold = resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            self.unanswered[channel] += 1
            return False
        self.sales[channel] += sold
        self.refused[channel] += not sold
        return sold

    async def state(self) -> dict[str, Any]:
        async with self._http.get(f"{self.url}/sandbox/state") as resp:
            state: dict[str, Any] = await resp.json()
        return state

    async def learn_listings(self) -> None:
        """Which listing sells each (channel, sku), as the sandbox keys it."""
        for shown in (await self.state())["platforms"].values():
            channel = shown["channel"]
            for key, listing in shown["listings"].items():
                self._listing[(channel, listing["sku"])] = key

    async def wait_listed(self) -> None:
        """Until the gateway has pushed the opening quantities (bounded): a sale starts
        on marketplaces that already show the stock."""
        with anyio.move_on_after(OPENING_TIMEOUT_S):
            while not all(
                pushes(self.registry, c) > 0 and self._backlog(c) == 0 for c in self.channels
            ):
                await anyio.sleep(POLL_S)

    def _backlog(self, channel: str) -> float:
        value = self.registry.get_sample_value(BACKLOG_METRIC, {"channel": channel})
        return math.inf if value is None else value

    async def orders_owed(self) -> int:
        return int((await self.state())["orders"]["pending"])

    async def wait_orders_delivered(self) -> None:
        with anyio.move_on_after(ORDERS_DUE_TIMEOUT_S):
            while await self.orders_owed():
                await anyio.sleep(POLL_S)

    async def converge(self, decided: Mapping[str, SkuState | None]) -> list[ChannelResult]:
        """Wait until every marketplace shows what invsync decided, while the gateway
        still has quantities to send (Amazon's 5 a second take a while) and at most
        CONVERGE_MAX_S; the results."""
        deadline = time.monotonic() + CONVERGE_MAX_S
        idle_since: float | None = None
        while True:
            results = self._results(await self.state(), decided)
            now = time.monotonic()
            if any(self._backlog(c) for c in self.channels):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            idle = idle_since is not None and now - idle_since > IDLE_GRACE_S
            if all(r.converged for r in results) or idle or now > deadline:
                return results
            await anyio.sleep(POLL_S)

    def _results(
        self, state: Mapping[str, Any], decided: Mapping[str, SkuState | None]
    ) -> list[ChannelResult]:
        results = []
        for platform, shown in state["platforms"].items():
            channel = shown["channel"]
            differing = []
            sold_since_push = 0
            for listing in shown["listings"].values():
                sku_state = decided.get(listing["sku"])
                want = None if sku_state is None else sku_state.shown.get(channel)
                qty = int(listing["qty"])
                if want is not None and qty < want <= qty + int(listing["sold"]):
                    sold_since_push += 1
                elif qty != want:
                    differing.append((str(listing["sku"]), qty, want))
            p50, p99 = (latency_quantile(self.registry, channel, q) for q in (0.5, 0.99))
            counters = shown["counters"]
            results.append(
                ChannelResult(
                    channel=channel,
                    platform=platform,
                    sales=self.sales[channel],
                    sales_refused=self.refused[channel],
                    sales_unanswered=self.unanswered[channel],
                    pushes=pushes(self.registry, channel),
                    p50_ms=None if p50 is None else p50 * 1000,
                    p99_ms=None if p99 is None else p99 * 1000,
                    requests=int(counters["requests"]),
                    throttled=int(counters["throttled"]),
                    listings=len(shown["listings"]),
                    differing=sorted(differing),
                    sold_since_push=sold_since_push,
                )
            )
        return results


@asynccontextmanager
async def running_marketplaces(
    connector: ConnectionOptions,
    channels: Mapping[str, str],
    skus: Sequence[str],
    prefix: str = "inv",
) -> AsyncIterator[Marketplaces]:
    """The sandbox (on a free loopback port) and the gateway (connected as `connector`,
    a ConnectionOptions with the connector role) for `channels`, listing `skus`;
    both stopped on the way out."""
    from invsync.gateway.app import GatewayConfig, run_gateway
    from invsync.gateway.config import load_channels
    from invsync.sandbox.app import Sandbox, serving
    from invsync.sandbox.channels import storefronts
    from invsync.sandbox.orders import OrderBook
    from invsync.sandbox.platforms.base import SandboxSettings

    settings = SandboxSettings(order_delay_s=ORDER_DELAY_S, job_delay_s=FEED_PROCESSING_S)
    with (
        quieter(("invsync.gateway", "invsync.sandbox")),
        tempfile.TemporaryDirectory(prefix="invsync-marketplaces-") as workdir,
    ):
        folder = Path(workdir)
        path = write_channels(folder, channels, skus)
        with environment(new_credentials(channels)):
            async with aiohttp.ClientSession() as http:
                holder: list[Marketplaces] = []

                async def sink(channel: str, order: OrderPlaced) -> None:
                    await holder[0].deliver(channel, order)

                sandbox = Sandbox(storefronts(load_channels(path), settings), OrderBook(sink))
                async with serving(sandbox, port=0) as port:
                    url = f"http://127.0.0.1:{port}"
                    market = Marketplaces(url, http, channels)
                    holder.append(market)
                    await market.learn_listings()
                    # The gateway's copy points at the sandbox; the credentials are the same.
                    path = write_channels(folder, channels, skus, base_url=url)
                    config = GatewayConfig(
                        path, connection=connector, prefix=prefix, metrics_port=None
                    )
                    ready, stop = anyio.Event(), anyio.Event()
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(
                            lambda: run_gateway(
                                config, ready=ready, stop=stop, registry=market.registry
                            )
                        )
                        with anyio.fail_after(GATEWAY_READY_TIMEOUT_S):
                            await ready.wait()
                        try:
                            yield market
                        finally:
                            stop.set()


def render(results: Sequence[ChannelResult]) -> str:
    """The marketplaces table and one line per channel that did not converge."""
    from invsync.flashsale.report import table

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    rows = [
        (
            r.channel,
            r.platform,
            r.sales,
            r.sales_refused,
            r.pushes,
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.requests,
            r.throttled,
            f"{r.listings - len(r.differing) - r.sold_since_push}/{r.listings}",
            r.sold_since_push,
        )
        for r in results
    ]
    headers = (
        "channel",
        "platform",
        "sold",
        "no stock shown",
        "pushes",
        "push p50 ms",
        "push p99 ms",
        "requests",
        "throttled",
        "shown = decided",
        "less: sold there",
    )
    title = (
        "Marketplaces (sandbox): sales, push latency (event ts -> accepted), throttling, "
        "and what each shows vs what invsync last decided"
    )
    note = (
        "(less: sold there = listings showing less than decided by their own sales since "
        "invsync last changed them;\n readback re-pushes those; never more than decided)"
    )
    lines = [title, table(headers, rows), note]
    for r in results:
        if r.sales_unanswered:
            lines.append(f"  {r.channel}: {r.sales_unanswered} sale(s) got no answer in time")
        for sku, shows, decided in r.differing[:3]:
            lines.append(f"  {r.channel}: {sku} shows {shows}, invsync decided {decided}")
    return "\n".join(lines)


def render_oversells(backorders: Sequence[BackorderCause], results: Sequence[ChannelResult]) -> str:
    """Units each channel sold that stock could not cover (backordered by the service):
    on a marketplace channel, sold against a quantity that lag left too high."""
    from invsync.flashsale.report import table

    units: dict[str, int] = {}
    orders: dict[str, int] = {}
    for cause in backorders:
        units[cause.channel] = units.get(cause.channel, 0) + cause.units
        orders[cause.channel] = orders.get(cause.channel, 0) + cause.orders
    marketplace = {r.channel for r in results}
    channels = sorted(marketplace | set(units))
    rows = [
        (
            c,
            "push + order lag" if c in marketplace else "order lag (no sandbox)",
            orders.get(c, 0),
            units.get(c, 0),
        )
        for c in channels
    ]
    return "Oversells by channel (backordered at the service)\n" + table(
        ("channel", "lag", "orders", "units"), rows
    )


def ok(results: Sequence[ChannelResult]) -> bool:
    """Every marketplace ended at what invsync decided (throttling is reported, and
    slows the loop, but a throttled push is retried)."""
    return all(r.converged for r in results)


__all__ = [
    "PLATFORMS",
    "ChannelResult",
    "Marketplaces",
    "marketplace_channels",
    "new_credentials",
    "ok",
    "render",
    "render_oversells",
    "running_marketplaces",
    "shortened",
    "write_channels",
]
