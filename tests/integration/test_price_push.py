"""Prices end to end on a real nats-server: the running service and a connector for an
eBay channel on the sandbox. Most tests publish `inv.price.<channel>` themselves (the
service's pricing side publishes the same messages): a price reaches the marketplace in
eBay's price call, the listing's quantity still follows the service, a price in another
currency is alerted and not sent, an unmapped SKU's price waits for its listing, and
`invsync_channel_price_pushes_total` counts what became of each. One starts from a
`price.set` in the log and follows it through the service's guards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import msgspec
import nats
import pytest
from prometheus_client import CollectorRegistry

from invsync.events import ShownItem
from invsync.gateway.connector import Connector
from invsync.gateway.listings import CsvListings
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import ebay as ebay_profile
from invsync.marketplaces import ebay
from invsync.nats_server import NatsServer
from invsync.sandbox.market import SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.ebay import EbaySandbox
from invsync.service.connection import client_kwargs
from invsync.service.subjects import Subjects
from tests import ebay_world
from tests.integration.test_connector import CHANNEL, as_service, stock, until, watch
from tests.service.harness import event, running_service, service_config

pytestmark = pytest.mark.anyio


def price(sku: str, amount: str, currency: str = "USD") -> bytes:
    body = {"sku": sku, "price": amount, "currency": currency, "reason": "list price"}
    return msgspec.json.encode(body)


def pushes(registry: CollectorRegistry, outcome: str) -> float:
    sample = registry.get_sample_value(
        "invsync_channel_price_pushes_total", {"channel": CHANNEL, "outcome": outcome}
    )
    return sample or 0.0


@asynccontextmanager
async def ebay_connector(
    server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[EbaySandbox, CollectorRegistry, Connector]]:
    """The policy's channel `amazon` sold through an eBay account on the sandbox, which
    lists P1 and P2; the listing map names P1 only."""
    market = ebay_world.market(0)
    for n in (1, 2):
        ids = {"ebay_sku": f"P{n}-EBAY", "offer_id": f"OFF-{n}"}
        market.listings[ids["ebay_sku"]] = SandboxListing(ids["ebay_sku"], f"P{n}", "new", ids)
    sandbox = EbaySandbox(market, ebay_world.CREDENTIALS, SandboxSettings())
    listings = tmp_path / "ebay.csv"
    listings.write_text("sku,condition,ebay_sku,offer_id\nP1,,P1-EBAY,OFF-1\n", encoding="utf-8")
    nc = await nats.connect(**client_kwargs(server.client("connector")))
    registry = CollectorRegistry()
    try:
        async with (
            ebay_world.serving(sandbox.routes()) as url,
            aiohttp.ClientSession() as http,
            anyio.create_task_group() as tasks,
        ):
            conn = Connector(
                CHANNEL,
                nc,
                Subjects(),
                ebay_profile.build_profile(ebay_world.settings(url)),
                http,
                CsvListings(listings, ebay.ID_FIELDS, poll_s=0.05),
                GatewayMetrics(registry).channel(CHANNEL),
            )
            await tasks.start(conn.run)
            yield sandbox, registry, conn
            tasks.cancel_scope.cancel()
    finally:
        await nc.close()


async def test_prices_published_for_a_channel_reach_its_marketplace(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc,
        as_service(nats_server) as service,  # the role that publishes prices
    ):
        errors = await watch(svc.nc, "inv.alert.channel_error")
        missing = await watch(svc.nc, "inv.alert.mapping_missing")
        async with ebay_connector(nats_server, tmp_path) as (sandbox, registry, _):
            shown = sandbox.market.listings["P1-EBAY"]
            decided = await stock(svc, "P1", 100, "p1")
            await until(lambda: shown.qty == decided)
            await service.publish("inv.price.amazon", price("P1", "24.99"))
            await until(lambda: shown.price == "24.99")
            assert pushes(registry, "applied") == 1
            # A price in another currency than the channel's is alerted, never sent.
            await service.publish("inv.price.amazon", price("P1", "21.00", "EUR"))
            await errors.wait_for(lambda m: any("EUR" in b["detail"] for _, b in m))
            assert pushes(registry, "invalid") == 1 and shown.price == "24.99"
            # P2 is not in the listing map: its price waits for it, alerted once.
            await service.publish("inv.price.amazon", price("P2", "9.50"))
            await missing.wait_for(lambda m: any(b["sku"] == "P2" for _, b in m))
            assert pushes(registry, "unmapped") == 1
            assert sandbox.market.listings["P2-EBAY"].price is None
            with (tmp_path / "ebay.csv").open("a", encoding="utf-8") as csv:
                csv.write("P2,,P2-EBAY,OFF-2\n")
            await until(lambda: sandbox.market.listings["P2-EBAY"].price == "9.50")
            # The quantity still follows the service after the price.
            again = await stock(svc, "P1", 40, "p1-again")
            await until(lambda: shown.qty == again)
            assert shown.price == "24.99"


async def test_a_catalog_price_goes_from_the_log_through_its_guards_to_the_marketplace(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """`price.set` on `inv.catalog.<source>` → the service's channel price (the policy's
    rounding, fees and guards) → the connector → what the marketplace shows. A price the
    margin floor rejects is alerted as `price_guard` and never reaches the marketplace."""
    async with running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc:
        published = await watch(svc.nc, "inv.price.amazon")
        guarded = await watch(svc.nc, "inv.alert.price_guard")
        js = svc.nc.jetstream()
        async with ebay_connector(nats_server, tmp_path) as (sandbox, registry, _):
            shown = sandbox.market.listings["P1-EBAY"]
            good = event("price.set", "price-1", sku="P1", price="20.00", currency="USD")
            await js.publish("inv.catalog.pim", good)
            await published.wait_for(lambda m: any(b["sku"] == "P1" for _, b in m))
            [body] = [b for _, b in published.messages if b["sku"] == "P1"]
            assert body["currency"] == "USD" and body["reason"].startswith("list")
            await until(lambda: shown.price == body["price"])
            assert pushes(registry, "applied") >= 1
            # A cost that leaves less than the channel's 10% margin after its 15% fee.
            thin = event(
                "price.set", "price-2", sku="P1", price="20.00", currency="USD", cost="19.50"
            )
            ack = await js.publish("inv.catalog.pim", thin)
            await svc.wait_applied(ack.seq)
            await guarded.wait_for(
                lambda m: any(b["channel"] == "amazon" and b["sku"] == "P1" for _, b in m)
            )
            [alert] = [b for _, b in guarded.messages if b["channel"] == "amazon"]
            assert alert["rule"] == "margin"
            await anyio.sleep(0.5)
            assert shown.price == body["price"]
            assert [b["sku"] for _, b in published.messages] == ["P1"]


async def test_a_price_published_while_no_connector_runs_reaches_the_marketplace_on_its_start(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A restarted gateway resyncs prices with quantities: the channel query's page
    carries the price published while it was down, and the connector sends it. A later
    resync does not send a price the marketplace accepted from it again."""
    async with running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc:
        published = await watch(svc.nc, "inv.price.amazon")
        decided = await stock(svc, "P1", 100, "p1")
        set_price = event("price.set", "price-1", sku="P1", price="20.00", currency="USD")
        await svc.nc.jetstream().publish("inv.catalog.pim", set_price)
        await published.wait_for(lambda m: any(b["sku"] == "P1" for _, b in m))
        [body] = [b for _, b in published.messages if b["sku"] == "P1"]
        async with ebay_connector(nats_server, tmp_path) as (sandbox, registry, conn):
            shown = sandbox.market.listings["P1-EBAY"]
            await until(lambda: shown.qty == decided and shown.price == body["price"])
            assert pushes(registry, "applied") == 1
            # A message lost on the way: the next one shows a gap, and the connector resyncs.
            assert conn.last_seq is not None
            conn.last_seq -= 1
            again = await stock(svc, "P1", 40, "p1-again")
            await until(lambda: conn.resyncs == 2 and shown.qty == again)
            await anyio.sleep(0.3)
            assert pushes(registry, "applied") == 1 and shown.price == body["price"]


async def test_a_price_message_heard_during_a_resync_wins_over_the_older_page_price(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prices have no `seq`: a price message that arrives while a resync reads its pages
    is newer than the page's price, which must not replace it."""
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc,
        as_service(nats_server) as service,
    ):
        published = await watch(svc.nc, "inv.price.amazon")
        await stock(svc, "P1", 100, "p1")
        set_price = event("price.set", "price-1", sku="P1", price="20.00", currency="USD")
        await svc.nc.jetstream().publish("inv.catalog.pim", set_price)
        await published.wait_for(lambda m: any(b["sku"] == "P1" for _, b in m))
        async with ebay_connector(nats_server, tmp_path) as (sandbox, _, conn):
            shown = sandbox.market.listings["P1-EBAY"]
            await until(lambda: shown.price is not None)
            read_pages = conn._read_until_answered

            async def newer_price_heard_meanwhile(partition: int) -> tuple[int, list[ShownItem]]:
                answer = await read_pages(partition)
                await service.publish("inv.price.amazon", price("P1", "31.00"))
                await until(lambda: shown.price == "31.00")
                return answer

            monkeypatch.setattr(conn, "_read_until_answered", newer_price_heard_meanwhile)
            assert conn.last_seq is not None
            conn.last_seq -= 1  # a gap: the next message resyncs
            await stock(svc, "P1", 40, "p1-again")
            await until(lambda: conn.resyncs == 2)
            await anyio.sleep(0.3)
            assert shown.price == "31.00"
