"""`invsync serve` as operators run it: SIGHUP re-reads the policy, SIGTERM exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import msgspec
import nats
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import EXAMPLE_POLICY, cli_connection, connect_as, event

pytestmark = pytest.mark.anyio


def launch(server: NatsServer, policy: Path, state: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "invsync.cli", "serve", *cli_connection(server, "service")]
    options = ["--policy", str(policy), "--state", str(state), "--metrics-port", "0"]
    with log.open("wb") as stderr:
        return subprocess.Popen([*command, *options, "--log-level", "WARNING"], stderr=stderr)


async def wait_for_log(log: Path, text: str) -> None:
    """The service has acted on a signal once it says so; only then may the file change again."""
    with anyio.fail_after(20):
        while text not in log.read_text(errors="replace"):
            await anyio.sleep(0.05)


async def shown_to_shopify(nc: nats.NATS, sku: str) -> int:
    reply = await nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    channels = msgspec.json.decode(reply.data)["channels"]
    return int(next(c["shown"] for c in channels if c["channel"] == "shopify"))


async def wait_until_shown(nc: nats.NATS, sku: str, qty: int) -> None:
    with anyio.fail_after(20):
        while True:
            try:
                if await shown_to_shopify(nc, sku) == qty:
                    return
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                pass
            await anyio.sleep(0.1)


async def test_sighup_reloads_a_good_policy_keeps_the_old_on_a_bad_one_and_sigterm_exits_0(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    text = EXAMPLE_POLICY.read_text()
    policy.write_text(text)
    log = tmp_path / "serve.log"
    service = launch(nats_server, policy, tmp_path / "state", log)
    nc = await connect_as(nats_server)
    try:
        await wait_until_shown(nc, "A", 0)  # serving: the stream exists
        await nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="A", location="wh-3", on_hand=1000)
        )
        await wait_until_shown(nc, "A", 200)  # shopify's cap
        policy.write_text(text.replace("share = 0.8", "share = 1.8"))
        service.send_signal(signal.SIGHUP)
        await wait_for_log(log, "policy reload refused")
        # wh-3 holds stock: a file without it is refused against the state, saying why.
        policy.write_text(text.replace('"wh-3"', '"wh-9"'))
        service.send_signal(signal.SIGHUP)
        await wait_for_log(log, 'location "wh-3" is still in use')
        policy.write_text(text.replace("cap = 200", "cap = 120", 1))
        assert await shown_to_shopify(nc, "A") == 200  # the bad one changed nothing
        service.send_signal(signal.SIGHUP)
        await wait_until_shown(nc, "A", 120)
        service.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: service.wait(timeout=20)) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        await nc.close()
    assert list((tmp_path / "state").glob("snapshot-*.bin"))
