"""Reservations over request/reply under contention: never more than there is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import event, running_service, service_config

pytestmark = pytest.mark.anyio

CLIENTS = 16
REQUESTS_PER_CLIENT = 10


def reserve(request_id: str, qty: int = 1) -> bytes:
    return msgspec.json.encode(
        {
            "type": "reserve",
            "request_id": request_id,
            "order_id": f"o-{request_id}",
            "channel": "shopify",
            "lines": [{"line_id": "1", "sku": "R", "qty": qty}],
            "hold_seconds": 3600,
        }
    )


async def test_sixteen_clients_get_exactly_the_last_hundred_units(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    replies: dict[str, Any] = {}
    repeats: dict[str, Any] = {}
    async with running_service(nats_server, config) as svc:
        # The example policy keeps 5 units of safety: 105 on hand leave 100 to sell.
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="R", location="wh-3", on_hand=105)
        )

        async def client(number: int) -> None:
            for i in range(REQUESTS_PER_CLIENT):
                request_id = f"c{number}-{i}"
                reply = await svc.nc.request("inv.reserve.shopify", reserve(request_id), 10)
                replies[request_id] = msgspec.json.decode(reply.data)
            again = await svc.nc.request("inv.reserve.shopify", reserve(f"c{number}-0"), 10)
            repeats[f"c{number}-0"] = msgspec.json.decode(again.data)

        async with anyio.create_task_group() as tg:
            for number in range(CLIENTS):
                tg.start_soon(client, number)
        explained = await svc.nc.request("inv.query.sku", b'{"sku": "R"}', timeout=5)
    granted = [r for r in replies.values() if r["ok"]]
    refused = [r for r in replies.values() if not r["ok"]]
    assert len(granted) == 100
    assert {line["reason"] for r in refused for line in r["lines"]} == {"insufficient"}
    assert all(repeats[rid] == replies[rid] for rid in repeats)
    assert msgspec.json.decode(explained.data)["reserved"] == 100
    assert (
        svc.registry.get_sample_value(
            "invsync_reservations_total", {"channel": "shopify", "result": "granted"}
        )
        >= 100
    )
