"""A leader and a hot standby as processes: the standby takes over, nothing is lost,
and a deposed leader that comes back can neither write nor answer.

Reservation clients run throughout and retry each request (same request_id) until
it is answered. Afterwards every granted hold is held, exactly once; no `seq` of
`inv.qty.*` was used twice; replaying the log from scratch gives the live state.
A channel connector sees the new leader's `seq` jump, resyncs and converges.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from invsync import Engine, Policy
from invsync.nats_server import NatsServer
from invsync.service.consumer import LogReader
from invsync.service.logwriter import EXPECTED_LAST_SUBJECT_SEQUENCE
from invsync.service.publisher import EPOCH_SHIFT
from invsync.service.snapshots import ObjectStoreSnapshotStore
from invsync.service.subjects import Subjects
from tests.gateway.fake_profile import FakeProfile, per_item_lane
from tests.integration.failover import ReservationClients, ServiceProcess, start_service
from tests.integration.test_connector import connector, csv_text
from tests.service.harness import EXAMPLE_POLICY, TS, connect_as, replay_stream

pytestmark = pytest.mark.anyio

SKUS = [f"H{i}" for i in range(4)]
# SKUs whose stock changes while the standby follows.
FOLLOWED = [f"F{i}" for i in range(40)]
CLIENTS = 4
# Lease 1 s: the standby claims after a lease without renewal, then fences and applies.
TAKEOVER_BOUND_S = 5.0


class QuantityLog:
    """Every `inv.qty.*` message: when it arrived, its subject and `seq`."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, int]] = []

    async def on_msg(self, msg: Msg) -> None:
        self.seen.append((time.monotonic(), msg.subject, msgspec.json.decode(msg.data)["seq"]))

    def no_seq_twice(self) -> bool:
        keys = [(subject, seq) for _, subject, seq in self.seen]
        return len(keys) == len(set(keys))


async def stock_up(nc: Client) -> None:
    js = nc.jetstream()
    for sku in SKUS:
        body = {"type": "stock.set", "event_id": f"s-{sku}", "ts": TS, "sku": sku}
        await js.publish(
            "inv.stock.wh-3", msgspec.json.encode({**body, "location": "wh-3", "on_hand": 100_000})
        )


async def leader_and_standby(
    server: NatsServer, nc: Client
) -> tuple[ServiceProcess, ServiceProcess]:
    leader = start_service(server, standby=False)
    await leader.wait_metric("invsync_partition_leader", 1, 30)
    await stock_up(nc)
    standby = start_service(server, standby=True)
    await standby.wait_metric("invsync_partition_leader", 0, 30)
    await standby.wait_metric("invsync_standby_lag_events", 0, 30)
    return leader, standby


async def until(predicate: Any, timeout_s: float) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():
            await anyio.sleep(0.02)


async def live_and_replayed(server: NatsServer) -> tuple[Engine, Engine]:
    """The newest snapshot's engine and a fresh engine replaying the log up to it."""
    policy = Policy.load(EXAMPLE_POLICY)
    reader = await connect_as(server, "service")
    try:
        js = reader.jetstream()
        snapshot = await ObjectStoreSnapshotStore(js, "INVSYNC_SNAPSHOTS", 3).load_newest()
        assert snapshot is not None
        replayed = await replay_stream(js, policy, snapshot.stream_sequence)
    finally:
        await reader.close()
    return Engine.restore(policy, snapshot.engine), replayed


def assert_holds_are_exactly_the_grants(engine: Engine, clients: ReservationClients) -> None:
    assert sum(clients.granted.values()) > 0
    for sku in SKUS:
        assert engine.explain(sku).to_dict()["reserved"] == clients.granted[sku], sku
    assert clients.answers_per_attempt() == 1
    assert all(a.get("ok") for a in clients.decided.values()), "stock covers every request"


def stop(*processes: ServiceProcess) -> None:
    """SIGTERM (after SIGCONT, for a paused one): each stops cleanly."""
    for service in processes:
        service.process.send_signal(signal.SIGCONT)
        service.process.send_signal(signal.SIGTERM)
    for service in processes:
        assert service.process.wait(timeout=20) == 0


def cleanup(*processes: ServiceProcess) -> None:
    for service in processes:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


async def test_kill_nine_of_the_leader_hands_over_to_the_standby_with_nothing_lost(
    nats_server: NatsServer,
) -> None:
    nc = await connect_as(nats_server)
    quantities = QuantityLog()
    await nc.subscribe("inv.qty.>", cb=quantities.on_msg)
    leader, standby = await leader_and_standby(nats_server, nc)
    try:
        clients = ReservationClients(nc, SKUS)
        await clients.start()
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            for n in range(CLIENTS):
                tg.start_soon(clients.run, f"c{n}", done, 20.0, 2_000)
            await until(lambda: len(clients.decided) >= 40, 30)
            killed_at = time.monotonic()
            leader.process.kill()
            leader.process.wait()
            await until(lambda: clients.first_answer_after(killed_at) is not None, 20)
            answered = clients.first_answer_after(killed_at)
            assert answered is not None and answered - killed_at < TAKEOVER_BOUND_S
            decided = len(clients.decided)
            await until(lambda: len(clients.decided) >= decided + 40, 30)
            done.set()
        assert standby.metric("invsync_partition_leader") == 1
        epoch = standby.metric("invsync_partition_epoch")
        assert epoch is not None and epoch >= 1
        stop(standby)
    finally:
        cleanup(leader, standby)
        await nc.close()

    live, replayed = await live_and_replayed(nats_server)
    assert_holds_are_exactly_the_grants(live, clients)
    for sku in SKUS:
        assert live.explain(sku).to_dict() == replayed.explain(sku).to_dict(), sku
    assert quantities.no_seq_twice()
    # The new leader numbered from its epoch's base: a connector sees the jump and resyncs.
    assert max(seq for _, _, seq in quantities.seen) > int(epoch) << EPOCH_SHIFT


async def log_entries(server: NatsServer) -> list[tuple[int, str, dict[str, str]]]:
    """Stream sequence, subject and headers of every message in the log, read as the service."""
    nc = await connect_as(server, "service")
    js = nc.jetstream()
    last = (await js.stream_info("INVSYNC")).state.last_seq
    reader = LogReader(js, "INVSYNC", Subjects())
    entries: list[tuple[int, str, dict[str, str]]] = []
    try:
        await reader.open(0)
        with anyio.fail_after(20):
            while reader.last_sequence < last:
                for msg in await reader.fetch(1_000, 0.5):
                    entries.append((msg.stream_seq, msg.subject, dict(msg.headers or {})))
    finally:
        await reader.close()
        await nc.close()
    return entries


async def test_a_paused_leader_that_comes_back_after_a_takeover_cannot_write_or_answer(
    nats_server: NatsServer,
) -> None:
    nc = await connect_as(nats_server)
    quantities = QuantityLog()
    await nc.subscribe("inv.qty.>", cb=quantities.on_msg)
    leader, standby = await leader_and_standby(nats_server, nc)
    try:
        clients = ReservationClients(nc, SKUS)
        await clients.start()
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            for n in range(CLIENTS):
                tg.start_soon(clients.run, f"c{n}", done, 30.0, 2_000)
            await until(lambda: len(clients.decided) >= 40, 30)
            paused_at = time.monotonic()
            leader.process.send_signal(signal.SIGSTOP)
            await standby.wait_metric("invsync_partition_leader", 1, 15)
            await until(lambda: clients.first_answer_after(paused_at) is not None, 20)
            epoch = standby.metric("invsync_partition_epoch")
            assert epoch is not None and epoch >= 1
            new_base = int(epoch) << EPOCH_SHIFT
            decided = len(clients.decided)
            await until(lambda: len(clients.decided) >= decided + 20, 30)

            resumed_at = time.monotonic()
            leader.process.send_signal(signal.SIGCONT)
            await leader.wait_metric("invsync_partition_leader", 0, 15)
            decided = len(clients.decided)
            await until(lambda: len(clients.decided) >= decided + 40, 30)
            done.set()
        assert standby.metric("invsync_partition_leader") == 1
        assert leader.process.poll() is None, "the deposed leader follows the log again"
        stop(standby, leader)
    finally:
        cleanup(leader, standby)
        await nc.close()

    # Nothing the deposed leader published after it woke reached anyone: every
    # quantity message since is numbered in the new epoch.
    assert [seq for at, _, seq in quantities.seen if at > resumed_at and seq <= new_base] == []
    assert quantities.no_seq_twice()
    # Nothing it wrote after the takeover is in the log: each entry after the new
    # epoch entry carries the new leader's fence.
    entries = await log_entries(nats_server)
    epoch_entries = [seq for seq, subject, _ in entries if subject == "inv.log.leader.0"]
    assert len(epoch_entries) == 2
    written = [
        headers.get(EXPECTED_LAST_SUBJECT_SEQUENCE)
        for seq, subject, headers in entries
        if seq > epoch_entries[1] and subject.startswith("inv.log.")
    ]
    assert written, "the new leader wrote"
    assert set(written) == {str(epoch_entries[1])}
    live, replayed = await live_and_replayed(nats_server)
    assert_holds_are_exactly_the_grants(live, clients)
    for sku in SKUS:
        assert live.explain(sku).to_dict() == replayed.explain(sku).to_dict(), sku


async def shown_on(nc: Client, channel: str, sku: str) -> int:
    reply = await nc.request(
        "inv.query.channel", msgspec.json.encode({"channel": channel}), timeout=5
    )
    items = msgspec.json.decode(reply.data)["items"]
    return next((i["qty"] for i in items if i["sku"] == sku), 0)


async def set_stock(nc: Client, sku: str, on_hand: int, event_id: str) -> None:
    body = {"type": "stock.set", "event_id": event_id, "ts": TS, "sku": sku}
    await nc.jetstream().publish(
        "inv.stock.wh-3", msgspec.json.encode({**body, "location": "wh-3", "on_hand": on_hand})
    )


async def test_a_connector_resyncs_on_the_new_leaders_seq_jump_and_converges(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "amazon.csv").write_text(csv_text("G1"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    nc = await connect_as(nats_server)
    leader, standby = await leader_and_standby(nats_server, nc)
    try:
        await set_stock(nc, "G1", 100, "g1")
        async with connector(nats_server, FakeProfile([lane]), None, tmp_path) as (conn, _):
            await until(lambda: (lane.shown.get("G1-new") or 0) > 0, 15)
            before = lane.shown["G1-new"]
            assert conn.resyncs == 1
            leader.process.kill()
            leader.process.wait()
            await standby.wait_metric("invsync_partition_leader", 1, 15)
            epoch = standby.metric("invsync_partition_epoch")
            assert epoch is not None and epoch >= 1
            await set_stock(nc, "G1", 30, "g2")
            with anyio.fail_after(15):
                while (after := await shown_on(nc, "amazon", "G1")) == before:
                    await anyio.sleep(0.05)
            await until(lambda: lane.shown.get("G1-new") == after, 15)
            assert conn.resyncs == 2
            assert conn.last_seq is not None and conn.last_seq > int(epoch) << EPOCH_SHIFT
        stop(standby)
    finally:
        cleanup(leader, standby)
        await nc.close()


class ShownLog:
    """Every item of every `inv.qty.*` message, in arrival order: (channel, sku, qty)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int]] = []

    async def on_msg(self, msg: Msg) -> None:
        message = msgspec.json.decode(msg.data)
        self.items += [(message["channel"], i["sku"], i["qty"]) for i in message["items"]]

    def latest(self, since: int = 0) -> dict[tuple[str, str], int]:
        """(channel, sku) → the last quantity shown, over the items from `since` on."""
        return {(channel, sku): qty for channel, sku, qty in self.items[since:]}


async def applied_through(service: ServiceProcess, sequence: int, timeout_s: float) -> None:
    with anyio.fail_after(timeout_s):
        while (await anyio.to_thread.run_sync(service.metric, "invsync_stream_sequence") or 0) < (
            sequence
        ):
            await anyio.sleep(0.05)


async def test_a_promoted_standby_publishes_every_quantity_that_changed_while_it_followed(
    nats_server: NatsServer,
) -> None:
    nc = await connect_as(nats_server)
    shown = ShownLog()
    await nc.subscribe("inv.qty.>", cb=shown.on_msg)
    leader, standby = await leader_and_standby(nats_server, nc)
    try:
        js = nc.jetstream()
        for n, sku in enumerate(FOLLOWED):
            body = {"type": "stock.set", "event_id": f"f-{sku}", "ts": TS, "sku": sku}
            ack = await js.publish(
                "inv.stock.wh-3",
                msgspec.json.encode({**body, "location": "wh-3", "on_hand": 10 + n}),
            )
        await until(lambda: {sku for _, sku in shown.latest()} >= set(FOLLOWED), 15)
        # Applied by the standby as a follower, before the leader goes.
        await applied_through(standby, ack.seq, 15)
        leader.process.kill()
        leader.process.wait()
        led = {key: qty for key, qty in shown.latest().items() if key[1] in FOLLOWED}
        takeover = len(shown.items)
        await standby.wait_metric("invsync_partition_leader", 1, 15)
        await until(lambda: shown.latest(takeover).keys() >= led.keys(), 15)
        stop(standby)
    finally:
        cleanup(leader, standby)
        await nc.close()
    # Every channel showed the followed SKUs, and the new leader shows each the same.
    assert {channel for channel, _ in led} == set(Policy.load(EXAMPLE_POLICY).channels)
    promoted = shown.latest(takeover)
    assert {key: promoted[key] for key in led} == led
