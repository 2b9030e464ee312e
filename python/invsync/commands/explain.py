"""`invsync explain`: how a SKU's shown quantities came about, in words and as JSON.

Either replays a JSON-lines event file through a local engine (`--events`), or asks a
running service (`--nats`, on `<prefix>.query.sku`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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


def _replay(args: argparse.Namespace) -> dict[str, Any]:
    from invsync.engine import Engine
    from invsync.errors import BadInputError
    from invsync.events import DecodeError, decode_events
    from invsync.policy import Policy

    engine = Engine(Policy.load(args.policy))
    if args.events:
        with args.events.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                for event in decode_events(line):
                    try:
                        if isinstance(event, DecodeError):
                            raise BadInputError(event.error)
                        engine.apply(event)
                    except BadInputError as exc:
                        print(f"{args.events}:{number}: skipped: {exc}", file=sys.stderr)
    return engine.explain(args.sku, args.condition).to_dict()


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
