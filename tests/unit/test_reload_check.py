"""A reload is judged against the live state before it may enter the log, by the same
check `set_policy` makes: a location that holds stock, or a channel with open orders,
cannot be dropped."""

from __future__ import annotations

import pytest

from invsync.engine import Engine
from invsync.errors import InvsyncError, PolicyError
from invsync.policy import Policy

POLICY = """\
[[tiers]]
tier = 1

[[locations]]
id = "wh"
kind = "warehouse"

[[locations]]
id = "spare"
kind = "store"

[[channels]]
id = "shop"
tier = 1

[[channels]]
id = "b2b"
tier = 1
"""
TS = "2026-11-23T10:00:00Z"


def without(section_id: str) -> Policy:
    """The policy with the table whose id is `section_id` left out."""
    tables = POLICY.split("\n\n")
    kept = [table for table in tables if f'id = "{section_id}"' not in table]
    return Policy.from_toml("\n\n".join(kept), source="new.toml")


@pytest.fixture
def engine() -> Engine:
    engine = Engine(Policy.from_toml(POLICY))
    engine.apply(
        {"type": "stock.set", "event_id": "s", "ts": TS, "sku": "A", "location": "wh", "on_hand": 5}
    )
    engine.apply(
        {
            "type": "order.placed",
            "event_id": "o",
            "ts": TS,
            "order_id": "o-1",
            "channel": "b2b",
            "lines": [{"line_id": "1", "sku": "A", "qty": 1}],
        }
    )
    return engine


@pytest.mark.parametrize(
    ("dropped", "reason"),
    [
        ("wh", 'location "wh" is still in use'),
        ("b2b", 'channel "b2b" is still in use'),
    ],
)
def test_dropping_what_the_state_still_uses_is_refused_with_the_reason(
    engine: Engine, dropped: str, reason: str
) -> None:
    new = without(dropped)
    with pytest.raises(PolicyError) as refused:
        engine.check_policy(new)
    assert refused.value.source == "new.toml"
    assert reason in refused.value.message
    with pytest.raises(InvsyncError, match=reason):  # what the check foresaw
        engine.set_policy(new)
    assert engine.policy.locations == ("wh", "spare")


def test_dropping_what_nothing_uses_passes_and_applies(engine: Engine) -> None:
    for unused in ("spare", "shop"):
        engine.check_policy(without(unused))
    engine.set_policy(without("spare"))
    assert engine.policy.locations == ("wh",)
