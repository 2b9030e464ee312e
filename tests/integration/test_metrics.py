"""The /metrics endpoint after a run with the real engine: the contract's metrics, sane values."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import anyio
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from invsync.nats_server import NatsServer, free_port
from tests.service.harness import Collector, event, running_service, service_config

pytestmark = pytest.mark.anyio


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_when_settled(port: int, expected: dict[tuple[str, str, str], float]) -> Samples:
    """Scrape until the counters the run must move have moved (the applier and the
    depletion sampler run on their own schedule), or give up after 20 s."""
    with anyio.move_on_after(20):
        while True:
            values = await anyio.to_thread.run_sync(scrape, port)
            if all(
                values.get((name, ((key, label),) if key else ())) == want
                for (name, key, label), want in expected.items()
            ):
                return values
            await anyio.sleep(0.1)
    return values


async def test_metrics_after_orders_reservations_and_bad_input(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    port = free_port()
    config = service_config(nats_server, tmp_path, metrics_port=port)
    async with running_service(nats_server, config) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.amazon", cb=qty.on_msg)
        js = svc.nc.jetstream()
        # Example policy: safety 5, tier 1 protects 20 units, tier 2 the next 10.
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="D", location="wh-3", on_hand=25)
        )
        lines = [{"line_id": "1", "sku": "D", "qty": 30}]
        await js.publish(
            "inv.order.amazon",
            event("order.placed", "o1", order_id="o-1", channel="amazon", lines=lines),
        )
        await js.publish("inv.order.amazon", b"not json")
        reply = await svc.nc.request(
            "inv.reserve.shopify",
            msgspec.json.encode(
                {
                    "request_id": "r1",
                    "order_id": "h1",
                    "channel": "shopify",
                    "lines": [{"line_id": "1", "sku": "D", "qty": 1}],
                }
            ),
            timeout=5,
        )
        await qty.wait_for(lambda m: len(m) >= 1)
        values = await scrape_when_settled(
            port,
            {
                ("invsync_dead_letters_total", "reason", "malformed"): 1,
                ("invsync_events_total", "type", "order.placed"): 1,
                ("invsync_reserve_depletion_ratio", "tier", "2"): 1.0,
            },
        )
    assert msgspec.json.decode(reply.data)["lines"][0]["reason"] == "insufficient"

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert value("invsync_events_total", type="stock.set") == 1
    assert value("invsync_events_total", type="order.placed") == 1
    assert value("invsync_events_total", type="reserve") == 1
    assert value("invsync_oversold_units_total", channel="amazon") == 5  # 25 committed
    assert value("invsync_reservations_total", channel="shopify", result="refused") == 1
    assert value("invsync_dead_letters_total", reason="malformed") == 1
    assert value("invsync_reserve_depletion_ratio", tier="1") == 1.0
    assert value("invsync_reserve_depletion_ratio", tier="2") == 1.0
    assert value("invsync_sync_latency_seconds_count", channel="amazon") >= 1
    assert value("invsync_apply_batch_seconds_count") >= 1
    assert 0 <= value("invsync_channel_feed_age_seconds", channel="ebay") < 60
    assert value("invsync_stream_sequence") >= 4
    assert any(name == "invsync_build_info" for name, _ in values)
