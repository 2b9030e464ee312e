"""Client-side budgets: how fast a lane may send, and how many revisions a listing has
left today.

`LaneBudget` is one weighted token bucket per lane, leaking lazily from a monotonic
clock (the shape of aiolimiter's and ShopifySharp's buckets). It starts from the
lane's limits (documented, or the seller's lower override), and the platform's own
word corrects it downwards: a reply's `BudgetReport` (Shopify's throttleStatus,
Amazon's `x-amzn-RateLimit-Limit`) lowers the rate, the bucket or what is left in it,
never above the limits (a seller who lowered `rate` shares the budget with another
app), and a 429 pauses the lane for its `Retry-After` and halves the rate, which then
recovers a little with every accepted request. The bucket never
sleeps: it says how long to wait, and the scheduler, the only place that waits, does.

`RevisionBudget` is eBay's cap of revisions per listing per calendar day (UTC),
with a reserve that only decreases may spend, so a listing that used its day on
increases can still be taken down when it sells out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from invsync.gateway.platforms.base import BudgetReport, LaneLimits

__all__ = ["LaneBudget", "RevisionBudget", "Spent"]

# After a 429 the rate is multiplied by this, down to FLOOR of the ceiling; each
# accepted request then adds RECOVERY of the ceiling back (additive increase).
BACKOFF_FACTOR = 0.5
FLOOR = 0.1
RECOVERY = 0.02
# A 429 without Retry-After pauses the lane this long, or one token's refill if longer.
DEFAULT_PAUSE_S = 1.0
# Spend a little under the platform's rate: its bucket counts from when requests
# arrive, ours from when they leave, and network jitter bunches arrivals up. The
# margin this leaves builds up request by request, so a backlog never meets a 429.
HEADROOM = 0.98
# Refills are computed in floating point: a shortfall this small is rounding, not debt.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Spent:
    """When a request was charged, and whether the bucket was full just before."""

    at: float
    from_full: bool


class LaneBudget:
    """A token bucket of `capacity` cost units refilled at `rate` per second, where
    `rate` is the platform's rate (`ceiling`) times a factor that 429s lower, less the
    headroom."""

    def __init__(self, limits: LaneLimits, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._limits = limits
        self.ceiling = limits.rate
        self.capacity = limits.burst
        self.factor = 1.0
        self._tokens = limits.burst
        self._updated = clock()
        self._paused_until = -math.inf

    @property
    def rate(self) -> float:
        return self.ceiling * self.factor * HEADROOM

    def available(self) -> float:
        """Cost units the bucket holds now (negative after an overdraft)."""
        self._leak()
        return self._tokens

    def wait_s(self, cost: float) -> float:
        """Seconds until `cost` may be spent: 0 when it may be now. A cost larger than
        the bucket waits for a full bucket, so one oversized request is not stuck forever."""
        self._leak()
        now = self._clock()
        pause = max(0.0, self._paused_until - now)
        missing = min(cost, self.capacity) - self._tokens
        refill = missing / self.rate if missing > _EPSILON else 0.0
        return max(pause, refill)

    def spend(self, cost: float) -> Spent:
        """Charge a request as it is sent; hand what this returns to `accepted`."""
        self._leak()
        full = self._tokens >= self.capacity - _EPSILON
        self._tokens -= cost
        return Spent(self._clock(), full)

    def accepted(self, report: BudgetReport, spent: Spent | None = None) -> None:
        """A reply came back (not throttled): adopt what it says, recover a little.

        A request sent from a full bucket is charged again for its time on the way:
        the platform's bucket stayed full, earning nothing, until the request arrived,
        while ours refilled from the send (the first request after a pause, which
        also waits for a token refresh, would otherwise make the next ones a 429)."""
        self._leak()
        if spent is not None and spent.from_full:
            self._tokens -= (self._clock() - spent.at) * self.rate
        self.factor = min(1.0, self.factor + RECOVERY)
        self._adopt(report)

    def throttled(self, report: BudgetReport) -> None:
        """The platform throttled a request: empty the bucket, pause for its
        `Retry-After` (or a default) and halve the rate."""
        self._adopt(report)
        self.factor = max(FLOOR, self.factor * BACKOFF_FACTOR)
        self._leak()
        self._tokens = min(self._tokens, 0.0)
        pause = report.retry_after_s
        if pause is None:
            pause = max(DEFAULT_PAUSE_S, 1.0 / self.rate)
        self._paused_until = max(self._paused_until, self._clock() + pause)

    def _adopt(self, report: BudgetReport) -> None:
        self._leak()
        if report.rate is not None and report.rate > 0:
            self.ceiling = min(report.rate, self._limits.rate)
        if report.capacity is not None and report.capacity > 0:
            self.capacity = min(report.capacity, self._limits.burst)
            self._tokens = min(self._tokens, self.capacity)
        if report.available is not None:
            # Requests still in flight are charged here but not yet there: the lower
            # of the two estimates is the one that cannot overspend.
            self._tokens = min(self._tokens, report.available)
        if report.retry_after_s is not None:
            self._paused_until = max(self._paused_until, self._clock() + report.retry_after_s)

    def _leak(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)


class RevisionBudget:
    """Revisions per listing per UTC day: increases may use `cap - reserve`, decreases
    the whole cap. Counts live in memory: after a restart the platform's own refusal
    (an alerted per-item outcome) is the backstop."""

    def __init__(self, cap: int, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cap = cap
        # A fifth of the day is kept for decreases (at least one).
        self.reserve = max(1, cap // 5)
        self._now = now
        self._day: date = now().date()
        self._used: dict[str, int] = {}

    def allows(self, listing_key: str, decrease: bool) -> bool:
        self._roll()
        limit = self.cap if decrease else self.cap - self.reserve
        return self._used.get(listing_key, 0) < limit

    def spend(self, listing_key: str) -> None:
        self._roll()
        self._used[listing_key] = self._used.get(listing_key, 0) + 1

    def used(self, listing_key: str) -> int:
        self._roll()
        return self._used.get(listing_key, 0)

    def _roll(self) -> None:
        today = self._now().date()
        if today != self._day:
            self._day = today
            self._used.clear()
