"""The `invsync` command: one subcommand per module under `invsync.commands`.

Each command module exposes `HELP`, `add_arguments(parser)` and `run(args) -> int`,
and imports its heavy dependencies inside `run`, so `invsync check` does not pay
for importing the NATS client.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

COMMANDS = (
    "demo",
    "serve",
    "partitions",
    "connect",
    "sandbox",
    "explain",
    "check",
    "plan",
    "listing",
    "simulate",
    "loadtest",
    "publish",
    "auth",
)


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"invsync.commands.{name}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invsync",
        description="Multichannel inventory allocation: stock, reservations, channel quantities.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
