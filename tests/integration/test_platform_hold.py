"""A marketplace that holds stock for its promotion, end to end on a real nats-server: the
connector pushes the platform's floor instead of the service's lower quantity, alerts
the hold once, acks the item as applied with the hold, and the service explains why
the marketplace shows more than it decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from invsync.explain import render
from invsync.nats_server import NatsServer
from tests.gateway.fake_profile import FakeProfile, per_item_lane
from tests.integration.test_connector import (
    CHANNEL,
    as_service,
    connector,
    csv_text,
    stock,
    until,
    watch,
)
from tests.service.harness import Running, running_service, service_config

pytestmark = pytest.mark.anyio
HELD = 500  # more than the service will ever decide for H1 here


async def explained_channel(svc: Running, sku: str) -> dict[str, Any]:
    reply = await svc.nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    channels: list[dict[str, Any]] = msgspec.json.decode(reply.data)["channels"]
    return next(ch for ch in channels if ch["channel"] == CHANNEL)


async def test_the_platforms_hold_is_pushed_alerted_once_acked_and_explained(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "amazon.csv").write_text(csv_text("H1"), encoding="utf-8")
    lane = per_item_lane(rate=100, burst=100)
    lane.held["H1-new"] = HELD
    async with (
        running_service(nats_server, service_config(nats_server, tmp_path / "state")) as svc,
        as_service(nats_server) as service_nc,
    ):
        alerts = await watch(svc.nc, "inv.alert.platform_hold")
        acks = await watch(service_nc, "inv.ack.amazon")
        async with connector(nats_server, FakeProfile([lane]), None, tmp_path) as (conn, _):
            decided = await stock(svc, "H1", 100, "h1")
            assert 0 < decided < HELD
            await until(lambda: lane.shown.get("H1-new") == HELD)
            await acks.wait_for(lambda m: any(b.get("held") for _, b in m))
            ack = next(b for _, b in acks.messages if b.get("held"))
            assert ack["held"] == [
                {"sku": "H1", "condition": "new", "qty": HELD, "reason": f"E_HOLD: {HELD} held"}
            ]
            # Not counted as failed (the policy's other SKUs, unmapped here, may be).
            assert "H1" not in (ack.get("error") or "")
            # The message that asked for `decided` is acked with its item applied.
            await acks.wait_for(
                lambda m: any(
                    b["ok"] and (b["items_ok"], b["items_failed"]) == (1, 0) for _, b in m
                )
            )
            # A later change under the same hold: pushed at the floor again, no new alert.
            seq = conn.last_seq
            again = await stock(svc, "H1", 90, "h2")
            assert again < HELD
            await acks.wait_for(lambda m: any(b["seq"] > (seq or 0) and b["ok"] for _, b in m))
            await anyio.sleep(0.2)
            assert len(alerts.messages) == 1
            (_, alert) = alerts.messages[0]
            assert alert["sku"] == "H1" and alert["channel"] == CHANNEL
            assert str(HELD) in alert["detail"] and "E_HOLD" in alert["detail"]
            assert lane.shown["H1-new"] == HELD
            # The service keeps the hold and explains the number the marketplace shows.
            with anyio.fail_after(5):
                while "platform_hold" not in (channel := await explained_channel(svc, "H1")):
                    await anyio.sleep(0.02)
            assert channel["platform_hold"] == {
                "qty": HELD,
                "reason": f"E_HOLD: {HELD} held",
                "marketplace_shows": HELD,
            }
            assert channel["shown"] == again
            reply = await svc.nc.request("inv.query.sku", b'{"sku": "H1"}', timeout=5)
            text = render(msgspec.json.decode(reply.data))
            assert (
                f"{CHANNEL} shows {HELD}: the platform holds {HELD} for a promotion "
                f"(invsync decided {again}" in text
            )
        svc.stop.set()
