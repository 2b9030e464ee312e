"""Every append of the service to its log goes through one `LogWriter`: the fence.

Once this process leads its partition, each append carries
`Nats-Expected-Last-Subject-Sequence: <its epoch entry's sequence>` with
`Nats-Expected-Last-Subject-Sequence-Subject: <prefix>.log.leader.<k>`: the
server stores the entry only while the partition's newest epoch entry is still
ours. After a newer leader appended its epoch entry, nats-server refuses every
write of ours with JetStream error 10071 (wrong last sequence); the writer then
demotes the process and raises `Fenced`, so the caller tells its client nothing
(the new leader answers a retry). The check is the server's, not a timer's: a
paused process that wakes up after its lease ran out cannot add to the log.

In a NATS cluster the stream's leader node checks an expected last subject
sequence before it proposes the write to its peers, and while one such write is
in flight it refuses any other checked against the same subject (error 10164,
no sequence: it cannot tell yet). Every fenced write of a partition is checked
against its epoch subject, so the writer sends them one at a time; a 10164 is
then another process's write in flight (a deposed leader's, a rival's epoch
entry) and is retried until that write is decided, never taken for the fence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NotFoundError

log = logging.getLogger("invsync.service")

# JetStream's error code for a failed expected-last-sequence check (JSStreamWrongLastSequenceErrF).
WRONG_LAST_SEQUENCE = 10071
# A clustered stream's refusal while another write checked against the same subject
# is in flight (JSStreamWrongLastSequenceConstantErr): undecided, so retried.
CHECK_IN_FLIGHT = 10164
# A raft round on loopback or a LAN is well under a millisecond to a few; a write
# still undecided after this many retries is reported as the error it is.
IN_FLIGHT_RETRIES = 50
IN_FLIGHT_RETRY_S = 0.002
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"


class Fenced(Exception):
    """The server refused a write: another leader's epoch entry is newer than ours."""


def refused_by_fence(exc: APIError) -> bool:
    return exc.err_code == WRONG_LAST_SEQUENCE


class LogWriter:
    """Appends to the log, fenced by the partition's epoch entry once `fence_at` is called."""

    def __init__(self, js: JetStreamContext, stream: str) -> None:
        self._js = js
        self._stream = stream
        self._fence: dict[str, str] | None = None
        self._on_fenced: Callable[[], None] = lambda: None
        # One checked write in flight per process (see the module's docstring).
        self._one_at_a_time = anyio.Lock()

    def on_fenced(self, demote: Callable[[], None]) -> None:
        """`demote()` runs (synchronously) when the server refuses a fenced write."""
        self._on_fenced = demote

    def fence_at(self, leader_subject: str, epoch_entry_sequence: int) -> None:
        """From now on every append holds only while `epoch_entry_sequence` is the
        newest entry on `leader_subject`. A demoted process keeps its old fence, so
        anything it still tries to write is refused."""
        self._fence = {
            EXPECTED_LAST_SUBJECT_SEQUENCE: str(epoch_entry_sequence),
            EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: leader_subject,
        }

    async def append(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Append one entry; raises `Fenced` (after demoting) when the server refuses it."""
        if self._fence is None:
            return await self._js.publish(subject, payload, headers=headers)
        headers = {**headers, **self._fence} if headers else self._fence
        try:
            return await self._checked(subject, payload, headers)
        except APIError as exc:
            if self._fence is None or not refused_by_fence(exc):
                raise
            log.warning("log append on %s refused: a newer leader is fenced in", subject)
            self._on_fenced()
            raise Fenced(subject) from exc

    async def append_epoch_entry(
        self, leader_subject: str, payload: bytes, after_sequence: int
    ) -> int | None:
        """Append an epoch entry if the newest one on `leader_subject` is at
        `after_sequence` (0: none yet); its stream sequence, or None when another is newer."""
        try:
            ack = await self._checked(
                leader_subject,
                payload,
                {EXPECTED_LAST_SUBJECT_SEQUENCE: str(after_sequence)},
            )
        except APIError as exc:
            if refused_by_fence(exc):
                return None
            raise
        return ack.seq

    async def _checked(self, subject: str, payload: bytes, headers: dict[str, str]) -> PubAck:
        """A write checked against a subject's last sequence: alone in flight, and
        retried while another process's checked write is undecided."""
        async with self._one_at_a_time:
            for _ in range(IN_FLIGHT_RETRIES):
                try:
                    return await self._js.publish(subject, payload, headers=headers)
                except APIError as exc:
                    if exc.err_code != CHECK_IN_FLIGHT:
                        raise
                await anyio.sleep(IN_FLIGHT_RETRY_S)
            return await self._js.publish(subject, payload, headers=headers)

    async def last_sequence_on(self, subject: str) -> int:
        """The stream sequence of the newest entry on `subject`; 0 when there is none."""
        try:
            return (await self._js.get_last_msg(self._stream, subject)).seq or 0
        except NotFoundError:
            return 0
