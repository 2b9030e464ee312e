"""Policy reload on a running service: a good policy changes what channels are shown."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import (
    EXAMPLE_POLICY,
    Collector,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio


def shown(collector: Collector, sku: str) -> list[int]:
    return [i["qty"] for _, m in collector.messages for i in m["items"] if i["sku"] == sku]


async def test_good_policy_changes_shown_quantities_and_bad_one_changes_nothing(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    text = EXAMPLE_POLICY.read_text()
    assert "cap = 200" in text
    lower_cap = text.replace("cap = 200", "cap = 150", 1)
    async with running_service(nats_server, config) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        await svc.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="A", location="wh-3", on_hand=1000)
        )
        await qty.wait_for(lambda _: shown(qty, "A") == [200])
        bad = await svc.admin.request(
            "inv.admin.policy", text.replace("share = 0.8", "share = 1.8").encode(), timeout=5
        )
        good = await svc.admin.request("inv.admin.policy", lower_cap.encode(), timeout=5)
        await qty.wait_for(lambda _: shown(qty, "A") == [200, 150])
        explained = await svc.nc.request("inv.query.sku", b'{"sku": "A"}', timeout=5)
    refusal = msgspec.json.decode(bad.data)
    assert refusal["ok"] is False
    assert "share" in refusal["error"]
    assert msgspec.json.decode(good.data)["ok"] is True
    shopify = [
        c for c in msgspec.json.decode(explained.data)["channels"] if c["channel"] == "shopify"
    ]
    assert shopify[0]["shown"] == 150


async def test_reload_that_drops_a_stocked_location_is_refused_with_the_reason(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """It used to be appended, refused by the core when applied, and stop the service
    on that entry, live and on every restart."""
    config = service_config(nats_server, tmp_path)
    text = EXAMPLE_POLICY.read_text()
    renamed = text.replace('"wh-3"', '"wh-9"')
    async with running_service(nats_server, config) as svc:
        qty = Collector()
        await svc.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="A", location="wh-3", on_hand=1000)
        )
        await qty.wait_for(lambda _: shown(qty, "A") == [200])
        refused = await svc.admin.request("inv.admin.policy", renamed.encode(), timeout=5)
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "s2", sku="Q", location="wh-3", on_hand=5)
        )
        await qty.wait_for(lambda _: shown(qty, "Q") != [])  # still serving
        logged = await js.stream_info("INVSYNC")
    reply = msgspec.json.decode(refused.data)
    assert reply["ok"] is False
    assert 'location "wh-3" is still in use' in reply["error"]
    # The leader's epoch entry and the two stock events; the policy never entered the log.
    assert logged.state.messages == 3


async def test_a_standby_that_takes_over_keeps_a_policy_reloaded_while_it_followed(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Its policy file is the one both started with; the reload since is in the log
    and stays in force: the file did not change while the standby was down."""
    lower_cap = EXAMPLE_POLICY.read_text().replace("cap = 200", "cap = 150", 1)
    standby_config = service_config(nats_server, tmp_path / "standby", standby=True)
    leader_config = service_config(nats_server, tmp_path)
    async with (
        running_service(nats_server, leader_config) as leader,
        running_service(nats_server, standby_config) as standby,
    ):
        reloaded = await leader.admin.request("inv.admin.policy", lower_cap.encode(), timeout=5)
        assert msgspec.json.decode(reloaded.data)["ok"] is True
        leader.stop.set()  # a clean stop hands the lease over at once
        with anyio.fail_after(10):
            while (
                standby.registry.get_sample_value("invsync_partition_leader", {"partition": "0"})
                != 1
            ):
                await anyio.sleep(0.02)
        qty = Collector()
        await standby.nc.subscribe("inv.qty.shopify", cb=qty.on_msg)
        await standby.nc.jetstream().publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="A", location="wh-3", on_hand=1000)
        )
        await qty.wait_for(lambda _: any(shown(qty, "A")))
    assert [q for q in shown(qty, "A") if q] == [150]
