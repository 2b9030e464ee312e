"""The way from the engine to the marketplaces: quantity pushes in flight, and the lags
a service measures from their acknowledgements.

A channel with a feed limit (Walmart takes 10 inventory feeds an hour) gets what changed
coalesced into one push per `push_every_s`; the others get a push per step. A push is
accepted after a push lag drawn from the channel's distribution, later when its feed is
stalled, and never before an earlier push to the same channel.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Final

import numpy as np
import numpy.typing as npt

from invsync.simulate.scenario import Scenario

#: A push's items: the SKUs (scenario indices) and the quantities they are to show.
Items = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
#: Push lags are drawn per channel in blocks of this many.
_DRAWS: Final = 4096


def _latest(parts: list[Items]) -> Items:
    """Several pushes' items as one: each SKU once, with its newest quantity."""
    if len(parts) == 1:
        return parts[0]
    skus = np.concatenate([s for s, _ in parts])
    qty = np.concatenate([q for _, q in parts])
    _, last_reversed = np.unique(skus[::-1], return_index=True)
    newest = len(skus) - 1 - last_reversed
    return skus[newest], qty[newest]


class Feeds:
    """Pushes on their way to every channel of a scenario, in the order they are accepted."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self._plans = scenario.channels
        count = len(self._plans)
        self._rngs = [np.random.default_rng([seed, 7, c]) for c in range(count)]
        self._draws: list[list[float]] = [[] for _ in range(count)]
        self._waiting: list[list[Items]] = [[] for _ in range(count)]
        self._waiting_since = [0.0] * count
        self._next_slot = [0.0] * count
        self._last = [0.0] * count
        self._queue: list[tuple[float, int, int, Items]] = []
        self._sent = 0
        #: per channel, (first change in it, accepted at) of each push not yet acknowledged
        self._in_flight: list[deque[tuple[float, float]]] = [deque() for _ in range(count)]
        #: per channel, (acknowledged at, push lag) of recent acks
        self._acks: list[deque[tuple[float, float]]] = [deque() for _ in range(count)]
        #: per channel, the p99 of `_acks` (kept until they change)
        self._p99 = [0.0] * count

    @property
    def next_at(self) -> float:
        """When the next push is accepted (inf when none is in flight)."""
        return self._queue[0][0] if self._queue else math.inf

    def publish(self, channel: int, at: float, items: Items) -> None:
        """What changed for `channel` at `at`: sent now, or with the channel's next feed."""
        if not self._waiting[channel]:
            self._waiting_since[channel] = at
        self._waiting[channel].append(items)

    def flush(self, now: float) -> None:
        """Sends every channel's waiting changes whose feed slot has come."""
        for c, waiting in enumerate(self._waiting):
            if waiting and now >= self._next_slot[c]:
                self._send(c, now, _latest(waiting))
                waiting.clear()
                self._next_slot[c] = now + self._plans[c].push_every_s

    def _send(self, channel: int, now: float, items: Items) -> None:
        draws = self._draws[channel]
        if not draws:
            draws += self._plans[channel].push_lag.sample(self._rngs[channel], _DRAWS).tolist()
        accepted = now + draws.pop()
        for start, end in self._plans[channel].stalls:
            if now < end and accepted >= start:
                accepted = max(accepted, end)
        accepted = max(accepted, self._last[channel])
        self._last[channel] = accepted
        self._sent += 1
        heapq.heappush(self._queue, (accepted, self._sent, channel, items))
        self._in_flight[channel].append((self._waiting_since[channel], accepted))

    def take(self) -> tuple[int, Items]:
        """The next accepted push: its channel and items."""
        _, _, channel, items = heapq.heappop(self._queue)
        return channel, items

    def measured_lag(self, now: float, window_s: float) -> dict[int, float]:
        """Per channel, the push lag a service sees at `now`: the p99 of the acks of the
        last `window_s`, or the age of the oldest push still unacknowledged when that is
        longer (a stalled feed shows in it before any ack does). Channels without an ack
        or a push in flight are left out."""
        out: dict[int, float] = {}
        for c, (in_flight, acks) in enumerate(zip(self._in_flight, self._acks, strict=True)):
            changed = False
            while in_flight and in_flight[0][1] <= now:
                sent, accepted = in_flight.popleft()
                acks.append((accepted, accepted - sent))
                changed = True
            while acks and acks[0][0] < now - window_s:
                acks.popleft()
                changed = True
            if changed:
                lags = sorted(lag for _, lag in acks)
                self._p99[c] = lags[math.ceil(0.99 * len(lags)) - 1] if lags else 0.0
            oldest = now - in_flight[0][0] if in_flight else 0.0
            if acks or in_flight:
                out[c] = max(self._p99[c], oldest)
        return out
