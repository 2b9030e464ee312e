"""`invsync explain`: how a SKU's shown quantities came about, in words and as JSON.

Either replays a JSON-lines event file through a local engine (`--events`), or asks a
running service (`--nats`, on `<prefix>.query.sku`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invsync.engine import Engine

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "explain every number behind a SKU's channel quantities"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku", help="the SKU to explain")
    parser.add_argument("--policy", type=Path, required=True, help="policy TOML file")
    parser.add_argument("--condition", default="new", help="stock condition (default new)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events", type=Path, help="JSON-lines event file to replay first")
    source.add_argument("--nats", help="ask the running service at this NATS URL instead")
    parser.add_argument("--prefix", default="inv", help="subject prefix (with --nats)")
    parser.add_argument("--json", action="store_true", help="print the JSON form only")
    add_credential_arguments(parser, "observer")


#: The most events a replay hands the core in one call (bounds what it holds).
_CHUNK = 4096


def _replay(args: argparse.Namespace) -> dict[str, Any]:
    from invsync.engine import Engine
    from invsync.policy import Policy

    engine = Engine(Policy.load(args.policy))
    if args.events:
        _replay_file(engine, args.events)
    return engine.explain(args.sku, args.condition).to_dict()


def _replay_file(engine: Engine, path: Path) -> None:
    """Applies a JSON-lines event file in order; a bad event is reported and skipped.

    Stock, order and clock events go to the core a chunk at a time (`apply_all`):
    one event per call is many times slower on a day's file.
    """
    from typing import get_args

    from invsync.engine import AppliedEvent
    from invsync.errors import BadInputError
    from invsync.events import DecodeError, decode_events

    applied = get_args(AppliedEvent)
    pending: list[tuple[int, AppliedEvent]] = []  # (line number, event)

    def skipped(number: int, why: object) -> None:
        print(f"{path}:{number}: skipped: {why}", file=sys.stderr)

    def flush() -> None:
        if not pending:
            return
        done = engine.apply_all([event for _, event in pending])
        for index, refusal in done.refused:
            if not isinstance(refusal, BadInputError):
                raise refusal
            skipped(pending[index][0], refusal)
        pending.clear()

    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            for event in decode_events(line):
                if isinstance(event, applied):
                    pending.append((number, event))
                    if len(pending) >= _CHUNK:
                        flush()
                    continue
                flush()  # what came before applies first, and is reported first
                if isinstance(event, DecodeError):
                    skipped(number, event.error)
                    continue
                try:
                    engine.apply(event)
                except BadInputError as exc:
                    skipped(number, exc)
    flush()


def _ask(args: argparse.Namespace) -> dict[str, Any]:
    import anyio
    import msgspec
    import nats

    from invsync.errors import BadInputError
    from invsync.events import SkuQuery, encode_json
    from invsync.service.connection import client_kwargs

    async def query() -> dict[str, Any]:
        options = connection_options(args, args.nats, "invsync-explain")
        nc = await nats.connect(
            **client_kwargs(options), connect_timeout=5, max_reconnect_attempts=0
        )
        try:
            msg = await nc.request(
                f"{args.prefix}.query.sku", encode_json(SkuQuery(args.sku, args.condition)), 5
            )
        finally:
            await nc.close()
        reply: dict[str, Any] = msgspec.json.decode(msg.data)
        if reply.get("ok") is False:
            raise BadInputError(str(reply.get("error")))
        return reply

    return anyio.run(query)


def run(args: argparse.Namespace) -> int:
    from invsync.errors import InvsyncError
    from invsync.explain import render

    try:
        explanation = _ask(args) if args.nats else _replay(args)
    except (InvsyncError, OSError) as exc:
        print(f"invsync explain: {exc}", file=sys.stderr)
        return 1
    if args.json:
        import json

        print(json.dumps(explanation, indent=2, ensure_ascii=False))
    else:
        print(render(explanation))
    return 0
