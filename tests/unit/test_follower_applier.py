"""A follower applies the log exactly as its leader does, but builds none of the output
only a leader sends (routes, alerts, audit records, dead letters, replies); its votes
it keeps, for when it is promoted. Promoted, it collects everything again."""

from __future__ import annotations

from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from invsync import _core
from invsync.engine import Engine
from invsync.policy import Policy
from invsync.service.applier import Applier
from invsync.service.consumer import LogEntry, PlainEntry
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects
from tests.small_policy import ONE_WAREHOUSE_POLICY as POLICY
from tests.small_policy import TS


def _sku_in(partition: int) -> str:
    return next(
        s for s in (f"SKU-{i}" for i in range(1000)) if _core.partition_of(s, 2) == partition
    )


A, B = _sku_in(0), _sku_in(1)


def _event(kind: str, event_id: str, **fields: Any) -> bytes:
    return msgspec.json.encode({"type": kind, "event_id": event_id, "ts": TS, **fields})


def _reservation(request_id: str, *skus: str) -> bytes:
    lines = [{"line_id": str(n), "sku": sku, "qty": 1} for n, sku in enumerate(skus)]
    request = {
        "type": "reserve",
        "request_id": request_id,
        "order_id": request_id,
        "channel": "shopify",
        "lines": lines,
        "ts": TS,
    }
    return msgspec.json.encode(
        {
            "type": "reserve.group",
            "requests": [{"request": request, "reply": f"_INBOX.{request_id}"}],
        }
    )


def _log() -> list[LogEntry]:
    """Stock (audited), an order (routed), a malformed message (dead-lettered), a
    reservation of partition 0 alone (answered) and one spanning both (voted on)."""
    bodies = [
        ("inv.stock.wh", _event("stock.set", "s-a", sku=A, location="wh", on_hand=10)),
        ("inv.stock.wh", _event("stock.set", "s-b", sku=B, location="wh", on_hand=10)),
        (
            "inv.order.shopify",
            _event(
                "order.placed",
                "o-1",
                order_id="o-1",
                channel="shopify",
                lines=[{"line_id": "1", "sku": A, "qty": 2}],
            ),
        ),
        ("inv.stock.wh", b"{not json"),
        ("inv.log.reserve.shopify", _reservation("r-1", A)),
        ("inv.log.reserve.shopify", _reservation("r-2", A, B)),
    ]
    return [
        PlainEntry(subject, None, None, data, n, n) for n, (subject, data) in enumerate(bodies, 1)
    ]


def _applier(publishing: list[bool]) -> Applier:
    engine = Engine(Policy.from_toml(POLICY), partition=0, partitions=2)
    metrics = Metrics(CollectorRegistry())
    return Applier(
        engine,
        Subjects(),
        metrics,
        Outbox(),
        partitions=2,
        publishing=lambda: publishing[0],
    )


def _to_send(outbox: Outbox) -> list[int]:
    return [
        len(outbox.routes) + len(outbox.route_frames),
        len(outbox.audit),
        len(outbox.dead_letters),
        len(outbox.replies),
    ]


def test_a_follower_applies_as_its_leader_does_and_builds_nothing_to_send_but_votes() -> None:
    leader, follower = _applier([True]), _applier([False])
    for applier in (leader, follower):
        applier.apply_batch(_log())
    assert all(_to_send(leader.outbox)), "the log yields every kind of output"
    assert _to_send(follower.outbox) == [0, 0, 0, 0]
    assert follower.outbox.votes == leader.outbox.votes != []
    assert follower.engine.explain(A).to_dict() == leader.engine.explain(A).to_dict()
    assert follower.engine.drain_changes() == leader.engine.drain_changes()
    assert follower.engine.snapshot() == leader.engine.snapshot()


def test_a_promoted_follower_collects_what_it_applies_from_then_on() -> None:
    publishing = [False]
    applier = _applier(publishing)
    log = _log()
    applier.apply_batch(log[:3])
    publishing[0] = True
    applier.apply_batch(log[3:])
    assert _to_send(applier.outbox) == [0, 0, 1, 1]  # the malformed message, r-1's answer
