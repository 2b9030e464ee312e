"""The run's summary: a table for the terminal, `summary.json` and a PNG for a
readiness review. matplotlib is imported only when a figure is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from invsync.flashsale.checker import BackorderCause, SkuState, Verdict
from invsync.flashsale.driver import DriveStats
from invsync.flashsale.observe import DepletionRecorder, FeedRecorder, percentile_ms
from invsync.flashsale.scenario import Scenario

SUMMARY_FILE = "summary.json"
FIGURE_FILE = "flashsale.png"


@dataclass(frozen=True)
class LatencyRow:
    """Sync latency of one channel's feed (or `all`), in milliseconds."""

    channel: str
    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, channel: str, samples_s: list[float]) -> LatencyRow:
        return cls(
            channel,
            len(samples_s),
            percentile_ms(samples_s, 50),
            percentile_ms(samples_s, 95),
            percentile_ms(samples_s, 99),
            percentile_ms(samples_s, 100),
        )


@dataclass(frozen=True)
class Summary:
    """Everything the run reports; `summary.json` is this, as JSON."""

    seed: int
    duration_s: float
    skus: int
    hot_skus: list[str]
    channels: list[str]
    offered_steps: int
    offered_rate: float
    sent_steps: int
    achieved_rate: float
    messages_sent: int
    message_rate: float
    latency: list[LatencyRow]
    reservations_granted: int
    reservations_refused: int
    reservations_unanswered: int
    follow_ups_dropped: int
    steps_cut_off: int
    oversold_by_reservation: int
    oversold_by_sku: dict[str, int]
    backorders: list[BackorderCause]
    backordered_at_end: int
    reserve_depletion: dict[int, list[tuple[float, float]]]
    rejected_events: int
    checker_ok: bool
    skus_checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checker_ok

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def summarize(
    scenario: Scenario,
    stats: DriveStats,
    feed: FeedRecorder,
    reserve: DepletionRecorder,
    verdict: Verdict,
    expected: Mapping[str, SkuState],
) -> Summary:
    config = scenario.config
    latency = [LatencyRow.of(ch, samples) for ch, samples in sorted(feed.latency.items())]
    latency.append(LatencyRow.of("all", feed.all_latencies()))
    return Summary(
        seed=config.seed,
        duration_s=config.duration_s,
        skus=len(scenario.skus),
        hot_skus=list(scenario.hot),
        channels=[name for name, _tier in config.channels],
        offered_steps=scenario.offered,
        offered_rate=scenario.offered / config.duration_s,
        sent_steps=stats.primary_sent,
        achieved_rate=stats.achieved_rate,
        messages_sent=stats.sent,
        message_rate=stats.message_rate,
        latency=latency,
        reservations_granted=stats.granted,
        reservations_refused=stats.refused,
        reservations_unanswered=stats.unanswered,
        follow_ups_dropped=stats.dropped_follow_ups,
        steps_cut_off=stats.unsent,
        oversold_by_reservation=verdict.oversold_units,
        oversold_by_sku=dict(verdict.oversold_by_reservation),
        backorders=verdict.backorders,
        backordered_at_end=sum(state.backordered for state in expected.values()),
        reserve_depletion={tier: list(points) for tier, points in reserve.series.items()},
        rejected_events=verdict.rejected_events,
        checker_ok=verdict.ok,
        skus_checked=verdict.skus_checked,
        problems=verdict.problems(),
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned text table; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = [
        "  ".join(
            c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
        )
        for row in cells
    ]
    lines = [line, "  ".join("-" * w for w in widths), *body]
    return "\n".join(text.rstrip() for text in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("%", "").isdigit()


def render(summary: Summary) -> str:
    """The summary as the terminal shows it."""
    throughput = table(
        ("", "steps", "per second"),
        [
            ("offered", summary.offered_steps, summary.offered_rate),
            ("sent", summary.sent_steps, summary.achieved_rate),
            ("all messages", summary.messages_sent, summary.message_rate),
        ],
    )
    latency = table(
        ("sync latency (ms)", "samples", "p50", "p95", "p99", "max"),
        [(r.channel, r.samples, r.p50, r.p95, r.p99, r.max) for r in summary.latency],
    )
    outcomes = table(
        ("outcome", "count"),
        [
            ("reservations granted", summary.reservations_granted),
            ("reservations refused", summary.reservations_refused),
            ("reservations unanswered", summary.reservations_unanswered),
            ("follow-ups not sent (sale over)", summary.follow_ups_dropped),
            ("steps cut off (service too slow)", summary.steps_cut_off),
            ("oversold units by reservation", summary.oversold_by_reservation),
            ("backordered units at end", summary.backordered_at_end),
            ("events refused as bad input", summary.rejected_events),
        ],
    )
    parts = [throughput, latency, outcomes]
    if summary.backorders:
        parts.append(backorder_table(summary.backorders))
    if summary.reserve_depletion:
        parts.append(depletion_table(summary.reserve_depletion, summary.duration_s))
    verdict = "PASS" if summary.ok else "FAIL"
    checked = f"checker: {verdict} ({summary.skus_checked} SKUs compared with the replay)"
    parts.append("\n".join([checked, *(f"  {problem}" for problem in summary.problems)]))
    return "\n\n".join(parts)


def backorder_table(backorders: Sequence[BackorderCause], limit: int = 10) -> str:
    """The largest backorders by channel and SKU; the rest summed on one line."""
    largest = sorted(backorders, key=lambda b: (-b.units, b.channel, b.sku))
    rows: list[Sequence[object]] = [
        (b.channel, b.sku, b.units, b.orders, b.cause) for b in largest[:limit]
    ]
    rest = largest[limit:]
    if rest:
        units, orders = sum(b.units for b in rest), sum(b.orders for b in rest)
        rows.append((f"{len(rest)} more", "", units, orders, ""))
    return table(("backorders (post-sale orders)", "sku", "units", "orders", "cause"), rows)


def depletion_table(series: Mapping[int, Sequence[tuple[float, float]]], duration_s: float) -> str:
    """Each tier's protected reserve taken, at every quarter of the sale and at its peak."""
    marks = [duration_s * quarter / 4 for quarter in range(1, 5)]
    rows = []
    for tier, points in sorted(series.items()):
        at_marks = [next((v for t, v in reversed(points) if t <= mark), 0.0) for mark in marks]
        peak = max((v for _t, v in points), default=0.0)
        rows.append([f"tier {tier}", *(f"{v:.0%}" for v in at_marks), f"{peak:.0%}"])
    headers = ("reserve depleted", *(f"{mark:.1f}s" for mark in marks), "peak")
    return table(headers, rows)


def shown_over_time(
    feed: FeedRecorder, sku: str, channels: Sequence[str], step_s: float, until_s: float
) -> str:
    """What each channel was shown for one SKU at the start and every `step_s` seconds.

    The run's SKUs are new to the service, so a channel told nothing yet shows 0.
    """
    marks = [step_s * k for k in range(int(until_s / step_s + 1e-9) + 1)]
    if until_s - marks[-1] > step_s / 10:
        marks.append(until_s)
    rows = []
    for at in marks:
        row: list[object] = [f"{at:.1f}s"]
        for channel in channels:
            known = [qty for t, qty in feed.shown.get((channel, sku), []) if t <= at]
            row.append(known[-1] if known else 0)
        rows.append(row)
    return table((f"{sku} shown", *channels), rows)


def write_report(
    directory: Path,
    summary: Summary,
    feed: FeedRecorder,
    reserve: DepletionRecorder,
) -> list[Path]:
    """`summary.json` plus the figure; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    summary_path = directory / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n")
    figure_path = directory / FIGURE_FILE
    draw_figure(figure_path, summary, feed, reserve)
    return [summary_path, figure_path]


def draw_figure(
    path: Path, summary: Summary, feed: FeedRecorder, reserve: DepletionRecorder
) -> None:
    """Latency over time, the hottest SKU's shown quantity per channel, reserve depletion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (lat_ax, shown_ax, reserve_ax) = plt.subplots(
        3, 1, figsize=(10, 10), sharex=True, constrained_layout=True
    )
    for channel in sorted(feed.latency):
        samples_ms = [value * 1000.0 for value in feed.latency[channel]]
        lat_ax.scatter(feed.latency_at[channel], samples_ms, s=2, label=channel)
    lat_ax.set_ylabel("sync latency (ms)")
    lat_ax.set_yscale("log")
    lat_ax.set_title(f"flash sale: seed {summary.seed}, {summary.achieved_rate:,.0f} steps/s")
    hottest = summary.hot_skus[0] if summary.hot_skus else None
    for (channel, sku), points in sorted(feed.shown.items()):
        if sku != hottest:
            continue
        # Hold the last value to the end of the run: no message means no change.
        held = [*points, (max(summary.duration_s, points[-1][0]), points[-1][1])]
        times = [t for t, _qty in held]
        quantities = [qty for _t, qty in held]
        shown_ax.step(times, quantities, where="post", label=channel)
    shown_ax.set_ylabel(f"shown quantity of {hottest}")
    for tier, ratios in sorted(reserve.series.items()):
        reserve_ax.plot([t for t, _v in ratios], [v for _t, v in ratios], label=f"tier {tier}")
    reserve_ax.set_ylabel("reserve depletion")
    reserve_ax.set_xlabel("seconds into the sale")
    for axis in (lat_ax, shown_ax, reserve_ax):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small", ncol=3, loc="upper right")
    figure.savefig(path, dpi=100)
    plt.close(figure)
