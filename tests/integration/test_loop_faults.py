"""The whole loop under faults: the service, the gateway and the sandbox's Shopify,
Amazon and eBay in this process, configured by one channels file. Each fault ends in
a retry or in an alert with the platform's reason; every marketplace the fault leaves
able to take a push ends up showing what invsync last decided; and no credential
appears in any log line, alert, dead letter or metric."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from invsync.gateway import app
from invsync.gateway.app import GatewayConfig, run_gateway
from invsync.gateway.config import load_channels
from invsync.nats_server import NatsServer, free_port
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from tests.integration.test_gateway_end_to_end import (
    SECRETS,
    SKUS,
    converged,
    published,
    shown,
    stock,
    write_channels,
)
from tests.service.harness import Collector, Running, running_service, service_config

pytestmark = pytest.mark.anyio

PLATFORMS = ("shopify", "amazon", "ebay")
# Three channels without caps, so a quantity can exceed what a platform takes.
POLICY = """\
[defaults]
safety = 0

[[tiers]]
tier = 1
protect = 0

[[locations]]
id = "wh-3"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1

[[channels]]
id = "amazon"
tier = 1

[[channels]]
id = "ebay"
tier = 1
"""


@dataclass
class Loop:
    svc: Running
    sandbox: Sandbox
    url: str
    alerts: Collector
    dead: Collector
    registry: CollectorRegistry

    async def fault(self, http: aiohttp.ClientSession, **fault: object) -> None:
        async with http.post(f"{self.url}/sandbox/faults", json=fault) as resp:
            assert resp.status == 200, await resp.text()

    def alerted(self, kind: str, channel: str) -> list[str]:
        return [
            str(body["detail"])
            for subject, body in self.alerts.messages
            if subject == f"inv.alert.{kind}" and body.get("channel") == channel
        ]


@asynccontextmanager
async def running_loop(
    nats_server: NatsServer,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: SandboxSettings,
    gateway_env: dict[str, str] | None = None,
) -> AsyncIterator[Loop]:
    """Service, sandbox and gateway; `gateway_env` overrides credentials the gateway
    reads after the sandbox took the right ones."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    policy = folder / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    port = free_port()
    channels = write_channels(folder, port)
    sandbox = Sandbox(storefronts(load_channels(channels), settings), OrderBook(None))
    for name, value in (gateway_env or {}).items():
        monkeypatch.setenv(name, value)
    registry = CollectorRegistry()
    config = GatewayConfig(
        channels, connection=nats_server.client("connector"), metrics_port=None, csv_poll_s=0.2
    )
    alerts, dead = Collector(), Collector()
    ready, stop = anyio.Event(), anyio.Event()
    svc_config = service_config(nats_server, folder / "state", policy_path=policy)
    async with (
        running_service(nats_server, svc_config) as svc,
        serving(sandbox, port=port),
        anyio.create_task_group() as tasks,
    ):
        await svc.nc.subscribe("inv.alert.>", cb=alerts.on_msg)
        await svc.nc.subscribe("inv.dlq", cb=dead.on_msg)
        for n, sku in enumerate(SKUS):
            await stock(svc, sku, 100 + 10 * n, f"open{n}")
        tasks.start_soon(lambda: run_gateway(config, ready=ready, stop=stop, registry=registry))
        with anyio.fail_after(20):
            await ready.wait()
        yield Loop(svc, sandbox, f"http://127.0.0.1:{port}", alerts, dead, registry)
        stop.set()


async def lands(loop: Loop, sku: str, platforms: tuple[str, ...]) -> None:
    """Until each platform shows what the service last published for `sku` there."""
    with anyio.fail_after(30):
        for platform in platforms:
            while shown(loop.sandbox, platform).get(sku) != (
                await published(loop.svc, platform)
            ).get(sku):
                await anyio.sleep(0.1)


def assert_no_secret_anywhere(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    """Every output of the run: every log record (service, gateway, sandbox), every
    alert and dead letter, and the gateway's and the service's /metrics text."""
    outputs = [
        caplog.text,
        *(str(body) for _, body in loop.alerts.messages),
        *(str(body) for _, body in loop.dead.messages),
        generate_latest(loop.registry).decode(),
        generate_latest(loop.svc.registry).decode(),
    ]
    for value in SECRETS.values():
        for output in outputs:
            assert value not in output


async def test_429s_5xx_and_time_outs_are_retried_until_every_marketplace_shows_the_decision(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A request the platform holds longer than this has timed out.
    monkeypatch.setattr(app, "HTTP_TIMEOUT_S", 1.0)
    async with (
        running_loop(nats_server, tmp_path, monkeypatch, SandboxSettings()) as loop,
        aiohttp.ClientSession() as http,
    ):
        await converged(loop.svc, loop.sandbox)
        before = {m.platform: m.counters.requests for m in loop.sandbox.markets}
        for platform in PLATFORMS:
            await loop.fault(http, platform=platform, status=429, count=2)
            await loop.fault(http, platform=platform, status=503, count=2)
            await loop.fault(http, platform=platform, delay_s=1.5)
        await stock(loop.svc, "E1", 0, "sold-out")
        await stock(loop.svc, "E2", 75, "recount")
        await converged(loop.svc, loop.sandbox, timeout_s=45)
        assert not any(loop.sandbox.faults.values()), "every injected fault was met"
        for market in loop.sandbox.markets:
            assert market.counters.throttled >= 2, market.platform
            # the faults, the time-out and at least one push that landed
            assert market.counters.requests - before[market.platform] >= 6, market.platform
            assert shown(loop.sandbox, market.platform)["E1"] == 0
        # transient trouble is retried, not alerted as a refusal
        assert not [s for s, _ in loop.alerts.messages if s == "inv.alert.channel_error"]
        assert_no_secret_anywhere(loop, caplog)


async def test_refusals_are_alerted_with_the_platforms_reason_and_the_rest_still_lands(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_loop(nats_server, tmp_path, monkeypatch, SandboxSettings()) as loop:
        await converged(loop.svc, loop.sandbox)
        # eBay no longer has E1's listing (ended on the platform); Shopify cannot
        # show 1.5 billion; E4 has no listing in any map.
        (ebay,) = [m for m in loop.sandbox.markets if m.platform == "ebay"]
        del ebay.listings["E1-EB"]
        await stock(loop.svc, "E1", 40, "e1-down")
        await stock(loop.svc, "E3", 1_500_000_000, "e3-huge")
        await stock(loop.svc, "E4", 12, "e4-new")
        with anyio.fail_after(30):
            while not (
                loop.alerted("channel_error", "ebay")
                and loop.alerted("channel_error", "shopify")
                and all(loop.alerted("mapping_missing", p) for p in PLATFORMS)
            ):
                await anyio.sleep(0.1)
        (ebay_reason,) = set(loop.alerted("channel_error", "ebay"))
        assert "E1-EB" in ebay_reason or "E1" in ebay_reason
        assert any("1,000,000,000" in r for r in loop.alerted("channel_error", "shopify"))
        assert all("E4" in " ".join(loop.alerted("mapping_missing", p)) for p in PLATFORMS)
        # everything else still lands: Amazon takes all three, the others the rest
        for sku in SKUS:
            await lands(loop, sku, ("amazon",))
        await lands(loop, "E2", ("ebay", "shopify"))
        await lands(loop, "E1", ("shopify",))
        assert_no_secret_anywhere(loop, caplog)


async def test_expiring_tokens_are_refreshed_and_a_revoked_one_is_alerted(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    revoked = "shpat_revoked_never_print"
    settings = SandboxSettings(token_ttl_s=1.0)
    async with running_loop(
        nats_server, tmp_path, monkeypatch, settings, gateway_env={"E2E_SHOP_TOKEN": revoked}
    ) as loop:
        with anyio.fail_after(30):
            while not loop.alerted("channel_error", "shopify"):
                await anyio.sleep(0.1)
        for round_ in range(2):
            await anyio.sleep(1.5)  # every access token handed out so far has expired
            await stock(loop.svc, "E2", 50 + round_, f"after-expiry{round_}")
            await lands(loop, "E2", ("amazon", "ebay"))
        assert shown(loop.sandbox, "shopify") == dict.fromkeys(SKUS, 0)
        outputs = [caplog.text, *(str(b) for _, b in loop.alerts.messages)]
        assert not any(revoked in output for output in outputs)
        assert_no_secret_anywhere(loop, caplog)
