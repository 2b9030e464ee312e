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
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol, TextIO

import anyio
import anyio.abc
import msgspec
from nats.js.client import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE

from invsync.errors import ListingError
from invsync.gateway.platforms.base import Listing

__all__ = [
    "DEFAULT_CONDITION",
    "CsvListings",
    "KvListings",
    "ListingMap",
    "ListingSource",
    "listing_from_fields",
    "read_listing_csv",
]

log = logging.getLogger("invsync.gateway")

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


Key = tuple[str, str]


class ListingMap:
    """One channel's current listing map. A reload or a KV change replaces entries and
    reports which (sku, condition) keys now point somewhere new, so the connector can
    push their latest quantity there."""

    def __init__(self) -> None:
        self._by_key: dict[Key, Listing] = {}

    def get(self, sku: str, condition: str) -> Listing | None:
        return self._by_key.get((sku, condition))

    def listed(self) -> list[Key]:
        return list(self._by_key)

    def replace(self, listings: Sequence[Listing]) -> set[Key]:
        """Take a whole new map (a reloaded CSV); returns the keys added or re-pointed."""
        fresh = {(listing.sku, listing.condition): listing for listing in listings}
        changed = {key for key, listing in fresh.items() if self._by_key.get(key) != listing}
        self._by_key = fresh
        return changed

    def put(self, listing: Listing) -> set[Key]:
        """Add or re-point one entry (a KV put); returns its key if it changed."""
        key = (listing.sku, listing.condition)
        if self._by_key.get(key) == listing:
            return set()
        self._by_key[key] = listing
        return {key}

    def remove(self, key: Key) -> None:
        self._by_key.pop(key, None)


# Told the keys a change added or re-pointed.
MapChanged = Callable[[set[Key]], None]


class ListingSource(Protocol):
    """Where a channel's map comes from. `run` fills `into`, reports started once the
    whole map is loaded (raising instead if it cannot be), then follows changes until
    cancelled, calling `changed` with the keys each one added or re-pointed."""

    async def run(
        self,
        into: ListingMap,
        changed: MapChanged,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None: ...


class CsvListings:
    """A listing CSV, re-read when its modification time or size changes. A reload
    that fails keeps the map as it was and logs the file, line and column to fix."""

    def __init__(self, path: Path, id_fields: Sequence[str], poll_s: float = 2.0) -> None:
        self.path = path
        self.id_fields = id_fields
        self.poll_s = poll_s

    async def run(
        self,
        into: ListingMap,
        changed: MapChanged,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        seen = self._stamp()
        into.replace(read_listing_csv(self.path, self.id_fields))
        task_status.started()
        while True:
            await anyio.sleep(self.poll_s)
            stamp = self._stamp()
            if stamp == seen:
                continue
            seen = stamp
            try:
                listings = read_listing_csv(self.path, self.id_fields)
            except ListingError as exc:
                log.warning("listing map not reloaded, the old one stays: %s", exc)
                continue
            log.info("listing map reloaded from %s: %d listings", self.path, len(listings))
            changed(into.replace(listings))

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size


class KvListings:
    """A JetStream KV bucket: keys `<channel>.<anything>`, values JSON objects
    `{"sku", "condition", <the profile's id fields>}`. A put adds or re-points a
    listing, a delete removes it; a value that cannot be read is logged and skipped."""

    def __init__(
        self, js: JetStreamContext, bucket: str, channel: str, id_fields: Sequence[str]
    ) -> None:
        self.js = js
        self.bucket = bucket
        self.channel = channel
        self.id_fields = id_fields

    async def run(
        self,
        into: ListingMap,
        changed: MapChanged,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        kv = await self.js.key_value(self.bucket)
        watcher = await kv.watch(f"{self.channel}.>")
        keys: dict[str, Key] = {}
        started = False
        try:
            async for entry in watcher:
                if entry is None:  # the bucket's current entries are all in
                    task_status.started()
                    started = True
                    continue
                if entry.operation in (KV_DEL, KV_PURGE):
                    gone = keys.pop(entry.key, None)
                    if gone is not None:
                        into.remove(gone)
                    continue
                listing = self._decode(entry.key, entry.value or b"")
                if listing is None:
                    continue
                keys[entry.key] = (listing.sku, listing.condition)
                news = into.put(listing)
                if started and news:
                    changed(news)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    def _decode(self, key: str, value: bytes) -> Listing | None:
        try:
            fields = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            log.warning("KV %s key %s skipped: not JSON (%s)", self.bucket, key, exc)
            return None
        if not isinstance(fields, dict):
            log.warning("KV %s key %s skipped: not a JSON object", self.bucket, key)
            return None
        try:
            return listing_from_fields(fields, self.id_fields)
        except _BadField as exc:
            log.warning("KV %s key %s skipped: %s %s", self.bucket, key, exc.column, exc.message)
        return None
