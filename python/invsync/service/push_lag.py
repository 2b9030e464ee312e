"""Each channel's push lag, measured from acks, on its way into the log.

Automatic buffers (CONTRACT 13) count what every channel sells while a channel's
shown quantity travels to its marketplace. Acks are not in the log, so the service
measures that time here, from a quantity message's `ts` (when it went out) to the
`accepted_ts` of its ack, and the clock carries each channel's p99 into the log on its
next tick (`clock.tick` `push_lag_s`): a replay then computes the same buffers.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import OrderedDict, deque
from datetime import datetime

#: Messages remembered per channel whose ack may still come (oldest forgotten first).
SENT_REMEMBERED = 4_096
#: The p99 is over at most this many recent acks per channel.
WINDOW = 1_000
#: Below this many acks a channel's p99 is not a measurement; its `lag_s` stands.
MIN_ACKS = 20


class PushLags:
    """When each quantity message went out, and how long its ack said it took."""

    def __init__(self) -> None:
        self._sent: dict[str, OrderedDict[int, datetime]] = {}
        #: each channel's last `WINDOW` lags as they came, and the same lags sorted (a
        #: tick asks every channel for its p99; sorting them again each time was most
        #: of a simulated week)
        self._lags: dict[str, deque[float]] = {}
        self._sorted: dict[str, list[float]] = {}
        self._reported: dict[str, float] = {}

    def sent(self, channel: str, seq: int, ts: datetime) -> None:
        """A quantity message `seq` of `channel` went out at `ts`."""
        sent = self._sent.setdefault(channel, OrderedDict())
        sent[seq] = ts
        if len(sent) > SENT_REMEMBERED:
            sent.popitem(last=False)

    def accepted(self, channel: str, seq: int, accepted_ts: datetime) -> None:
        """The platform accepted message `seq` at `accepted_ts` (an ack's time)."""
        sent = self._sent.get(channel)
        went_out = sent.pop(seq, None) if sent is not None else None
        if went_out is None:
            return  # sent before a restart, or forgotten
        lag = max((accepted_ts - went_out).total_seconds(), 0.0)
        lags = self._lags.setdefault(channel, deque())
        ordered = self._sorted.setdefault(channel, [])
        if len(lags) == WINDOW:
            del ordered[bisect_left(ordered, lags.popleft())]
        lags.append(lag)
        insort(ordered, lag)

    def p99(self, channel: str) -> float | None:
        """The p99 of the channel's recent push lags, once `MIN_ACKS` were measured."""
        ordered = self._sorted.get(channel)
        if ordered is None or len(ordered) < MIN_ACKS:
            return None
        return ordered[math.ceil(0.99 * len(ordered)) - 1]

    def pending(self) -> dict[str, float]:
        """Each channel's p99 that differs from what the log last got: what the next
        tick carries (nothing when nothing moved)."""
        out: dict[str, float] = {}
        for channel in self._lags:
            p99 = self.p99(channel)
            if p99 is not None and self._reported.get(channel) != p99:
                out[channel] = p99
        return out

    def written(self, lags: dict[str, float]) -> None:
        """`lags` are in the log now."""
        self._reported.update(lags)
