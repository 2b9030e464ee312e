"""Reads a JSON-lines file of contract events and checks every event as the service would.

Each line is one event or one `batch`; a batch line is taken apart into its events,
which are packed again later to fit the server. Every event goes through the
service's own decoder, so a line refused here is one the service would dead-letter.
A refused line comes back as a `BadLine` naming it, and the rest of the file goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from invsync.events import (
    Batch,
    CatalogEvent,
    ClockTick,
    DecodeError,
    OrderEvent,
    OrderPlaced,
    ReserveRequest,
    StockEvent,
    StockTransfer,
    decode_events,
)
from invsync.service.subjects import Subjects

# What cannot sit in one subject token: it would split it, make it a wildcard,
# or end the subject.
_NOT_IN_A_TOKEN: Final = re.compile(r"[\s.*>]")
# Nats-Msg-Id is a header: a line break in it would end the header.
_NOT_IN_A_HEADER: Final = re.compile(r"[\x00-\x1f\x7f]")
_BATCH: Final = msgspec.json.Decoder(Batch)
#: The `<source>` of {prefix}.catalog.<source> for prices and promotions read from a file.
CATALOG_SOURCE: Final = "file"


@dataclass(frozen=True)
class Outgoing:
    """One good event, with the subject it is published on."""

    line: int
    subject: str
    event_id: str
    ts: datetime
    raw: bytes
    end: int  # file offset just past its line, for progress


@dataclass(frozen=True)
class BadLine:
    """A line, or one event of a batch line, that the service would refuse."""

    line: int
    error: str

    def describe(self, path: Path) -> str:
        return f"{path}:{self.line}: {self.error}"


class _Router:
    """The subject of each event: its location, its order's channel, or the catalog.

    Events after `order.placed` do not name a channel; they follow the order's
    `order.placed` when the file has it, else go to `fallback_channel`.
    """

    def __init__(self, subjects: Subjects, fallback_channel: str) -> None:
        self._subjects = subjects
        self._fallback = fallback_channel
        self._channels: dict[str, str] = {}

    def subject(self, event: StockEvent | OrderEvent | CatalogEvent) -> tuple[str, str]:
        """(subject, the token taken from the event) for one event."""
        if isinstance(event, CatalogEvent):
            return self._subjects.catalog_from(CATALOG_SOURCE), CATALOG_SOURCE
        if isinstance(event, StockTransfer):
            return self._subjects.stock_at(event.from_location), event.from_location
        if isinstance(event, OrderPlaced):
            self._channels[event.order_id] = event.channel
            return self._subjects.order_on(event.channel), event.channel
        if isinstance(event, StockEvent):
            return self._subjects.stock_at(event.location), event.location
        channel = self._channels.get(event.order_id, self._fallback)
        return self._subjects.order_on(channel), channel


def read_events(
    path: Path, subjects: Subjects, fallback_channel: str
) -> Iterator[Outgoing | BadLine]:
    """Every event of the file in order, or why its line is refused; blank lines skipped."""
    router = _Router(subjects, fallback_channel)
    offset = 0
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            offset += len(line)
            body = line.strip()
            if body:
                yield from _check_line(number, body, offset, router)


def _check_line(
    number: int, body: bytes, end: int, router: _Router
) -> Iterator[Outgoing | BadLine]:
    results = decode_events(body)
    try:
        inner: list[bytes] | None = [bytes(raw) for raw in _BATCH.decode(body).events]
    except (msgspec.DecodeError, UnicodeDecodeError):
        inner = None  # not a batch (or a bad one): decode_events gave one result
    raws = [body] if inner is None else inner
    for index, (result, raw) in enumerate(zip(results, raws, strict=True), start=1):
        where = "" if inner is None else f"event {index} of the batch: "
        if isinstance(result, DecodeError):
            yield BadLine(number, f"{where}{result.reason}: {result.error}")
        elif isinstance(result, ReserveRequest | ClockTick):
            # Only the service appends these, to its own log subjects.
            tag = type(result).__struct_config__.tag
            yield BadLine(number, f"{where}type {tag!r} is not accepted from producers")
        else:
            subject, token = router.subject(result)
            if not token or _NOT_IN_A_TOKEN.search(token):
                problem = f"{token!r} cannot be a NATS subject token (no spaces, '.', '*' or '>')"
                yield BadLine(number, where + problem)
            elif _NOT_IN_A_HEADER.search(result.event_id):
                yield BadLine(number, f"{where}event_id has a control character")
            else:
                yield Outgoing(number, subject, result.event_id, result.ts, raw, end)
