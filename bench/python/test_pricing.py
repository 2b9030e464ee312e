"""Price recompute after a policy change (CONTRACT 14), beside the quantity recompute the
same change causes: 100,000 SKUs × 8 channels, every channel priced with every guard on.

Each round changes every channel's markup, so every price moves, then times one drain:
`drain_prices` (candidate, rounding, MAP, margin, parity and deviation guards, the
formula text of each published price) or `drain_json` (shown quantities as wire JSON,
what the publisher sends). Run: `pytest bench/python/test_pricing.py --benchmark-only`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from conftest import CHANNELS, bench_policy, stocked_engine

from invsync import Engine
from invsync.engine import AppliedEvent
from invsync.events import PriceSet

SKUS = 100_000
TS = datetime(2026, 11, 23, tzinfo=UTC)
MAX_ITEMS_PER_MESSAGE = 5000


@pytest.fixture(scope="module")
def priced() -> Engine:
    engine, _ = stocked_engine(SKUS, 100, markup_pct=10.0)
    prices: list[AppliedEvent] = [
        PriceSet(
            event_id=f"price-{i}",
            ts=TS,
            sku=f"SKU-{i}",
            price=Decimal(10 + i % 90) + Decimal("0.50"),
            currency="USD",
            cost=Decimal(5 + i % 40),
            map=Decimal(9),
        )
        for i in range(SKUS)
    ]
    assert not engine.apply_all(prices).refused
    engine.drain_prices()
    engine.drain_json(MAX_ITEMS_PER_MESSAGE, TS)
    return engine


@pytest.mark.parametrize("drained", ["prices", "quantities"])
def test_recompute_after_a_policy_change(benchmark: Any, priced: Engine, drained: str) -> None:
    markups = iter(range(1, 10**6))

    def new_policy() -> tuple[tuple[()], dict[str, Any]]:
        # Markups alternate between 10 and 12 (+ the channel index): every price moves
        # by about 2%, inside every guard, so every price is published.
        priced.set_policy(bench_policy(markup_pct=10.0 + 2 * (next(markups) % 2)))
        if drained == "prices":
            priced.drain_json(MAX_ITEMS_PER_MESSAGE, TS)
        else:
            priced.drain_prices()
        return (), {}

    def drain() -> int:
        if drained == "prices":
            published, _ = priced.drain_prices()
            return len(published)
        pieces = priced.drain_json(MAX_ITEMS_PER_MESSAGE, TS)
        return sum(len(keys) for _, _, keys, _ in pieces)

    changed = benchmark.pedantic(drain, setup=new_policy, rounds=6)
    assert changed >= SKUS
    benchmark.extra_info["cells_per_second"] = SKUS * len(CHANNELS) / benchmark.stats.stats.mean
    benchmark.extra_info["published"] = changed
