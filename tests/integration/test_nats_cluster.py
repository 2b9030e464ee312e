"""The log survives a NATS node's death: the replicated stream the partitions share
keeps taking events and serving them, in order and once, while one of three servers
is gone, and the node that comes back catches up."""

from __future__ import annotations

import anyio
import msgspec
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError

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
