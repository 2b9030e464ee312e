"""Numbers as the playbook writes them, the same way in every section."""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Struct

__all__ = ["count_of", "number", "seconds", "units", "written"]


def number(value: float) -> str:
    """A share, a factor or a rate without trailing zeros: 0.8, 1, 1.5."""
    return f"{value:g}"


def units(count: int) -> str:
    """A whole number of units with thousands separators: 1,800."""
    return f"{count:,}"


def seconds(value: float) -> str:
    """A delay: 30 s, 1,800 s, 0.5 s."""
    return f"{value:,.0f} s" if value == int(value) else f"{value:g} s"


def count_of(count: int, noun: str) -> str:
    """`1 unit`, `36 units`."""
    return f"{units(count)} {noun}{'' if count == 1 else 's'}"


def written(table: Struct, fields: Iterable[str]) -> str:
    """The fields an override sets, as `share 1, buffer 0`; those it leaves out are
    inherited and not shown."""
    values = [(name, getattr(table, name)) for name in fields]
    return ", ".join(
        f"{name} {value if isinstance(value, str) else number(value)}"
        for name, value in values
        if value is not None
    )
