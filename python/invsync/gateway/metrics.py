"""The gateway's Prometheus metrics (CONTRACT 10), one registry per process.

Labels are the channel and a request's result, never a SKU or a listing id. Tests pass
a fresh `CollectorRegistry` and read values with `get_sample_value`.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["PRICE_OUTCOMES", "RESULTS", "ChannelMetrics", "GatewayMetrics"]

# Event `ts` to the platform's acceptance: a fast Shopify push to a feed that took
# minutes (Amazon) or half an hour (Walmart) to process.
PUSH_LATENCY_BUCKETS: Final = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
)
# A channel's floor is that of the slowest lane that accepted quantities within this
# long: the window InvsyncChannelPushSlow (k8s PrometheusRule) reads latency over.
FLOOR_WINDOW_S: Final = 600.0
# What a request to a platform came to: accepted (`ok`, its items may still be
# refused one by one), throttled, a transient `error`, `auth_error`, or `refused` whole.
RESULTS: Final = ("ok", "throttled", "error", "auth_error", "refused")
# What became of a price message: the platform `applied` or `refused` it (a newer price
# for the same listing answers for the one it replaced), no listing is mapped for it
# (`unmapped`, sent once one is), it is not a price in the channel's currency
# (`invalid`), or the platform's profile sends no prices (`unsupported`).
PRICE_OUTCOMES: Final = ("applied", "refused", "unmapped", "invalid", "unsupported")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.push_latency = Histogram(
            "invsync_channel_push_latency_seconds",
            "Event ts to the platform accepting the quantity it led to.",
            ["channel"],
            buckets=PUSH_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.push_requests = Counter(
            "invsync_channel_push_requests",
            "Requests sent to a platform, by result.",
            ["channel", "result"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "invsync_channel_backlog_items",
            "Quantities and prices not yet accepted by the platform (queued or in a request).",
            ["channel"],
            registry=self.registry,
        )
        self.budget = Gauge(
            "invsync_channel_budget_remaining",
            "Cost units left in the per-item lane's budget (requests; Shopify: query cost).",
            ["channel"],
            registry=self.registry,
        )
        self.push_floor = Gauge(
            "invsync_channel_push_floor_seconds",
            "The documented least push latency of the slowest lane that accepted quantities "
            "in the last 10 minutes: one request's share of its budget, plus a feed's "
            "processing time.",
            ["channel"],
            registry=self.registry,
        )
        self.unmapped = Gauge(
            "invsync_channel_unmapped_items",
            "(sku, condition) pairs with a quantity but no listing in the channel's map.",
            ["channel"],
            registry=self.registry,
        )
        self.price_pushes = Counter(
            "invsync_channel_price_pushes",
            "Price messages by what became of them (prices are not acknowledged to the "
            "service: CONTRACT acknowledges quantity messages by seq).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.acks = Counter(
            "invsync_channel_acks",
            "Acknowledgements sent to the service, by whether every item was applied.",
            ["channel", "ok"],
            registry=self.registry,
        )

    def channel(self, channel: str) -> ChannelMetrics:
        return ChannelMetrics(self, channel)


class ChannelMetrics:
    """One channel's series, bound once."""

    def __init__(self, metrics: GatewayMetrics, channel: str) -> None:
        self.channel = channel
        self._requests = metrics.push_requests
        self.latency = metrics.push_latency.labels(channel)
        self.backlog = metrics.backlog.labels(channel)
        self.budget = metrics.budget.labels(channel)
        self.unmapped = metrics.unmapped.labels(channel)
        self._floor = metrics.push_floor.labels(channel)
        # Each lane floor that accepted quantities, and when it last did (monotonic s).
        self._floors: dict[float, float] = {}
        self._acks = metrics.acks
        self._prices = metrics.price_pushes
        for result in RESULTS:
            self._requests.labels(channel, result)
        for outcome in PRICE_OUTCOMES:
            self._prices.labels(channel, outcome)
        for ok in ("true", "false"):
            self._acks.labels(channel, ok)

    def request(self, result: str) -> None:
        self._requests.labels(self.channel, result).inc()

    def accepted_on(self, floor_s: float, now: float) -> None:
        """Quantities were accepted on a lane whose documented floor is `floor_s`."""
        self._floors[floor_s] = now
        for floor, seen in list(self._floors.items()):
            if now - seen > FLOOR_WINDOW_S:
                del self._floors[floor]
        self._floor.set(max(self._floors))

    def price(self, outcome: str) -> None:
        self._prices.labels(self.channel, outcome).inc()

    def ack(self, ok: bool) -> None:
        self._acks.labels(self.channel, "true" if ok else "false").inc()
