"""Packs checked events into NATS messages that the server and the stream accept.

Consecutive events for one subject share a `batch` message up to a count and a
byte limit; an event alone is sent as itself. Each message gets a `Nats-Msg-Id`
that is the same on every run over the same file: the event's own `event_id`, or
for a batch a digest of its subject and events. JetStream then stores a re-sent
message once (within the stream's duplicate window).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

import msgspec

from invsync.bulk.lines import BadLine, Outgoing
from invsync.events import Batch, encode_json

MSG_ID_HEADER: Final = "Nats-Msg-Id"
# "NATS/1.0\r\n", "Nats-Msg-Id: " + id + "\r\n", "\r\n", with room to spare: the
# server counts headers against max_payload, the stream against max_msg_size.
HEADER_BYTES: Final = 64
_DIGEST_HEX: Final = 32
_LONGEST_TS: Final = datetime(
    9999, 12, 31, 23, 59, 59, 999999, timezone(-timedelta(hours=23, minutes=59))
)
_BATCH_ID_LENGTH: Final = len("batch-") + _DIGEST_HEX
# A batch of no events with the longest id and time: what every batch adds to its events.
BATCH_OVERHEAD: Final = (
    len(encode_json(Batch(event_id="b" * _BATCH_ID_LENGTH, ts=_LONGEST_TS, events=[])))
    + _BATCH_ID_LENGTH
    + HEADER_BYTES
)


@dataclass(frozen=True)
class Message:
    """One NATS message to store: an event alone, or a batch of consecutive ones."""

    subject: str
    msg_id: str
    payload: bytes
    events: int
    first_line: int
    last_line: int
    end: int  # file offset just past its last line


def _alone_size(event: Outgoing) -> int:
    return len(event.raw) + len(event.event_id) + HEADER_BYTES


def _message(group: list[Outgoing]) -> Message:
    first, last = group[0], group[-1]
    if len(group) == 1:
        return Message(
            first.subject, first.event_id, first.raw, 1, first.line, first.line, last.end
        )
    digest = hashlib.sha256(first.subject.encode())
    for event in group:
        digest.update(b"\n" + event.raw)
    msg_id = "batch-" + digest.hexdigest()[:_DIGEST_HEX]
    batch = Batch(
        event_id=msg_id,
        ts=max(event.ts for event in group),
        events=[msgspec.Raw(event.raw) for event in group],
    )
    return Message(
        first.subject, msg_id, encode_json(batch), len(group), first.line, last.line, last.end
    )


def pack(
    items: Iterable[Outgoing | BadLine], max_bytes: int, max_events: int
) -> Iterator[Message | BadLine]:
    """Messages in file order, each at most `max_bytes` with headers and `max_events`
    events; an event too big to send alone becomes a `BadLine`, others pass through."""
    group: list[Outgoing] = []
    size = 0
    for item in items:
        if isinstance(item, BadLine):
            yield item
            continue
        if _alone_size(item) > max_bytes:
            yield BadLine(
                item.line,
                f"{len(item.raw):,} bytes: over the {max_bytes:,} bytes that one message"
                " may carry on this server and stream",
            )
            continue
        joins = (
            group
            and item.subject == group[0].subject
            and len(group) < max_events
            and size + len(item.raw) + 1 <= max_bytes
        )
        if group and not joins:
            yield _message(group)
            group = []
        if not group:
            size = BATCH_OVERHEAD
        group.append(item)
        size += len(item.raw) + 1  # and a comma
    if group:
        yield _message(group)
