"""The service's clock: a `clock.tick` appended to the log every second.

Holds expire only when a tick in the log passes their `expires_at`, so a replay
of the log expires exactly the holds the live run expired. Ticks also carry the
push lags measured from acks (`push_lag.py`), so a replay sizes automatic
buffers as the live run did.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
from nats.errors import Error as NatsError

from invsync.events import ClockTick, encode_json
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.push_lag import PushLags
from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.service")


def make_tick(now: datetime, push_lag_s: dict[str, float] | None = None) -> ClockTick:
    return ClockTick(event_id=f"tick-{now.isoformat()}", ts=now, push_lag_s=push_lag_s or None)


async def run_clock(
    writer: LogWriter, subjects: Subjects, interval_s: float, push_lags: PushLags | None = None
) -> None:
    """Append ticks until cancelled; a failed append is logged and the next one tried
    (a fenced one demotes the process, which cancels this clock).
    A tick carries the push lags measured since the last one that changed."""
    while True:
        await anyio.sleep(interval_s)
        lags = push_lags.pending() if push_lags is not None else {}
        try:
            await writer.append(subjects.clock_log, encode_json(make_tick(datetime.now(UTC), lags)))
        except Fenced:
            return  # no longer the leader: the new one keeps time
        except NatsError as exc:
            log.warning("clock tick not appended: %s", exc)
            continue
        if push_lags is not None:
            push_lags.written(lags)
