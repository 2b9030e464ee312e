"""`invsync_reserve_depletion_ratio{tier}`: how far sales have eaten into protected units.

Tier t protects a band of ATS (above the bands of higher tiers) that lower tiers
may not take. Once a second the gauge is set, per protecting tier, to the share
of that band already gone for the most depleted SKU among those whose shown
quantities changed since the last sample: a hot SKU draining its reserve shows
at once, and the cost stays proportional to activity, not to the catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from invsync.service.metrics import Metrics

if TYPE_CHECKING:
    from invsync.engine import Engine


def tier_bands(protect: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Per protecting tier: (ATS units below its band, the band's size)."""
    bands: dict[int, tuple[int, int]] = {}
    below = 0
    for tier in sorted(protect):
        if protect[tier] > 0:
            bands[tier] = (below, protect[tier])
        below += protect[tier]
    return bands


def depletion(ats: int, band: tuple[int, int]) -> float:
    """Share of one band already taken at this ATS, 0 to 1."""
    below, size = band
    return min(1.0, max(0.0, (below + size - ats) / size))


class DepletionSampler:
    def __init__(self, engine: Engine, metrics: Metrics, touched: set[int]) -> None:
        self.engine = engine
        self.metrics = metrics
        self.touched = touched  # stock-key indices changed since the last sample, shared

    def sample(self) -> None:
        keys = list(self.touched)
        self.touched.clear()
        protect = self.engine.policy.protect_levels()
        bands = tier_bands(protect)
        worst = dict.fromkeys(bands, 0.0)
        for key in keys:
            ats = self.engine.ats(*self.engine.key_name(key))
            for tier, band in bands.items():
                worst[tier] = max(worst[tier], depletion(ats, band))
        for tier, ratio in worst.items():
            self.metrics.reserve_depletion.labels(str(tier)).set(ratio)

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            await anyio.sleep(interval_s)
            self.sample()
