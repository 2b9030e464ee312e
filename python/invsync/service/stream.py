"""The one JetStream stream that is the service's log: create it, or check it."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.service")


def stream_config(name: str, subjects: Subjects, duplicate_window_s: float) -> StreamConfig:
    """File-backed, limits-retained, de-duplicated on Nats-Msg-Id (producers use event_id)."""
    return StreamConfig(
        name=name,
        subjects=subjects.stream_subjects,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=duplicate_window_s,
        max_msg_size=8 * 1024 * 1024,
    )


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: Subjects, duplicate_window_s: float
) -> None:
    """Create the stream, or add missing subjects to an existing one (never narrow it)."""
    wanted = stream_config(name, subjects, duplicate_window_s)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(wanted)
        log.info("created stream %s for %s", name, ", ".join(subjects.stream_subjects))
        return
    have = list(info.config.subjects or [])
    missing = [s for s in subjects.stream_subjects if s not in have]
    if missing:
        info.config.subjects = have + missing
        await js.update_stream(info.config)
        log.info("stream %s: added subjects %s", name, ", ".join(missing))
