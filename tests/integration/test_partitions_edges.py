"""Partitioned serving on a real NATS server, at its edges: a request spanning
partitions that is decided after its hold_seconds, or asked again while undecided; an
order event whose order never comes; a promotion only one partition would refuse."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from invsync import _core
from invsync.nats_server import NatsServer
from invsync.service.config import ServiceConfig
from tests.service.harness import (
    EXAMPLE_POLICY,
    Collector,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio


def dead_ids(messages: list[tuple[str, Any]]) -> list[str]:
    """The event ids of the dead letters collected from `inv.dlq`."""
    payloads = (base64.b64decode(m["payload_b64"]) for _, m in messages)
    return [msgspec.json.decode(p)["event_id"] for p in payloads]


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


async def test_a_cross_request_decided_after_its_hold_seconds_holds_what_it_answers(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace(
            "park_window_s = 3600", "park_window_s = 3600\ncross_partition_timeout_s = 60"
        )
    )
    left, right = _sku(0), _sku(1)

    def config(k: int) -> ServiceConfig:
        return service_config(
            nats_server, tmp_path / str(k), partitions=2, partition=k, policy_path=policy
        )

    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_service(nats_server, config(0)))
        nc = first.nc
        for sku in (left, right):
            await nc.jetstream().publish(
                "inv.stock.wh-3",
                event("stock.set", f"s-{sku}", sku=sku, location="wh-3", on_hand=9),
            )
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox)
        request = {
            "request_id": "r1",
            "order_id": "o-r1",
            "channel": "shopify",
            "hold_seconds": 3,
            "lines": [
                {"line_id": "1", "sku": left, "qty": 2},
                {"line_id": "2", "sku": right, "qty": 2},
            ],
        }
        await nc.publish("inv.reserve.shopify", msgspec.json.encode(request), reply=inbox)
        await anyio.sleep(5)  # ticks pass ts + hold_seconds while partition 1 is away
        await stack.enter_async_context(running_service(nats_server, config(1)))
        reply = msgspec.json.decode((await replies.next_msg(20)).data)
        asked = msgspec.json.encode({"sku": left})
        explained = msgspec.json.decode((await nc.request("inv.query.sku", asked, 5)).data)
    assert reply["ok"], reply
    assert explained["reserved"] == 2, "answered held, so held"


async def test_an_order_event_no_partition_holds_is_dead_lettered_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        EXAMPLE_POLICY.read_text().replace("park_window_s = 3600", "park_window_s = 1")
    )
    dead = Collector()
    async with AsyncExitStack() as stack:
        services = [
            await stack.enter_async_context(
                running_service(
                    nats_server,
                    service_config(
                        nats_server,
                        tmp_path / str(k),
                        partitions=2,
                        partition=k,
                        policy_path=policy,
                    ),
                )
            )
            for k in (0, 1)
        ]
        nc = services[0].nc
        await nc.subscribe("inv.dlq", cb=dead.on_msg)
        js = nc.jetstream()
        held_by_1 = _sku(1)
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "s-1", sku=held_by_1, location="wh-3", on_hand=5)
        )
        # A cancel before its order (held by partition 1 alone), and one whose order never comes.
        await js.publish("inv.order.shopify", event("order.cancelled", "early", order_id="o-1"))
        line = {"line_id": "1", "sku": held_by_1, "qty": 1}
        await js.publish(
            "inv.order.shopify",
            event("order.placed", "placed", order_id="o-1", channel="shopify", lines=[line]),
        )
        await js.publish("inv.order.shopify", event("order.cancelled", "ghost", order_id="o-9"))

        await dead.wait_for(lambda m: dead_ids(m), timeout_s=15)
        await anyio.sleep(2.5)  # both partitions ticked past the window again
    assert dead_ids(dead.messages) == ["ghost"]


async def test_a_promotion_one_partition_refuses_is_refused_whole_and_dead_lettered_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    dead = Collector()
    window = {"starts": "2026-11-23T12:00:00Z", "ends": "2026-11-23T14:00:00Z"}
    async with AsyncExitStack() as stack:
        services = [
            await stack.enter_async_context(
                running_service(
                    nats_server,
                    service_config(nats_server, tmp_path / str(k), partitions=2, partition=k),
                )
            )
            for k in (0, 1)
        ]
        nc = services[0].nc
        await nc.subscribe("inv.dlq", cb=dead.on_msg)
        js = nc.jetstream()
        mine, theirs = _sku(0), _sku(1)
        for promo_id, skus in (("early", [theirs]), ("late", [mine, theirs])):
            body = event(
                "promo.set",
                promo_id,
                promo_id=promo_id,
                channels=["shopify"],
                skus=skus,
                discount_pct=10,
                **window,
            )
            await js.publish("inv.catalog.pim", body)
        await dead.wait_for(lambda m: dead_ids(m), timeout_s=10)
        last = (await js.stream_info("INVSYNC")).state.last_seq
        for svc in services:
            await svc.wait_applied(last)
        await anyio.sleep(0.5)
    assert dead_ids(dead.messages) == ["late"], "refused as a whole, reported once"
