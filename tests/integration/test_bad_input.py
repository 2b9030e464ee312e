"""Nothing a producer sends stops the service or changes state wrongly (CONTRACT section 6)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invsync.nats_server import NatsServer
from tests.service.harness import TS, Collector, event, running_service, service_config

pytestmark = pytest.mark.anyio


LATE = "9999-12-31T23:59:59-23:59"


def stock_set(event_id: str, sku: str, on_hand: object) -> bytes:
    return event("stock.set", event_id, sku=sku, location="wh-3", on_hand=on_hand)


BAD_MESSAGES: list[tuple[bytes, str]] = [
    (b'{"type": "stock.set", "event_id": ', "malformed"),
    (stock_set("b1", "A", "ten"), "invalid"),
    (stock_set("b2", "A", -3), "invalid"),
    (stock_set("b3", "A", 2**64), "invalid"),
    (event("stock.teleport", "b4", sku="A"), "unknown_type"),
    (b'{"type": "stock.set", "event_id": "b5", "sku": "\xc3\x28"}', "encoding"),
    (b'{"type": "stock.set", "event_id": "' + b"x" * 2_000_000, "malformed"),
    (event("stock.adjust", "b6", sku="A", location="wh-3", delta=-5, reason="x"), "bad_input"),
    # Valid RFC 3339 whose UTC instant is in the year 10000: once, it stopped the service.
    (stock_set("b7", "A", 5).replace(TS.encode(), LATE.encode()), "bad_input"),
]


def stocked(messages: list[tuple[str, Any]], sku: str) -> bool:
    return any(i["sku"] == sku and i["qty"] > 0 for _, m in messages for i in m["items"])


async def test_each_kind_of_bad_input_is_dead_lettered_and_counted(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        dlq, qty = Collector(), Collector()
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        js = svc.nc.jetstream()
        for body, _ in BAD_MESSAGES:
            await js.publish("inv.stock.wh-3", body)
        await js.publish("inv.stock.wh-3", stock_set("good", "A", 100))
        await dlq.wait_for(lambda m: len(m) == len(BAD_MESSAGES), timeout_s=15)
        await qty.wait_for(lambda m: stocked(m, "A"), timeout_s=15)
    expected: dict[str, float] = {}
    for _, reason in BAD_MESSAGES:
        expected[reason] = expected.get(reason, 0) + 1
    counted = {
        reason: svc.registry.get_sample_value("invsync_dead_letters_total", {"reason": reason})
        for reason in expected
    }
    assert counted == expected
    assert len(dlq.messages) == len(BAD_MESSAGES)
    # Only the good event put stock on a channel (a refused one changed nothing).
    assert len([i for _, m in qty.messages for i in m["items"] if i["qty"] > 0]) == 1


async def test_a_reservation_stamped_beyond_what_the_core_holds_is_refused_and_served_on(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    request = {
        "type": "reserve",
        "request_id": "r-late",
        "order_id": "h-late",
        "channel": "shopify",
        "ts": LATE,
        "lines": [{"line_id": "1", "sku": "A", "qty": 1}],
    }
    async with running_service(nats_server, config) as svc:
        await svc.nc.jetstream().publish("inv.stock.wh-3", stock_set("s1", "A", 1000))
        late = await svc.nc.request("inv.reserve.shopify", msgspec.json.encode(request), timeout=10)
        request.update(request_id="r-now", order_id="h-now", ts=TS)
        now = await svc.nc.request("inv.reserve.shopify", msgspec.json.encode(request), timeout=10)
    refused = msgspec.json.decode(late.data)
    assert refused["ok"] is False and "ts" in refused["error"]
    assert msgspec.json.decode(now.data)["ok"] is True


async def test_order_for_unknown_sku_is_backordered_and_alerted_not_dropped(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        alerts = Collector()
        await svc.nc.subscribe("inv.alert.>", cb=alerts.on_msg)
        lines = [{"line_id": "1", "sku": "NEVER-HEARD-OF", "qty": 2}]
        await svc.nc.jetstream().publish(
            "inv.order.amazon",
            event("order.placed", "o1", order_id="o-1", channel="amazon", lines=lines),
        )
        await alerts.wait_for(lambda m: any(a["kind"] == "oversell" for _, a in m))
        reply = await svc.nc.request("inv.query.sku", b'{"sku": "NEVER-HEARD-OF"}', timeout=5)
    assert msgspec.json.decode(reply.data)["backordered"] == 2
    assert svc.registry.get_sample_value("invsync_oversold_units_total", {"channel": "amazon"}) == 2


async def test_ten_thousand_line_order_is_applied_whole(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        routes = Collector()
        await svc.nc.subscribe("inv.route.>", cb=routes.on_msg)
        js = svc.nc.jetstream()
        await js.publish("inv.stock.wh-3", stock_set("s1", "A", 20_000))
        lines = [{"line_id": str(i), "sku": "A", "qty": 1} for i in range(10_000)]
        await js.publish(
            "inv.order.amazon",
            event("order.placed", "big", order_id="big", channel="amazon", lines=lines),
        )
        await routes.wait_for(lambda m: len(m) == 10_000, timeout_s=20)
        reply = await svc.nc.request("inv.query.sku", b'{"sku": "A"}', timeout=5)
    assert msgspec.json.decode(reply.data)["reserved"] == 10_000


near_valid_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["stock.set", "stock.adjust", "order.placed", "batch", "nope"]),
        "event_id": st.one_of(st.text(max_size=8), st.integers()),
        "ts": st.one_of(st.just(TS), st.text(max_size=12)),
    },
    optional={
        "sku": st.one_of(st.sampled_from(["A", "B", ""]), st.integers()),
        "location": st.sampled_from(["wh-3", "retail-01", "mars"]),
        "on_hand": st.integers(min_value=-(2**65), max_value=2**65),
        "delta": st.integers(min_value=-(2**65), max_value=2**65),
        "reason": st.text(max_size=5),
        "order_id": st.text(max_size=5),
        "channel": st.sampled_from(["amazon", "ebay", "nowhere"]),
        "lines": st.lists(
            st.fixed_dictionaries(
                {
                    "line_id": st.text(max_size=3),
                    "sku": st.text(max_size=3),
                    "qty": st.integers(min_value=-5, max_value=2**64),
                }
            ),
            max_size=3,
        ),
        "events": st.lists(st.dictionaries(st.text(max_size=4), st.integers()), max_size=3),
    },
).map(msgspec.json.encode)


async def test_fuzzed_bytes_and_near_valid_events_never_stop_the_service(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        js = svc.nc.jetstream()
        sent: list[bytes] = []

        @settings(
            max_examples=300,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.one_of(st.binary(max_size=200), near_valid_events))
        def collect(body: bytes) -> None:
            sent.append(body)

        await anyio.to_thread.run_sync(collect)
        started = time.monotonic()
        for body in sent:
            await js.publish("inv.stock.fuzz", body)
            assert time.monotonic() - started < 30
        qty = Collector()
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        await js.publish("inv.stock.wh-3", stock_set("after-fuzz", "ZZZ", 50))
        await qty.wait_for(lambda m: any(i["sku"] == "ZZZ" for _, q in m for i in q["items"]))
        info = await js.stream_info("INVSYNC")
    assert info.state.messages >= len(sent)
