"""Strategies side by side over seeds, and the search of static buffers.

Every strategy of a seed meets the same buyers (`demand.draw`), so differences between
strategies are the strategies', not the dice's. Sums are over all seeds; the table shows
them per run.

Strategies are weighed by revenue, not units: where kits share parts, holding kits back
sells the parts one by one, more order lines from the same stock for less money.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from invsync.policy import Policy
from invsync.simulate.demand import Buyers, draw
from invsync.simulate.run import Outcome, Strategy, simulate
from invsync.simulate.scenario import Scenario
from invsync.simulate.strategies import static_buffers

#: The buffers a static search tries per channel.
LADDER = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)


@dataclass
class Summary:
    """One strategy over every seed of a comparison."""

    strategy: str
    runs: list[Outcome] = field(default_factory=list)

    @property
    def sold(self) -> int:
        return sum(run.sold for run in self.runs)

    @property
    def oversold(self) -> int:
        return sum(run.oversold for run in self.runs)

    @property
    def oversold_by_channel(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self.runs:
            for channel, units in run.oversold_by_channel.items():
                out[channel] = out.get(channel, 0) + units
        return dict(sorted(out.items()))

    @property
    def cancellations(self) -> int:
        return sum(run.cancellations for run in self.runs)

    @property
    def unsold(self) -> int:
        return sum(run.unsold for run in self.runs)

    @property
    def runs_with_oversells(self) -> int:
        return sum(1 for run in self.runs if run.oversold)

    @property
    def revenue_by_tier(self) -> dict[int, float]:
        tiers = sorted({tier for run in self.runs for tier in run.revenue_by_tier})
        return {
            tier: sum(run.revenue_by_tier.get(tier, 0.0) for run in self.runs) for tier in tiers
        }

    @property
    def revenue(self) -> float:
        """Revenue of the units sold and kept, every tier."""
        return sum(self.revenue_by_tier.values())

    @property
    def sellout_s(self) -> float | None:
        """The median time the hottest SKU sold out, over the runs where it did."""
        times = [run.sellout_s for run in self.runs if run.sellout_s is not None]
        return float(np.median(times)) if times else None

    def per_run(self, total: float) -> float:
        return total / len(self.runs) if self.runs else 0.0


def draw_all(scenario: Scenario, seeds: Iterable[int]) -> dict[int, Buyers]:
    """The buyers of each seed, drawn once for every strategy."""
    return {seed: draw(scenario, seed) for seed in seeds}


def compare(
    scenario: Scenario,
    strategies: Sequence[Strategy],
    buyers: Mapping[int, Buyers],
    record_seed: int | None = None,
) -> list[Summary]:
    """Runs every strategy on every seed's buyers; records the hottest SKU's series on
    `record_seed`."""
    return [
        Summary(
            strategy.name,
            [
                simulate(scenario, strategy, drawn, seed, record=seed == record_seed)
                for seed, drawn in buyers.items()
            ],
        )
        for strategy in strategies
    ]


def search_candidates(scenario: Scenario, limit: int) -> list[dict[str, int]]:
    """Static buffers to try, at most `limit` sets, taken in turn from three families so
    a short search still covers them: the same buffer on every lagging channel, buffers
    in proportion to each channel's push-lag p99, and per-channel mixes of a coarse
    ladder (seeded draws). Channels whose checkout reserves stay at 0: their sale
    waits for the engine, so a buffer only turns buyers away."""
    lagging = [plan for plan in scenario.channels if not plan.checkout_reserves]
    zeros = {plan.id: 0 for plan in scenario.channels if plan.checkout_reserves}
    slowest = max((plan.push_lag.p99 for plan in lagging), default=0.0)
    # Coarse before fine, so the first few sets already span the ladder.
    spread = LADDER[::3] + LADDER[1::3] + LADDER[2::3]
    uniform = [{plan.id: value for plan in lagging} for value in spread]
    proportional = [
        {
            plan.id: round(value * plan.push_lag.p99 / slowest) if slowest else value
            for plan in lagging
        }
        for value in spread
        if value
    ]
    coarse = LADDER[::2]
    draws = np.random.default_rng(0)
    mixes = [
        {plan.id: coarse[int(v)] for plan, v in zip(lagging, values, strict=True)}
        for values in draws.integers(len(coarse), size=(2 * limit, len(lagging)))
    ]
    sets: list[dict[str, int]] = []
    for family in itertools.chain.from_iterable(
        itertools.zip_longest(uniform, proportional, mixes)
    ):
        candidate = {**zeros, **family} if family is not None else None
        if candidate is not None and candidate not in sets:
            sets.append(candidate)
    return sets[:limit]


def search(
    scenario: Scenario, policy: Policy, buyers: Mapping[int, Buyers], limit: int
) -> list[tuple[dict[str, int], Summary]]:
    """Every candidate static buffer set, with how it did on each seed's buyers."""
    out = []
    for buffers in search_candidates(scenario, limit):
        (summary,) = compare(scenario, [static_buffers(policy, buffers)], buyers)
        out.append((buffers, summary))
    return out


def dominates(a: Summary, b: Summary) -> bool:
    """Whether `a` earned more than `b` and oversold less: a strictly better place on the
    frontier."""
    return a.revenue > b.revenue and a.oversold < b.oversold


def frontier(points: Sequence[Summary]) -> list[Summary]:
    """The summaries no other one matches on both counts and beats on one (the Pareto
    frontier of oversold units against revenue), by revenue."""

    def covered(p: Summary) -> bool:
        return any(
            q.revenue >= p.revenue
            and q.oversold <= p.oversold
            and (q.revenue > p.revenue or q.oversold < p.oversold)
            for q in points
        )

    return sorted((p for p in points if not covered(p)), key=lambda p: p.revenue)
