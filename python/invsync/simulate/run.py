"""One strategy through the real engine in simulated time.

The loop the seller lives in, one step (`step_s`) at a time:

1. a clock tick and the orders that reach the seller by now go into the engine, in the
   order they arrive; an order the engine must backorder is an oversell, and the seller
   cancels it. Every `LAG_REPORT_S` the tick carries the push lags the service
   measured from acks (`service.push_lag.PushLags`), as the service writes them;
2. what the engine now shows each channel is pushed; a push is accepted by the channel
   after its push lag (later when its feed is stalled), never before an earlier one;
3. buyers arrive: a channel sells while the quantity it displays is above 0 and counts
   the sale down itself; a storefront whose checkout reserves asks the engine first; the
   order reaches the seller after the buyer's order lag.

A scenario with a history runs the same loop over it first, from stock that covers
what the history sells; when the run begins each SKU's stock is set to the scenario's
beside what the history committed, and only what follows is the run's outcome.

The oracle has no lag: a buyer buys while the engine shows the channel more than 0, and
the order is applied before any later buyer it could matter to is decided, so it never
oversells. Everything is seeded: the same scenario, strategy and seed give the same
outcome.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from invsync.engine import AppliedEvent, Engine
from invsync.events import (
    ClockTick,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    ReserveLine,
    ReserveRequest,
    StockSet,
)
from invsync.policy import Policy
from invsync.simulate.demand import Buyers
from invsync.simulate.feeds import Feeds
from invsync.simulate.scenario import Scenario

#: How long a storefront's checkout hold lasts before its order converts it.
HOLD_SECONDS = 900
#: How often the push lags measured from acks go into the log on a tick. The service
#: offers them on every tick; their p99 over 1,000 acks moves little in 10 s, and
#: sorting them every simulated second would cost more than the rest of a step.
LAG_REPORT_S = 10.0


@dataclass(frozen=True)
class Strategy:
    """How a run decides what channels are shown: a policy, and whether delays apply."""

    name: str
    policy: Policy
    lagged: bool = True


@dataclass
class Series:
    """The hottest SKU over time: its ATS, what the engine decided each channel is shown,
    and what each channel displayed (lagged, counted down by its own sales)."""

    sku: str
    channels: tuple[str, ...]
    time_s: list[float] = field(default_factory=list)
    ats: list[int] = field(default_factory=list)
    decided: list[list[int]] = field(default_factory=list)
    displayed: list[list[int]] = field(default_factory=list)


@dataclass
class Outcome:
    """What one strategy did in one run."""

    strategy: str
    #: buyers who came, and of them those who found the SKU unavailable
    buyers: int = 0
    turned_away: int = 0
    #: units sold and kept (sales minus oversells)
    sold: int = 0
    #: units sold that the engine had to backorder, and on which channel
    oversold: int = 0
    oversold_by_channel: dict[str, int] = field(default_factory=dict)
    #: orders the seller cancelled because stock could not cover them
    cancellations: int = 0
    #: revenue of the units sold, by the selling channel's tier
    revenue_by_tier: dict[int, float] = field(default_factory=dict)
    #: units on hand and not committed at the end
    unsold: int = 0
    #: when the hottest SKU's ATS first reached 0 (None: it never did)
    sellout_s: float | None = None
    series: Series | None = None


def simulate(
    scenario: Scenario, strategy: Strategy, buyers: Buyers, seed: int, record: bool = False
) -> Outcome:
    """Runs `strategy` over `buyers`; with `record`, keeps the hottest SKU's series."""
    policy = strategy.policy
    engine = Engine(policy)
    head = scenario.head
    start, step = head.start, head.step_s
    steps = math.ceil(head.horizon_s / step)
    #: the steps before the run, selling the history's buyers (negative step numbers)
    first = -math.ceil(head.history_s / step) if buyers.history else 0
    skus = scenario.skus
    sku_of = {name: s for s, name in enumerate(skus)}
    plans = scenario.channels
    names = [plan.id for plan in plans]
    channel_of = {name: c for c, name in enumerate(names)}
    tiers = [policy.channel_tier(name) for name in names]
    worth = [[price * plan.price for price in scenario.price] for plan in plans]
    reserves = [plan.checkout_reserves for plan in plans]
    hot = buyers.hottest
    outcome = Outcome(strategy.name, revenue_by_tier={tier: 0.0 for tier in sorted(set(tiers))})
    if record:
        outcome.series = Series(skus[hot], tuple(names))

    # The history sells from stock of its own: what it sells is added to the run's.
    history_sold = _stock_taken(policy, skus, buyers.sku[: buyers.history])
    opening = start + timedelta(seconds=first * step)
    setup: list[AppliedEvent] = [
        StockSet(
            event_id=f"stock-{s}",
            ts=opening,
            sku=name,
            location=scenario.location,
            on_hand=qty + int(history_sold[s]),
        )
        for s, (name, qty) in enumerate(zip(skus, scenario.stock, strict=True))
        if qty
    ]
    engine.apply_all([*setup, ClockTick(event_id="tick-start", ts=opening)])
    displayed = [np.zeros(len(skus) + 1, dtype=np.int64) for _ in plans]
    pushes = Feeds(scenario, seed)
    for name, items in engine.drain_changes().items():
        if name in channel_of:  # the listings start as the engine decided
            row = displayed[channel_of[name]]
            for item in items:
                if item.sku in sku_of:
                    row[sku_of[item.sku]] = item.qty

    time, channel, sku, order_lag = buyers.time, buyers.channel, buyers.sku, buyers.order_lag
    due: defaultdict[int, list[tuple[float, int]]] = defaultdict(list)
    revenue = outcome.revenue_by_tier
    by_channel = outcome.oversold_by_channel

    # Every buyer buys one unit: each SKU's order line and checkout hold line are the
    # same (frozen Structs).
    lines = [[OrderLine(line_id="1", sku=name, qty=1)] for name in skus]
    hold_lines = [[ReserveLine(line_id="1", sku=name, qty=1)] for name in skus]

    def order(i: int) -> OrderPlaced:
        order_id = f"o{i}"
        return OrderPlaced(
            event_id=order_id,
            ts=start + timedelta(seconds=time[i]),
            order_id=order_id,
            channel=names[channel[i]],
            lines=lines[sku[i]],
        )

    def apply_orders(at: float, events: list[AppliedEvent]) -> None:
        done = engine.apply_all(events)
        if done.refused:
            raise RuntimeError(f"the engine refused a simulated event: {done.refused[0][1]}")
        short = sorted({backorder.order_id for backorder in done.backorders})
        if not short:
            return
        when = start + timedelta(seconds=at)
        engine.apply_all(
            [OrderCancelled(event_id=f"c-{oid}", ts=when, order_id=oid) for oid in short]
        )
        for oid in short:
            i = int(oid[1:])
            outcome.cancellations += 1
            outcome.oversold += 1
            by_channel[names[channel[i]]] = by_channel.get(names[channel[i]], 0) + 1
            revenue[tiers[channel[i]]] -= worth[channel[i]][sku[i]]

    # A drained key's stock-key index gives its SKU. A key of no scenario SKU (a policy
    # SKU the scenario does not sell, or a key made after this table) goes to the spare
    # last slot of `displayed`, which no buyer reads: one lookup, no filtering.
    key_index = [engine.index(name) for name in skus]
    key_sku = np.full(max(key_index) + 2, len(skus), dtype=np.int64)
    key_sku[key_index] = np.arange(len(skus))

    def publish(at: float) -> None:
        drained = [
            (channel_of[name], (key_sku.take(keys, mode="clip"), qty))
            for name, keys, qty in engine.drain_quantities()
            if name in channel_of
        ]
        if drained:
            pushes.publish(at, drained)

    def deliver(until: float) -> float:
        """Applies the pushes accepted by `until`; returns when the next one is."""
        for c, (which, qty) in pushes.accepted_by(until):
            displayed[c][which] = qty
        return pushes.next_at

    # The oracle decides a buyer against what the engine shows after every earlier sale.
    # A sale of a SKU that stands alone moves no other SKU's shown quantity, so such
    # sales of one step wait in `pending` and go to the engine in one call; a buyer whose
    # SKU is already pending, or does not stand alone, first has them applied.
    alone = _stands_alone(policy, skus)
    pending: list[int] = []
    pending_skus: set[int] = set()

    def apply_pending() -> None:
        if pending:
            apply_orders(time[pending[-1]], [order(i) for i in pending])
            pending.clear()
            pending_skus.clear()

    b, total = 0, len(time)
    lagged = strategy.lagged
    sold = turned_away = 0
    next_push = math.inf
    next_lag_report = -math.inf
    committed = np.zeros(len(skus), dtype=np.int64)
    for k in range(first, steps):
        t = k * step
        now = start + timedelta(seconds=t)
        if k == 0 and first:  # the run begins: what the history did is not its outcome
            committed = _open_run(engine, scenario, policy, buyers, due, reserves)
            sold = turned_away = outcome.oversold = outcome.cancellations = 0
            by_channel.clear()
            revenue.update(dict.fromkeys(revenue, 0.0))
        arriving = sorted(due.pop(k, ()))
        lags = None
        if lagged and t >= next_lag_report:
            next_lag_report = t + LAG_REPORT_S
            lags = pushes.lags.pending() or None
        tick = ClockTick(event_id=f"tick-{k}", ts=now, push_lag_s=lags)
        apply_orders(t, [tick, *(order(i) for _, i in arriving)])
        if lags:
            pushes.lags.written(lags)
        if lagged:
            publish(t)
            next_push = deliver(t)
        if outcome.sellout_s is None and t >= 0 and engine.ats(skus[hot]) == 0:
            outcome.sellout_s = t
        if outcome.series is not None and t >= 0:
            _record(outcome.series, engine, t, names, displayed, hot, lagged)
        end = t + step
        while b < total and time[b] < end:
            i, b = b, b + 1
            c, s, at = channel[i], sku[i], time[i]
            if lagged:
                if at >= next_push:
                    next_push = deliver(at)
                shows = displayed[c]
                if shows[s] <= 0 or (
                    reserves[c] and not _reserved(engine, i, at, start, names[c], hold_lines[s])
                ):
                    turned_away += 1
                    continue
                shows[s] -= 1
                arrival = at + order_lag[i]
                due[max(k + 1, math.ceil(arrival / step))].append((arrival, i))
            else:
                if s in pending_skus or not alone[s]:
                    apply_pending()
                if engine.shown(skus[s], names[c]) <= 0:
                    turned_away += 1
                    continue
                if alone[s]:
                    pending.append(i)
                    pending_skus.add(s)
                else:
                    apply_orders(at, [order(i)])
            sold += 1
            revenue[tiers[c]] += worth[c][s]
        apply_pending()
    # Sales made before the end still reach the seller, and may still be oversells.
    for k in sorted(due):
        apply_orders(k * step, [order(i) for _, i in sorted(due[k])])
    outcome.buyers = buyers.in_run
    outcome.turned_away = turned_away
    outcome.sold = sold - outcome.oversold
    outcome.unsold = sum(
        qty + int(committed[s]) - engine.reserved(name)
        for s, (name, qty) in enumerate(zip(skus, scenario.stock, strict=True))
        if qty
    )
    return outcome


def _stock_taken(policy: Policy, skus: Sequence[str], sold: Sequence[int]) -> npt.NDArray[np.int64]:
    """Per SKU, the units that one-unit sales of `sold` (SKU indices) take from its stock;
    a bundle's sales take its components'."""
    index = {name: s for s, name in enumerate(skus)}
    parts = {
        spec.id: [(index[part.sku], part.qty) for part in spec.components if part.sku in index]
        for spec in policy.document.skus
        if spec.components
    }
    taken = np.zeros(len(skus), dtype=np.int64)
    for s, count in enumerate(np.bincount(np.asarray(sold, dtype=np.int64), minlength=len(skus))):
        for part, qty in parts.get(skus[s], [(s, 1)]):
            taken[part] += int(count) * qty
    return taken


def _open_run(
    engine: Engine,
    scenario: Scenario,
    policy: Policy,
    buyers: Buyers,
    due: dict[int, list[tuple[float, int]]],
    reserves: list[bool],
) -> npt.NDArray[np.int64]:
    """Sets every SKU's stock to the scenario's as the run begins, beside what its
    history committed: reserved, or sold and not yet reported (an order on its way whose
    checkout held nothing). Returns those committed units per SKU. A history buyer
    turned away leaves no unit to the run."""
    skus = scenario.skus
    on_the_way = [
        buyers.sku[i]
        for pending in due.values()
        for _, i in pending
        if i < buyers.history and not reserves[buyers.channel[i]]
    ]
    committed = _stock_taken(policy, skus, on_the_way) + np.array(
        [engine.reserved(name) for name in skus], dtype=np.int64
    )
    engine.apply_all(
        [
            StockSet(
                event_id=f"stock-open-{s}",
                ts=scenario.head.start,
                sku=name,
                location=scenario.location,
                on_hand=qty + int(committed[s]),
            )
            for s, (name, qty) in enumerate(zip(skus, scenario.stock, strict=True))
            if qty
        ]
    )
    return committed


def _reserved(
    engine: Engine, i: int, at: float, start: datetime, channel: str, lines: list[ReserveLine]
) -> bool:
    """A storefront's checkout hold for buyer `i`: granted or not, by the engine."""
    reply = engine.reserve(
        ReserveRequest(
            request_id=f"r{i}",
            order_id=f"o{i}",
            channel=channel,
            lines=lines,
            hold_seconds=HOLD_SECONDS,
            ts=start + timedelta(seconds=at),
        )
    )
    return bool(reply["ok"])


def _record(
    series: Series,
    engine: Engine,
    t: float,
    names: list[str],
    displayed: list[npt.NDArray[np.int64]],
    hot: int,
    lagged: bool,
) -> None:
    decided = [engine.shown(series.sku, name) for name in names]
    series.time_s.append(t)
    series.ats.append(engine.ats(series.sku))
    series.decided.append(decided)
    series.displayed.append([int(row[hot]) for row in displayed] if lagged else decided)


def _stands_alone(policy: Policy, skus: Sequence[str]) -> list[bool]:
    """Per SKU, whether its sales move only its own shown quantities and the clock never
    moves them: a standard SKU without a date it is sellable from, in no bundle."""
    dated = {spec.id for spec in policy.document.skus if spec.sellable_from is not None}
    parts = {part.sku for spec in policy.document.skus for part in spec.components}
    return [
        policy.sku_kind(name) == "standard" and name not in dated and name not in parts
        for name in skus
    ]
