"""`invsync plan`: the policy as a playbook a seller hands to their team."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = (
    "render the policy as a Markdown playbook: inventory matrix, pricing matrix, "
    "listing rules, risk checklist"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, required=True, help="policy TOML file")
    parser.add_argument(
        "--velocity",
        type=Path,
        help="CSV of peak sales rates: sku,channel,units_per_s (or units_per_day)",
    )
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: stdout)")


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from invsync.errors import ConfigError
    from invsync.plan import build_plan
    from invsync.plan.markdown import render
    from invsync.plan.velocity import read_velocity
    from invsync.policy import Policy

    try:
        policy = Policy.load(args.policy)
        velocity = None if args.velocity is None else read_velocity(args.velocity, policy.channels)
    except ConfigError as exc:
        print(f"invsync plan: {exc}", file=sys.stderr)
        return 1
    text = render(build_plan(policy, velocity, datetime.now(UTC).date()))
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"invsync plan: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: playbook of {args.policy} written")
    return 0
