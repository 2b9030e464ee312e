"""The way from the engine to the marketplaces: quantity messages in flight, and their
acks, measured by the service's own `PushLags`.

A channel with a feed limit (Walmart takes 10 inventory feeds an hour) gets what changed
coalesced into one push per `push_every_s`; the others get a push per step. A push is
accepted after a push lag drawn from the channel's distribution, later when its feed is
stalled, and never before an earlier push to the same channel. Every message a push
carries is acknowledged when the push is accepted.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from invsync.service.push_lag import PushLags
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
        self._names = [plan.id for plan in self._plans]
        self._start = scenario.head.start
        count = len(self._plans)
        self._rngs = [np.random.default_rng([seed, 7, c]) for c in range(count)]
        self._draws: list[list[float]] = [[] for _ in range(count)]
        self._waiting: list[list[Items]] = [[] for _ in range(count)]
        self._waiting_seqs: list[list[int]] = [[] for _ in range(count)]
        self._seq = [0] * count
        self._next_slot = [-math.inf] * count
        self._last = [-math.inf] * count
        self._queue: list[tuple[float, int, int, Items, list[int]]] = []
        self._sent = 0
        #: the service's measurement of each channel's push lag, from acks
        self.lags = PushLags()

    def _time(self, at: float) -> datetime:
        return self._start + timedelta(seconds=at)

    @property
    def next_at(self) -> float:
        """When the next push is accepted (inf when none is in flight)."""
        return self._queue[0][0] if self._queue else math.inf

    def publish(self, at: float, messages: Iterable[tuple[int, Items]]) -> None:
        """The quantity messages of moment `at`, (channel, items) each: every channel's
        waiting changes whose feed slot has come are sent now, the others wait for it."""
        when = self._time(at)
        for channel, items in messages:
            self._seq[channel] += 1
            self.lags.sent(self._names[channel], self._seq[channel], when)
            self._waiting[channel].append(items)
            self._waiting_seqs[channel].append(self._seq[channel])
        self.flush(at)

    def flush(self, now: float) -> None:
        """Sends every channel's waiting changes whose feed slot has come."""
        for c, waiting in enumerate(self._waiting):
            if waiting and now >= self._next_slot[c]:
                self._send(c, now, _latest(waiting), self._waiting_seqs[c])
                waiting.clear()
                self._waiting_seqs[c] = []
                self._next_slot[c] = now + self._plans[c].push_every_s

    def _send(self, channel: int, now: float, items: Items, seqs: list[int]) -> None:
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
        heapq.heappush(self._queue, (accepted, self._sent, channel, items, seqs))

    def accepted_by(self, until: float) -> list[tuple[int, Items]]:
        """The pushes accepted by `until`, in the order they were accepted: (channel,
        items) each; their messages are acked."""
        queue, out = self._queue, []
        while queue and queue[0][0] <= until:
            accepted, _, channel, items, seqs = heapq.heappop(queue)
            name, when = self._names[channel], self._time(accepted)
            for seq in seqs:
                self.lags.accepted(name, seq, when)
            out.append((channel, items))
        return out
