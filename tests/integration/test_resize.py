"""`invsync partitions resize` on one NATS server. Partitions run under a stock and
order producer and reservation clients whose carts span partitions (committed,
aborted, and one timed out because its other partition was down); they stop, the
count changes, the new partitions start and take more load. The new partitions
together hold what the old ones held at the resize, every hold granted before still
holds, no unit is granted twice, no `seq` repeats per (channel, partition), and each
new partition publishes every SKU it took over. And the refusals: a running
allocator, a spanning reservation the log has not decided, a partition that must
replay a log missing its first messages, `serve` with another count than the
recorded one, and a new partition without the resize's snapshot."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from invsync import Engine, Policy
from invsync._core import partition_of
from invsync.cli import main
from invsync.errors import BadInputError
from invsync.nats_server import NatsServer
from invsync.service.connection import client_kwargs
from invsync.service.resize import old_partition_at
from invsync.service.snapshots import DirectorySnapshotStore
from invsync.service.subjects import Subjects
from tests.service.harness import (
    EXAMPLE_POLICY,
    cli_connection,
    connect_as,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

SKUS = [f"Z{i}" for i in range(12)]
ON_HAND = 30
CHANNELS = ("shopify", "amazon")
HOLD_S = 3600

# (order id, expires at, its lines as (line id, sku, condition, units held))
Holds = dict[str, tuple[datetime, list[tuple[str, str, str, int]]]]


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


def spanning_cart(partitions: int, first: int, second: int) -> list[str]:
    """Two SKUs, the first of partition `first`, the second of `second`."""
    return [next(s for s in SKUS if partition_of(s, partitions) == k) for k in (first, second)]


def cart(request_id: str, skus_qty: list[tuple[str, int]]) -> bytes:
    lines = [{"line_id": str(i), "sku": s, "qty": q} for i, (s, q) in enumerate(skus_qty)]
    request = {
        "request_id": request_id,
        "order_id": f"cart-{request_id}",
        "channel": "shopify",
        "hold_seconds": HOLD_S,
        "lines": lines,
    }
    return msgspec.json.encode(request)


@dataclass
class Seen:
    """What the clients were told and what the channels were sent."""

    # request id → the reply
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (subject, partition, seq) of every `inv.qty` message
    qty: list[tuple[str, int, int]] = field(default_factory=list)
    # (channel subject, partition) → SKUs its messages named
    skus: dict[tuple[str, int], set[str]] = field(default_factory=dict)

    async def on_qty(self, msg: Msg) -> None:
        body = msgspec.json.decode(msg.data)
        partition = body.get("partition", 0)
        self.qty.append((msg.subject, partition, body["seq"]))
        named = self.skus.setdefault((msg.subject, partition), set())
        named.update(item["sku"] for item in body["items"])

    def granted(self) -> dict[str, dict[str, Any]]:
        return {rid: r for rid, r in self.replies.items() if r["ok"]}


@asynccontextmanager
async def partitions_running(
    server: NatsServer, state: Path, partitions: int, seen: Seen, which: range | None = None
) -> AsyncIterator[Client]:
    """The partitions (`which` of `partitions`, all by default) running, stopped cleanly
    (snapshots written, leases released) on exit; every `inv.qty` message goes to `seen`."""
    async with AsyncExitStack() as stack:
        watcher = await connect_as(server)
        stack.push_async_callback(watcher.close)
        # Subscribed before any partition starts: its opening quantities are seen too.
        await watcher.subscribe("inv.qty.*", cb=seen.on_qty)
        await watcher.flush()
        services = [
            await stack.enter_async_context(
                running_service(
                    server, service_config(server, state, partitions=partitions, partition=k)
                )
            )
            for k in (which or range(partitions))
        ]
        nc = services[0].nc
        yield nc
        js = nc.jetstream()
        last = (await js.stream_info("INVSYNC")).state.last_seq
        for svc in services:
            await svc.wait_applied(last)
        await anyio.sleep(0.1)  # the last quantities out


async def load(nc: Client, seen: Seen, partitions: int, rounds: int, seed: int) -> None:
    """A stock and order producer, and carts: single lines, lines spanning partitions,
    and every fifth cart asking for more than there is (aborted). Stock only grows."""
    rng = random.Random(seed)
    js = nc.jetstream()
    with anyio.fail_after(90):
        for i, sku in enumerate(SKUS):
            stock = event(
                "stock.set",
                f"s{seed}-all-{i}",
                sku=sku,
                location="wh-3",
                on_hand=ON_HAND + 100 * seed,
            )
            await js.publish("inv.stock.wh-3", stock)
        for i in range(rounds):
            sku = rng.choice(SKUS)
            # Stock only grows: a unit held beyond what is on hand was granted twice.
            on_hand = ON_HAND + 100 * seed + i + 1
            stock = event("stock.set", f"s{seed}-{i}", sku=sku, location="wh-3", on_hand=on_hand)
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
            first, second = rng.sample(range(partitions), 2) if partitions > 1 else (0, 0)
            left, right = spanning_cart(partitions, first, second)
            lines = [(left, rng.randint(1, 2)), (right, 1000 if i % 5 == 4 else 1)]
            if i % 3 == 0:
                lines = [(rng.choice(SKUS), rng.randint(1, 3))]
            request_id = f"r{seed}-{i}"
            reply = await nc.request("inv.reserve.shopify", cart(request_id, lines), 10)
            seen.replies[request_id] = msgspec.json.decode(reply.data)


async def timed_out_cart(server: NatsServer, state: Path, partitions: int, seen: Seen) -> str:
    """A cart spanning partitions 0 and 1 while partition 1 is down: partition 0
    prepares and votes, partition 1 never does, and the log's clock aborts it."""
    request_id = "lonely"
    async with partitions_running(server, state, partitions, seen, range(1)) as nc:
        skus = spanning_cart(partitions, 0, 1)
        with anyio.fail_after(30):
            reply = await nc.request(
                "inv.reserve.shopify", cart(request_id, [(s, 1) for s in skus]), 25
            )
    answer = msgspec.json.decode(reply.data)
    assert not answer["ok"] and answer["lines"][1]["reason"] == "timeout", answer
    seen.replies[request_id] = answer
    return request_id


async def states_at_end_of_log(
    server: NatsServer, state: Path, partitions: int
) -> tuple[list[Engine], int]:
    """Each partition's state at the log's end, as its leader would have it: its
    snapshot plus the log after it, applied by the service's own applier."""
    policy = Policy.load(EXAMPLE_POLICY)
    async with as_service(server) as nc:
        js = nc.jetstream()
        info = await js.stream_info("INVSYNC")
        at = info.state.last_seq
        engines = [
            (
                await old_partition_at(
                    js, info, "INVSYNC", Subjects(), policy, state, (k, partitions), at
                )
            )[0]
            for k in range(partitions)
        ]
    return engines, at


def union(engines: list[Engine]) -> tuple[dict[str, tuple[int, int, int, int]], Holds]:
    """Per SKU (on hand, reserved, backordered, ATS), each from its own partition; and
    every partition's holds, an order's lines from all of them together."""
    per_sku = {}
    holds: Holds = {}
    for engine in engines:
        k, n = engine.partition
        for sku in SKUS:
            if engine.partition_of(sku, n) != k:
                continue
            try:
                why = engine.explain(sku).to_dict()
            except BadInputError:
                continue  # never named by any event
            per_sku[sku] = (why["on_hand"], why["reserved"], why["backordered"], why["ats"])
        for order_id, (expires, lines) in engine.holds().items():
            had = holds.setdefault(order_id, (expires, []))
            assert had[0] == expires, f"{order_id}: expiries differ between partitions"
            had[1].extend(lines)
    return per_sku, {o: (e, sorted(lines)) for o, (e, lines) in holds.items()}


def assert_granted_holds_hold(seen: Seen, holds: Holds) -> None:
    """Every granted cart is held, line for line, until the expiry it was told; no
    refused one holds anything."""
    for request_id, reply in seen.replies.items():
        held = holds.get(reply["order_id"])
        if not reply["ok"]:
            assert held is None, f"{request_id} was refused and holds {held}"
            continue
        assert held is not None, f"{request_id} was granted and holds nothing"
        expires, lines = held
        assert expires == datetime.fromisoformat(reply["expires_at"]), request_id
        want = sorted((line["line_id"], line["sku"], "new", line["qty"]) for line in reply["lines"])
        assert lines == want, request_id


async def final_states(server: NatsServer, state: Path, partitions: int) -> list[Engine]:
    engines, _ = await states_at_end_of_log(server, state, partitions)
    return engines


@pytest.mark.parametrize(("before", "after"), [(2, 3), (3, 1)])
async def test_resize_moves_every_hold_and_loses_nothing(
    nats_server: NatsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    before: int,
    after: int,
) -> None:
    state = tmp_path / "state"
    seen = Seen()
    async with partitions_running(nats_server, state, before, seen) as nc:
        await load(nc, seen, before, rounds=30, seed=1)
    lonely = await timed_out_cart(nats_server, state, before, seen)
    granted = seen.granted()
    spanning = [
        rid
        for rid, r in seen.replies.items()
        if len({partition_of(line["sku"], before) for line in r["lines"]}) > 1
    ]
    assert any(seen.replies[r]["ok"] for r in spanning), "a committed spanning cart"
    assert any(not seen.replies[r]["ok"] for r in spanning if r != lonely), "an aborted one"

    olds, at = await states_at_end_of_log(nats_server, state, before)
    old_skus, old_holds = union(olds)
    assert_granted_holds_hold(seen, old_holds)

    assert (
        await resize_command(
            nats_server, "--from", str(before), "--to", str(after), "--state-dir", str(state)
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"recorded at stream sequence {at}" in out
    for k in range(after):
        snapshot = await DirectorySnapshotStore(state_of(after, state, k), 3).load_newest()
        assert snapshot is not None
        assert (snapshot.partition, snapshot.partitions, snapshot.stream_sequence) == (
            k,
            after,
            at,
        )
    snapshots = list(state.rglob("snapshot-*.bin"))
    assert len(snapshots) == after, f"the old partitions' snapshots are retired: {snapshots}"

    news, _ = await states_at_end_of_log(nats_server, state, after)
    assert union(news) == (old_skus, old_holds), "the new partitions hold what the old held"

    # The new count serves, under more load.
    first_qty = len(seen.qty)
    async with partitions_running(nats_server, state, after, seen) as nc:
        with anyio.fail_after(20):
            # Each new partition publishes every SKU it took over, on every channel.
            while not all(
                {s for s in SKUS if partition_of(s, after) == k}
                <= seen.skus.get((f"inv.qty.{channel}", k), set())
                for k in range(after)
                for channel in CHANNELS
            ):
                await anyio.sleep(0.05)
        await load(nc, seen, after, rounds=15, seed=2)
    assert len(seen.qty) > first_qty
    assert len(seen.qty) == len(set(seen.qty)), "a seq repeated on a (channel, partition)"

    final_skus, final_holds = union(await final_states(nats_server, state, after))
    assert_granted_holds_hold(seen, final_holds)
    assert set(granted) <= {rid for rid, r in seen.granted().items()}
    for sku, (on_hand, reserved, _, ats) in final_skus.items():
        assert reserved <= on_hand, f"{sku}: a unit granted twice"
        assert ats >= 0, sku


async def test_serve_refuses_another_partition_count(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with partitions_running(nats_server, tmp_path, 2, Seen()):
        pass
    done = await serve_once(nats_server, "--partitions", "3")
    assert done.returncode == 2
    assert b"resize --from 2 --to 3" in done.stderr


async def serve_once(server: NatsServer, *args: str) -> Any:
    """`invsync serve` as a process; one that is not refused runs until the timeout."""
    serve = [
        sys.executable,
        "-m",
        "invsync.cli",
        "serve",
        *cli_connection(server, "service"),
        "--policy",
        str(EXAMPLE_POLICY),
        "--metrics-port",
        "0",
        *args,
    ]
    with anyio.fail_after(30):
        return await anyio.run_process(serve, check=False)


async def test_a_new_partition_without_the_resize_snapshot_refuses_to_replay(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with partitions_running(nats_server, state, 2, Seen()) as nc:
        await load(nc, Seen(), 2, rounds=3, seed=5)
    args = ("--from", "2", "--to", "3", "--state-dir", str(state))
    assert await resize_command(nats_server, *args) == 0
    # Partition 2 started on an empty store: the log before the resize is another count's.
    empty = tmp_path / "elsewhere"
    done = await serve_once(
        nats_server, "--partitions", "3", "--partition", "2", "--state", str(empty)
    )
    assert done.returncode == 2
    assert b"no usable snapshot at or after stream sequence" in done.stderr
    # With the resize's store it starts.
    async with partitions_running(nats_server, state, 3, Seen(), range(2, 3)):
        pass


async def test_partitions_on_volumes_the_resize_cannot_reach_start_from_the_bucket(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in k8s: each allocator keeps its snapshots on its own volume, which the resize
    # does not see. It rebuilds the old partitions from the log and writes the new
    # snapshots to the stream's bucket, where the new partitions find them.
    state = tmp_path / "volumes"
    seen = Seen()
    async with partitions_running(nats_server, state, 2, seen) as nc:
        await load(nc, seen, 2, rounds=10, seed=6)
    assert seen.granted()
    assert await resize_command(nats_server, "--from", "2", "--to", "3") == 0
    assert "p2-snapshot-" in capsys.readouterr().out
    async with partitions_running(nats_server, state, 3, seen):
        pass
    _, holds = union(await final_states(nats_server, state, 3))
    assert_granted_holds_hold(seen, holds)


async def test_resize_refuses_while_an_allocator_runs(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_service(nats_server, service_config(nats_server, tmp_path)):
        assert await resize_command(nats_server, "--from", "1", "--to", "2") == 2
    assert "stop every allocator" in capsys.readouterr().out
    # Stopped: the same resize goes through.
    assert await resize_command(nats_server, "--from", "1", "--to", "2") == 0


async def test_resize_refuses_an_undecided_spanning_reservation_until_the_log_decides_it(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with partitions_running(nats_server, state, 2, Seen(), range(1)) as nc:
        js = nc.jetstream()
        skus = spanning_cart(2, 0, 1)
        for sku in skus:
            stock = event("stock.set", f"s-{sku}", sku=sku, location="wh-3", on_hand=ON_HAND)
            await js.publish("inv.stock.wh-3", stock)
        # Partition 1 is down: the cart waits for its vote, and we stop before the
        # log's clock times it out.
        with pytest.raises(NatsTimeoutError):
            await nc.request("inv.reserve.shopify", cart("waiting", [(s, 1) for s in skus]), 0.5)
    args = ("--from", "2", "--to", "3", "--state-dir", str(state))
    assert await resize_command(nats_server, *args) == 2
    out = capsys.readouterr().out
    assert "'waiting'" in out and "cross_partition_timeout_s" in out
    # As the refusal says: the old partitions run past the time-out, then it resizes.
    async with partitions_running(nats_server, state, 2, Seen()):
        await anyio.sleep(7)
    assert await resize_command(nats_server, *args) == 0


async def test_resize_refuses_when_a_partition_must_replay_messages_the_log_dropped(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with partitions_running(nats_server, tmp_path, 1, Seen()) as nc:
        await load(nc, Seen(), 1, rounds=5, seed=4)
    # Its snapshot is lost, and someone limited the stream to its newest messages.
    for path in tmp_path.glob("snapshot-*.bin"):
        path.unlink()
    async with as_service(nats_server) as nc:
        js = nc.jetstream()
        config = (await js.stream_info("INVSYNC")).config
        config.max_msgs = 10
        await js.update_stream(config)
    args = ("--from", "1", "--to", "2", "--state-dir", str(tmp_path))
    assert await resize_command(nats_server, *args) == 2
    assert "dropped messages it never applied" in capsys.readouterr().out


@asynccontextmanager
async def as_service(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(**client_kwargs(server.client("service")))
    try:
        yield nc
    finally:
        await nc.close()
