"""No entry in the log can stop the service or keep it from starting.

Entries the core refuses are written straight into the stream, as an older
version or a hand edit could: a policy the live state cannot take, events it
refuses, reservation groups it cannot decide. `invsync serve` skips each with a
dead letter, a `log_entry_refused` alert and an audit record, goes on serving,
and after `kill -9` replays them to the same state.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from nats.aio.client import Client

from invsync.nats_server import NatsServer
from tests.integration.test_crash import start_service, wait_serving
from tests.service.harness import EXAMPLE_POLICY, TS, Collector, connect_as, event

pytestmark = pytest.mark.anyio


async def explain(nc: Client, sku: str) -> dict[str, Any]:
    reply = await nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    result: dict[str, Any] = msgspec.json.decode(reply.data)
    return result


async def wait_on_hand(nc: Client, sku: str, on_hand: int) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            explained = await explain(nc, sku)
            if explained.get("on_hand") == on_hand:
                return explained
            await anyio.sleep(0.05)


def reservation_group(channel: str, sku: str) -> bytes:
    request = {
        "type": "reserve",
        "request_id": f"r-{channel}",
        "order_id": f"o-{channel}",
        "channel": channel,
        "lines": [{"line_id": "1", "sku": sku, "qty": 1}],
        "hold_seconds": 60,
        "ts": TS,
    }
    return msgspec.json.encode({"type": "reserve.group", "requests": [{"request": request}]})


async def test_refused_entries_are_skipped_alerted_and_replayed_the_same_after_kill_9(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # Entries on the log subjects can only come from the service's own credentials:
    # here they stand for an older version's writes or an operator's hand edit.
    nc = await connect_as(nats_server)
    writer = await connect_as(nats_server, "service")
    js, log = nc.jetstream(), writer.jetstream()
    alerts, dead, audit = Collector(), Collector(), Collector()
    await nc.subscribe("inv.alert.log_entry_refused", cb=alerts.on_msg)
    await nc.subscribe("inv.dlq", cb=dead.on_msg)
    await nc.subscribe("inv.audit", cb=audit.on_msg)
    service = start_service(nats_server, tmp_path)
    try:
        await wait_serving(nc)
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "good-1", sku="A", location="wh-3", on_hand=1000)
        )
        # wh-3 holds stock: the core refuses a policy without it.
        renamed = EXAMPLE_POLICY.read_text().replace('"wh-3"', '"wh-9"')
        refused = [
            ("inv.log.policy", renamed.encode()),
            (
                "inv.stock.nowhere",
                event("stock.set", "bad-1", sku="A", location="nowhere", on_hand=1),
            ),
            ("inv.log.clock", event("stock.set", "bad-2", sku="A", location="wh-3", on_hand=1)),
            ("inv.log.reserve.nochannel", reservation_group("nochannel", "A")),
            ("inv.log.reserve.shopify", b'{"type": "reserve.group", "requests": []}'),
        ]
        for subject, body in refused:
            await (log if subject.startswith("inv.log.") else js).publish(subject, body)
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "good-2", sku="B", location="wh-3", on_hand=50)
        )
        await wait_on_hand(nc, "B", 50)
        with anyio.fail_after(10):
            while len(alerts.messages) < len(refused) or len(audit.messages) < len(refused):
                await anyio.sleep(0.05)

        service.send_signal(signal.SIGKILL)
        service.wait()
        service = start_service(nats_server, tmp_path)
        await wait_serving(nc)
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "good-3", sku="C", location="wh-3", on_hand=7)
        )
        await wait_on_hand(nc, "C", 7)
        a, b = await explain(nc, "A"), await explain(nc, "B")
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        await nc.close()
        await writer.close()

    assert a["on_hand"] == 1000  # the stray stock.set of 1 never applied
    assert [loc["location"] for loc in a["locations"]] == ["wh-3"]  # the old policy runs
    assert b["on_hand"] == 50
    refused_subjects = {subject for subject, _ in refused}
    assert {m["subject"] for _, m in dead.messages} >= refused_subjects
    first_alerts = [m for _, m in alerts.messages[: len(refused)]]
    assert all(m["kind"] == "log_entry_refused" for m in first_alerts)
    assert any('location "wh-3" is still in use' in m["detail"] for m in first_alerts)
    skipped = [m for _, m in audit.messages if m.get("refused")]
    assert {m["event_type"] for m in skipped} >= {"policy", "stock.set", "clock.tick", "reserve"}
    assert all(m["changes"] == [] for m in skipped)
