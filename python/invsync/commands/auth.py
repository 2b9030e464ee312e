"""`invsync auth`: mint nkey users for the invsync roles and the nats-server config for them."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "mint NATS users (nkeys) for the invsync roles and write the server's permission config"
AUTH_CONF = "invsync-auth.conf"
# NAME=public key lines, for `kubectl create secret generic --from-env-file`.
PUBLIC_KEYS = "public-keys.env"


def _user(text: str) -> tuple[str, tuple[str, ...]]:
    name, _, held = text.partition("=")
    if not name or not held:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=ROLE[+ROLE...]")
    return name, tuple(held.split("+"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, help="directory for the seeds (NAME.nk) and " + AUTH_CONF
    )
    parser.add_argument(
        "--user",
        type=_user,
        action="append",
        metavar="NAME=ROLE[+ROLE...]",
        help="a user and its roles (repeatable; default: one user per role, named after it)",
    )
    parser.add_argument("--prefix", default="inv", help="subject prefix (default %(default)s)")
    parser.add_argument("--stream", default="INVSYNC", help="stream name (default %(default)s)")
    parser.add_argument(
        "--table", action="store_true", help="print the role table (Markdown) and exit"
    )


def run(args: argparse.Namespace) -> int:
    from invsync.security.natsconf import accounts, load_or_mint, render, write_seeds
    from invsync.security.reference import role_table
    from invsync.security.roles import ROLE_NAMES

    if args.table:
        print(role_table(args.prefix, args.stream), end="")
        return 0
    if args.out is None:
        print("invsync auth: give --out DIR (or --table)")
        return 2
    wanted = args.user or [(role, (role,)) for role in ROLE_NAMES]
    try:
        # A seed already in --out is kept: re-running adds users, it does not rotate keys.
        users = [load_or_mint(args.out / f"{name}.nk", name, held) for name, held in wanted]
    except ValueError as exc:
        print(f"invsync auth: {exc}")
        return 2
    seeds = write_seeds(users, args.out)
    conf = args.out / AUTH_CONF
    conf.write_text(render(accounts(users, args.prefix, args.stream)))
    (args.out / PUBLIC_KEYS).write_text("".join(f"{u.name}={u.public_key}\n" for u in users))
    for user in users:
        print(f"{user.name:<12} {'+'.join(user.roles):<28} {user.public_key}  {seeds[user.name]}")
    print(f"wrote {conf}: add `include {AUTH_CONF}` to nats-server.conf (same directory)")
    print(f"wrote {args.out / PUBLIC_KEYS}: the public keys, for a Kubernetes Secret")
    return 0
