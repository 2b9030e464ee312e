"""`invsync publish`: a JSON-lines file of contract events into the service's stream."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "publish a JSON-lines file of stock and order events (a WMS export, an OMS backlog)"

DEFAULT_BATCH_EVENTS = 1_000
DEFAULT_WINDOW = 256
DEFAULT_ACK_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 0.2
# A dropped connection is retried this often before the run gives up (it can be re-run).
RECONNECT_ATTEMPTS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.jsonl", help="one event or batch a line")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    parser.add_argument("--prefix", default="inv", help="subject prefix of the service")
    parser.add_argument(
        "--batch-events",
        type=int,
        default=DEFAULT_BATCH_EVENTS,
        help="most events per message (messages also stay under the server's size limit)",
    )
    parser.add_argument(
        "--channel",
        default="unknown",
        help="subject token for order events whose order.placed is not in the file",
    )
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="most messages awaiting their ack"
    )
    parser.add_argument(
        "--ack-timeout",
        type=float,
        default=DEFAULT_ACK_TIMEOUT_S,
        help="seconds to wait for JetStream to acknowledge a message",
    )
    add_credential_arguments(parser, "producer")


def run(args: argparse.Namespace) -> int:
    import sys

    import anyio

    from invsync.bulk.sender import PublishError

    if not args.file.is_file():
        print(f"invsync publish: {args.file}: no such file", file=sys.stderr)
        return 2
    if args.batch_events < 1 or args.window < 1:
        print("invsync publish: --batch-events and --window must be at least 1", file=sys.stderr)
        return 2
    try:
        bad = anyio.run(_publish, args)
    except PublishError as exc:
        print(f"invsync publish: {args.file}: {exc}", file=sys.stderr)
        return 2
    return 1 if bad else 0


async def _publish(args: argparse.Namespace) -> int:
    """Publishes the good events; returns how many lines were refused."""
    import sys
    import time

    from nats.errors import Error as NatsError

    from invsync.bulk.lines import BadLine, read_events
    from invsync.bulk.packing import pack
    from invsync.bulk.sender import PublishError, Sender, message_limit
    from invsync.flashsale.progress import ProgressLine, bar
    from invsync.service.connection import connect
    from invsync.service.subjects import Subjects

    path: Path = args.file
    subjects = Subjects(args.prefix)
    options = dataclasses.replace(
        connection_options(args, args.nats, "invsync-publish"),
        reconnect_attempts=RECONNECT_ATTEMPTS,
    )
    try:
        nc = await connect(options)
    except (OSError, NatsError) as exc:
        raise PublishError(f"cannot connect to {args.nats}: {exc}") from exc
    line = ProgressLine(sys.stderr)
    bad = 0
    try:
        limit = await message_limit(nc, subjects)
        sender = Sender(nc, args.window, args.ack_timeout)
        size = max(1, path.stat().st_size)
        shown_at = 0.0
        for item in pack(read_events(path, subjects, args.channel), limit, args.batch_events):
            if isinstance(item, BadLine):
                bad += 1
                line.close()
                print(item.describe(path), file=sys.stderr)
                continue
            await sender.send(item)
            now = time.monotonic()
            if now - shown_at >= PROGRESS_EVERY_S:
                shown_at = now
                done = sender.tally
                line.show(
                    f"{bar(item.end / size)} {item.end / size:4.0%}  events {done.events:>10,}"
                    f"  messages {done.messages:>7,} acked, {sender.unacked:>4} in flight"
                )
        tally = await sender.finish()
    finally:
        line.close()
        await nc.close()
    print(
        f"{path}: {tally.events:,} events in {tally.messages:,} messages"
        f" (at most {limit:,} bytes each): {tally.stored:,} stored,"
        f" {tally.duplicates:,} already in the stream"
    )
    if bad:
        print(f"{path}: {bad:,} bad line{'s' if bad != 1 else ''} not published (listed above)")
    return bad
