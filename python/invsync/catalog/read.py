"""Reading a catalog file line by line: a line that cannot be read becomes a finding at its
line number, and the lines after it are still read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Final

import msgspec

from invsync.catalog.findings import CATALOG_FORMAT, Finding
from invsync.catalog.schema import SHARED_FIELDS, ChannelContent, Product
from invsync.errors import CatalogError
from invsync.tomlpos import msgspec_path

__all__ = ["Catalog", "CatalogLine", "read_catalog"]

_decode_line = msgspec.json.Decoder()
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class CatalogLine:
    """A product and the line (1-based) it was written on."""

    line: int
    product: Product


@dataclass(slots=True)
class Catalog:
    """The products that could be read, and a finding for each line that could not."""

    source: str
    lines: list[CatalogLine] = field(default_factory=list)
    unreadable: list[Finding] = field(default_factory=list)


def read_catalog(path: str | PathLike[str]) -> Catalog:
    """Read a JSON Lines catalog; an unreadable file is a `CatalogError`, a bad line a finding."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError(source, 0, "file", str(exc)) from None
    catalog = Catalog(source)
    first_line: dict[str, int] = {}
    for number, raw in _lines(data):
        product = _product(number, raw, catalog.unreadable)
        if product is None:
            continue
        if product.sku in first_line:
            catalog.unreadable.append(
                _format_finding(
                    number,
                    product.sku,
                    "sku",
                    f"already on line {first_line[product.sku]}",
                    "one line per product",
                )
            )
            continue
        first_line[product.sku] = number
        catalog.lines.append(CatalogLine(number, product))
    return catalog


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, content) of every line that is not blank; a byte order mark some
    editors write before the first line is not part of it."""
    for number, raw in enumerate(data.removeprefix(_BOM).split(b"\n"), start=1):
        if raw.strip():
            yield number, raw


def _product(number: int, raw: bytes, problems: list[Finding]) -> Product | None:
    try:
        value: Any = _decode_line.decode(raw)
    except msgspec.DecodeError as exc:
        problems.append(_format_finding(number, "", "line", f"not JSON ({exc})", _ONE_OBJECT))
        return None
    if not isinstance(value, dict):
        problems.append(_format_finding(number, "", "line", f"a JSON {_kind(value)}", _ONE_OBJECT))
        return None
    given = value.get("sku")
    sku = given if isinstance(given, str) else ""
    shared = _shared_override(value)
    if shared is not None:
        problems.append(
            _format_finding(
                number,
                sku,
                shared,
                "set for one channel",
                f"{shared.rsplit('.', 1)[1]} is the same on every channel: set it once, "
                "at the top of the line",
            )
        )
        return None
    try:
        return msgspec.convert(value, Product)
    except msgspec.ValidationError as exc:
        path, message = msgspec_path(str(exc), value, _failing_key)
        problems.append(
            _format_finding(number, sku, _dotted(path) or "line", message, "the catalog format")
        )
        return None


_ONE_OBJECT = "a catalog line is one JSON object"


def _failing_key(table: Mapping[str, Any]) -> str:
    """The key of a `channels` or variant `options` table whose value is refused."""
    for key, item in table.items():
        if isinstance(item, dict):
            try:
                msgspec.convert(item, ChannelContent)
            except msgspec.ValidationError:
                return str(key)
        elif not isinstance(item, str):
            return str(key)
    return "..."


def _shared_override(value: Mapping[str, Any]) -> str | None:
    """`channels.<id>.<field>` of the first shared field a channel tries to replace."""
    channels = value.get("channels")
    if not isinstance(channels, dict):
        return None
    for channel, override in channels.items():
        if isinstance(override, dict):
            for name in SHARED_FIELDS:
                if name in override:
                    return f"channels.{channel}.{name}"
    return None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else "boolean"


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if part == "...":  # a table key msgspec does not name and none was found at fault
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _format_finding(line: int, sku: str, where: str, problem: str, rule: str) -> Finding:
    return Finding("error", line, sku, where, problem, rule, CATALOG_FORMAT)
