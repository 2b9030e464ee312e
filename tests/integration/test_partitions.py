"""Two partitions of `invsync serve` on one NATS server: reservations inside one
partition and across both, from concurrent clients, beside a stock and order producer
(afterwards no unit is granted twice, no prepared hold is left over, and every answer
matches the state the partitions hold); and a connector following both partitions'
quantities, each with its own `seq`."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from invsync import _core
from invsync.nats_server import NatsServer
from tests.gateway.fake_profile import FakeProfile, per_item_lane
from tests.integration.test_connector import connector, csv_text, until
from tests.service.harness import event, running_service, service_config

pytestmark = pytest.mark.anyio

CLIENTS = 8
REQUESTS_PER_CLIENT = 12
ON_HAND = 25
SAFETY = 5  # the example policy's default safety stock


def _skus(partition: int, count: int, stem: str) -> list[str]:
    names = (f"{stem}{i}" for i in range(1000))
    return [s for s in names if _core.partition_of(s, 2) == partition][:count]


LEFT = _skus(0, 2, "R")
RIGHT = _skus(1, 2, "R")
SOLD = [*_skus(0, 1, "Q"), *_skus(1, 1, "Q")]


def _request(request_id: str, lines: list[tuple[str, int]]) -> bytes:
    return msgspec.json.encode(
        {
            "request_id": request_id,
            "order_id": f"o-{request_id}",
            "channel": "shopify",
            "hold_seconds": 3600,
            "lines": [{"line_id": str(i), "sku": s, "qty": q} for i, (s, q) in enumerate(lines)],
        }
    )


async def test_two_partitions_grant_within_stock_and_leave_no_stray_hold(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    replies: dict[str, Any] = {}
    asked: dict[str, list[tuple[str, int]]] = {}
    async with AsyncExitStack() as stack:
        services = [
            await stack.enter_async_context(
                running_service(
                    nats_server, service_config(nats_server, tmp_path, partitions=2, partition=k)
                )
            )
            for k in (0, 1)
        ]
        nc = services[0].nc
        js = nc.jetstream()
        for sku in [*LEFT, *RIGHT, *SOLD]:
            await js.publish(
                "inv.stock.wh-3",
                event("stock.set", f"s-{sku}", sku=sku, location="wh-3", on_hand=ON_HAND),
            )

        async def client(number: int) -> None:
            rng = random.Random(number)
            for i in range(REQUESTS_PER_CLIENT):
                if rng.random() < 0.5:
                    lines = [(rng.choice(LEFT + RIGHT), rng.randint(1, 3))]
                else:
                    lines = [(rng.choice(LEFT), rng.randint(1, 3)), (rng.choice(RIGHT), 2)]
                    if rng.random() < 0.5:
                        lines.reverse()  # either partition coordinates
                request_id = f"c{number}-{i}"
                asked[request_id] = lines
                reply = await nc.request("inv.reserve.shopify", _request(request_id, lines), 10)
                replies[request_id] = msgspec.json.decode(reply.data)

        async def producer() -> None:
            for i in range(40):
                sku = SOLD[i % 2]
                order = {"line_id": "1", "sku": sku, "qty": 1}
                await js.publish(
                    "inv.order.shopify",
                    event(
                        "order.placed",
                        f"p{i}",
                        order_id=f"sale-{i}",
                        channel="shopify",
                        lines=[order],
                    ),
                )
                await anyio.sleep(0.01)

        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                tg.start_soon(producer)
                for number in range(CLIENTS):
                    tg.start_soon(client, number)
            last = (await js.stream_info("INVSYNC")).state.last_seq
            for svc in services:
                await svc.wait_applied(last)
            explained = {}
            for sku in [*LEFT, *RIGHT, *SOLD]:
                # Every partition hears the query; only the SKU's owner answers, once.
                inbox = nc.new_inbox()
                answers = await nc.subscribe(inbox)
                await nc.publish("inv.query.sku", msgspec.json.encode({"sku": sku}), reply=inbox)
                explained[sku] = msgspec.json.decode((await answers.next_msg(5)).data)
                with pytest.raises(TimeoutError):
                    await answers.next_msg(0.2)
                await answers.unsubscribe()
            for partition in (0, 1):
                # A SKU nobody has heard of is answered by the partition it would be in.
                unknown = next(
                    s
                    for s in (f"NEW{i}" for i in range(100))
                    if _core.partition_of(s, 2) == partition
                )
                answer = await nc.request(
                    "inv.query.sku", msgspec.json.encode({"sku": unknown}), timeout=5
                )
                assert msgspec.json.decode(answer.data)["ok"] is False

    granted: dict[str, int] = dict.fromkeys(LEFT + RIGHT, 0)
    for request_id, reply in replies.items():
        lines = asked[request_id]
        assert [line["sku"] for line in reply["lines"]] == [sku for sku, _ in lines]
        assert {line["granted"] for line in reply["lines"]} == {reply["ok"]}, "all or none"
        if reply["ok"]:
            for sku, qty in lines:
                granted[sku] += qty
    cross = [
        r
        for rid, r in replies.items()
        if len({_core.partition_of(s, 2) for s, _ in asked[rid]}) > 1
    ]
    assert any(r["ok"] for r in cross) and any(not r["ok"] for r in cross), "both outcomes seen"
    for sku, held in granted.items():
        assert held <= ON_HAND - SAFETY, f"{sku}: a unit granted twice"
        assert explained[sku]["reserved"] == held, f"{sku}: a stray hold, or a lost grant"
    for sku in SOLD:
        assert explained[sku]["reserved"] == 20, f"{sku}: its partition applied its orders"


async def test_a_connector_follows_each_partitions_seq_and_resyncs_one_alone(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    left, right = LEFT[0], RIGHT[0]
    (tmp_path / "amazon.csv").write_text(csv_text(left, right), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    seqs: dict[int, list[int]] = {0: [], 1: []}

    async def on_qty(msg: Any) -> None:
        body = msgspec.json.decode(msg.data)
        seqs[body.get("partition", 0)].append(body["seq"])

    async with AsyncExitStack() as stack:
        services = [
            await stack.enter_async_context(
                running_service(
                    nats_server,
                    service_config(nats_server, tmp_path / "state", partitions=2, partition=k),
                )
            )
            for k in (0, 1)
        ]
        nc = services[0].nc
        await nc.subscribe("inv.qty.amazon", cb=on_qty)
        js = nc.jetstream()

        async def stock(sku: str, on_hand: int, event_id: str) -> None:
            body = event("stock.set", event_id, sku=sku, location="wh-3", on_hand=on_hand)
            await js.publish("inv.stock.wh-3", body)

        await stock(left, 40, "a1")
        await stock(right, 50, "b1")
        async with connector(nats_server, FakeProfile([lane]), None, tmp_path) as (conn, _):
            await until(lambda: lane.shown.get(f"{left}-new", 0) > 0)
            await until(lambda: lane.shown.get(f"{right}-new", 0) > 0)
            assert conn.partitions == 2 and conn.resyncs == 2, "one page run per partition"
            shown_left = lane.shown[f"{left}-new"]
            # A message of partition 1 lost: its next one resyncs partition 1 alone.
            conn.last_seqs[1] -= 1
            await stock(right, 10, "b2")
            await until(lambda: conn.resyncs == 3)
            await until(lambda: lane.shown[f"{right}-new"] < 10)
            await stock(left, 30, "a2")
            await until(lambda: lane.shown[f"{left}-new"] != shown_left)
            assert conn.resyncs == 3, "partition 0's next message follows on"
    for partition, sent in seqs.items():
        assert sent, f"partition {partition} published"
        assert sent == sorted(set(sent)), f"partition {partition}: a seq repeated"
