"""One flash sale from start to verdict, shared by `invsync demo` and `invsync loadtest`:
optionally start nats-server and the service here, drive the scenario, let holds
expire, ask the service for its final numbers and judge them.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from nats.errors import Error as NatsError

from invsync.flashsale.checker import Checker, SkuState, Verdict
from invsync.flashsale.driver import Driver, DriveStats, Progress
from invsync.flashsale.observe import DepletionRecorder, FeedRecorder
from invsync.flashsale.scenario import Scenario
from invsync.policy import Policy
from invsync.service.config import ConnectionOptions

if TYPE_CHECKING:
    from invsync.flashsale.marketplaces import ChannelResult, Marketplaces
    from invsync.nats_server import NatsServer

SERVICE_READY_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 2.0
CONNECT_ATTEMPTS = 3
CONNECT_RETRY_S = 0.3
# After the sale, invsync's numbers are asked again at most this often while automatic
# buffers keep moving them (one cadence per round at most, the rounds are seconds).
CONVERGE_ROUNDS = 3
# The run drives the sale as a producer and watches the channel feeds as an observer.
DRIVER_USER = "loadtest"
DRIVER_ROLES = ("producer", "observer")
# With marketplaces, the gateway carries the quantities and acknowledges them.
GATEWAY_USER = "gateway"
GATEWAY_ROLES = ("connector",)
log = logging.getLogger("invsync.flashsale")

# The policy `invsync loadtest --embedded` runs when given none: the usual
# channels over three tiers, a protected reserve for tiers 1 and 2, one warehouse.
LOADTEST_POLICY = """\
[defaults]
safety = 2

[[tiers]]
tier = 1
protect = 10

[[tiers]]
tier = 2
protect = 5

[[tiers]]
tier = 3
protect = 0

[[locations]]
id = "wh-1"
kind = "warehouse"

# Automatic buffers: what every channel sells during a channel's push lag (lag_s
# until acks measure it) and the sellers' order lags, times risk 1.5.
[[channels]]
id = "shopify"
tier = 1
lag_s = 1

[[channels]]
id = "b2b"
tier = 1

[[channels]]
id = "amazon"
tier = 2
share = 0.8
buffer = "auto"
buffer_min = 1
lag_s = 5

[[channels]]
id = "walmart"
tier = 2
share = 0.5
buffer = "auto"
lag_s = 10

[[channels]]
id = "ebay"
tier = 3
share = 0.5
cap = 50

[[channels]]
id = "tiktok"
tier = 3
share = 0.3
buffer = "auto"
buffer_min = 2
lag_s = 5

[[channels]]
id = "shopee"
tier = 3
share = 0.3
buffer = "auto"
buffer_min = 2
lag_s = 5

[[channels]]
id = "lazada"
tier = 3
share = 0.3
buffer = "auto"
buffer_min = 2
lag_s = 5
"""


@dataclass(frozen=True)
class PolicyFacts:
    """What the workload needs to know about the service's policy."""

    channels: tuple[tuple[str, int], ...]
    protect: Mapping[int, int]
    location: str

    @classmethod
    def of(cls, policy: Policy) -> PolicyFacts:
        document = policy.document
        # Receipts must land straight on sellable stock: an online, fully trusted
        # location without a release gate.
        simple = [
            loc
            for loc in document.locations
            if loc.online and loc.count_pct == 100 and not loc.release_gate
        ]
        if not simple:
            raise ValueError(f"{policy.source}: no online location without a release gate")
        return cls(
            channels=tuple((channel.id, channel.tier) for channel in document.channels),
            protect=policy.protect_levels(),
            location=min(simple, key=lambda loc: loc.priority).id,
        )


class RunError(Exception):
    """The run could not start: no NATS server, or no service answering on it."""


class Interrupted(Exception):
    """Ctrl-C stopped the run; everything it started has been stopped."""


async def until_interrupted(run: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """`run()`, or Interrupted once Ctrl-C arrives and `run`'s own clean-up is done.

    Ctrl-C is taken here as a signal rather than left to the event loop, which
    turns it into a cancellation of the whole run: a clean-up path that absorbs
    that cancellation makes an interrupted run look finished.
    """
    outcome: list[Outcome] = []
    failed: list[Exception] = []
    interrupted = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                async for _ in signals:
                    interrupted = True
                    group.cancel_scope.cancel()
                    return

        group.start_soon(watch)
        try:
            outcome.append(await run())
        except Exception as exc:  # noqa: BLE001 (raised as itself below, not in a group)
            failed.append(exc)
        group.cancel_scope.cancel()
    if failed:
        raise failed[0]
    if interrupted or not outcome:
        raise Interrupted
    return outcome[0]


@dataclass(frozen=True)
class Outcome:
    """Everything a run produced, for the summary and the report."""

    scenario: Scenario
    stats: DriveStats
    feed: FeedRecorder
    reserve: DepletionRecorder
    expected: dict[str, SkuState]
    verdict: Verdict
    # Per marketplace channel, when the run sold through the sandbox.
    marketplaces: list[ChannelResult] | None = None


async def _log_nats_error(exc: Exception) -> None:
    # nats-py prints a traceback by default; a cancelled run (Ctrl-C) is not an error.
    log.debug("nats: %r", exc)


@asynccontextmanager
async def embedded_server(policy_path: Path) -> AsyncIterator[NatsServer]:
    """nats-server on a free loopback port plus the service in this process, with a
    user for the driver (DRIVER_USER) and one for a gateway (GATEWAY_USER).

    Both are stopped on the way out, also when the run is cancelled (Ctrl-C).
    """
    from invsync.nats_server import NatsServer
    from invsync.service.app import run_service
    from invsync.service.config import ServiceConfig

    # The service's own notices (connects, snapshots) would break up the run's output.
    logging.getLogger("invsync.service").setLevel(logging.ERROR)
    users = {DRIVER_USER: DRIVER_ROLES, GATEWAY_USER: GATEWAY_ROLES}
    with NatsServer(users=users) as server:
        config = ServiceConfig(
            policy_path=policy_path,
            connection=server.client("service", name="invsync-embedded"),
            metrics_port=None,
        )
        ready, stop = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: run_service(config, ready=ready, stop=stop))
            with anyio.fail_after(SERVICE_READY_TIMEOUT_S):
                await ready.wait()
            try:
                yield server
            finally:
                stop.set()


@asynccontextmanager
async def embedded_service(policy_path: Path) -> AsyncIterator[ConnectionOptions]:
    """`embedded_server`, yielding how the driver connects (its own user, minted at start)."""
    async with embedded_server(policy_path) as server:
        yield server.client(DRIVER_USER, name="invsync-loadtest")


async def run_sale(
    connection: ConnectionOptions,
    policy: Policy,
    scenario: Scenario,
    *,
    prefix: str = "inv",
    progress: Progress | None = None,
    marketplaces: Marketplaces | None = None,
) -> Outcome:
    """Drive `scenario` against the service behind `connection` and judge the result;
    with `marketplaces`, their channels' orders are sales on the sandbox."""
    import nats

    from invsync.engine import Engine
    from invsync.service.connection import client_kwargs

    facts = PolicyFacts.of(policy)
    checker = Checker(Engine(policy))
    feed = FeedRecorder(hot=frozenset(scenario.hot))
    reserve = DepletionRecorder(protect=facts.protect)
    try:
        nc = await nats.connect(
            **client_kwargs(connection),
            pending_size=64 * 1024 * 1024,
            error_cb=_log_nats_error,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=CONNECT_ATTEMPTS,
            reconnect_time_wait=CONNECT_RETRY_S,
        )
    except (OSError, NatsError) as exc:
        raise RunError(f"cannot connect to NATS at {connection.url}: {exc!r}") from None
    try:
        driver = Driver(nc, scenario, checker, feed, reserve, prefix=prefix, market=marketplaces)
        await driver.watch_feeds()
        if marketplaces is not None:
            marketplaces.take_orders(driver.place_order)
        try:
            await driver.setup()
        except TimeoutError:
            raise RunError(
                f"no service took the opening stock at {connection.url} (prefix {prefix!r})"
            ) from None
        if marketplaces is not None:
            await marketplaces.wait_listed()
        feed.origin = time.time()
        stats = await driver.sale(progress)
        if marketplaces is not None:
            await marketplaces.wait_orders_delivered()
        await driver.settle()
        expected = checker.expected(scenario.skus, datetime.now(UTC))
        observed = await driver.query_all(scenario.skus)
        shown = (
            None
            if marketplaces is None
            else await converge_on_latest(driver, marketplaces, scenario.skus, observed)
        )
    finally:
        await nc.drain()
    verdict = checker.verdict(expected, observed)
    return Outcome(scenario, stats, feed, reserve, expected, verdict, shown)


async def converge_on_latest(
    driver: Driver,
    marketplaces: Marketplaces,
    skus: Sequence[str],
    decided: Mapping[str, SkuState | None],
) -> list[ChannelResult]:
    """The marketplaces against what invsync decides when the wait ends, asked again
    while it moved during the wait (at most CONVERGE_ROUNDS times): automatic buffers
    change shown quantities on their cadence with no event behind them (rates decay,
    measured lags replace the policy's), and the gateway pushes those too."""
    results = await marketplaces.converge(decided)
    for _ in range(CONVERGE_ROUNDS - 1):
        latest = await driver.query_all(skus)
        if all(_shown(latest.get(sku)) == _shown(decided.get(sku)) for sku in skus):
            break
        decided = latest
        results = await marketplaces.converge(decided)
    return results


def _shown(state: SkuState | None) -> Mapping[str, int] | None:
    return None if state is None else state.shown


async def run_embedded_sale(
    policy_path: Path,
    policy: Policy,
    scenario: Scenario,
    *,
    progress: Progress | None = None,
    marketplaces: bool = False,
) -> Outcome:
    """`run_sale` against a nats-server and service started (and stopped) here; with
    `marketplaces`, also the sandbox and the gateway for the channels it emulates."""
    from invsync.flashsale.marketplaces import marketplace_channels, running_marketplaces

    async with embedded_server(policy_path) as server:
        connection = server.client(DRIVER_USER, name="invsync-loadtest")
        channels = marketplace_channels([name for name, _tier in scenario.config.channels])
        if not marketplaces or not channels:
            return await run_sale(connection, policy, scenario, progress=progress)
        gateway = server.client(GATEWAY_USER, name="invsync-connect")
        async with running_marketplaces(gateway, channels, scenario.skus) as market:
            return await run_sale(
                connection, policy, scenario, progress=progress, marketplaces=market
            )
