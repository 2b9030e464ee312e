"""A connector against the running service on a real nats-server, pushing to an
in-process fake platform: resync on start and after a gap, acks, mapping_missing
then the push once the map names the listing (CSV edit, KV put), refusals alerted,
and no credential in any log line or alert."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import nats
import nats.aio.client
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.connector import Connector
from invsync.gateway.listings import CsvListings, KvListings, ListingSource
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.secrets import Secret
from invsync.nats_server import NatsServer
from invsync.service.connection import client_kwargs
from invsync.service.subjects import Subjects
from tests.gateway.fake_profile import FakeProfile, per_item_lane
from tests.service.harness import Collector, Running, event, running_service, service_config

pytestmark = pytest.mark.anyio

CHANNEL = "amazon"
SECRET = "s3cr3t-refresh-token-value"


def csv_text(*skus: str) -> str:
    return "sku,condition,item_id\n" + "".join(f"{sku},,{sku}-new\n" for sku in skus)


async def stock(svc: Running, sku: str, on_hand: int, event_id: str) -> int:
    """Set `sku`'s stock; returns the quantity the service then shows on the channel
    (once it has published the change)."""
    before = await shown_by_service(svc, sku)
    ack = await svc.nc.jetstream().publish(
        "inv.stock.wh-3", event("stock.set", event_id, sku=sku, location="wh-3", on_hand=on_hand)
    )
    await svc.wait_applied(ack.seq)
    with anyio.fail_after(5):
        while (shown := await shown_by_service(svc, sku)) == before:
            await anyio.sleep(0.02)
    return shown


async def shown_by_service(svc: Running, sku: str) -> int:
    """What the service last published for `sku` on the channel."""
    reply = await svc.nc.request(
        "inv.query.channel", msgspec.json.encode({"channel": CHANNEL}), timeout=5
    )
    items = msgspec.json.decode(reply.data)["items"]
    return next((i["qty"] for i in items if i["sku"] == sku), 0)


async def until(predicate: Any, timeout_s: float = 10.0) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():
            await anyio.sleep(0.02)


@asynccontextmanager
async def connector(
    server: NatsServer,
    profile: FakeProfile,
    source: ListingSource | None,
    tmp_path: Path,
    tail_check_s: float = 30.0,
) -> AsyncIterator[tuple[Connector, CollectorRegistry]]:
    nc = await nats.connect(**client_kwargs(server.client("connector")))
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry).channel(CHANNEL)
    if source is None:
        source = CsvListings(tmp_path / "amazon.csv", ("item_id",), poll_s=0.05)
    try:
        async with aiohttp.ClientSession() as http, anyio.create_task_group() as tasks:
            conn = Connector(
                CHANNEL,
                nc,
                Subjects(),
                profile,
                http,
                source,
                metrics,
                secrets={"refresh_token": Secret("$AMZ_REFRESH", SECRET)},
                tail_check_s=tail_check_s,
            )
            await tasks.start(conn.run)
            yield conn, registry
            tasks.cancel_scope.cancel()
    finally:
        await nc.close()


async def watch(nc: nats.aio.client.Client, subject: str) -> Collector:
    collector = Collector()
    await nc.subscribe(subject, cb=collector.on_msg)
    await nc.flush()
    return collector


@asynccontextmanager
async def as_service(server: NatsServer) -> AsyncIterator[nats.aio.client.Client]:
    """A connection that may read acks (only the service may)."""
    nc = await nats.connect(**client_kwargs(server.client("service")))
    try:
        yield nc
    finally:
        await nc.close()


async def test_resync_on_start_then_pushes_and_acks_each_message(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "amazon.csv").write_text(csv_text("C1", "C2", "C3"), encoding="utf-8")
    lane = per_item_lane(rate=50, burst=50, batch=1)
    lane.refuse["C3-new"] = "8541: listing is not live"
    profile = FakeProfile([lane])
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc,
        as_service(nats_server) as service_nc,
    ):
        before = await stock(svc, "C1", 100, "e1")
        acks = await watch(service_nc, "inv.ack.amazon")
        alerts = await watch(svc.nc, "inv.alert.>")
        async with connector(nats_server, profile, None, tmp_path) as (conn, registry):
            # The start: every shown quantity, and 0 for mapped listings not shown.
            await until(lambda: lane.shown.get("C1-new") == before and "C2-new" in lane.shown)
            assert lane.shown["C2-new"] == 0
            assert conn.resyncs == 1
            after = await stock(svc, "C1", 60, "e2")
            await until(lambda: lane.shown.get("C1-new") == after)
            await acks.wait_for(lambda m: any(b["seq"] == conn.last_seq and b["ok"] for _, b in m))
            ack = next(b for _, b in acks.messages if b["seq"] == conn.last_seq)
            assert ack["items_ok"] == 1 and ack["items_failed"] == 0 and ack["accepted_ts"]
            # A refusal: alerted with the platform's reason, acked not ok, not retried.
            await_seq = conn.last_seq
            await stock(svc, "C3", 80, "e3")
            await until(lambda: conn.last_seq != await_seq)
            seq = conn.last_seq
            await acks.wait_for(lambda m: any(b["seq"] == seq for _, b in m))
            failed = next(b for _, b in acks.messages if b["seq"] == seq)
            assert not failed["ok"]
            assert failed["items_failed"] == 1 and "8541" in failed["error"]
            refusals = [b for s, b in alerts.messages if s == "inv.alert.channel_error"]
            assert refusals and all(b["sku"] == "C3" for b in refusals)
            assert "8541: listing is not live" in refusals[-1]["detail"]
            await anyio.sleep(0.3)
            # once at the resync (0) and once for the new quantity: never again
            assert lane.sent_keys().count(["C3-new"]) == 2
            latency = registry.get_sample_value(
                "invsync_channel_push_latency_seconds_count", {"channel": CHANNEL}
            )
            assert latency and latency >= 3
        svc.stop.set()
    assert SECRET not in caplog.text
    assert all(SECRET not in str(b) for _, b in alerts.messages)


async def test_a_gap_in_seq_resyncs_and_a_restart_converges(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "amazon.csv").write_text(csv_text("G1", "G2"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    profile = FakeProfile([lane])
    async with running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc:
        g1 = await stock(svc, "G1", 100, "g1")
        async with connector(nats_server, profile, None, tmp_path) as (conn, _):
            await until(lambda: lane.shown.get("G1-new") == g1)
            # A message lost on the way: the next one does not follow the last seen.
            assert conn.last_seq is not None
            conn.last_seq -= 1
            sent_before = lane.sent_keys().count(["G1-new"])
            g2 = await stock(svc, "G2", 70, "g2")
            await until(lambda: conn.resyncs == 2)
            await until(lambda: lane.shown.get("G2-new") == g2)
            # G1 already shows what the resync says: not sent again
            assert lane.sent_keys().count(["G1-new"]) == sent_before
        # Killed: changes made while it is down reach the platform after a restart.
        g1 = await stock(svc, "G1", 50, "g3")
        async with connector(nats_server, profile, None, tmp_path):
            await until(lambda: lane.shown.get("G1-new") == g1)
        svc.stop.set()


async def test_a_missing_mapping_is_alerted_then_pushed_when_the_csv_names_it(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    listing_csv = tmp_path / "amazon.csv"
    listing_csv.write_text(csv_text("M1"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    profile = FakeProfile([lane])
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc,
        as_service(nats_server) as service_nc,
    ):
        alerts = await watch(svc.nc, "inv.alert.mapping_missing")
        acks = await watch(service_nc, "inv.ack.amazon")
        async with connector(nats_server, profile, None, tmp_path) as (_, registry):
            expected = await stock(svc, "M2", 90, "m1")
            await alerts.wait_for(lambda m: any(b["sku"] == "M2" for _, b in m))
            await acks.wait_for(lambda m: any("M2" in (b.get("error") or "") for _, b in m))
            assert "M2-new" not in lane.shown
            # the example policy's own SKUs are unmapped here too: one alert each, once
            unmapped = registry.get_sample_value(
                "invsync_channel_unmapped_items", {"channel": CHANNEL}
            )
            assert unmapped == len({b["sku"] for _, b in alerts.messages})
            listing_csv.write_text(csv_text("M1", "M2"), encoding="utf-8")
            await until(lambda: lane.shown.get("M2-new") == expected)
            assert (
                registry.get_sample_value("invsync_channel_unmapped_items", {"channel": CHANNEL})
                == unmapped - 1
            )
        svc.stop.set()


async def test_a_kv_put_maps_a_listing_without_a_restart(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    lane = per_item_lane(rate=100, burst=100)
    profile = FakeProfile([lane])
    async with running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc:
        # the catalog side (a producer) keeps the map
        kv = await svc.nc.jetstream().create_key_value(bucket="inv_listings")
        await kv.put("amazon.K1", msgspec.json.encode({"sku": "K1", "item_id": "K1-new"}))
        nc = await nats.connect(**client_kwargs(nats_server.client("connector")))
        source = KvListings(nc.jetstream(), "inv_listings", CHANNEL, ("item_id",))
        try:
            async with connector(nats_server, profile, source, tmp_path) as (conn, _):
                expected = await stock(svc, "K2", 75, "k1")
                await until(lambda: conn.map.get("K1", "new") is not None)
                assert "K2-new" not in lane.shown
                await kv.put(
                    "amazon.K2",
                    msgspec.json.encode({"sku": "K2", "condition": "", "item_id": "K2-new"}),
                )
                await until(lambda: lane.shown.get("K2-new") == expected)
        finally:
            await nc.close()
        svc.stop.set()


async def test_a_lost_last_message_is_found_by_the_tail_check(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "amazon.csv").write_text(csv_text("T1"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    async with running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc:
        t1 = await stock(svc, "T1", 100, "t1")
        async with connector(nats_server, FakeProfile([lane]), None, tmp_path, 0.1) as (conn, _):
            await until(lambda: lane.shown.get("T1-new") == t1)
            # The next message is lost on the way, and no other follows it.
            lost: list[int] = []
            on_message = conn._on_message

            async def losing_one(msg: Any) -> None:
                if lost:
                    await on_message(msg)
                else:
                    lost.append(msgspec.json.decode(msg.data)["seq"])

            conn._on_message = losing_one  # type: ignore[method-assign]
            t1_later = await stock(svc, "T1", 70, "t2")
            await until(lambda: lost and conn.resyncs == 2)
            await until(lambda: lane.shown.get("T1-new") == t1_later)
        svc.stop.set()


async def test_a_connector_started_while_no_service_answers_waits_for_one(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """As during a restart of the service, or while a standby takes over from a
    leader that died: the channel query has no responders for a moment."""
    (tmp_path / "amazon.csv").write_text(csv_text("W1"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    done = anyio.Event()
    started: list[Connector] = []

    async def run_connector() -> None:
        async with connector(nats_server, FakeProfile([lane]), None, tmp_path) as (conn, _):
            started.append(conn)
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_connector)
        await anyio.sleep(0.3)  # its first resync finds nobody serving
        async with running_service(
            nats_server, service_config(nats_server, tmp_path / "state")
        ) as svc:
            shown = await stock(svc, "W1", 100, "w1")
            await until(lambda: lane.shown.get("W1-new") == shown, 15)
            assert started and started[0].resyncs >= 1
            done.set()
