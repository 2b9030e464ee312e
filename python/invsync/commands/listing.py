"""`invsync listing check`: a product catalog against the listing rules of each channel of a
policy, before anything is pushed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invsync.catalog.check import CatalogCheck, ChannelCheck
    from invsync.catalog.findings import Finding

HELP = "check a product catalog against each channel's listing rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="listing_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="report what each channel would refuse; exit 1 on any error",
        description="Check a catalog (one JSON object per line, see docs/listings.md) "
        "against the listing rules of the platform of each channel of the policy: "
        "required fields, length limits, image and bullet counts, variant structure, "
        "and the push order of a new listing (content, then price, then quantity).",
    )
    check.add_argument("--catalog", type=Path, required=True, help="catalog file (JSON Lines)")
    check.add_argument("--policy", type=Path, required=True, help="policy TOML file")
    check.add_argument("--json", action="store_true", help="print the findings as JSON")


def run(args: argparse.Namespace) -> int:
    import msgspec

    from invsync.catalog.check import check_catalog
    from invsync.catalog.read import read_catalog
    from invsync.errors import CatalogError, PolicyError
    from invsync.policy import Policy

    try:
        policy = Policy.load(args.policy)
        result = check_catalog(read_catalog(args.catalog), policy)
    except (PolicyError, CatalogError) as exc:
        print(f"invsync listing check: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(_as_json(result))))
        sys.stdout.buffer.write(b"\n")
    else:
        print(_as_text(result))
    return 1 if result.count("error") else 0


def _push_order() -> str:
    from invsync.catalog.rules import PUSH_ORDER

    steps = [f"{step} ({', '.join(fields)})" if fields else step for step, fields in PUSH_ORDER]
    return " -> ".join(steps)


def _as_text(result: CatalogCheck) -> str:
    out = [
        (
            f"{result.catalog}: {result.products} products checked against the "
            f"{len(result.channels)} channels of {result.policy}"
        ),
        f"push order of a new listing: {_push_order()}",
        "",
        f"every channel: {_tally(result.every_channel) or 'ok'}",
        *_finding_lines(result.every_channel),
    ]
    for channel in result.channels:
        ready = f"{len(channel.ready)} of {result.products} products ready"
        tally = _tally(channel.findings)
        out.append("")
        out.append(
            f"{channel.channel} ({channel.platform_name}): {ready}"
            + (f"; {tally}" if tally else "")
        )
        out.extend(_finding_lines(channel.findings))
    errors, warnings = result.count("error"), result.count("warning")
    out.append("")
    out.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    return "\n".join(out)


def _tally(findings: list[Finding]) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    counts = ((errors, "error"), (len(findings) - errors, "warning"))
    return ", ".join(_plural(n, noun) for n, noun in counts if n)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _finding_lines(findings: list[Finding]) -> list[str]:
    ordered = sorted(findings, key=lambda f: (f.severity != "error", f.line))
    return [f"  {f.severity:<8} {f.text()}\n           source: {f.source}" for f in ordered]


def _as_json(result: CatalogCheck) -> dict[str, Any]:
    from invsync.catalog.rules import PUSH_ORDER

    return {
        "catalog": result.catalog,
        "policy": result.policy,
        "products": result.products,
        "errors": result.count("error"),
        "warnings": result.count("warning"),
        "push_order": [{"step": step, "fields": list(fields)} for step, fields in PUSH_ORDER],
        "every_channel": _split(result.every_channel),
        "channels": [_channel_json(channel) for channel in result.channels],
    }


def _channel_json(channel: ChannelCheck) -> dict[str, Any]:
    return {
        "channel": channel.channel,
        "platform": channel.platform,
        "platform_name": channel.platform_name,
        "ready": channel.ready,
        **_split(channel.findings),
    }


def _split(findings: list[Finding]) -> dict[str, list[Finding]]:
    return {
        "errors": [f for f in findings if f.severity == "error"],
        "warnings": [f for f in findings if f.severity == "warning"],
    }
