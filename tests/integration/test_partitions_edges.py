"""Edges of partitioned serving on a real NATS server: a client asking again while its
request spanning partitions is still undecided, and events that no partition, or one
partition alone, would judge."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from invsync import _core
from invsync.nats_server import NatsServer
from tests.service.harness import event, running_service, service_config

pytestmark = pytest.mark.anyio


def _sku(partition: int) -> str:
    return next(s for s in (f"E{i}" for i in range(1000)) if _core.partition_of(s, 2) == partition)


async def test_every_asker_of_an_undecided_cross_request_gets_the_decision(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # Partition 1 is not running: the request waits for its vote until the time-out.
    left, right = _sku(0), _sku(1)
    config = service_config(nats_server, tmp_path, partitions=2, partition=0)
    async with running_service(nats_server, config) as svc:
        nc = svc.nc
        await nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "s-left", sku=left, location="wh-3", on_hand=9)
        )
        request = msgspec.json.encode(
            {
                "request_id": "r1",
                "order_id": "o-r1",
                "channel": "shopify",
                "hold_seconds": 3600,
                "lines": [
                    {"line_id": "1", "sku": left, "qty": 1},
                    {"line_id": "2", "sku": right, "qty": 1},
                ],
            }
        )
        inboxes = [nc.new_inbox() for _ in range(3)]
        subs = [await nc.subscribe(inbox) for inbox in inboxes]
        for inbox in inboxes:
            await nc.publish("inv.reserve.shopify", request, reply=inbox)
            await nc.flush()
        answers = []
        with anyio.fail_after(30):
            for sub in subs:
                answers.append(msgspec.json.decode((await sub.next_msg(25)).data))
        for sub in subs:
            with pytest.raises(TimeoutError):
                await sub.next_msg(0.3)  # answered once
    assert [[line["reason"] for line in a["lines"]] for a in answers] == [[None, "timeout"]] * 3
