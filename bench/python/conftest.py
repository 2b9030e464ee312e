"""Shared fixtures for the core benchmarks: an 8-channel policy and Zipf-hot workloads."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from invsync import Engine, Policy

CHANNELS = ("shopify", "b2b", "amazon", "walmart", "ebay", "tiktok", "etsy", "shopee")


def bench_policy(*, automatic: bool = False, markup_pct: float | None = None) -> Policy:
    """Eight channels on three tiers, one warehouse: the shape the targets are stated for;
    `automatic`: every channel's buffer is "auto" (CONTRACT 13); `markup_pct`: every
    channel priced with every guard on (CONTRACT 14), its markup this plus its index."""
    tiers = "".join(f"[[tiers]]\ntier = {t}\nprotect = {p}\n" for t, p in ((1, 5), (2, 3), (3, 0)))
    channels = "".join(
        f'[[channels]]\nid = "{ch}"\ntier = {1 + i % 3}\nshare = {0.5 + 0.05 * i:.2f}\n'
        f"cap = {100 + 10 * i}\n"
        + (f'buffer = "auto"\nlag_s = {5 * i}\n' if automatic else f"buffer = {i % 3}\n")
        + (
            ""
            if markup_pct is None
            else f'price = {{ markup_pct = {markup_pct + i}, fee_pct = 12, rounding = "0.99", '
            f"margin_floor_pct = 5, max_deviation_pct = 50 }}\n"
        )
        for i, ch in enumerate(CHANNELS)
    )
    text = (
        "[defaults]\nsafety = 2\n"
        + tiers
        + '[[locations]]\nid = "wh"\nkind = "warehouse"\npriority = 1\n'
        + channels
    )
    return Policy.from_toml(text, source="bench.toml")


def stocked_engine(
    skus: int,
    on_hand: int,
    *,
    drain: bool = True,
    automatic: bool = False,
    markup_pct: float | None = None,
) -> tuple[Engine, npt.NDArray[np.uint32]]:
    """An engine with `skus` keys, each counted at `on_hand` in one bulk event."""
    from datetime import UTC, datetime

    engine = Engine(bench_policy(automatic=automatic, markup_pct=markup_pct))
    idx = np.fromiter((engine.index(f"SKU-{i}") for i in range(skus)), np.uint32, skus)
    engine.set_on_hand_batch(
        idx,
        "wh",
        np.full(skus, on_hand, np.int64),
        event_id="bench-count",
        ts=datetime(2026, 11, 23, tzinfo=UTC),
    )
    if drain:
        engine.drain_json(5000, datetime(2026, 11, 23, tzinfo=UTC))
    return engine, idx


def zipf_keys(n: int, skus: int, seed: int = 7) -> npt.NDArray[np.uint32]:
    """`n` key picks over `skus` keys, Zipf-skewed (s = 1.2): a few SKUs take most demand."""
    rng = np.random.default_rng(seed)
    ranks = rng.zipf(1.2, n * 2)
    ranks = ranks[ranks <= skus][:n]
    return (ranks - 1).astype(np.uint32)


@pytest.fixture(scope="module")
def workload() -> dict[str, npt.NDArray[np.generic]]:
    n, skus = 1_000_000, 100_000
    rng = np.random.default_rng(11)
    return {
        "idx": zipf_keys(n, skus),
        "qty": rng.integers(1, 3, n, dtype=np.int64),
        "tier": rng.integers(1, 4, n, dtype=np.uint8),
    }
