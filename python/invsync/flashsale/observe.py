"""What the run saw: sync latency and hot-SKU quantities from the channel feeds,
and how far each tier's protected reserve was eaten into over time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec
import numpy as np

from invsync.flashsale.checker import parse_ts


def percentile_ms(samples_s: list[float], q: float) -> float | None:
    """The q-th percentile of latencies in seconds, in milliseconds (None when empty)."""
    if not samples_s:
        return None
    return float(np.percentile(np.asarray(samples_s), q)) * 1000.0


@dataclass
class FeedRecorder:
    """Everything read from `inv.qty.<channel>` during the run.

    Latency is the receipt time minus each item's `source_ts` (the newest
    event behind the change), the contract's definition of sync latency.
    Times are seconds since `origin`, the sale's start (a `time.time()` value).
    What arrives before it (the opening stock) is placed at 0 and left out of
    the latency figures: a bulk load is not the sale's sync path.
    """

    hot: frozenset[str]
    origin: float | None = None
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    latency_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    shown: dict[tuple[str, str], list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    last_received: float = 0.0

    def record(self, channel: str, payload: bytes, received: float) -> None:
        """One `channel.quantities` message, received at `received` (wall clock)."""
        body = msgspec.json.decode(payload)
        self.last_received = received
        at = 0.0 if self.origin is None else received - self.origin
        for item in body.get("items", ()):
            if self.origin is not None:
                self.latency[channel].append(received - parse_ts(item["source_ts"]).timestamp())
                self.latency_at[channel].append(at)
            if item["sku"] in self.hot:
                self.shown[(channel, item["sku"])].append((at, int(item["qty"])))

    def all_latencies(self) -> list[float]:
        return [sample for samples in self.latency.values() for sample in samples]

    def p99_ms(self) -> float | None:
        return percentile_ms(self.all_latencies(), 99)


def tier_layers(protect: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """Each protecting tier's layer of ATS: (units below it, its own protected units).

    Tier t's reserve is the band of ATS between the protection of the tiers
    above it and that plus `protect[t]`: lower tiers cannot take it.
    """
    layers: dict[int, tuple[int, int]] = {}
    below = 0
    for tier in sorted(protect):
        if protect[tier] > 0:
            layers[tier] = (below, protect[tier])
        below += protect[tier]
    return layers


def depletion(ats: int, layer: tuple[int, int]) -> float:
    """Share of one tier's protected reserve already taken at this ATS (0 to 1)."""
    below, size = layer
    return min(1.0, max(0.0, (below + size - ats) / size))


@dataclass
class DepletionRecorder:
    """Reserve depletion per tier over time, averaged over the hot SKUs."""

    protect: Mapping[int, int]
    series: dict[int, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    def sample(self, at: float, ats_values: Iterable[int]) -> None:
        values = list(ats_values)
        if not values:
            return
        for tier, layer in tier_layers(self.protect).items():
            mean = sum(depletion(ats, layer) for ats in values) / len(values)
            self.series[tier].append((at, mean))
