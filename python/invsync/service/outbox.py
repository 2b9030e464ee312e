"""What the applier decided that must go out, collected until the next flush.

The applier never does I/O: it appends here, and the publisher empties it in
one burst per flush interval, after the quantities the same events caused.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime

from invsync.events import Alert, AuditRecord, DeadLetter, Vote


def dead_letter(subject: str, payload: bytes, error: str) -> DeadLetter:
    """The DLQ record of a refused message, its body kept whole for inspection or replay."""
    return DeadLetter(
        subject=subject,
        error=error,
        payload_b64=base64.b64encode(payload).decode("ascii"),
        ts=datetime.now(UTC),
    )


@dataclass
class Outbox:
    # (location, encoded route message), as the engine writes them.
    routes: list[tuple[str, bytes]] = field(default_factory=list)
    # Routes the engine wrote as NATS PUB frames (see Engine.apply_all).
    route_frames: list[bytes] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # (reply inbox, encoded body): answers to requests decided in log order.
    replies: list[tuple[str, bytes]] = field(default_factory=list)
    # This partition's votes on reservations spanning partitions, for the log.
    votes: list[Vote] = field(default_factory=list)

    def take_votes(self) -> list[Vote]:
        votes, self.votes = self.votes, []
        return votes

    def take(self) -> Outbox:
        """Hand over everything collected so far and start empty."""
        taken = Outbox(
            self.routes, self.route_frames, self.alerts, self.audit, self.dead_letters, self.replies
        )
        self.routes, self.route_frames, self.alerts = [], [], []
        self.audit, self.dead_letters, self.replies = [], [], []
        return taken
