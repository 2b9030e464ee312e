"""What the connector does with each `inv.price.<channel>` message before the scheduler
sees it: a price for the channel's currency is queued for its listing (the `new` one
unless the message names a condition); a malformed price, one in another currency, or
one for a platform whose profile sends no prices is counted and alerted, never sent."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.connector import Connector
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.base import Price
from invsync.service.subjects import Subjects
from tests.gateway.fake_profile import (
    FakeLane,
    FakeProfile,
    listing,
    per_item_lane,
    price_quantity_lane,
)

pytestmark = pytest.mark.anyio
CHANNEL = "ebay"


def connector(lane: FakeLane, http: aiohttp.ClientSession) -> tuple[Connector, CollectorRegistry]:
    registry = CollectorRegistry()
    source: Any = None  # the map is filled by hand; nothing is run
    conn = Connector(
        CHANNEL,
        None,  # type: ignore[arg-type]  # no message goes out in these tests
        Subjects(),
        FakeProfile([lane]),
        http,
        source,
        GatewayMetrics(registry).channel(CHANNEL),
    )
    for sku, condition in (("A", "new"), ("A", "used")):
        conn.map.put(listing(sku, condition))
    return conn, registry


def price(**fields: str) -> bytes:
    return msgspec.json.encode({"sku": "A", "price": "19.99", "currency": "USD", **fields})


def count(registry: CollectorRegistry, outcome: str) -> float:
    labels = {"channel": CHANNEL, "outcome": outcome}
    return registry.get_sample_value("invsync_channel_price_pushes_total", labels) or 0.0


def alerts(conn: Connector) -> list[tuple[str, str]]:
    return [(alert.kind, alert.detail) for alert in conn._alerts]


async def test_a_price_is_queued_for_the_listing_of_its_condition(
    http: aiohttp.ClientSession,
) -> None:
    conn, _ = connector(price_quantity_lane(), http)
    conn._on_price(price())
    conn._on_price(price(condition="used", price="9.50"))
    queued = conn.scheduler.queue._prices
    assert {key: item.price for key, item in queued.items()} == {
        "A-new": Price("19.99", "USD"),
        "A-used": Price("9.50", "USD"),
    }
    assert alerts(conn) == []


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (price(currency="EUR"), "EUR"),
        (price(price="19.999"), "decimals"),
        (price(price="-1"), "not above 0"),
        (price(price="abc"), "not a decimal"),
    ],
)
async def test_a_price_the_channel_cannot_take_is_alerted_not_sent(
    http: aiohttp.ClientSession, message: bytes, why: str
) -> None:
    conn, registry = connector(price_quantity_lane(), http)
    conn._on_price(message)
    assert conn.scheduler.queue.backlog() == 0
    ((kind, detail),) = alerts(conn)
    assert kind == "channel_error" and why in detail
    assert count(registry, "invalid") == 1


async def test_an_unreadable_price_message_is_counted(http: aiohttp.ClientSession) -> None:
    conn, registry = connector(price_quantity_lane(), http)
    conn._on_price(b'{"sku": "A", "price": 19.99}')
    assert count(registry, "invalid") == 1 and conn.scheduler.queue.backlog() == 0


async def test_prices_for_a_profile_that_sends_none_are_counted_and_alerted_once(
    http: aiohttp.ClientSession,
) -> None:
    conn, registry = connector(per_item_lane(), http)
    conn._on_price(price())
    conn._on_price(price(price="18.00"))
    assert count(registry, "unsupported") == 2
    ((kind, detail),) = alerts(conn)
    assert kind == "channel_error" and "does not send prices" in detail
