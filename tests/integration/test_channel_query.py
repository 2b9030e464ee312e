"""`inv.query.channel` and acks against the running service on a real nats-server.

The test client subscribes to `inv.qty.amazon` before the service starts, so it
sees every message from `seq` 1, and asks its queries over the same connection:
the service sends a reply after the messages its `seq` counts, and NATS keeps
one publisher's order to one subscriber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from nats.aio.client import Client

from invsync.nats_server import NatsServer
from tests.service.harness import (
    Collector,
    Running,
    connect_as,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

CHANNEL = "amazon"
SKUS = [f"Q{n}" for n in range(7)]
Key = tuple[str, str]


def shown_after(messages: list[tuple[str, Any]], above: int = 0) -> dict[Key, int]:
    """The last quantity per key in the messages with `seq` > `above`, in `seq` order."""
    shown: dict[Key, int] = {}
    for _, body in sorted(messages, key=lambda m: int(m[1]["seq"])):
        if body["seq"] > above:
            shown.update({(i["sku"], i["condition"]): i["qty"] for i in body["items"]})
    return shown


def last_seq(messages: list[tuple[str, Any]]) -> int:
    return max((int(body["seq"]) for _, body in messages), default=0)


async def ask(nc: Client, **fields: Any) -> dict[str, Any]:
    reply = await nc.request("inv.query.channel", msgspec.json.encode(fields), timeout=5)
    decoded: dict[str, Any] = msgspec.json.decode(reply.data)
    return decoded


async def stock(svc: Running, sku: str, on_hand: int, event_id: str) -> None:
    ack = await svc.nc.jetstream().publish(
        "inv.stock.wh-3", event("stock.set", event_id, sku=sku, location="wh-3", on_hand=on_hand)
    )
    await svc.wait_applied(ack.seq)


def items_of(page: dict[str, Any]) -> dict[Key, int]:
    return {(i["sku"], i["condition"]): i["qty"] for i in page["items"]}


async def test_pages_hold_what_was_published_and_resync_with_the_later_messages(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    watcher = await connect_as(nats_server)
    qty = Collector()
    await watcher.subscribe(f"inv.qty.{CHANNEL}", cb=qty.on_msg)
    try:
        async with running_service(nats_server, service_config(nats_server, tmp_path)) as svc:
            for n, sku in enumerate(SKUS):
                await stock(svc, sku, 40 * (n + 1), f"s{n}")
            await qty.wait_for(lambda m: {(s, "new") for s in SKUS} <= shown_after(m).keys())

            pages = [await ask(watcher, channel=CHANNEL, limit=2)]
            while pages[-1]["next"] is not None:
                assert len(pages) < 50, "paging must end"
                pages.append(await ask(watcher, channel=CHANNEL, after=pages[-1]["next"], limit=2))
            seq = pages[0]["seq"]
            await qty.wait_for(lambda m: last_seq(m) >= seq)
            assert seq == last_seq(qty.messages)
            union: dict[Key, int] = {}
            for page in pages:
                assert page["channel"] == CHANNEL and len(page["items"]) <= 2
                assert not union.keys() & items_of(page).keys(), "a key on two pages"
                union.update(items_of(page))
            assert union == shown_after(qty.messages)
            assert len(pages) >= 4

            # A resync that pages on while stock changes.
            first = await ask(watcher, channel=CHANNEL, limit=2)
            for n, sku in enumerate(SKUS):
                await stock(svc, sku, 3 * n, f"c{n}")  # Q0 to 0, the rest down
            await qty.wait_for(lambda m: shown_after(m).get(("Q0", "new")) == 0)
            resynced = items_of(first)
            after = first["next"]
            while after is not None:
                page = await ask(watcher, channel=CHANNEL, after=after, limit=2)
                resynced.update(items_of(page))
                after = page["next"]
            resynced.update(shown_after(qty.messages, above=first["seq"]))
            assert resynced == shown_after(qty.messages)
            assert resynced[("Q6", "new")] < union[("Q6", "new")]
    finally:
        await watcher.close()


def series(svc: Running) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in svc.registry.collect()
        for sample in family.samples
    }


async def test_bad_queries_are_answered_not_ok_and_connector_and_observer_may_ask(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_service(nats_server, service_config(nats_server, tmp_path)) as svc:
        await stock(svc, "Q1", 50, "s1")
        before = series(svc)
        bad = [
            await svc.nc.request("inv.query.channel", b"{", timeout=5),
            await svc.nc.request("inv.query.channel", b'{"channel": "nowhere"}', timeout=5),
            await svc.nc.request("inv.query.channel", b'{"channel": "amazon", "limit": 0}', 5),
            await svc.nc.request(
                "inv.query.channel", b'{"channel": "amazon", "limit": 10001}', timeout=5
            ),
            await svc.nc.request("inv.query.channel", b'{"channel": "amazon", "after": "x"}', 5),
        ]
        answers = [msgspec.json.decode(r.data) for r in bad]
        after = series(svc)
        roles = {}
        for role in ("connector", "observer"):
            nc = await connect_as(nats_server, role)
            try:
                roles[role] = await ask(nc, channel=CHANNEL)
            finally:
                await nc.close()
    assert all(a["ok"] is False and a["error"] for a in answers)
    assert answers[1] == {"ok": False, "error": "unknown channel"}
    assert after == before, "a query on a made-up channel adds no metric series"
    for page in roles.values():
        assert items_of(page)[("Q1", "new")] > 0


async def test_v1_1_acks_are_counted_and_old_acks_still_keep_a_feed_fresh(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    def sample(name: str, **labels: str) -> float:
        return svc.registry.get_sample_value(name, labels) or 0.0

    async with running_service(nats_server, service_config(nats_server, tmp_path)) as svc:
        connector = await connect_as(nats_server, "connector")
        try:
            with anyio.fail_after(10):
                while sample("invsync_channel_feed_age_seconds", channel="ebay") < 1.5:
                    await anyio.sleep(0.05)
            await connector.publish("inv.ack.ebay", b'{"seq": 1, "ok": true}')
            accepted = datetime.now(UTC).isoformat()
            v1_1 = {
                "seq": 1,
                "ok": True,
                "accepted_ts": accepted,
                "items_ok": 3,
                "items_failed": 1,
            }
            await connector.publish("inv.ack.amazon", msgspec.json.encode(v1_1))
            with anyio.fail_after(10):
                while (
                    sample("invsync_channel_feed_age_seconds", channel="ebay") >= 1.5
                    or sample("invsync_channel_ack_items_total", channel="amazon", result="ok") < 3
                ):
                    await anyio.sleep(0.05)
        finally:
            await connector.close()
    assert sample("invsync_channel_ack_items_total", channel="amazon", result="failed") == 1
    assert sample("invsync_channel_ack_items_total", channel="ebay", result="ok") == 0
