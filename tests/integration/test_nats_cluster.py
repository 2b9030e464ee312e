"""The log survives a NATS node's death: the replicated stream the partitions share
keeps taking events and serving them, in order and once, while one of three servers
is gone, and the node that comes back catches up. The fence a partition's leader
writes under (expected last sequence of its epoch subject) holds across that too:
the stream's new leader node refuses a deposed allocator's write just as the old one
did."""

from __future__ import annotations

import anyio
import msgspec
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError

from invsync.service.logwriter import LogWriter
from invsync.service.subjects import Subjects
from tests.cluster import STREAM, NatsCluster, create_replicated_stream, wait_stream_leader
from tests.users import TEST_CLIENT

pytestmark = pytest.mark.anyio

SUBJECT = "inv.stock.wh-3"
PUBLISH_TIMEOUT_S = 15.0


async def publish(nc: Client, n: int) -> int:
    """Append event `n` (retrying while the stream elects a leader); its stream sequence."""
    js = nc.jetstream(timeout=1.0)
    body = msgspec.json.encode({"event_id": f"e{n}", "n": n})
    with anyio.fail_after(PUBLISH_TIMEOUT_S):
        while True:
            try:
                ack = await js.publish(SUBJECT, body, headers={"Nats-Msg-Id": f"e{n}"})
                return ack.seq
            except (APIError, NatsError, TimeoutError):
                await anyio.sleep(0.1)


async def read_all(nc: Client, count: int) -> list[int]:
    """Every event on the stream from the first, through an ordered consumer."""
    js = nc.jetstream(timeout=2.0)
    seen: list[int] = []
    with anyio.fail_after(PUBLISH_TIMEOUT_S):
        while True:
            try:  # the new stream leader may not take consumers yet
                sub = await js.subscribe(SUBJECT, ordered_consumer=True)
                break
            except (APIError, NatsError, TimeoutError):
                await anyio.sleep(0.2)
    try:
        with anyio.fail_after(20):
            while len(seen) < count:
                msg = await sub.next_msg(timeout=5)
                seen.append(msgspec.json.decode(msg.data)["n"])
    finally:
        await sub.unsubscribe()
    return seen


async def test_the_replicated_stream_keeps_taking_and_serving_events_when_a_node_dies(
    nats_cluster: NatsCluster,
) -> None:
    service = await nats_cluster.connect("service")
    producer = await nats_cluster.connect(TEST_CLIENT)
    try:
        info = await create_replicated_stream(service)
        assert info.config.num_replicas == 3
        acked = [await publish(producer, n) for n in range(50)]

        leader = info.cluster.leader if info.cluster else None
        (victim,) = [i for i, node in enumerate(nats_cluster.nodes) if f"n{i}" == leader]
        assert nats_cluster.nodes[victim].pid is not None
        nats_cluster.kill(victim)

        acked += [await publish(producer, n) for n in range(50, 100)]
        after = await wait_stream_leader(service)
        assert after.cluster is not None and after.cluster.leader != leader
        assert after.state.messages == 100
        # Each acknowledgement names a new position: no event lost, none twice.
        assert acked == sorted(acked) and len(set(acked)) == 100
        assert await read_all(service, 100) == list(range(100))

        nats_cluster.restart(victim)
        await wait_stream_leader(service, current=3)
        acked.append(await publish(producer, 100))
        assert (await service.jetstream().stream_info(STREAM)).state.messages == 101
    finally:
        await producer.close()
        await service.close()


EPOCH_SUBJECT = "inv.log.leader.0"
# JetStream's API error code for a failed expected-last-sequence check.
WRONG_LAST_SEQUENCE = 10071


def fenced(epoch_entry: int) -> dict[str, str]:
    """The headers of a write that holds only while `epoch_entry` is the newest epoch entry."""
    return {
        "Nats-Expected-Last-Subject-Sequence": str(epoch_entry),
        "Nats-Expected-Last-Subject-Sequence-Subject": EPOCH_SUBJECT,
    }


async def test_a_deposed_leaders_fenced_write_is_refused_after_the_stream_leader_node_dies(
    nats_cluster: NatsCluster,
) -> None:
    service = await nats_cluster.connect("service")
    try:
        info = await create_replicated_stream(service)
        js = service.jetstream(timeout=2.0)
        old_epoch = (await js.publish(EPOCH_SUBJECT, b'{"epoch": 1}')).seq
        await js.publish("inv.log.clock", b"{}", headers=fenced(old_epoch))
        new_epoch = (
            await js.publish(
                EPOCH_SUBJECT,
                b'{"epoch": 2}',
                headers={"Nats-Expected-Last-Subject-Sequence": str(old_epoch)},
            )
        ).seq

        leader = info.cluster.leader if info.cluster else None
        (victim,) = [i for i in range(len(nats_cluster.nodes)) if f"n{i}" == leader]
        nats_cluster.kill(victim)
        await wait_stream_leader(service)

        refused = None
        with anyio.fail_after(PUBLISH_TIMEOUT_S):
            while refused is None:
                try:
                    await js.publish("inv.log.clock", b"{}", headers=fenced(old_epoch))
                    refused = False
                except APIError as exc:
                    if exc.err_code == WRONG_LAST_SEQUENCE:
                        refused = True
                    else:
                        await anyio.sleep(0.1)  # no stream leader yet
                except (NatsError, TimeoutError):
                    await anyio.sleep(0.1)
        assert refused, "the stream took a write fenced by a superseded epoch entry"
        # The current leader's writes go on.
        await js.publish("inv.log.clock", b"{}", headers=fenced(new_epoch))
        assert (await js.stream_info(STREAM)).state.messages == 4
    finally:
        await service.close()


async def test_a_leaders_concurrent_fenced_appends_are_all_stored_by_a_clustered_stream(
    nats_cluster: NatsCluster,
) -> None:
    """A clustered stream refuses a second write checked against the epoch subject while
    one is in flight; the leader's own appends (reservation groups, ticks, votes, all at
    once) must not take that for the fence, nor lose the writes."""
    service = await nats_cluster.connect("service")
    try:
        await create_replicated_stream(service)
        writer = LogWriter(service.jetstream(timeout=5.0), STREAM)
        epoch_subject = Subjects().leader_log(0)
        epoch_entry = await writer.append_epoch_entry(epoch_subject, b'{"epoch": 1}', 0)
        assert epoch_entry is not None
        writer.fence_at(epoch_subject, epoch_entry)
        acks = []
        async with anyio.create_task_group() as tg:

            async def append(n: int) -> None:
                acks.append(await writer.append("inv.log.clock", b'{"n": %d}' % n))

            for n in range(30):
                tg.start_soon(append, n)
        assert sorted(ack.seq for ack in acks) == list(range(2, 32))
    finally:
        await service.close()
