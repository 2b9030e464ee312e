"""The shipped NATS permissions, enforced by a real nats-server against hostile clients.

Each client connects with the credentials of one role (invsync.security.roles).
An attempt outside the role must be refused by the server with a permissions
violation (reported to the client's error callback) and must leave the
service's state as it was.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats
import nats.errors
import nkeys
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from invsync.cli import main
from invsync.commands.auth import AUTH_CONF
from invsync.nats_server import NatsServer, find_binary, free_port
from invsync.security.roles import ADMIN_ACCOUNT
from invsync.service.connection import client_kwargs
from invsync.service.metrics import UNKNOWN_CHANNEL
from invsync.service.subjects import REQUESTED_BY_HEADER
from tests.service.harness import (
    EXAMPLE_POLICY,
    Collector,
    Running,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

MADE_UP_CHANNELS = 10_000
STOCK = event("stock.set", "s1", sku="A", location="wh-3", on_hand=1000)


class Refusals:
    """The errors the server reported to one client."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(exc)

    async def wait_for_violation(self, subject: str, timeout_s: float = 5.0) -> None:
        """Until the server has refused `subject` (nats-py reports it lower-cased)."""
        wanted = subject.lower()
        with anyio.fail_after(timeout_s):
            while not any(
                isinstance(e, nats.errors.Error)
                and "permissions violation" in str(e).lower()
                and wanted in str(e).lower()
                for e in self.errors
            ):
                await anyio.sleep(0.01)


@asynccontextmanager
async def connected_as(server: NatsServer, user: str) -> AsyncIterator[tuple[Client, Refusals]]:
    refusals = Refusals()
    nc = await nats.connect(**client_kwargs(server.client(user)), error_cb=refusals.on_error)
    try:
        yield nc, refusals
    finally:
        await nc.close()


def reserve(request_id: str, channel: str, qty: int) -> bytes:
    return msgspec.json.encode(
        {
            "request_id": request_id,
            "order_id": f"o-{request_id}",
            "channel": channel,
            "lines": [{"line_id": "1", "sku": "A", "qty": qty}],
            "hold_seconds": 3600,
        }
    )


async def explain(svc: Running, sku: str = "A") -> dict[str, Any]:
    reply = await svc.nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    decoded: dict[str, Any] = msgspec.json.decode(reply.data)
    return decoded


async def applied_after(svc: Running, event_id: str) -> None:
    """A later event is applied: whatever was published before it would have been too."""
    ack = await svc.nc.jetstream().publish(
        "inv.stock.wh-3", event("stock.set", event_id, sku="B", location="wh-3", on_hand=1)
    )
    await svc.wait_applied(ack.seq)


async def test_a_producer_cannot_forge_log_entries_or_reload_the_policy(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, config) as svc,
        connected_as(nats_server, "producer") as (producer, refusals),
    ):
        await producer.jetstream().publish("inv.stock.wh-3", STOCK)
        granted = await producer.request("inv.reserve.shopify", reserve("r1", "shopify", 4), 5)
        assert msgspec.json.decode(granted.data)["ok"] is True
        before = await explain(svc)
        assert before["reserved"] == 4

        far_future = event("clock.tick", "forged", ts="2099-01-01T00:00:00Z")
        await producer.publish("inv.log.clock", far_future)
        await producer.publish("inv.log.policy", EXAMPLE_POLICY.read_bytes())
        smaller_cap = EXAMPLE_POLICY.read_text().replace("cap = 200", "cap = 120", 1)
        await producer.publish("inv.admin.policy", smaller_cap.encode())
        for subject in ("inv.log.clock", "inv.log.policy", "inv.admin.policy"):
            await refusals.wait_for_violation(subject)
        await applied_after(svc, "later")

        after = await explain(svc)
    assert after["reserved"] == 4  # the hold was not expired by a tick from 2099
    assert after["channels"] == before["channels"]  # nor the cap changed


async def test_a_producer_cannot_purge_or_delete_the_stream(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, config) as svc,
        connected_as(nats_server, "producer") as (producer, refusals),
    ):
        await producer.jetstream().publish("inv.stock.wh-3", STOCK)
        log = svc.nc.jetstream()
        held = (await log.stream_info("INVSYNC")).state.messages
        hostile = producer.jetstream(timeout=1.0)
        with pytest.raises(nats.errors.TimeoutError):  # no answer: the request never got in
            await hostile.purge_stream("INVSYNC")
        with pytest.raises(nats.errors.TimeoutError):
            await hostile.delete_stream("INVSYNC")
        await refusals.wait_for_violation("$JS.API.STREAM.PURGE.INVSYNC")
        await refusals.wait_for_violation("$JS.API.STREAM.DELETE.INVSYNC")
        assert (await log.stream_info("INVSYNC")).state.messages >= held
        assert (await explain(svc))["on_hand"] == 1000


async def test_a_producer_cannot_read_another_roles_replies(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    overheard: list[Msg] = []

    async def eavesdrop(msg: Msg) -> None:
        overheard.append(msg)

    async with (
        running_service(nats_server, config),
        connected_as(nats_server, "producer") as (producer, refusals),
        connected_as(nats_server, "observer") as (observer, _),
    ):
        for inbox in ("_INBOX.observer.>", "_INBOX.>"):
            await producer.subscribe(inbox, cb=eavesdrop)
            await refusals.wait_for_violation(inbox)
        reply = await observer.request("inv.query.sku", b'{"sku": "A"}', timeout=5)
        assert reply.subject.startswith("_INBOX.observer.")
        await producer.flush()
    assert overheard == []


async def test_a_connector_cannot_publish_events(nats_server: NatsServer, tmp_path: Path) -> None:
    config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, config) as svc,
        connected_as(nats_server, "connector") as (connector, refusals),
    ):
        ack = await svc.nc.jetstream().publish("inv.stock.wh-3", STOCK)
        await svc.wait_applied(ack.seq)
        before = await explain(svc)
        forged = event("stock.set", "s2", sku="A", location="wh-3", on_hand=5)
        await connector.publish("inv.stock.wh-3", forged)
        order = event(
            "order.placed",
            "o1",
            order_id="o1",
            channel="shopify",
            lines=[{"line_id": "1", "sku": "A", "qty": 500}],
        )
        await connector.publish("inv.order.shopify", order)
        await refusals.wait_for_violation("inv.stock.wh-3")
        await refusals.wait_for_violation("inv.order.shopify")
        await applied_after(svc, "later")
        after = await explain(svc)
    assert before["on_hand"] == 1000
    assert after == before


def series(svc: Running) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in svc.registry.collect()
        for sample in family.samples
    }


async def test_reservations_on_made_up_channels_add_no_metric_series(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, config) as svc,
        connected_as(nats_server, "producer") as (producer, _),
    ):
        # The service's own first clock tick adds its event series: wait for it first.
        with anyio.fail_after(10):
            while not svc.registry.get_sample_value("invsync_events_total", {"type": "clock.tick"}):
                await anyio.sleep(0.05)
        before = series(svc)
        answers: list[Any] = []
        with anyio.fail_after(120):
            for start in range(0, MADE_UP_CHANNELS, 500):
                async with anyio.create_task_group() as tg:
                    for i in range(start, start + 500):

                        async def ask(channel: str = f"fake{i}") -> None:
                            body = reserve(f"r-{channel}", channel, 1)
                            reply = await producer.request(f"inv.reserve.{channel}", body, 10)
                            answers.append(msgspec.json.decode(reply.data))

                        tg.start_soon(ask)
        after = series(svc)
        counted = svc.registry.get_sample_value(
            "invsync_reservations_total", {"channel": UNKNOWN_CHANNEL, "result": "error"}
        )
    assert len(answers) == MADE_UP_CHANNELS
    assert all(a == {"ok": False, "error": "unknown channel"} for a in answers)
    assert after == before
    assert counted == MADE_UP_CHANNELS


async def test_an_ack_on_a_made_up_channel_is_answered_unknown(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, config),
        connected_as(nats_server, "connector") as (connector, _),
    ):
        ack = msgspec.json.encode({"seq": 1, "ok": True})
        reply = await connector.request("inv.ack.fake", ack, timeout=5)
    assert msgspec.json.decode(reply.data) == {"ok": False, "error": "unknown channel"}


async def test_a_policy_reload_is_logged_with_the_admin_who_asked(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    seed = nats_server.client("admin").nkeys_seed
    assert seed is not None
    admin_key = nkeys.from_seed(bytearray(seed.read_bytes().strip())).public_key.decode()
    smaller_cap = EXAMPLE_POLICY.read_text().replace("cap = 200", "cap = 120", 1)
    async with running_service(nats_server, config) as svc:
        reply = await svc.admin.request("inv.admin.policy", smaller_cap.encode(), timeout=5)
        assert msgspec.json.decode(reply.data)["ok"] is True
        logged = await svc.admin.jetstream().get_last_msg("INVSYNC", "inv.log.policy")
    requested_by = (logged.headers or {})[REQUESTED_BY_HEADER]
    assert admin_key in requested_by and ADMIN_ACCOUNT in requested_by


def start_nats(conf: Path, store: Path) -> subprocess.Popen[bytes]:
    command = [str(find_binary()), "--config", str(conf), "--jetstream", "--store_dir", str(store)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_server_including_what_invsync_auth_writes_enforces_the_roles(
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets"
    assert main(["auth", "--out", str(secrets)]) == 0
    port = free_port()
    conf = secrets / "nats-server.conf"
    conf.write_text(f"include {AUTH_CONF}\nlisten: 127.0.0.1:{port}\n")
    server = start_nats(conf, tmp_path / "js")
    try:
        refusals = Refusals()
        with anyio.fail_after(10):
            while True:
                try:
                    producer = await nats.connect(
                        f"nats://127.0.0.1:{port}",
                        nkeys_seed=str(secrets / "producer.nk"),
                        inbox_prefix="_INBOX.producer",
                        error_cb=refusals.on_error,
                        max_reconnect_attempts=0,
                    )
                    break
                except (OSError, nats.errors.NoServersError):
                    await anyio.sleep(0.05)
        await producer.publish("inv.stock.wh-3", STOCK)
        await producer.publish("inv.log.clock", STOCK)
        await refusals.wait_for_violation("inv.log.clock")
        await producer.flush()
        assert not any("inv.stock" in str(e).lower() for e in refusals.errors)
        await producer.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_a_reply_subject_cannot_make_the_service_publish_on_a_feed(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    feed, dlq = Collector(), Collector()
    async with (
        running_service(nats_server, config) as svc,
        connected_as(nats_server, "producer") as (producer, _),
    ):
        await svc.nc.subscribe("inv.qty.shopify", cb=feed.on_msg)
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        await svc.nc.flush()
        # A producer may not publish on the feed; it names the feed as its reply.
        await producer.publish(
            "inv.reserve.shopify", reserve("r1", "shopify", 1), reply="inv.qty.shopify"
        )
        await producer.publish("inv.query.sku", b'{"sku": "A"}', reply="inv.qty.shopify")
        await dlq.wait_for(lambda m: len(m) == 1)
        await applied_after(svc, "later")
        await svc.nc.flush()
    assert all("seq" in body for _, body in feed.messages)  # channel quantities only
    assert dlq.messages[0][1]["subject"] == "inv.reserve.shopify"
