"""The buyers of one seeded run: when each arrives, on which channel, for which SKU.

Buyers come as Poisson streams, one per channel over the whole catalog (the SKUs by
weight) and one more per channel a surge covers (its SKUs by weight, at the base rate
times `factor - 1` times the surge's shape). Each buyer's order lag is drawn up front, so
every strategy of a run meets the same buyers with the same delays: the strategies differ
only in what they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from invsync.simulate.scenario import Scenario

#: The most buyers one run may draw: a scenario that asks for more is refused, not slow.
MAX_BUYERS: Final = 30_000_000
#: The random stream a history's buyers are drawn from, beside the run's (the seed's own).
_HISTORY_STREAM: Final = 1


class TooMuchDemand(ValueError):
    """A scenario whose demand would not fit in one run."""


@dataclass(frozen=True)
class Buyers:
    """Every buyer of a run, in time order (seconds from the start), as plain lists:
    the simulation reads them one at a time, and lists index faster than arrays."""

    time: list[float]
    channel: list[int]
    sku: list[int]
    order_lag: list[float]
    #: per SKU, the units its demand asks for over the horizon (expected, not drawn)
    expected: npt.NDArray[np.float64]
    #: how many of them come before the run, in the scenario's history (negative times)
    history: int = 0

    @property
    def in_run(self) -> int:
        """How many buyers come in the run itself (its history's not counted)."""
        return len(self.time) - self.history

    @property
    def hottest(self) -> int:
        """The SKU most asked for."""
        return int(np.argmax(self.expected))


@dataclass(frozen=True)
class _Stream:
    channel: int
    skus: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float64]
    #: buyers per second in each step
    rate: npt.NDArray[np.float64]


def _streams(scenario: Scenario) -> list[_Stream]:
    step = scenario.head.step_s
    steps = math.ceil(scenario.head.horizon_s / step)
    middles = (np.arange(steps, dtype=np.float64) + 0.5) * step
    weights = np.asarray(scenario.weight, dtype=np.float64)
    total = float(weights.sum())
    everyone = np.arange(len(scenario.skus))
    streams = []
    for c, channel in enumerate(scenario.channels):
        if channel.rate > 0 and total > 0:
            streams.append(_Stream(c, everyone, weights, np.full(steps, channel.rate)))
    for surge, channels, skus in scenario.surges:
        members = np.asarray(skus, dtype=np.int64)
        share = float(weights[members].sum()) / total if total > 0 else 0.0
        extra = (surge.factor - 1.0) * surge.shape(middles)
        for c in channels:
            rate = scenario.channels[c].rate * share
            if rate > 0 and surge.factor > 1:
                streams.append(_Stream(c, members, weights[members], rate * extra))
    return streams


def expected_buyers(scenario: Scenario) -> float:
    """How many buyers the scenario's demand asks for over its horizon."""
    return sum(float(s.rate.sum()) for s in _streams(scenario)) * scenario.head.step_s


def draw(scenario: Scenario, seed: int) -> Buyers:
    """The buyers of `scenario` under `seed`, its history's first: the same seed, the
    same buyers. The history draws from a stream of its own, so a run's buyers are the
    same with or without one."""
    history = scenario.history()
    expected_total = expected_buyers(scenario) + (expected_buyers(history) if history else 0.0)
    if expected_total > MAX_BUYERS:
        raise TooMuchDemand(
            f"{scenario.source}: its demand asks for about {expected_total:,.0f} buyers; "
            f"one run takes at most {MAX_BUYERS:,}: lower the rates or the horizon"
        )
    run = _draw(scenario, np.random.default_rng(seed))
    if history is None:
        return run
    before = _draw(history, np.random.default_rng([seed, _HISTORY_STREAM]))
    offset = history.head.horizon_s
    return Buyers(
        time=[t - offset for t in before.time] + run.time,
        channel=before.channel + run.channel,
        sku=before.sku + run.sku,
        order_lag=before.order_lag + run.order_lag,
        expected=run.expected,
        history=len(before.time),
    )


def _draw(scenario: Scenario, rng: np.random.Generator) -> Buyers:
    """The buyers of `scenario`'s horizon from `rng`."""
    step = scenario.head.step_s
    times, channels, skus = [], [], []
    expected = np.zeros(len(scenario.skus))
    for stream in _streams(scenario):
        counts = rng.poisson(stream.rate * step)
        n = int(counts.sum())
        starts = np.repeat(np.arange(len(counts)) * step, counts)
        times.append(np.minimum(starts + rng.random(n) * step, scenario.head.horizon_s))
        cumulative = np.cumsum(stream.weights)
        picks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        skus.append(stream.skus[np.minimum(picks, len(stream.skus) - 1)])
        channels.append(np.full(n, stream.channel))
        expected[stream.skus] += float(stream.rate.sum()) * step * stream.weights / cumulative[-1]
    time = np.concatenate(times) if times else np.zeros(0)
    order = np.argsort(time, kind="stable")
    channel = np.concatenate(channels)[order] if channels else np.zeros(0, dtype=np.int64)
    sku = np.concatenate(skus)[order] if skus else np.zeros(0, dtype=np.int64)
    lag = np.zeros(len(time))
    for c, plan in enumerate(scenario.channels):
        mine = channel == c
        lag[mine] = plan.order_lag.sample(rng, int(mine.sum()))
    return Buyers(
        time=time[order].tolist(),
        channel=channel.tolist(),
        sku=sku.tolist(),
        order_lag=lag.tolist(),
        expected=expected,
    )
