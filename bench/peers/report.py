"""The Markdown (and JSON) report of one run: tables, targets, machine and versions."""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workload import Measurement, Outcome, Skipped

BEGIN = "<!-- peers:begin -->"
END = "<!-- peers:end -->"
CASE_TITLES = {
    "zipf": "Reservations, 10,000 SKUs, Zipf-hot demand (conditional decrement with tier floor)",
    "flash": "Flash sale: one SKU, concurrent clients buying one unit at a time",
}


@dataclass(frozen=True)
class Row:
    """A measurement with the checks run.py made on it."""

    outcome: Outcome
    expected_units: int | None = None
    stock: int | None = None

    @property
    def oversold(self) -> int | None:
        if self.stock is None or not isinstance(self.outcome, Measurement):
            return None
        return max(0, self.outcome.granted_units - self.stock)

    @property
    def failed(self) -> bool:
        """A wrong answer: granted differs from the sequential reference, or atomic oversold."""
        outcome = self.outcome
        if not isinstance(outcome, Measurement):
            return False
        wrong_grants = (
            self.expected_units is not None and outcome.granted_units != self.expected_units
        )
        return wrong_grants or (outcome.atomic and bool(self.oversold))


@dataclass(frozen=True)
class Target:
    """A goal from the project's targets, and whether this run met it (None: not measured)."""

    name: str
    goal: str
    measured: str | None = None
    met: bool | None = None

    def render(self) -> str:
        verdict = {True: "met", False: "**not met**", None: "—"}[self.met]
        return f"| {self.name} | {self.goal} | {self.measured or 'not measured'} | {verdict} |"


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": str(os.cpu_count()), "os": platform.platform()}


def _number(value: float, digits: int = 0) -> str:
    return "—" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(reference: Measurement | None, outcome: Measurement) -> str:
    if reference is None or reference is outcome or outcome.ops_per_s == 0:
        return "—"
    return f"{reference.ops_per_s / outcome.ops_per_s:,.1f}×"


def _table(rows: Sequence[Row], reference: Measurement | None, flash: bool) -> list[str]:
    head = "| approach | clients | ops | ops/s | p50 µs | p99 µs | latency of | granted units |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    if flash:
        head += " oversold | atomic |"
        rule += " ---: | --- |"
    head += " invsync ÷ this |"
    rule += " ---: |"
    lines = [head, rule]
    for row in rows:
        outcome = row.outcome
        if isinstance(outcome, Skipped):
            blanks = 9 if flash else 7
            lines.append(f"| {outcome.approach} | skipped: {outcome.reason} |" + " |" * blanks)
            continue
        granted = f"{outcome.granted_units:,}" if outcome.decides_grants else "—"
        if row.expected_units == outcome.granted_units:
            granted += " ✓"
        elif row.expected_units is not None:
            granted = f"**{granted} ≠ {row.expected_units:,} expected**"
        cells = [
            outcome.approach,
            str(outcome.clients),
            f"{outcome.ops:,}",
            _number(outcome.ops_per_s),
            _number(outcome.latency_us(50), 1),
            _number(outcome.latency_us(99), 1),
            outcome.latency_of,
            granted,
        ]
        if flash:
            oversold = row.oversold or 0
            cells += [f"**{oversold:,}**" if oversold else "0", "yes" if outcome.atomic else "no"]
        cells.append(_ratio(reference, outcome))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(
    rows: Sequence[Row],
    references: dict[str, Measurement | None],
    targets: Sequence[Target],
    versions: dict[str, str],
    command: str,
) -> str:
    """The report section, between the markers, ready to print or splice into a file."""
    info = machine()
    out = [
        BEGIN,
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpu']}, "
            f"{info['cores']} cores ({info['os']}), by `{command}`."
        ),
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".",
        "",
    ]
    for case, title in CASE_TITLES.items():
        case_rows = [row for row in rows if row.outcome.case == case]
        if not case_rows:
            continue
        reference = references.get(case)
        ratio_of = f"`{reference.approach}`" if reference else "invsync (not run)"
        out += [f"**{title}.** Ratio column: {ratio_of} ops/s ÷ the row's ops/s.", ""]
        out += _table(case_rows, reference, flash=case == "flash")
        out.append("")
    out += ["| target | goal | measured | |", "| --- | ---: | ---: | --- |"]
    out += [target.render() for target in targets]
    out += ["", END]
    return "\n".join(out) + "\n"


def splice(path: Path, section: str) -> None:
    """Replace the marked section of `path` (appending markers if absent), keeping the rest."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + section
    path.write_text(text)


def to_json(rows: Sequence[Row], targets: Sequence[Target], versions: dict[str, str]) -> str:
    """The same figures for scripts and CI: one object per row."""
    items: list[dict[str, object]] = []
    for row in rows:
        outcome = row.outcome
        if isinstance(outcome, Skipped):
            items.append(
                {"approach": outcome.approach, "case": outcome.case, "skipped": outcome.reason}
            )
            continue
        items.append(
            {
                "approach": outcome.approach,
                "case": outcome.case,
                "clients": outcome.clients,
                "ops": outcome.ops,
                "ops_per_s": outcome.ops_per_s,
                "p50_us": _finite(outcome.latency_us(50)),
                "p99_us": _finite(outcome.latency_us(99)),
                "latency_of": outcome.latency_of,
                "granted_units": outcome.granted_units if outcome.decides_grants else None,
                "expected_units": row.expected_units,
                "oversold": row.oversold,
                "atomic": outcome.atomic,
                "failed": row.failed,
            }
        )
    return json.dumps(
        {
            "machine": machine(),
            "versions": versions,
            "rows": items,
            "targets": [
                {"name": t.name, "goal": t.goal, "measured": t.measured, "met": t.met}
                for t in targets
            ],
        },
        indent=2,
    )


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value
