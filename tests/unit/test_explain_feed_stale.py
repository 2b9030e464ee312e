"""A channel whose connector stopped acknowledging is flagged where operators look."""

from __future__ import annotations

from invsync import Engine, Policy

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "tiktok"
tier = 1
"""


def test_explain_flags_a_stale_feed_until_it_recovers() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    engine.apply(
        {
            "type": "stock.set",
            "event_id": "e1",
            "ts": "2026-11-23T10:00:00Z",
            "sku": "A",
            "location": "wh",
            "on_hand": 5,
        }
    )
    engine.set_channel_stale("tiktok", True)
    flags = {c["channel"]: c["feed_stale"] for c in engine.explain("A").to_dict()["channels"]}
    assert flags == {"shopify": False, "tiktok": True}
    assert "tiktok   tier 1      5  = 5   (feed stale: no good ack)" in str(engine.explain("A"))
    engine.set_channel_stale("tiktok", False)
    assert "stale" not in str(engine.explain("A"))
