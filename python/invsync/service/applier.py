"""Applying the log to the engine, one fetched batch at a time, in stream order.

Producer events (`{p}.stock.>`, `{p}.order.>`, `{p}.catalog.>`) are decoded as a batch and each
event is applied on its own, so one bad event is dead-lettered alone. The
service's own log entries (`{p}.log.>`: reservations, clock ticks, policy
reloads) are applied where they sit in the stream, which is what makes a replay
decide exactly as the live run did.

No log entry stops the loop, live or on replay. An entry the core refuses (an
event, a reservation, a policy, whatever the cause) is skipped with a dead
letter, an alert `log_entry_refused` and an audit record saying why; replay
meets the same entry in the same state and skips it again. An unexpected
exception is a bug: the entry is skipped the same way, alerted as
`internal_error` and counted in `invsync_internal_errors_total{stage}`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, cast

import msgspec

from invsync.errors import BadInputError, CoreBugError, InvsyncError, ReportedElsewhereError
from invsync.events import (
    INBOUND_TYPES,
    Alert,
    AlertKind,
    AuditRecord,
    ClockTick,
    DecodeError,
    LoggedReservation,
    ReservationGroup,
    ReserveRequest,
    Vote,
    decode_events,
    encode_json,
)
from invsync.policy import Policy
from invsync.service.consumer import LogEntry
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox, dead_letter
from invsync.service.subjects import (
    CONTENT_TYPE_HEADER,
    MSGPACK,
    REPLY_HEADER,
    REQUESTED_BY_HEADER,
    Subjects,
)

if TYPE_CHECKING:
    from invsync.engine import AppliedBatch, AppliedEvent, Engine

log = logging.getLogger("invsync.service")

POLICY_SOURCE_HEADER = "Invsync-Policy-Source"
_SERVICE_ONLY: frozenset[type] = frozenset({ClockTick, ReserveRequest})
# Tag per Struct class, looked up once per event instead of read from its config.
_TAGS: dict[type, str] = {cls: str(cls.__struct_config__.tag) for cls in INBOUND_TYPES}
_GROUP_DECODER = msgspec.json.Decoder(ReservationGroup)
_VOTE_DECODER = msgspec.json.Decoder(Vote)


def _reply_inbox(msg: LogEntry) -> str | None:
    return msg.headers.get(REPLY_HEADER) if msg.headers is not None else None


def _entry_name(msg: LogEntry) -> str:
    """A log entry without an event id of its own, named by where it sits in the stream."""
    return f"{msg.subject}@{msg.stream_seq}"


class Applier:
    """Turns log messages into engine calls and their effects into the outbox."""

    def __init__(
        self,
        engine: Engine,
        subjects: Subjects,
        metrics: Metrics,
        outbox: Outbox,
        *,
        audit: bool = True,
        route_frames: bool = False,
        partition: int = 0,
        partitions: int = 1,
        on_epoch_entry: Callable[[LogEntry], None] | None = None,
        publishing: Callable[[], bool] = lambda: True,
    ) -> None:
        """`on_epoch_entry` learns of every leader's epoch entry where it sits in the
        log (leadership.py); they change no state. `publishing()`: whether what this
        process collects goes out. A follower's output is dropped at its flush, so
        the routes, alerts, audit records and replies of its hot path are not built
        (its votes are: promoted, it appends them)."""
        self.engine = engine
        self._publishing = publishing
        # Partitioned: reservations are shared out (`Engine.reserve_share`) and the
        # votes on those spanning partitions come back through the log.
        self._partitioned = partitions > 1
        # Bad input about no partition's SKU (an undecodable message, a bad order as a
        # whole) is refused by every partition and dead-lettered by partition 0 alone.
        self._reports_whole_events = partition == 0
        self._on_epoch_entry = on_epoch_entry
        self._leader_prefix = subjects.leader_log_prefix
        self.metrics = metrics
        self.outbox = outbox
        self.audit = audit
        # With a publisher that writes frames, routes come from the engine as PUB frames.
        self._route_prefix = f"{subjects.prefix}.route." if route_frames else None
        self._producer_prefixes = (
            f"{subjects.prefix}.stock.",
            f"{subjects.prefix}.order.",
            f"{subjects.prefix}.catalog.",
        )
        # Where an order event that waited for its order is dead-lettered: the engine
        # keeps the event, not its subject, and order subjects carry nothing it needs.
        self._parked_subject = f"{subjects.prefix}.order.parked"
        self._reserve_prefix = subjects.reserve_log_prefix
        self._clock = subjects.clock_log
        self._policy = subjects.policy_log
        self._vote = subjects.vote_log

    def apply_batch(self, msgs: list[LogEntry]) -> None:
        """Apply one fetched batch in order; never raises for anything in it."""
        started = time.perf_counter()
        counts: dict[str, int] = {}
        producer_prefixes = self._producer_prefixes
        run: list[LogEntry] = []  # producer messages, applied together in one core call
        for msg in msgs:
            if msg.subject.startswith(producer_prefixes):
                run.append(msg)
                continue
            if run:
                self._apply_producer_run(run, counts)
                run = []
            try:
                self._apply_log_entry(msg, counts)
            except Exception as exc:  # noqa: BLE001 (a bug: skipped, logged by _internal)
                self._answer_error(_reply_inbox(msg), "internal error")
                self._internal("log", msg.subject, msg.data, _entry_name(msg), "log", exc)
        if run:
            self._apply_producer_run(run, counts)
        if self._partitioned:
            self._answer_cross()
        self.metrics.apply_batch.observe(time.perf_counter() - started)
        for event_type, count in counts.items():
            self.metrics.events.labels(event_type).inc(count)

    def _apply_log_entry(self, msg: LogEntry, counts: dict[str, int]) -> None:
        """One of the service's own entries: a reservation group, a tick, a policy or an epoch."""
        subject = msg.subject
        if subject.startswith(self._reserve_prefix):
            self._apply_reserve(msg)
            counts["reserve"] = counts.get("reserve", 0) + 1
        elif subject == self._clock:
            self._apply_tick(msg, counts)
        elif subject == self._policy:
            self._apply_policy(msg)
            counts["policy"] = counts.get("policy", 0) + 1
        elif subject == self._vote:
            self._apply_vote(msg)
            counts["vote"] = counts.get("vote", 0) + 1
        elif subject.startswith(self._leader_prefix):
            if self._on_epoch_entry is not None:
                self._on_epoch_entry(msg)
        else:
            self._dead_letter(msg.subject, msg.data, "bad_input", "no handler for subject")

    def _apply_producer_run(self, msgs: list[LogEntry], counts: dict[str, int]) -> None:
        """Producer messages together; after a bug, one at a time so only the culprit is
        skipped (events already applied come back as duplicates and change nothing)."""
        try:
            self._apply_producer_messages(msgs, counts)
        except Exception as exc:  # noqa: BLE001 (a bug: refusals never raise)
            if len(msgs) > 1:
                for msg in msgs:
                    self._apply_producer_run([msg], counts)
                return
            msg = msgs[0]
            self._internal("events", msg.subject, msg.data, _entry_name(msg), "message", exc)

    def _apply_producer_messages(self, msgs: list[LogEntry], counts: dict[str, int]) -> None:
        """Decodes each message; applies every good event of them in one engine call."""
        events: list[AppliedEvent] = []
        subjects: list[str] = []
        for msg in msgs:
            headers = msg.headers
            msgpack = headers is not None and headers.get(CONTENT_TYPE_HEADER) == MSGPACK
            for event in decode_events(msg.data, msgpack=msgpack):
                kind = type(event)
                if kind is DecodeError:
                    if self._reports_whole_events:
                        bad = cast(DecodeError, event)
                        self._dead_letter(msg.subject, bad.raw, bad.reason, bad.error)
                elif kind in _SERVICE_ONLY:
                    if not self._reports_whole_events:
                        continue
                    # Only the service appends these, to its own log subjects.
                    self._dead_letter(
                        msg.subject,
                        encode_json(event),
                        "invalid",
                        f"type {_TAGS[kind]!r} is not accepted from producers",
                    )
                else:
                    events.append(cast("AppliedEvent", event))
                    subjects.append(msg.subject)
        self._apply_events(subjects, events, counts)

    def _apply_events(
        self, subjects: list[str], events: list[AppliedEvent], counts: dict[str, int]
    ) -> None:
        if not events:
            return
        try:
            # An audit trail goes out only from a leader that publishes one.
            audit = self.audit and self._publishing()
            done = self.engine.apply_all(events, self._route_prefix, audit)
        except Exception as exc:  # the loop must outlive any engine bug
            if len(events) == 1:
                event = events[0]
                self._internal(
                    "events",
                    subjects[0],
                    encode_json(event),
                    event.event_id,
                    _TAGS[type(event)],
                    exc,
                )
                return
            log.exception("engine failed on a batch of %d events: applying one by one", len(events))
            for subject, event in zip(subjects, events, strict=True):
                self._apply_events([subject], [event], counts)
            return
        applied = Counter(map(type, events))
        for i, refusal in done.refused:
            event = events[i]
            applied[type(event)] -= 1
            if isinstance(refusal, ReportedElsewhereError):
                continue
            payload, tag = encode_json(event), _TAGS[type(event)]
            if isinstance(refusal, BadInputError):
                self._skip(subjects[i], payload, event.event_id, tag, str(refusal), "bad_input")
            else:
                self._internal("events", subjects[i], payload, event.event_id, tag, refusal)
        for kind, count in applied.items():
            tag = _TAGS[kind]
            counts[tag] = counts.get(tag, 0) + count
        self._collect(events, done)

    def _collect(self, events: list[AppliedEvent], done: AppliedBatch) -> None:
        for backorder in done.backorders:
            self.metrics.oversold.labels(backorder.channel).inc(backorder.qty)
        for dead in done.dead_letters:
            self._dead_letter(self._parked_subject, dead.event_json, dead.reason, dead.error)
        if not self._publishing():
            return
        outbox = self.outbox
        outbox.routes += done.routes
        if done.route_frames:
            outbox.route_frames.append(done.route_frames)
        outbox.alerts += done.alerts
        if not self.audit:
            return
        for i, changes in groupby(done.audit, key=itemgetter(0)):
            event = events[i]
            outbox.audit.append(
                AuditRecord(
                    event_id=event.event_id,
                    event_type=_TAGS[type(event)],
                    changes=[change for _, change in changes],
                    actor=getattr(event, "actor", None),
                    reason=getattr(event, "reason", None),
                    ts=event.ts,
                )
            )

    def _apply_reserve(self, msg: LogEntry) -> None:
        """Decides each request of a logged group in order and answers its inbox."""
        try:
            group = _GROUP_DECODER.decode(msg.data)
        except msgspec.DecodeError as exc:
            self._skip(msg.subject, msg.data, _entry_name(msg), "reserve", str(exc), "invalid")
            return
        for entry in group.requests:
            self._decide(msg.subject, entry)

    def _decide(self, subject: str, entry: LoggedReservation) -> None:
        request, inbox = entry.request, entry.reply
        try:
            if self._partitioned:
                share = self.engine.reserve_share(request, inbox)
                if share.vote is not None:
                    self.outbox.votes.append(share.vote)
                if share.reply is None:
                    return  # another partition's, or decided by the votes
                reply = share.reply
            else:
                reply = self.engine.reserve(request)
        except ReportedElsewhereError:
            return  # bad as a whole: the request's coordinator answers and reports it
        except BadInputError as exc:
            self._answer_error(inbox, str(exc))
            self._skip(
                subject, encode_json(request), request.request_id, "reserve", str(exc), "bad_input"
            )
            return
        except Exception as exc:  # noqa: BLE001 (a bug: _internal logs the traceback)
            self._answer_error(inbox, "internal error")
            self._internal("log", subject, encode_json(request), request.request_id, "reserve", exc)
            return
        result = "granted" if reply["ok"] else "refused"
        self.metrics.reservations.labels(request.channel, result).inc()
        if inbox and self._publishing():
            self.outbox.replies.append((inbox, encode_json(reply)))

    def _apply_vote(self, msg: LogEntry) -> None:
        try:
            vote = _VOTE_DECODER.decode(msg.data)
            effects = self.engine.apply_vote(vote)
        except (msgspec.DecodeError, BadInputError) as exc:
            self._skip(msg.subject, msg.data, _entry_name(msg), "vote", str(exc), "invalid")
            return
        self.outbox.alerts.extend(effects.alerts)

    def _answer_cross(self) -> None:
        """Answers the requests spanning partitions that this partition coordinates and
        the log just decided."""
        for _, inbox, channel, reply in self.engine.take_cross_answers():
            result = "granted" if reply["ok"] else "refused"
            self.metrics.reservations.labels(channel, result).inc()
            if inbox and self._publishing():
                self.outbox.replies.append((inbox, encode_json(reply)))

    def _apply_tick(self, msg: LogEntry, counts: dict[str, int]) -> None:
        ticks: list[AppliedEvent] = []
        for event in decode_events(msg.data):
            if isinstance(event, ClockTick):
                ticks.append(event)
            else:
                self._skip(
                    msg.subject,
                    msg.data,
                    _entry_name(msg),
                    "clock.tick",
                    "expected a clock.tick",
                    "invalid",
                )
        self._apply_events([msg.subject] * len(ticks), ticks, counts)

    def _apply_policy(self, msg: LogEntry) -> None:
        inbox = _reply_inbox(msg)
        source = (msg.headers or {}).get(POLICY_SOURCE_HEADER, self._policy)
        try:
            policy = Policy.from_toml(msg.data.decode("utf-8"), source)
            effects = self.engine.set_policy(policy)
        except CoreBugError:
            raise
        except (InvsyncError, UnicodeDecodeError) as exc:
            # Refused by the file's judge or, against the state it meets, by the core.
            log.error("policy %s skipped where it sits in the log: %s", source, exc)
            self._answer_error(inbox, str(exc))
            self._skip(msg.subject, msg.data, _entry_name(msg), "policy", str(exc), "invalid")
            return
        requested_by = (msg.headers or {}).get(REQUESTED_BY_HEADER, "not recorded")
        log.info("policy %s applied, requested by %s", source, requested_by)
        self.outbox.alerts.extend(effects.alerts)
        if inbox:
            self.outbox.replies.append((inbox, encode_json({"ok": True, "source": source})))

    def _answer_error(self, inbox: str | None, error: str) -> None:
        if inbox:
            self.outbox.replies.append((inbox, encode_json({"ok": False, "error": error})))

    def _skip(
        self,
        subject: str,
        payload: bytes,
        entry_id: str,
        entry_type: str,
        error: str,
        dead_letter_reason: str,
        alert: AlertKind = "log_entry_refused",
    ) -> None:
        """A log entry left out: a dead letter keeps it, an alert and an audit record say why."""
        now = datetime.now(UTC)
        self._dead_letter(subject, payload, dead_letter_reason, error)
        self.outbox.alerts.append(
            Alert(alert, None, None, f"{entry_type} {entry_id} on {subject} skipped: {error}", now)
        )
        if self.audit:
            self.outbox.audit.append(
                AuditRecord(
                    event_id=entry_id,
                    event_type=entry_type,
                    changes=[],
                    actor=None,
                    reason=None,
                    ts=now,
                    refused=error,
                )
            )

    def _internal(
        self,
        stage: str,
        subject: str,
        payload: bytes,
        entry_id: str,
        entry_type: str,
        exc: BaseException,
    ) -> None:
        """An unexpected exception (a bug): logged with its traceback, counted, skipped."""
        log.error("internal error on %s %s", subject, entry_id, exc_info=exc)
        self.metrics.internal_errors.labels(stage).inc()
        self._skip(subject, payload, entry_id, entry_type, repr(exc), "internal", "internal_error")

    def _dead_letter(self, subject: str, payload: bytes, reason: str, error: str) -> None:
        self.metrics.dead_letters.labels(reason).inc()
        if self._publishing():
            self.outbox.dead_letters.append(dead_letter(subject, payload, error))
