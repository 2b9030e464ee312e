"""`invsync explain SKU --nats URL` asks the running service and prints the contract text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import (
    EXAMPLE_POLICY,
    cli_connection,
    event,
    running_service,
    service_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.nats]


async def test_explain_over_nats_prints_the_numbers_of_the_running_service(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=1000)
        )
        command = [
            sys.executable,
            "-m",
            "invsync.cli",
            "explain",
            "A",
            "--policy",
            str(EXAMPLE_POLICY),
            *cli_connection(nats_server, "observer"),
        ]
        with anyio.fail_after(30):
            while True:
                done = await anyio.run_process(command, check=False)
                out = done.stdout.decode()
                if "on hand 1000" in out:
                    break
                await anyio.sleep(0.1)
    assert done.returncode == 0
    assert out.startswith("A  ATS 925 = on hand 1000 − reserved 0 − safety 75")
    assert "  shopify     tier 1    200  = min(cap 200, 925)" in out


def test_explain_for_a_sku_nothing_named_says_so_and_exits_1() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "invsync.cli", "explain", "NOPE", "--policy", str(EXAMPLE_POLICY)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "no stock record for 'NOPE'" in done.stderr
