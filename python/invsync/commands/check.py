"""`invsync check`: validates a policy file before it goes live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "validate a policy file; exit 0, or 1 with the file, line and field to fix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, required=True, help="policy TOML file")


def run(args: argparse.Namespace) -> int:
    from invsync.errors import PolicyError
    from invsync.policy import Policy

    try:
        policy = Policy.load(args.policy)
    except PolicyError as exc:
        print(f"invsync check: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.policy}: ok: {len(policy.channels)} channels on tiers "
        f"{', '.join(map(str, policy.tiers))}, {len(policy.locations)} locations, "
        f"{len(policy.document.skus)} SKU rules"
    )
    return 0
