"""The whole loop on loopback, as a seller runs it: the service, `invsync connect` as
a process, and the sandbox's Shopify, Amazon and eBay, all configured by one channels
file. Every marketplace ends up showing what invsync decided, also after the gateway
is killed with SIGKILL mid-way and started again; nothing is throttled; no credential
appears in the gateway's output or in any alert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import msgspec
import pytest

from invsync.gateway.config import load_channels
from invsync.gateway.scheduler import MAX_IN_FLIGHT
from invsync.nats_server import NatsServer, free_port
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from tests.service.harness import Collector, Running, event, running_service, service_config

pytestmark = pytest.mark.anyio

SECRETS = {
    "E2E_SHOP_TOKEN": "shpat_e2e_0f9a8b7c6d",
    "E2E_AMZ_REFRESH": "Atzr|e2e-refresh-5e4d3c",
    "E2E_AMZ_ID": "amzn1.application-oa2-client.e2e",
    "E2E_AMZ_SECRET": "amz-e2e-client-secret-1b2a",
    "E2E_EBAY_REFRESH": "v^1.1#e2e-ebay-refresh-9z8y",
    "E2E_EBAY_ID": "e2e-ebay-client-id",
    "E2E_EBAY_SECRET": "e2e-ebay-client-secret-7x6w",
}
SKUS = ["E1", "E2", "E3"]
# The channel ids are the example policy's.
CHANNELS = """\
[[channels]]
id = "shopify"
platform = "shopify"
base_url = "{url}"
credentials = {{ access_token_env = "E2E_SHOP_TOKEN" }}
listings = "shopify.csv"

[[channels]]
id = "amazon"
platform = "amazon"
base_url = "{url}"
credentials = {{ refresh_token_env = "E2E_AMZ_REFRESH", client_id_env = "E2E_AMZ_ID", client_secret_env = "E2E_AMZ_SECRET" }}
listings = "amazon.csv"
seller_id = "A1E2ESELLER"
marketplace_id = "ATVPDKIKX0DER"

[[channels]]
id = "ebay"
platform = "ebay"
base_url = "{url}"
credentials = {{ refresh_token_env = "E2E_EBAY_REFRESH", client_id_env = "E2E_EBAY_ID", client_secret_env = "E2E_EBAY_SECRET" }}
listings = "ebay.csv"
"""


def write_channels(folder: Path, port: int) -> Path:
    rows = {
        "shopify.csv": "sku,condition,inventory_item_id,location_id\n"
        + "".join(
            f"{s},,gid://shopify/InventoryItem/{n},gid://shopify/Location/1\n"
            for n, s in enumerate(SKUS, 1)
        ),
        "amazon.csv": "sku,condition,seller_sku\n" + "".join(f"{s},,{s}-AMZ\n" for s in SKUS),
        "ebay.csv": "sku,condition,ebay_sku,offer_id\n"
        + "".join(f"{s},,{s}-EB,{700 + n}\n" for n, s in enumerate(SKUS)),
    }
    for name, text in rows.items():
        (folder / name).write_text(text, encoding="utf-8")
    path = folder / "channels.toml"
    path.write_text(CHANNELS.format(url=f"http://127.0.0.1:{port}"), encoding="utf-8")
    return path


@contextmanager
def gateway(channels: Path, server: NatsServer, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    seed = server.client("connector").nkeys_seed
    command = [sys.executable, "-m", "invsync.cli", "connect", "--channels", str(channels)]
    command += ["--nats", server.url, "--nkey", str(seed), "--metrics-port", "0"]
    command += ["--log-level", "DEBUG"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **SECRETS}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


async def published(svc: Running, channel: str) -> dict[str, int]:
    reply = await svc.nc.request(
        "inv.query.channel", msgspec.json.encode({"channel": channel}), timeout=5
    )
    return {i["sku"]: i["qty"] for i in msgspec.json.decode(reply.data)["items"]}


def shown(sandbox: Sandbox, platform: str) -> dict[str, int]:
    (market,) = [m for m in sandbox.markets if m.platform == platform]
    return {listing.sku: listing.qty for listing in market.listings.values()}


async def converged(svc: Running, sandbox: Sandbox, timeout_s: float = 30.0) -> None:
    """Until every marketplace shows what the service last published for its channel
    (a mapped SKU the service never published shows 0)."""
    with anyio.fail_after(timeout_s):
        while True:
            ok = True
            for platform in ("shopify", "amazon", "ebay"):
                wanted = await published(svc, platform)
                have = shown(sandbox, platform)
                ok &= all(have[s] == wanted.get(s, 0) for s in SKUS)
            if ok:
                return
            await anyio.sleep(0.1)


async def stock(svc: Running, sku: str, on_hand: int, event_id: str) -> None:
    body = event("stock.set", event_id, sku=sku, location="wh-3", on_hand=on_hand)
    ack = await svc.nc.jetstream().publish("inv.stock.wh-3", body)
    await svc.wait_applied(ack.seq)


async def test_every_marketplace_shows_what_invsync_decided_across_a_kill(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    channels = write_channels(tmp_path, port)
    sandbox = Sandbox(storefronts(load_channels(channels), SandboxSettings()), OrderBook(None))
    log = tmp_path / "gateway.log"
    alerts = Collector()
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc,
        serving(sandbox, port=port),
    ):
        await svc.nc.subscribe("inv.alert.>", cb=alerts.on_msg)
        for n, sku in enumerate(SKUS):
            await stock(svc, sku, 100 + 10 * n, f"a{n}")
        with gateway(channels, nats_server, log):
            await converged(svc, sandbox)
            await stock(svc, "E1", 0, "sold-out")
            await stock(svc, "E2", 60, "down")
            await converged(svc, sandbox)
        with gateway(channels, nats_server, log) as process:
            await converged(svc, sandbox)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        # While no gateway runs, the service keeps deciding.
        await stock(svc, "E1", 80, "restock")
        await stock(svc, "E3", 30, "count")
        with gateway(channels, nats_server, log):
            await converged(svc, sandbox)
            restocked = {p: shown(sandbox, p)["E1"] for p in ("shopify", "amazon", "ebay")}
        svc.stop.set()
    assert all(qty > 0 for qty in restocked.values()), restocked
    # A gateway started right after another run meets the platform's bucket as that run
    # left it, and cannot know it: its first requests in flight may be throttled, are
    # retried, and slow the lane. Two restarts here; the loop converged and nothing was
    # refused or alerted.
    for market in sandbox.markets:
        assert market.counters.throttled <= 2 * MAX_IN_FLIGHT, market.platform
        assert market.counters.rejected == 0, market.platform
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "channel shopify (shopify) connected" in output
    body = output + "".join(str(b) for _, b in alerts.messages)
    for value in SECRETS.values():
        assert value not in body
    assert not [b for s, b in alerts.messages if s == "inv.alert.channel_error"]


async def test_a_marketplace_restart_mid_push_is_retried_until_it_shows_the_decision(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox stops while changes are queued and comes back from its state file,
    forgetting the access tokens it handed out: the gateway retries, fetches new
    tokens, and every marketplace ends at what invsync decided."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    channels = write_channels(tmp_path, port)
    state = tmp_path / "sandbox.json"

    def fresh_sandbox() -> Sandbox:
        return Sandbox(storefronts(load_channels(channels), SandboxSettings()), OrderBook(None))

    log = tmp_path / "gateway.log"
    async with running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc:
        for n, sku in enumerate(SKUS):
            await stock(svc, sku, 100 + 10 * n, f"a{n}")
        with gateway(channels, nats_server, log):
            sandbox = fresh_sandbox()
            async with serving(sandbox, port=port, state_file=state):
                await converged(svc, sandbox)
            # Down: the decisions keep coming.
            await stock(svc, "E1", 0, "sold-out")
            await stock(svc, "E2", 55, "down")
            await anyio.sleep(0.5)
            sandbox = fresh_sandbox()
            async with serving(sandbox, port=port, state_file=state):
                await converged(svc, sandbox)
                after = {p: shown(sandbox, p) for p in ("shopify", "amazon", "ebay")}
        svc.stop.set()
    assert all(shown_now["E1"] == 0 for shown_now in after.values())
    output = log.read_text(encoding="utf-8", errors="replace")
    for value in SECRETS.values():
        assert value not in output
