"""`invsync partitions resize` on one NATS server: partitions run with a producer and
reservations, stop, the count changes, the new partitions start; together they hold
exactly what one allocator replaying the same log holds. And the refusals: a running
allocator, a log missing its first messages, votes of reservations across partitions,
and `serve` with another count than the recorded one."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from invsync import Engine, Policy
from invsync._core import partition_of
from invsync.cli import main
from invsync.nats_server import NatsServer
from invsync.service.connection import client_kwargs
from invsync.service.snapshots import DirectorySnapshotStore
from tests.service.harness import (
    EXAMPLE_POLICY,
    cli_connection,
    event,
    replay_stream,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

SKUS = [f"Z{i}" for i in range(12)]
ON_HAND = 30
CHANNELS = ("shopify", "amazon")


async def resize_command(server: NatsServer, *args: str) -> int:
    """`invsync partitions resize` as an operator runs it (in a thread: it runs its own loop)."""
    argv = [
        "partitions",
        "resize",
        *cli_connection(server, "service"),
        "--policy",
        str(EXAMPLE_POLICY),
        "--watch-s",
        "1.5",
    ]
    return await anyio.to_thread.run_sync(main, [*argv, *args])


def state_of(partitions: int, state: Path, k: int) -> Path:
    return state / f"partition-{k}" if k and partitions > 1 else state


async def run_partitions(
    server: NatsServer, state: Path, partitions: int, rounds: int, seed: int
) -> list[tuple[str, int, int]]:
    """`partitions` allocators under a stock and order producer and reservation
    clients; stopped cleanly (snapshots written, leases released). Returns every
    `inv.qty` message seen as (subject, partition, seq)."""
    seen: list[tuple[str, int, int]] = []

    async def on_qty(msg: Msg) -> None:
        body = msgspec.json.decode(msg.data)
        seen.append((msg.subject, body.get("partition", 0), body["seq"]))

    rng = random.Random(seed)
    async with AsyncExitStack() as stack:
        services = [
            await stack.enter_async_context(
                running_service(
                    server, service_config(server, state, partitions=partitions, partition=k)
                )
            )
            for k in range(partitions)
        ]
        nc = services[0].nc
        await nc.subscribe("inv.qty.*", cb=on_qty)
        js = nc.jetstream()
        with anyio.fail_after(60):
            for i in range(rounds):
                sku = rng.choice(SKUS)
                stock = event(
                    "stock.set",
                    f"s{seed}-{i}",
                    sku=sku,
                    location="wh-3",
                    on_hand=ON_HAND + rng.randint(0, 10),
                )
                await js.publish("inv.stock.wh-3", stock)
                line = {"line_id": "1", "sku": rng.choice(SKUS), "qty": rng.randint(1, 2)}
                order = event(
                    "order.placed",
                    f"o{seed}-{i}",
                    order_id=f"sale-{seed}-{i}",
                    channel=rng.choice(CHANNELS),
                    lines=[line],
                )
                await js.publish("inv.order.shopify", order)
                request = {
                    "request_id": f"r{seed}-{i}",
                    "order_id": f"cart-{seed}-{i}",
                    "channel": "shopify",
                    "hold_seconds": 3600,
                    "lines": [{"line_id": "1", "sku": rng.choice(SKUS), "qty": rng.randint(1, 4)}],
                }
                reply = await nc.request("inv.reserve.shopify", msgspec.json.encode(request), 10)
                assert "ok" in msgspec.json.decode(reply.data)
            last = (await js.stream_info("INVSYNC")).state.last_seq
            for svc in services:
                await svc.wait_applied(last)
            await anyio.sleep(0.1)  # the last quantities out
    return seen


async def assert_union_is_one_allocators_replay(
    server: NatsServer, state: Path, partitions: int
) -> None:
    """Each partition's snapshot (written at its stop) against one unpartitioned engine
    replaying the log to the same sequence, SKU by SKU of that partition."""
    policy = Policy.load(EXAMPLE_POLICY)
    async with as_service(server) as nc:
        js = nc.jetstream()
        owned: list[str] = []
        for k in range(partitions):
            snapshot = await DirectorySnapshotStore(state_of(partitions, state, k), 3).load_newest()
            assert snapshot is not None, f"partition {k} wrote no snapshot"
            assert (snapshot.partition, snapshot.partitions) == (k, partitions)
            if partitions == 1:
                part = Engine.restore(policy, snapshot.engine)
            else:
                part = Engine.restore(policy, snapshot.engine, partition=k, partitions=partitions)
            whole = await replay_stream(js, policy, snapshot.stream_sequence)
            mine = [s for s in SKUS if whole.partition_of(s, partitions) == k]
            owned += mine
            for sku in mine:
                assert part.reserved(sku) == whole.reserved(sku), f"{sku}: holds differ"
                assert part.ats(sku) == whole.ats(sku), f"{sku}: units differ"
                assert part.backordered(sku) == whole.backordered(sku), sku
                for channel in CHANNELS:
                    assert part.shown(sku, channel) == whole.shown(sku, channel), sku
        assert sorted(owned) == sorted(SKUS), "every SKU in exactly one partition"
        assert any(whole.reserved(s) for s in SKUS), "reservations held"


@pytest.mark.parametrize(("before", "after"), [(2, 3), (3, 1)])
async def test_resize_loses_nothing(
    nats_server: NatsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    before: int,
    after: int,
) -> None:
    state = tmp_path / "state"
    seen = await run_partitions(nats_server, state, before, rounds=30, seed=1)
    assert (
        await resize_command(
            nats_server, "--from", str(before), "--to", str(after), "--state-dir", str(state)
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"start --partitions {after}" in out
    assert not list(state.rglob("snapshot-*.bin")), "the old partitions' snapshots are retired"
    # More log after the resize, served by the new count.
    seen += await run_partitions(nats_server, state, after, rounds=15, seed=2)
    assert len(seen) == len(set(seen)), "a seq repeated on a (channel, partition)"
    await assert_union_is_one_allocators_replay(nats_server, state, after)


async def test_serve_refuses_another_partition_count(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    await run_partitions(nats_server, tmp_path, 2, rounds=1, seed=3)
    serve = [
        sys.executable,
        "-m",
        "invsync.cli",
        "serve",
        *cli_connection(nats_server, "service"),
        "--policy",
        str(EXAMPLE_POLICY),
        "--metrics-port",
        "0",
        "--partitions",
        "3",
    ]
    with anyio.fail_after(30):  # a serve that is not refused runs until stopped
        done = await anyio.run_process(serve, check=False)
    assert done.returncode == 2
    assert b"resize --from 2 --to 3" in done.stderr


async def test_resize_refuses_while_an_allocator_runs(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_service(nats_server, service_config(nats_server, tmp_path)):
        assert await resize_command(nats_server, "--from", "1", "--to", "2") == 2
    assert "stop every allocator" in capsys.readouterr().out
    # Stopped: the same resize goes through.
    assert await resize_command(nats_server, "--from", "1", "--to", "2") == 0


async def test_resize_refuses_a_log_missing_its_first_messages(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await run_partitions(nats_server, tmp_path, 1, rounds=5, seed=4)
    # Someone limited the stream to its newest messages: the oldest are gone.
    async with as_service(nats_server) as nc:
        js = nc.jetstream()
        config = (await js.stream_info("INVSYNC")).config
        config.max_msgs = 10
        await js.update_stream(config)
    assert await resize_command(nats_server, "--from", "1", "--to", "2") == 2
    assert "whole history" in capsys.readouterr().out


@asynccontextmanager
async def as_service(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(**client_kwargs(server.client("service")))
    try:
        yield nc
    finally:
        await nc.close()


async def test_resize_refuses_a_log_with_reservations_spanning_the_new_partitions(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Decided at once by one allocator; two partitions would decide it by votes.
    left, right = (next(s for s in SKUS if partition_of(s, 2) == k) for k in (0, 1))
    async with running_service(nats_server, service_config(nats_server, tmp_path)) as svc:
        js = svc.nc.jetstream()
        for sku in (left, right):
            stock = event("stock.set", f"s-{sku}", sku=sku, location="wh-3", on_hand=ON_HAND)
            await js.publish("inv.stock.wh-3", stock)
        lines = [{"line_id": str(i), "sku": s, "qty": 1} for i, s in enumerate((left, right))]
        request = {
            "request_id": "cart",
            "order_id": "o-cart",
            "channel": "shopify",
            "hold_seconds": 60,
            "lines": lines,
        }
        reply = await svc.nc.request("inv.reserve.shopify", msgspec.json.encode(request), 10)
        assert msgspec.json.decode(reply.data)["ok"]
    assert await resize_command(nats_server, "--from", "1", "--to", "2") == 2
    assert "'cart'" in capsys.readouterr().out
    # With one partition nothing spans: the same log resizes to 1 (a no-op) fine.
    assert await resize_command(nats_server, "--from", "1", "--to", "1") == 0
