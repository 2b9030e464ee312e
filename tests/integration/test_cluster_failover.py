"""Partitions and failover on a three-node NATS cluster, killed one process at a time.

Two partitions, each a leader and a hot standby (four `invsync serve --standby`
processes: the lease alone decides who leads, as in k8s/), on a 3-node cluster with
the stream replicated R3. Sixteen reservation clients (a third of their requests span
both partitions) and an event producer run while `kill -9` hits, one at a time:

1. a partition's leader (its standby takes over; the killed one comes back a standby);
2. the NATS node leading the stream (restarted once the cluster has moved on);
3. a cross-partition reservation's participant mid-way: the request is in the log and
   its coordinator has voted, the other partition's leader is stopped before it can,
   then killed; its standby recomputes the vote (or the time-out aborts).

Then a leader is paused until its standby takes over and resumed: a deposed leader
that comes back. Afterwards: every granted reservation holds, no unit is granted
twice, no hold is stranded (each SKU's reserved equals what the replies granted), no
`inv.qty` seq repeats per (channel, partition), every write fenced by an epoch entry
was stored while that entry was the newest (so no deposed leader wrote), and
replaying the log from scratch gives each partition's live state. A policy that
splits a bundle family across partitions is refused.

Every loop is bounded in count and time; the whole test is bounded by its timeout.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from invsync import Engine, Policy
from invsync._core import partition_of
from invsync.nats_server import free_port
from invsync.service.app import snapshot_store
from invsync.service.applier import Applier
from invsync.service.config import ServiceConfig
from invsync.service.consumer import LogReader
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects
from tests.cluster import STREAM, NatsCluster, create_replicated_stream, wait_stream_leader
from tests.users import TEST_CLIENT

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(280)]

PARTITIONS = 2
CLIENTS = 16
REQUESTS_PER_CLIENT = 120  # a cap: clients stop earlier once the kills are done
PRODUCER_EVENTS = 20_000  # likewise
HOLD_UNITS = 30  # on hand of each reservation SKU: the clients want more than that
TS = "2026-11-23T10:00:00Z"
SERVING_TIMEOUT_S = 60.0
TAKEOVER_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 2.0
ANSWERED_WITHIN_S = 60.0  # a client retries the same request_id until answered
LEASE_S = "1.0"
EXPECTED_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
EXPECTED_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"


def skus_of(prefix: str, k: int, count: int) -> list[str]:
    """The first `count` SKUs `<prefix><i>` that partition k owns (each its own family)."""
    found = [f"{prefix}{i}" for i in range(1000) if partition_of(f"{prefix}{i}", PARTITIONS) == k]
    return found[:count]


HOLD_SKUS = {k: skus_of("H", k, 4) for k in range(PARTITIONS)}
ORDER_SKUS = {k: skus_of("K", k, 6) for k in range(PARTITIONS)}
ALL_HOLD_SKUS = [sku for k in range(PARTITIONS) for sku in HOLD_SKUS[k]]
ALL_ORDER_SKUS = [sku for k in range(PARTITIONS) for sku in ORDER_SKUS[k]]

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh-1"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "amazon"
tier = 1
"""


# --- the allocators ---------------------------------------------------------------------


def scrape(port: int) -> dict[str, float]:
    """A process's gauges by name (summed over labels); empty while it replays."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


@dataclass
class Allocator:
    """One `invsync serve` process of partition k, a candidate for its lease."""

    partition: int
    name: str
    node_url: str
    seed: Path
    policy: Path
    state: Path
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        command = [
            sys.executable, "-m", "invsync.cli", "serve",
            "--nats", self.node_url, "--nkey", str(self.seed),
            "--policy", str(self.policy), "--state", str(self.state),
            "--partitions", str(PARTITIONS), "--partition", str(self.partition),
            "--standby", "--lease-s", LEASE_S,
            "--metrics-port", str(self.metrics_port),
            "--snapshot-events", "5000", "--log-level", "WARNING",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=os.environ.copy())

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.poll() is None, f"{self.name} is down"
        return self.process.pid

    def revive(self) -> None:
        """Start it again if it exited on its own, as its StatefulSet would (a start-up
        while the cluster still elects a stream's leader can time out)."""
        if self.process is not None and self.process.poll() is not None:
            self.restarts += 1
            self.start()

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM: a leader writes its snapshot. The exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    async def metrics(self) -> dict[str, float]:
        if self.process is None or self.process.poll() is not None:
            return {}
        return await anyio.to_thread.run_sync(scrape, self.metrics_port)

    async def leads(self) -> bool:
        return (await self.metrics()).get("invsync_partition_leader", 0.0) == 1.0


@dataclass
class Fleet:
    allocators: list[Allocator]

    def of(self, k: int) -> list[Allocator]:
        return [a for a in self.allocators if a.partition == k]

    async def wait_leader(self, k: int, not_: Allocator | None = None) -> Allocator:
        """The one allocator of partition k that leads (and is not `not_`), once it does."""
        with anyio.fail_after(TAKEOVER_TIMEOUT_S):
            while True:
                for allocator in self.of(k):
                    if allocator is not not_:
                        allocator.revive()
                leading = [a for a in self.of(k) if a is not not_ and await a.leads()]
                if len(leading) == 1:
                    return leading[0]
                await anyio.sleep(0.05)

    def stop(self) -> None:
        for allocator in self.allocators:
            if allocator.process is not None:
                allocator.stop()


# --- load ---------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients were told and what the producer sent."""

    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_hand: Counter[str] = field(default_factory=Counter)
    ordered: Counter[str] = field(default_factory=Counter)
    seqs: list[tuple[str, int, int]] = field(default_factory=list)

    def granted(self) -> Counter[str]:
        units: Counter[str] = Counter()
        for reply in self.replies.values():
            if reply["ok"]:
                for line in reply["lines"]:
                    units[line["sku"]] += line["qty"]
        return units


def reservation(rng: random.Random, request_id: str) -> dict[str, Any]:
    """One or two lines; with two, one in each partition a third of the time."""
    first = rng.choice(ALL_HOLD_SKUS)
    lines = [{"line_id": "1", "sku": first, "qty": rng.randint(1, 2)}]
    if rng.random() < 1 / 3:
        other = HOLD_SKUS[1 - partition_of(first, PARTITIONS)]
        lines.append({"line_id": "2", "sku": rng.choice(other), "qty": 1})
    return {
        "type": "reserve",
        "request_id": request_id,
        "order_id": request_id,
        "channel": "shopify",
        "hold_seconds": 3600,
        "lines": lines,
    }


async def ask(nc: Client, body: dict[str, Any]) -> dict[str, Any]:
    """Ask until answered: the same request_id is answered once and reserves once."""
    payload = msgspec.json.encode(body)
    with anyio.fail_after(ANSWERED_WITHIN_S):
        while True:
            try:
                reply = await nc.request("inv.reserve.shopify", payload, timeout=REPLY_TIMEOUT_S)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await anyio.sleep(0.05)
                continue
            answer: dict[str, Any] = msgspec.json.decode(reply.data)
            return answer


async def reserve_until(nc: Client, number: int, ledger: Ledger, done: anyio.Event) -> None:
    rng = random.Random(number)
    for i in range(REQUESTS_PER_CLIENT):
        if done.is_set():
            return
        body = reservation(rng, f"c{number}-{i}")
        ledger.replies[body["request_id"]] = await ask(nc, body)
        await anyio.sleep(rng.uniform(0.02, 0.08))


async def produce_until(nc: Client, ledger: Ledger, done: anyio.Event) -> None:
    """Receipts and orders, some orders spanning both partitions, sent with event ids."""
    rng = random.Random(99)
    js = nc.jetstream(timeout=5.0)
    for n in range(PRODUCER_EVENTS):
        if done.is_set():
            return
        if rng.random() < 0.5:
            sku = rng.choice(ALL_ORDER_SKUS)
            delta = rng.randint(1, 5)
            ledger.on_hand[sku] += delta
            subject = "inv.stock.wh-1"
            body: dict[str, Any] = {
                "type": "stock.adjust", "event_id": f"p-{n}", "ts": TS, "sku": sku,
                "location": "wh-1", "delta": delta, "reason": "receipt",
            }  # fmt: skip
        else:
            skus = rng.sample(ALL_ORDER_SKUS, rng.randint(1, 2))
            for sku in skus:
                ledger.ordered[sku] += 1
            subject = "inv.order.amazon"
            body = {
                "type": "order.placed", "event_id": f"p-{n}", "ts": TS, "order_id": f"o-{n}",
                "channel": "amazon",
                "lines": [{"line_id": str(j), "sku": s, "qty": 1} for j, s in enumerate(skus)],
            }  # fmt: skip
        await publish_event(js, subject, body)
        await anyio.sleep(0.002)


async def publish_event(js: Any, subject: str, body: dict[str, Any]) -> None:
    """Publish with the event id as Nats-Msg-Id, retrying through a NATS node's death."""
    payload = msgspec.json.encode(body)
    with anyio.fail_after(30):
        while True:
            try:
                await js.publish(subject, payload, headers={"Nats-Msg-Id": body["event_id"]})
                return
            except (nats.errors.Error, TimeoutError):
                await anyio.sleep(0.1)


# --- the kills ------------------------------------------------------------------------------


async def kill_a_leader(fleet: Fleet, k: int) -> None:
    leader = await fleet.wait_leader(k)
    leader.kill()
    await fleet.wait_leader(k, not_=leader)
    leader.start()  # back as a candidate: the lease is the other's now


async def kill_the_stream_leader_node(cluster: NatsCluster, nc: Client) -> None:
    info = await wait_stream_leader(nc)
    assert info.cluster is not None
    (victim,) = [i for i in range(len(cluster.nodes)) if f"n{i}" == info.cluster.leader]
    cluster.kill(victim)
    await wait_stream_leader(nc)
    await anyio.sleep(2.0)  # load runs on two nodes
    cluster.restart(victim)
    await wait_stream_leader(nc, current=3)


async def kill_a_participant_mid_way(fleet: Fleet, nc: Client, ledger: Ledger) -> None:
    """Partition 1's leader is stopped while a reservation coordinated by partition 0
    (its first line) enters the log and partition 0 votes; then it is killed."""
    participant = await fleet.wait_leader(1)
    os.kill(participant.pid, signal.SIGSTOP)
    body = {
        "type": "reserve",
        "request_id": "mid-way",
        "order_id": "mid-way",
        "channel": "shopify",
        "hold_seconds": 3600,
        "lines": [
            {"line_id": "1", "sku": HOLD_SKUS[0][0], "qty": 1},
            {"line_id": "2", "sku": HOLD_SKUS[1][0], "qty": 1},
        ],
    }
    async with anyio.create_task_group() as tg:

        async def asking() -> None:
            ledger.replies["mid-way"] = await ask(nc, body)

        tg.start_soon(asking)
        await anyio.sleep(0.5)  # logged, prepared and voted on by partition 0 only
        participant.kill()
        await fleet.wait_leader(1, not_=participant)
    participant.start()
    reply = ledger.replies["mid-way"]
    # All or none, whichever way it was decided.
    assert {line["granted"] for line in reply["lines"]} == {reply["ok"]}


async def pause_a_leader_until_deposed(fleet: Fleet) -> tuple[Allocator, Allocator]:
    """SIGSTOP partition 0's leader past its lease; its standby takes over; SIGCONT it."""
    old = await fleet.wait_leader(0)
    os.kill(old.pid, signal.SIGSTOP)
    new = await fleet.wait_leader(0, not_=old)
    os.kill(old.pid, signal.SIGCONT)
    return old, new


# --- afterwards -----------------------------------------------------------------------------


async def read_log(nc: Client) -> list[Msg]:
    """Every message on the stream, in order, as the service reads it."""
    js = nc.jetstream(timeout=5.0)
    last = (await js.stream_info(STREAM)).state.last_seq
    sub = await js.subscribe("inv.>", ordered_consumer=True)
    msgs: list[Msg] = []
    try:
        with anyio.fail_after(60):
            while not msgs or msgs[-1].metadata.sequence.stream < last:
                msgs.append(await sub.next_msg(timeout=5))
    finally:
        await sub.unsubscribe()
    return msgs


def assert_every_fenced_write_was_the_newest_leaders(log: list[Msg]) -> None:
    """Each write fenced by a partition's epoch entry was stored while that entry was
    the partition's newest: no write of a deposed leader reached the log."""
    newest: dict[str, int] = {}
    fenced = 0
    for msg in log:
        if msg.subject.startswith("inv.log.leader."):
            newest[msg.subject] = msg.metadata.sequence.stream
            continue
        headers = msg.headers or {}
        if EXPECTED_SUBJECT in headers:
            fenced += 1
            epoch_subject = headers[EXPECTED_SUBJECT]
            assert int(headers[EXPECTED_SEQUENCE]) == newest[epoch_subject], msg.subject
    assert fenced > 0, "no fenced write in the log: the leaders wrote nothing?"
    # Two takeovers of partition 0 at least (a kill, a pause), one of partition 1.
    assert sum(1 for m in log if m.subject == "inv.log.leader.0") >= 3
    assert sum(1 for m in log if m.subject == "inv.log.leader.1") >= 2


async def replay(nc: Client, policy: Policy, k: int, through: int) -> Engine:
    """Partition k's engine from an empty state, the log up to `through`."""
    engine = Engine(policy, partition=k, partitions=PARTITIONS)
    applier = Applier(engine, Subjects(), Metrics(CollectorRegistry()), Outbox(), audit=False)
    reader = LogReader(nc.jetstream(), STREAM, Subjects())
    await reader.open(0)
    while reader.last_sequence < through:
        applier.apply_batch(await reader.fetch(min(20_000, through - reader.last_sequence)))
        applier.outbox.take()
    await reader.close()
    return engine


async def live_state(fleet: Fleet, policy_file: Path, k: int) -> tuple[Engine, int]:
    """Partition k's newest snapshot (its last leader's, written on SIGTERM), from
    where the service keeps it."""
    policy = Policy.load(policy_file)
    snapshots = []
    for allocator in fleet.of(k):
        config = ServiceConfig(policy_path=policy_file, state_dir=allocator.state, partition=k)
        snapshots.append(await snapshot_store(config, js=None).load_newest())  # type: ignore[arg-type]
    newest = max((s for s in snapshots if s is not None), key=lambda s: s.stream_sequence)
    engine = Engine.restore(policy, newest.engine, partition=k, partitions=PARTITIONS)
    return engine, newest.stream_sequence


async def wait_applied(nc: Client, ledger: Ledger) -> None:
    """A marker per partition after everything: once each shows, its partition is done."""
    js = nc.jetstream(timeout=5.0)
    for k in range(PARTITIONS):
        sku = skus_of("END", k, 1)[0]
        body = {"type": "stock.set", "event_id": f"end-{k}", "ts": TS, "sku": sku,
                "location": "wh-1", "on_hand": 7}  # fmt: skip
        await publish_event(js, "inv.stock.wh-1", body)
        with anyio.fail_after(SERVING_TIMEOUT_S):
            while True:
                try:
                    reply = await nc.request(
                        "inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=2
                    )
                    if msgspec.json.decode(reply.data).get("on_hand") == 7:
                        break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    pass
                await anyio.sleep(0.1)


# --- the test -------------------------------------------------------------------------------


async def test_kill_nine_one_at_a_time_under_load_loses_nothing_and_grants_nothing_twice(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY)
    policy = Policy.load(policy_file)
    service = await nats_cluster.connect("service")
    client = await nats_cluster.connect(TEST_CLIENT)
    ledger = Ledger()
    seed = nats_cluster.client("service").nkeys_seed
    assert seed is not None
    fleet = Fleet(
        [
            Allocator(
                partition=k,
                name=f"p{k}-{i}",
                node_url=nats_cluster.urls[(2 * k + i) % 3],  # spread over the nodes
                seed=seed,
                policy=policy_file,
                state=tmp_path / f"p{k}-{i}",
            )
            for k in range(PARTITIONS)
            for i in range(2)
        ]
    )

    async def on_quantities(msg: Msg) -> None:
        body = msgspec.json.decode(msg.data)
        # `partition` absent means 0 (proto/README.md).
        ledger.seqs.append((msg.subject, body.get("partition", 0), body["seq"]))

    try:
        await create_replicated_stream(service)
        await client.subscribe("inv.qty.>", cb=on_quantities)
        js = client.jetstream(timeout=5.0)
        for sku in ALL_HOLD_SKUS:
            body = {"type": "stock.set", "event_id": f"stock-{sku}", "ts": TS, "sku": sku,
                    "location": "wh-1", "on_hand": HOLD_UNITS}  # fmt: skip
            await publish_event(js, "inv.stock.wh-1", body)
        for allocator in fleet.allocators:
            allocator.start()
        for k in range(PARTITIONS):
            await fleet.wait_leader(k)

        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            for number in range(CLIENTS):
                tg.start_soon(reserve_until, client, number, ledger, done)
            tg.start_soon(produce_until, client, ledger, done)
            await anyio.sleep(2.0)
            await kill_a_leader(fleet, 0)
            await anyio.sleep(1.0)
            await kill_the_stream_leader_node(nats_cluster, service)
            await anyio.sleep(1.0)
            await kill_a_participant_mid_way(fleet, client, ledger)
            await anyio.sleep(1.0)
            old, new = await pause_a_leader_until_deposed(fleet)
            await anyio.sleep(2.0)  # the old leader's pending writes meet the fence
            done.set()

        # The deposed leader learned it, and answers nothing: it is a standby now.
        assert not await old.leads() and await new.leads()
        await wait_applied(client, ledger)
        assert len(ledger.replies) > CLIENTS * 5
        log = await read_log(service)
    finally:
        codes = [a.stop() for a in fleet.allocators if a.process is not None]
        await client.close()

    assert codes == [0] * len(codes)
    # A start while the cluster still elects a stream's leader may fail once; more is a
    # crash loop.
    restarts = {a.name: a.restarts for a in fleet.allocators if a.restarts}
    assert sum(restarts.values()) <= 3, restarts
    assert_every_fenced_write_was_the_newest_leaders(log)
    # No quantity message number was used twice by any leader of any partition: a
    # connector reads `seq` per (channel, partition).
    assert len(ledger.seqs) > 50
    assert {partition for _, partition, _ in ledger.seqs} == set(range(PARTITIONS))
    assert len(set(ledger.seqs)) == len(ledger.seqs)

    granted = ledger.granted()
    refused = sum(1 for r in ledger.replies.values() if not r["ok"])
    assert sum(granted.values()) > 0 and refused > 0  # contention happened
    try:
        for k in range(PARTITIONS):
            live, through = await live_state(fleet, policy_file, k)
            replayed = await replay(service, policy, k, through)
            for sku in HOLD_SKUS[k] + ORDER_SKUS[k]:
                state = live.explain(sku).to_dict()
                assert state == replayed.explain(sku).to_dict(), sku
            for sku in HOLD_SKUS[k]:
                state = live.explain(sku).to_dict()
                # Every granted unit still held, no other: no stray hold, none lost.
                assert state["reserved"] == granted[sku], sku
                # Never more than there is: no unit granted twice.
                assert granted[sku] <= HOLD_UNITS, sku
            for sku in ORDER_SKUS[k]:
                state = live.explain(sku).to_dict()
                assert state["on_hand"] == ledger.on_hand[sku], sku
                assert state["reserved"] + state["backordered"] == ledger.ordered[sku], sku
    finally:
        await service.close()


BAD_FAMILIES = """
[[tiers]]
tier = 1
[[locations]]
id = "wh-1"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[skus]]
id = "KIT"
kind = "bundle"
family = "kits"
components = [{ sku = "A", qty = 1 }, { sku = "B", qty = 1 }]
[[skus]]
id = "A"
family = "kits"
[[skus]]
id = "B"
family = "spares"
"""


def test_a_policy_that_splits_a_bundle_family_across_partitions_is_refused(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """`invsync serve` exits before it touches the log, naming the file and the line."""
    policy = tmp_path / "split.toml"
    policy.write_text(BAD_FAMILIES)
    seed = nats_cluster.client("service").nkeys_seed
    command = [
        sys.executable, "-m", "invsync.cli", "serve",
        "--nats", nats_cluster.urls[0], "--nkey", str(seed), "--policy", str(policy),
        "--state", str(tmp_path / "state"), "--partitions", "2", "--partition", "0",
        "--metrics-port", "0",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    line = next(i for i, text in enumerate(BAD_FAMILIES.splitlines(), 1) if "spares" in text)
    assert f"{policy}:{line}" in done.stderr, done.stderr
