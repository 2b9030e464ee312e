"""`invsync publish` against a real server and the running service: a cycle count too
big for one NATS message gets in whole, a second run changes nothing, and a bad line
is named while the rest arrive."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import (
    TEST_CLIENT,
    TS,
    Running,
    cli_connection,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

SKUS = 20_000
BAD_LINES = {7: "invalid", 12: "malformed"}  # line number → reason


def counted(i: int) -> int:
    return i % 97 + 1


def count_line(i: int, padding: str = "") -> dict[str, Any]:
    body = {
        "type": "stock.set",
        "event_id": f"count-{i}",
        "ts": TS,
        "sku": f"S{i:05d}",
        "location": "wh-3",
        "on_hand": counted(i),
    }
    return {**body, "note": padding} if padding else body


def write_cycle_count(path: Path, padding: str = "") -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(SKUS):
            number = i + 1
            if BAD_LINES.get(number) == "invalid":
                out.write(json.dumps({**count_line(i), "on_hand": -1}) + "\n")
            elif BAD_LINES.get(number) == "malformed":
                out.write('{"type": "stock.set", "event_id": \n')
            else:
                out.write(json.dumps(count_line(i, padding)) + "\n")
    return path


async def publish(server: NatsServer, path: Path, *extra: str) -> tuple[int, str, str]:
    """`invsync publish` as a producer would run it, with the test client's credentials."""
    connection = cli_connection(server, TEST_CLIENT)
    command = [sys.executable, "-m", "invsync.cli", "publish", *connection, str(path), *extra]
    with anyio.fail_after(60):
        done = await anyio.run_process(command, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def on_hand(svc: Running, sku: str) -> int:
    reply = await svc.nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    locations = msgspec.json.decode(reply.data).get("locations", [])
    return next((int(loc["on_hand"]) for loc in locations if loc["location"] == "wh-3"), -1)


async def wait_on_hand(svc: Running, sku: str, expected: int, timeout_s: float = 20.0) -> None:
    with anyio.fail_after(timeout_s):
        while await on_hand(svc, sku) != expected:
            await anyio.sleep(0.05)


async def stock_messages(svc: Running) -> int:
    info = await svc.nc.jetstream().stream_info("INVSYNC", subjects_filter="inv.stock.>")
    return sum((info.state.subjects or {}).values())


def good_skus() -> list[int]:
    return [i for i in range(SKUS) if i + 1 not in BAD_LINES]


async def test_a_cycle_count_over_a_mebibyte_arrives_whole_and_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    path = write_cycle_count(tmp_path / "cycle-count.jsonl")
    assert path.stat().st_size > 2 * 1024 * 1024
    async with running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc:
        code, out, err = await publish(nats_server, path)
        assert code == 1, (out, err)
        for number, reason in BAD_LINES.items():
            assert f"{path}:{number}: {reason}" in err
        assert f"{len(good_skus()):,} events" in out and "1 bad line" not in out
        last = good_skus()[-1]
        await wait_on_hand(svc, f"S{last:05d}", counted(last))
        for i in (0, 5, 7, 8, 12_345):
            assert await on_hand(svc, f"S{i:05d}") == counted(i)
        assert await on_hand(svc, "S00006") == -1  # line 7 was refused: never counted

        # A later count of one SKU, then the same file again: nothing is stored twice,
        # so the later count stands.
        js = svc.nc.jetstream()
        stored = await stock_messages(svc)
        recount = event("stock.set", "recount-8", sku="S00008", location="wh-3", on_hand=999)
        await js.publish("inv.stock.wh-3", recount, headers={"Nats-Msg-Id": "recount-8"})
        code, out, err = await publish(nats_server, path)
        assert code == 1, (out, err)
        assert " 0 stored" in out
        assert await stock_messages(svc) == stored + 1
        sentinel = event("stock.set", "sentinel", sku="ZZZ", location="wh-3", on_hand=3)
        await js.publish("inv.stock.wh-3", sentinel, headers={"Nats-Msg-Id": "sentinel"})
        await wait_on_hand(svc, "ZZZ", 3)
        assert await on_hand(svc, "S00008") == 999


async def test_messages_stay_within_the_servers_limit_when_the_file_is_far_bigger(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # ~12 MiB of events with no cap on events per message: only the size limit splits it.
    path = write_cycle_count(tmp_path / "padded.jsonl", padding="x" * 600)
    assert path.stat().st_size > 10 * 1024 * 1024
    async with running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc:
        code, out, err = await publish(nats_server, path, "--batch-events", str(SKUS))
        assert code == 1, (out, err)
        assert f"{len(good_skus()):,} events in 2 messages" in out
        last = good_skus()[-1]
        await wait_on_hand(svc, f"S{last:05d}", counted(last))
        assert await on_hand(svc, "S00000") == counted(0)


async def test_without_the_service_stream_nothing_is_sent_and_the_fix_is_named(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(count_line(1)) + "\n", encoding="utf-8")
    code, _, err = await publish(nats_server, path, "--prefix", "shop")
    assert code == 2
    assert "shop.stock.>" in err and "invsync serve" in err and "--prefix shop" in err
