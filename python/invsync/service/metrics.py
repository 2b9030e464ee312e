"""Every Prometheus metric the service exports, built from one registry.

Tests pass a fresh `CollectorRegistry` and read values with `get_sample_value`.
Labels are bounded dimensions only (channel, tier, type, reason), never a SKU,
and never a client's string unchecked: a channel named by a request that the
policy does not know is counted as UNKNOWN_CHANNEL, one series however many
made-up names arrive.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from importlib import metadata

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Sync latency spans a healthy few milliseconds up to a badly lagging feed.
SYNC_LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
# One engine call per fetched batch: tens of microseconds to a slow 100 ms.
APPLY_BATCH_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
# The decoder's reasons, then the engine's refusal, an engine bug, a bad request/reply call,
# an order event whose order did not arrive within the policy's park window.
DEAD_LETTER_REASONS = (
    "malformed",
    "invalid",
    "unknown_type",
    "nested_batch",
    "encoding",
    "bad_input",
    "internal",
    "bad_request",
    "order_missing",
)
RESERVATION_RESULTS = ("granted", "refused", "error")
ACK_ITEM_RESULTS = ("ok", "failed")
# Where the consume loop caught an unexpected exception: applying producer events,
# applying the service's own log entries, publishing.
INTERNAL_ERROR_STAGES = ("events", "log", "flush")
# The channel label of requests on a channel the policy does not know; the
# parentheses keep it apart from any real channel id.
UNKNOWN_CHANNEL = "(unknown)"


def _version() -> str:
    try:
        return metadata.version("invsync")
    except metadata.PackageNotFoundError:
        return "unknown"


class BulkHistogram(Collector):
    """A labelled histogram observed a whole array at a time.

    Sync latency has one observation per changed item, hundreds of thousands a
    second at flash-sale rates: one numpy pass per flush instead of one
    `observe()` call per item keeps it off the hot path.
    """

    def __init__(self, name: str, documentation: str, label: str, buckets: tuple[float, ...]):
        self.name = name
        self.documentation = documentation
        self.label = label
        self._bounds = np.array(buckets, dtype=np.float64)
        self._bound_list = list(buckets)
        self._le = [str(float(b)) for b in buckets] + ["+Inf"]
        self._counts: dict[str, npt.NDArray[np.int64]] = {}
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()  # scrapes run on the HTTP server's thread

    def declare(self, value: str) -> None:
        with self._lock:
            self._counts.setdefault(value, np.zeros(len(self._le), dtype=np.int64))
            self._sums.setdefault(value, 0.0)

    def observe_many(self, value: str, observations: npt.NDArray[np.float64] | list[float]) -> None:
        """A numpy array in one pass; a short list (a quiet flush's few items) item by
        item, which is cheaper than numpy's per-call cost."""
        if isinstance(observations, list):
            bounds = self._bound_list
            counts: npt.NDArray[np.int64] | list[int] = [0] * len(self._le)
            for x in observations:
                counts[bisect_left(bounds, x)] += 1
            total = sum(observations)
        else:
            # Bucket i counts observations <= bound i: the first bound >= the value.
            slots = np.searchsorted(self._bounds, observations, side="left")
            counts = np.bincount(slots, minlength=len(self._le))
            total = float(observations.sum())
        with self._lock:
            if value not in self._counts:
                self._counts[value] = np.zeros(len(self._le), dtype=np.int64)
                self._sums[value] = 0.0
            self._counts[value] += counts
            self._sums[value] += total

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            for value, counts in self._counts.items():
                cumulative = np.cumsum(counts).tolist()
                family.add_metric(
                    [value], list(zip(self._le, cumulative, strict=True)), self._sums[value]
                )
        yield family


class Metrics:
    """The service's metrics; label sets known at start exist at 0 from the first scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Info("invsync_build", "invsync build", registry=r)
        self.build_info.info({"version": _version()})
        self.events = Counter(
            "invsync_events_total", "Events applied, by type", ["type"], registry=r
        )
        self.sync_latency = BulkHistogram(
            "invsync_sync_latency_seconds",
            "Event ts to publish of the quantity change it caused",
            "channel",
            SYNC_LATENCY_BUCKETS,
        )
        r.register(self.sync_latency)
        self.reserve_depletion = Gauge(
            "invsync_reserve_depletion_ratio",
            "Share of the tier's protected units already taken",
            ["tier"],
            registry=r,
        )
        self.oversold = Counter(
            "invsync_oversold_units_total",
            "Units of accepted orders that stock could not cover",
            ["channel"],
            registry=r,
        )
        self.reservations = Counter(
            "invsync_reservations_total",
            "Reservation requests decided",
            ["channel", "result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "invsync_dead_letters_total", "Messages sent to the DLQ", ["reason"], registry=r
        )
        self.feed_age = Gauge(
            "invsync_channel_feed_age_seconds",
            "Seconds since the channel connector last acknowledged a quantity message",
            ["channel"],
            registry=r,
        )
        self.ack_items = Counter(
            "invsync_channel_ack_items_total",
            "Items connectors reported the platform applied (ok) or refused (failed)",
            ["channel", "result"],
            registry=r,
        )
        self.apply_batch = Histogram(
            "invsync_apply_batch_seconds",
            "Engine time per fetched batch",
            buckets=APPLY_BATCH_BUCKETS,
            registry=r,
        )
        self.stream_sequence = Gauge(
            "invsync_stream_sequence", "Last stream sequence applied", registry=r
        )
        self.partition_leader = Gauge(
            "invsync_partition_leader",
            "1 while this process leads the partition (serves it), else 0",
            ["partition"],
            registry=r,
        )
        self.partition_epoch = Gauge(
            "invsync_partition_epoch",
            "The partition's lease epoch this process last claimed",
            ["partition"],
            registry=r,
        )
        self.standby_lag = Gauge(
            "invsync_standby_lag_events",
            "On a standby: log messages stored and not yet applied (0 on the leader)",
            ["partition"],
            registry=r,
        )
        self.internal_errors = Counter(
            "invsync_internal_errors_total",
            "Unexpected exceptions caught by the consume loop (bugs; each is also alerted)",
            ["stage"],
            registry=r,
        )
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for stage in INTERNAL_ERROR_STAGES:
            self.internal_errors.labels(stage)
        self.reservations.labels(UNKNOWN_CHANNEL, "error")

    def declare_channels(self, channels: Iterable[str], tiers: Iterable[int]) -> None:
        """Create the per-channel and per-tier series at 0 so dashboards see them at once."""
        for channel in channels:
            self.sync_latency.declare(channel)
            self.oversold.labels(channel)
            self.feed_age.labels(channel)
            for outcome in ACK_ITEM_RESULTS:
                self.ack_items.labels(channel, outcome)
            for result in RESERVATION_RESULTS:
                self.reservations.labels(channel, result)
        for tier in tiers:
            self.reserve_depletion.labels(str(tier))
