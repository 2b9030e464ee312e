"""What a simulation found, as a table, as JSON and as figures.

Numbers are per run (the sum over seeds divided by the seeds); sell-through is units
sold against the oracle's; strategies are compared by revenue (`compare.dominates`).
matplotlib is imported only when a figure is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invsync.simulate.compare import Summary, dominates, frontier
from invsync.simulate.run import Series

HOT_FIGURE = "hottest-sku.png"
FRONTIER_FIGURE = "frontier.png"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def sell_through(summary: Summary, oracle: Summary | None) -> float | None:
    """Units sold as a share of the oracle's (None without an oracle that sold)."""
    return summary.sold / oracle.sold if oracle is not None and oracle.sold else None


def table(summaries: Sequence[Summary], oracle: Summary | None) -> str:
    """One line per strategy: units sold, oversold, cancelled, sell-through against the
    oracle, unsold, when the hottest SKU sold out, revenue, and revenue per tier."""
    tiers = sorted({tier for s in summaries for tier in s.revenue_by_tier})
    header = [
        "strategy",
        "sold",
        "oversold",
        "cancelled",
        "sell-through",
        "unsold",
        "hot SKU out at",
        "revenue",
        *(f"revenue tier {tier}" for tier in tiers),
    ]
    rows = [header]
    for s in summaries:
        share = sell_through(s, oracle)
        rows.append(
            [
                s.strategy,
                _count(s.per_run(s.sold)),
                _count(s.per_run(s.oversold)),
                _count(s.per_run(s.cancellations)),
                "—" if share is None else f"{share:.1%}",
                _count(s.per_run(s.unsold)),
                _duration(s.sellout_s),
                f"{s.per_run(s.revenue):,.0f}",
                *(f"{s.per_run(s.revenue_by_tier.get(tier, 0.0)):,.0f}" for tier in tiers),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def search_table(
    searched: Sequence[tuple[dict[str, int], Summary]], auto: Sequence[Summary]
) -> str:
    """The static buffers tried, best earners first, marking the frontier and any set that
    beats an automatic strategy on both counts (more revenue, fewer oversold)."""
    best = {id(s) for s in frontier([summary for _, summary in searched])}
    lines = ["static buffers tried (per run; * on the frontier, ! beats an auto strategy):"]
    for buffers, summary in sorted(searched, key=lambda item: -item[1].revenue):
        beaten = [a.strategy for a in auto if dominates(summary, a)]
        mark = ("*" if id(summary) in best else " ") + ("!" if beaten else " ")
        label = " ".join(f"{name}={value}" for name, value in buffers.items())
        lines.append(
            f" {mark} revenue {summary.per_run(summary.revenue):>11,.0f}  "
            f"sold {_count(summary.per_run(summary.sold)):>9}  "
            f"oversold {_count(summary.per_run(summary.oversold)):>7}  {label}"
            + (f"  (beats {', '.join(beaten)})" if beaten else "")
        )
    return "\n".join(lines)


def to_json(
    scenario: str,
    seeds: Sequence[int],
    summaries: Sequence[Summary],
    oracle: Summary | None,
    searched: Sequence[tuple[dict[str, int], Summary]] = (),
) -> dict[str, Any]:
    """Everything the table says, with the numbers of every run."""

    def strategy(s: Summary) -> dict[str, Any]:
        return {
            "strategy": s.strategy,
            "sold": s.sold,
            "revenue": s.revenue,
            "oversold": s.oversold,
            "oversold_by_channel": s.oversold_by_channel,
            "cancellations": s.cancellations,
            "sell_through": sell_through(s, oracle),
            "unsold": s.unsold,
            "runs_with_oversells": s.runs_with_oversells,
            "hot_sku_sellout_s": s.sellout_s,
            "revenue_by_tier": {str(tier): value for tier, value in s.revenue_by_tier.items()},
            "runs": [
                {
                    "seed": seed,
                    "buyers": run.buyers,
                    "turned_away": run.turned_away,
                    "sold": run.sold,
                    "revenue": sum(run.revenue_by_tier.values()),
                    "oversold": run.oversold,
                    "cancellations": run.cancellations,
                    "unsold": run.unsold,
                    "hot_sku_sellout_s": run.sellout_s,
                }
                for seed, run in zip(seeds, s.runs, strict=True)
            ],
        }

    return {
        "scenario": scenario,
        "seeds": list(seeds),
        "strategies": [strategy(s) for s in summaries],
        "search": [
            {"buffers": buffers, "sold": s.sold, "revenue": s.revenue, "oversold": s.oversold}
            for buffers, s in searched
        ],
    }


def draw_hottest(path: Path, series: Sequence[tuple[str, Series]]) -> None:
    """Per strategy, the hottest SKU's ATS and, per channel, what the engine decided it
    is shown (dashed) and what the channel displayed (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, _ = plt.subplots(
        len(series), 1, figsize=(11, 3.2 * len(series)), sharex=True, constrained_layout=True
    )
    for axis, (name, s) in zip(list(figure.axes), series, strict=True):
        hours = [t / 3600 for t in s.time_s]
        axis.step(hours, s.ats, where="post", color="black", label="ATS")
        for c, channel in enumerate(s.channels):
            (line,) = axis.step(
                hours, [row[c] for row in s.displayed], where="post", label=f"{channel} displayed"
            )
            axis.step(
                hours,
                [row[c] for row in s.decided],
                where="post",
                linestyle="--",
                color=line.get_color(),
                alpha=0.6,
            )
        axis.set_title(f"{name}: {s.sku}")
        axis.set_ylabel("units")
        axis.legend(fontsize="small", ncol=4, loc="upper right")
    list(figure.axes)[-1].set_xlabel("hours into the scenario (dashed: what invsync decided)")
    figure.savefig(path, dpi=90)
    plt.close(figure)


def draw_frontier(
    path: Path,
    title: str,
    searched: Sequence[Summary],
    auto: Sequence[tuple[float, Summary]],
    oracle: Summary | None,
) -> None:
    """Revenue against oversold units per run: every static buffer set tried, its
    frontier, and the automatic buffers at each risk factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 5), constrained_layout=True)
    axis.scatter(
        [s.per_run(s.oversold) for s in searched],
        [s.per_run(s.revenue) for s in searched],
        s=12,
        color="grey",
        label="static buffers tried",
    )
    edge = frontier(searched)
    axis.plot(
        [s.per_run(s.oversold) for s in edge],
        [s.per_run(s.revenue) for s in edge],
        color="grey",
        marker="s",
        label="static frontier",
    )
    if auto:
        axis.plot(
            [s.per_run(s.oversold) for _, s in auto],
            [s.per_run(s.revenue) for _, s in auto],
            marker="o",
            color="tab:blue",
            label="auto, risk " + "–".join(f"{r:g}" for r in (auto[0][0], auto[-1][0])),
        )
        for risk, s in auto:
            axis.annotate(f"{risk:g}", (s.per_run(s.oversold), s.per_run(s.revenue)), fontsize=8)
    if oracle is not None:
        axis.axhline(
            oracle.per_run(oracle.revenue), color="tab:green", linestyle=":", label="oracle"
        )
    axis.set_xlabel("oversold units per run")
    axis.set_ylabel("revenue per run")
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlim(left=-0.3)  # points at 0 oversold off the axis line
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.savefig(path, dpi=90)
    plt.close(figure)
