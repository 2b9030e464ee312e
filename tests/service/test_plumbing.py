"""The NATS plumbing with a stand-in engine: log in, quantities and dead letters out."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats.errors
import pytest

from invsync.nats_server import NatsServer
from invsync.service.snapshots import ObjectStoreSnapshotStore, snapshot_name
from tests.service.fake_engine import Effects, FakeEngine
from tests.service.harness import (
    Collector,
    connect_as,
    event,
    running_service,
    service_config,
)
from tests.users import TEST_USERS

pytestmark = pytest.mark.anyio


async def test_stock_events_become_channel_quantities_with_increasing_seq(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.amazon", cb=qty.on_msg)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=10)
        )
        await qty.wait_for(lambda m: len(m) == 1)
        await js.publish(
            "inv.order.amazon",
            event(
                "order.placed",
                "e2",
                order_id="o1",
                channel="amazon",
                lines=[{"line_id": "1", "sku": "A", "qty": 3}],
            ),
        )
        await qty.wait_for(lambda m: len(m) == 2)
    (_, first), (_, second) = qty.messages
    assert [first["seq"], second["seq"]] == [1, 2]
    assert first["items"] == [
        {"sku": "A", "condition": "new", "qty": 10, "source_ts": "2026-11-23T10:00:00Z"}
    ]
    assert second["items"][0]["qty"] == 7


async def test_duplicate_event_id_is_dropped_by_the_stream(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        js = svc.nc.jetstream()
        body = event("stock.adjust", "same", sku="A", location="wh-3", delta=5, reason="count")
        first = await js.publish("inv.stock.wh-3", body, headers={"Nats-Msg-Id": "same"})
        again = await js.publish("inv.stock.wh-3", body, headers={"Nats-Msg-Id": "same"})
    assert again.duplicate is True
    assert again.seq == first.seq


async def test_bad_input_goes_to_the_dlq_and_the_service_keeps_serving(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        dlq, qty = Collector(), Collector()
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        js = svc.nc.jetstream()
        await js.publish("inv.stock.wh-3", b"{not json")
        await js.publish("inv.stock.wh-3", b'{"type": "stock.set", "event_id": "\xff"}')
        await js.publish(
            "inv.stock.nowhere", event("stock.set", "e1", sku="A", location="nowhere", on_hand=1)
        )
        await js.publish("inv.stock.wh-3", event("stock.teleport", "e2", sku="A"))
        await js.publish("inv.stock.wh-3", event("clock.tick", "e3"))
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e4", sku="A", location="wh-3", on_hand=4)
        )
        await dlq.wait_for(lambda m: len(m) == 5)
        await qty.wait_for(lambda m: len(m) == 1)
    reasons = [
        svc.registry.get_sample_value("invsync_dead_letters_total", {"reason": r})
        for r in ("malformed", "encoding", "bad_input", "unknown_type", "invalid")
    ]
    assert reasons == [1.0, 1.0, 1.0, 1.0, 1.0]
    # Decode failures and refusals by the engine are dead-lettered by different stages,
    # so their order on the subject is not part of the contract.
    letters = [body for _, body in dlq.messages]
    assert b"{not json" in [base64.b64decode(letter["payload_b64"]) for letter in letters]
    assert "location: unknown 'nowhere'" in [letter["error"] for letter in letters]
    assert qty.messages[0][1]["items"][0]["qty"] == 4


async def test_engine_exception_is_dead_lettered_as_internal(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    class Buggy(FakeEngine):
        def __init__(self, policy: object) -> None:
            super().__init__(policy)  # type: ignore[arg-type]
            self.fail_on_sku = "BUG"

    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, Buggy) as svc:
        dlq, qty = Collector(), Collector()
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        js = svc.nc.jetstream()
        batch = {
            "type": "batch",
            "event_id": "b1",
            "ts": "2026-11-23T10:00:00Z",
            "events": [
                {
                    "type": "stock.set",
                    "event_id": "x1",
                    "ts": "2026-11-23T10:00:00Z",
                    "sku": "BUG",
                    "location": "wh-3",
                    "on_hand": 1,
                },
                {
                    "type": "stock.set",
                    "event_id": "x2",
                    "ts": "2026-11-23T10:00:00Z",
                    "sku": "OK",
                    "location": "wh-3",
                    "on_hand": 2,
                },
            ],
        }
        await js.publish("inv.stock.wh-3", msgspec.json.encode(batch))
        await qty.wait_for(lambda m: len(m) == 1)
        await dlq.wait_for(lambda m: len(m) == 1)
    assert svc.registry.get_sample_value("invsync_dead_letters_total", {"reason": "internal"}) == 1
    assert qty.messages[0][1]["items"] == [
        {"sku": "OK", "condition": "new", "qty": 2, "source_ts": "2026-11-23T10:00:00Z"}
    ]


async def test_restart_resumes_from_snapshot_and_continues_channel_seq(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=5)
        )
        await qty.wait_for(lambda m: len(m) == 1)
    assert len(list(tmp_path.glob("snapshot-*.bin"))) == 1
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=99)
        )
        await js.publish(
            "inv.stock.wh-3",
            event("stock.adjust", "e2", sku="A", location="wh-3", delta=1, reason="found"),
        )
        await qty.wait_for(lambda m: len(m) == 1)
        await anyio.sleep(0.05)
    # e1 was applied before the restart, so its replayed twin changes nothing.
    assert [(m["seq"], m["items"][0]["qty"]) for _, m in qty.messages] == [(2, 6)]


async def test_service_resumes_after_the_nats_server_restarts(tmp_path: Path) -> None:
    store = tmp_path / "jetstream"
    first = NatsServer(store_dir=store, users=TEST_USERS).start()
    second = NatsServer(port=first.port, store_dir=store, users=TEST_USERS)
    config = service_config(first, tmp_path / "state")
    try:
        async with running_service(first, config, FakeEngine) as svc:
            qty = Collector()
            await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
            js = svc.nc.jetstream()
            await js.publish(
                "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=5)
            )
            await qty.wait_for(lambda m: len(m) == 1)
            first.stop()
            await anyio.sleep(0.5)
            second.start()
            with anyio.fail_after(15):
                while True:
                    try:
                        await js.publish(
                            "inv.stock.wh-3",
                            event("stock.set", "e2", sku="A", location="wh-3", on_hand=6),
                        )
                        break
                    except nats.errors.Error:
                        await anyio.sleep(0.2)
            await qty.wait_for(lambda m: len(m) == 2, timeout_s=15)
    finally:
        first.stop()
        second.stop()
    assert [m["items"][0]["qty"] for _, m in qty.messages] == [5, 6]


async def test_without_a_state_dir_snapshots_go_to_the_object_store(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, None)
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
        # The log opens with the leader's epoch entry, so the event is not at sequence 1.
        stored = await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="A", location="wh-3", on_hand=5)
        )
        await qty.wait_for(lambda m: len(m) == 1)
    async with running_service(nats_server, config, FakeEngine) as svc:
        # The bucket is the service's own: read it as the service.
        service = await connect_as(nats_server, "service")
        store = await service.jetstream().object_store("INVSYNC_SNAPSHOTS")
        names = [info.name for info in await store.list()]
        await service.close()
        qty = Collector()
        await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "e2", sku="A", location="wh-3", on_hand=7)
        )
        await qty.wait_for(lambda m: len(m) == 1)
    assert sorted(names) == ["seq-ceilings.bin", snapshot_name(stored.seq)]
    # A clean stop hands its seq lease back: the restart goes on at seq 2, no jump.
    assert [(m["seq"], m["items"][0]["qty"]) for _, m in qty.messages] == [(2, 7)]


async def test_msgpack_events_are_read_when_the_content_type_header_says_so(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, FakeEngine) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.ebay", cb=qty.on_msg)
        body = msgspec.msgpack.encode(
            msgspec.json.decode(event("stock.set", "m1", sku="A", location="wh-3", on_hand=8))
        )
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", body, headers={"Content-Type": "application/msgpack"}
        )
        await qty.wait_for(lambda m: len(m) == 1)
    assert qty.messages[0][1]["items"][0]["qty"] == 8


async def test_unexpected_engine_exceptions_are_counted_alerted_and_never_stop_the_loop(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A bug in the engine on a service log entry (here a policy switch) or while
    publishing is skipped, alerted and counted; the service keeps serving."""

    class Buggy(FakeEngine):
        def set_policy(self, policy: object) -> Effects:
            raise RuntimeError("engine bug")

        def drain_json(self, *args: Any, **kwargs: Any) -> Any:
            if self.state.on_hand.get("BUG"):
                self.state.on_hand.pop("BUG")
                raise RuntimeError("engine bug while publishing")
            return super().drain_json(*args, **kwargs)

    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config, Buggy) as svc:
        alerts, qty = Collector(), Collector()
        await svc.nc.subscribe("inv.alert.internal_error", cb=alerts.on_msg)
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        policy = config.policy_path.read_text().replace("cap = 200", "cap = 150", 1)
        reply = await svc.admin.request("inv.admin.policy", policy.encode(), timeout=5)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e1", sku="BUG", location="wh-3", on_hand=1)
        )
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "e2", sku="OK", location="wh-3", on_hand=2)
        )
        await qty.wait_for(lambda m: any(i["sku"] == "OK" for _, q in m for i in q["items"]))
        await alerts.wait_for(lambda m: len(m) == 1)
        counted = {
            stage: svc.registry.get_sample_value("invsync_internal_errors_total", {"stage": stage})
            for stage in ("log", "flush")
        }
    assert msgspec.json.decode(reply.data) == {"ok": False, "error": "internal error"}
    assert "engine bug" in alerts.messages[0][1]["detail"]
    assert counted == {"log": 1, "flush": 1}


async def test_each_partition_keeps_its_own_snapshots(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    for partition in (1, 0):
        config = service_config(nats_server, None, partition=partition)
        async with running_service(nats_server, config, FakeEngine) as svc:
            await svc.nc.jetstream().publish(
                "inv.stock.wh-3",
                event("stock.set", f"e{partition}", sku="A", location="wh-3", on_hand=5),
            )
            await svc.wait_applied((await svc.nc.jetstream().stream_info("INVSYNC")).state.last_seq)
    service = await connect_as(nats_server, "service")
    try:
        js = service.jetstream()
        names = [info.name for info in await (await js.object_store("INVSYNC_SNAPSHOTS")).list()]
        first = await ObjectStoreSnapshotStore(js, "INVSYNC_SNAPSHOTS", 3, "p1-").load_newest()
        zeroth = await ObjectStoreSnapshotStore(js, "INVSYNC_SNAPSHOTS", 3).load_newest()
    finally:
        await service.close()
    assert sum(name.startswith("p1-snapshot-") for name in names) == 1
    assert sum(name.startswith("snapshot-") for name in names) == 1
    assert first is not None and zeroth is not None
    assert first.stream_sequence < zeroth.stream_sequence  # partition 0 ran second
