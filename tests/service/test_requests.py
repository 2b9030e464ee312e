"""Request/reply paths with a stand-in engine: reservations, policy reload, metrics."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import anyio
import msgspec
import pytest

from invsync.nats_server import NatsServer, free_port
from tests.service.fake_engine import FakeEngine
from tests.service.harness import EXAMPLE_POLICY, Collector, event, running_service, service_config

pytestmark = pytest.mark.anyio


def reserve_body(request_id: str, qty: int, channel: str = "shopify") -> bytes:
    return msgspec.json.encode(
        {
            "type": "reserve",
            "request_id": request_id,
            "order_id": f"o-{request_id}",
            "channel": channel,
            "lines": [{"line_id": "1", "sku": "A", "qty": qty}],
            "hold_seconds": 600,
        }
    )


async def test_reservation_is_logged_before_it_is_answered(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=5)
        )
        granted = await svc.nc.request("inv.reserve.shopify", reserve_body("r1", 3), timeout=5)
        refused = await svc.nc.request("inv.reserve.shopify", reserve_body("r2", 3), timeout=5)
        again = await svc.nc.request("inv.reserve.shopify", reserve_body("r1", 3), timeout=5)
        logged = await js.stream_info("INVSYNC", subjects_filter="inv.log.reserve.>")
    assert msgspec.json.decode(granted.data)["ok"] is True
    assert msgspec.json.decode(refused.data)["lines"][0]["reason"] == "insufficient"
    assert again.data == granted.data
    assert logged.state.subjects == {"inv.log.reserve.shopify": 3}
    assert (
        svc.registry.get_sample_value(
            "invsync_reservations_total", {"channel": "shopify", "result": "granted"}
        )
        == 2
    )  # the duplicate is answered the first answer again


async def test_malformed_reservation_is_answered_at_once_and_dead_lettered(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        dlq = Collector()
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        bad_json = await svc.nc.request("inv.reserve.shopify", b"{", timeout=5)
        negative = await svc.nc.request("inv.reserve.shopify", reserve_body("r", -1), timeout=5)
        wrong_channel = await svc.nc.request("inv.reserve.ebay", reserve_body("r", 1), timeout=5)
        await dlq.wait_for(lambda m: len(m) == 3)
    replies = [msgspec.json.decode(r.data) for r in (bad_json, negative, wrong_channel)]
    assert [r["ok"] for r in replies] == [False, False, False]
    assert "lines[0].qty" in replies[1]["error"]
    assert "does not match subject channel" in replies[2]["error"]
    assert (
        svc.registry.get_sample_value("invsync_dead_letters_total", {"reason": "bad_request"}) == 3
    )


async def test_policy_reload_good_is_applied_in_log_order_and_bad_is_refused(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    good = EXAMPLE_POLICY.read_text() + '\n[[channels]]\nid = "etsy"\ntier = 3\n'
    async with running_service(nats_server, config, FakeEngine) as svc:
        refused = await svc.admin.request("inv.admin.policy", b"[[channels]]\nid = 1\n", timeout=5)
        accepted = await svc.admin.request("inv.admin.policy", good.encode(), timeout=5)
        qty = Collector()
        await svc.nc.subscribe("inv.qty.etsy", cb=qty.on_msg)
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=5)
        )
        await qty.wait_for(lambda m: len(m) == 1)
    refusal = msgspec.json.decode(refused.data)
    assert refusal["ok"] is False and refusal["error"].startswith("inv.admin.policy:")
    assert msgspec.json.decode(accepted.data) == {"ok": True, "source": "inv.admin.policy"}
    snapshot_policy = max(tmp_path.glob("snapshot-*.bin")).read_bytes()
    assert b'id = "etsy"' in snapshot_policy


async def test_metrics_endpoint_serves_contract_metrics_after_a_run(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    port = free_port()
    config = service_config(nats_server, tmp_path, metrics_port=port)
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.amazon", cb=qty.on_msg)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=1)
        )
        # One quantity message per event: applied in one batch, the two would be coalesced.
        await qty.wait_for(lambda m: len(m) == 1)
        await js.publish(
            "inv.order.amazon",
            event(
                "order.placed",
                "e2",
                order_id="o",
                channel="amazon",
                lines=[{"line_id": "1", "sku": "A", "qty": 3}],
            ),
        )
        await qty.wait_for(lambda m: len(m) == 2)
        url = f"http://127.0.0.1:{port}/metrics"
        text = await anyio.to_thread.run_sync(lambda: urllib.request.urlopen(url).read().decode())
    assert 'invsync_events_total{type="stock.set"} 1.0' in text
    assert 'invsync_events_total{type="order.placed"} 1.0' in text
    assert 'invsync_oversold_units_total{channel="amazon"} 2.0' in text
    assert 'invsync_sync_latency_seconds_count{channel="amazon"} 2.0' in text
    assert "invsync_apply_batch_seconds_bucket" in text
    assert 'invsync_channel_feed_age_seconds{channel="ebay"}' in text
    assert 'invsync_reservations_total{channel="shopify",result="granted"} 0.0' in text
    assert 'invsync_dead_letters_total{reason="bad_input"} 0.0' in text
    assert "invsync_build_info{" in text
    assert 'invsync_reserve_depletion_ratio{tier="1"}' in text


async def test_requests_beyond_the_pending_bound_are_refused_at_once_as_overloaded(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invsync.service import reservations

    monkeypatch.setattr(reservations, "MAX_PENDING", 0)  # every request is one too many
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        reply = await svc.nc.request("inv.reserve.shopify", reserve_body("r1", 1), timeout=5)
    assert msgspec.json.decode(reply.data) == {"ok": False, "error": "overloaded, retry"}
    refused = svc.registry.get_sample_value(
        "invsync_reservations_total", {"channel": "shopify", "result": "error"}
    )
    assert refused == 1
