"""The listing map: (sku, condition) -> the platform's ids for that listing.

It comes from a CSV file next to the channels file, header
`sku,condition,<the profile's id_fields...>` (an empty condition is `new`), or from a
JetStream KV bucket whose values are JSON objects `{"sku", "condition", <id fields>}`.
Each platform names the id columns it needs (Shopify `inventory_item_id`,
`location_id`; Amazon `seller_sku`; eBay `ebay_sku`, `offer_id`), so a platform with
other ids (Walmart's ship node, TikTok's warehouse) fits without change here.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, TextIO

from invsync.errors import ListingError
from invsync.gateway.platforms.base import Listing

__all__ = ["DEFAULT_CONDITION", "listing_from_fields", "read_listing_csv"]

DEFAULT_CONDITION: Final = "new"
_KEY_COLUMNS: Final = ("sku", "condition")


class _BadField(ValueError):
    """One field of one entry refused; the caller adds where the entry came from."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def listing_from_fields(fields: Mapping[str, object], id_fields: Sequence[str]) -> Listing:
    """One listing from its named fields (a CSV row or a KV value). Raises ValueError
    (a `_BadField` carrying the column) when a field is missing, not text, or empty."""
    sku = _field(fields, "sku")
    condition = fields.get("condition", "")
    if not isinstance(condition, str):
        raise _BadField("condition", "must be text")
    ids = {name: _field(fields, name) for name in id_fields}
    return Listing(sku=sku, condition=condition.strip() or DEFAULT_CONDITION, ids=ids)


def _field(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise _BadField(name, "missing")
    if not isinstance(value, str) or not value.strip():
        raise _BadField(name, "must be non-empty text")
    return value.strip()


def read_listing_csv(path: Path, id_fields: Sequence[str]) -> list[Listing]:
    """Every listing in a listing CSV, in file order. Raises ListingError naming the
    file, the line and the column: an unreadable file, a header without a needed
    column or with an unknown one (most often a typo), an empty id, a (sku, condition)
    given twice, or two rows sending to the same platform ids."""
    source = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(source, handle, id_fields)
    except (OSError, UnicodeDecodeError) as exc:
        raise ListingError(source, 0, "file", f"cannot read: {exc}") from None
    except csv.Error as exc:
        raise ListingError(source, 0, "file", f"not valid CSV: {exc}") from None


def _read_rows(source: str, handle: TextIO, id_fields: Sequence[str]) -> list[Listing]:
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    wanted = (*_KEY_COLUMNS, *id_fields)
    for name in wanted:
        if name not in header:
            raise ListingError(source, 1, name, f"missing column; the header is {','.join(wanted)}")
    for name in header:
        if name not in wanted:
            raise ListingError(source, 1, name, f"unknown column; the header is {','.join(wanted)}")
        if header.count(name) > 1:
            raise ListingError(source, 1, name, "column appears twice")
    listings: list[Listing] = []
    line_of_key: dict[tuple[str, str], int] = {}
    line_of_ids: dict[tuple[str, ...], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ListingError(
                source, line, "row", f"{len(row)} fields where the header has {len(header)}"
            )
        try:
            listing = listing_from_fields(dict(zip(header, row, strict=True)), id_fields)
        except _BadField as bad:
            raise ListingError(source, line, bad.column, bad.message) from None
        key = (listing.sku, listing.condition)
        if key in line_of_key:
            raise ListingError(
                source,
                line,
                "sku",
                f"{key[0]} ({key[1]}) already mapped on line {line_of_key[key]}",
            )
        ids = tuple(listing.ids[name] for name in id_fields)
        if id_fields and ids in line_of_ids:
            raise ListingError(
                source,
                line,
                id_fields[0],
                f"the same platform ids as line {line_of_ids[ids]}: two SKUs would overwrite "
                "one listing",
            )
        line_of_key[key] = line
        line_of_ids[ids] = line
        listings.append(listing)
    return listings
