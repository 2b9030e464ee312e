"""The sales rates a plan is drawn at: `invsync plan --velocity FILE.csv`.

One row per SKU and channel, the rate the seller plans for at the busiest hour (a
flash sale, a holiday peak), in units per second or per day:

    sku,channel,units_per_s,units_per_day
    A,tiktok,0.5,
    A,amazon,,2000

The header names `sku`, `channel` and one or both rate columns; each row fills exactly
one rate. Every refusal is a `VelocityError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from invsync.errors import VelocityError

__all__ = ["RATE_COLUMNS", "Velocity", "read_velocity"]

#: rate column → seconds in its unit
RATE_COLUMNS: Final[Mapping[str, float]] = {"units_per_s": 1.0, "units_per_day": 86_400.0}
_KEY_COLUMNS: Final = ("sku", "channel")
# A rate beyond this is a typo, not a sale (a million units a second).
_MAX_UNITS_PER_S: Final = 1e6


@dataclass(frozen=True)
class Velocity:
    """Peak sales rates (units/s) per SKU and channel, SKUs and channels in file order."""

    source: str
    rates: Mapping[str, Mapping[str, float]]


def read_velocity(path: Path, channels: Collection[str]) -> Velocity:
    """Reads a velocity CSV whose channels must be among `channels` (the policy's)."""
    source = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rates = _read(source, handle, channels)
    except (OSError, UnicodeDecodeError) as exc:
        raise VelocityError(source, 0, "file", f"cannot read: {exc}") from None
    except csv.Error as exc:
        raise VelocityError(source, 0, "file", f"not valid CSV: {exc}") from None
    return Velocity(source, rates)


def _read(source: str, handle: TextIO, channels: Collection[str]) -> dict[str, dict[str, float]]:
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    _check_header(source, header)
    rates: dict[str, dict[str, float]] = {}
    line_of: dict[tuple[str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise VelocityError(
                source, line, "row", f"{len(row)} fields where the header has {len(header)}"
            )
        cells = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
        sku, channel = cells["sku"], cells["channel"]
        if not sku:
            raise VelocityError(source, line, "sku", "empty")
        if channel not in channels:
            raise VelocityError(
                source,
                line,
                "channel",
                f"unknown channel {channel!r}; the policy has {', '.join(channels)}",
            )
        if (sku, channel) in line_of:
            raise VelocityError(
                source,
                line,
                "channel",
                f"{sku} on {channel} already on line {line_of[sku, channel]}",
            )
        line_of[sku, channel] = line
        rates.setdefault(sku, {})[channel] = _rate(source, line, cells)
    return rates


def _check_header(source: str, header: list[str]) -> None:
    wanted = "sku,channel,units_per_s (or units_per_day)"
    for name in header:
        if name not in _KEY_COLUMNS and name not in RATE_COLUMNS:
            raise VelocityError(
                source, 1, name or "header", f"unknown column; the header is {wanted}"
            )
        if header.count(name) > 1:
            raise VelocityError(source, 1, name, "column appears twice")
    for name in _KEY_COLUMNS:
        if name not in header:
            raise VelocityError(source, 1, name, f"missing column; the header is {wanted}")
    if not any(name in header for name in RATE_COLUMNS):
        raise VelocityError(
            source,
            1,
            "units_per_s",
            f"missing column: units_per_s or units_per_day; the header is {wanted}",
        )


def _rate(source: str, line: int, cells: Mapping[str, str]) -> float:
    """The row's rate in units per second."""
    given = [(name, cells[name]) for name in RATE_COLUMNS if cells.get(name)]
    if not given:
        raise VelocityError(
            source, line, "units_per_s", "no rate: fill units_per_s or units_per_day"
        )
    if len(given) > 1:
        raise VelocityError(
            source, line, given[1][0], "two rates: fill units_per_s or units_per_day, not both"
        )
    column, text = given[0]
    try:
        value = float(text)
    except ValueError:
        raise VelocityError(source, line, column, f"not a number: {text!r}") from None
    per_s = value / RATE_COLUMNS[column]
    if not math.isfinite(value) or value < 0:
        raise VelocityError(source, line, column, f"{text} is not a rate (0 or more units)")
    if per_s > _MAX_UNITS_PER_S:
        raise VelocityError(
            source, line, column, f"{text} is beyond {_MAX_UNITS_PER_S:,.0f} units a second"
        )
    return per_s
