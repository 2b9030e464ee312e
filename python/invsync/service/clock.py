"""The service's clock: a `clock.tick` appended to the log every second.

Holds expire only when a tick in the log passes their `expires_at`, so a replay
of the log expires exactly the holds the live run expired.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from invsync.events import ClockTick, encode_json
from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.service")


def make_tick(now: datetime) -> ClockTick:
    return ClockTick(event_id=f"tick-{now.isoformat()}", ts=now)


async def run_clock(js: JetStreamContext, subjects: Subjects, interval_s: float) -> None:
    """Append ticks until cancelled; a failed append is logged and the next one tried."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await js.publish(subjects.clock_log, encode_json(make_tick(datetime.now(UTC))))
        except NatsError as exc:
            log.warning("clock tick not appended: %s", exc)
