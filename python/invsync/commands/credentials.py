"""The NATS credential options every client command takes, defined once.

`add_credential_arguments(parser, role)` adds --creds, --nkey, --tls-* and
--inbox-prefix; `connection_options(args, url, name)` turns them into the
ConnectionOptions the service and the clients connect with. The role only sets
the default inbox prefix: with the shipped permissions (docs/security.md) a
client receives replies only under its role's `_INBOX.<role>`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from invsync.security.roles import inbox_prefix
from invsync.service.config import ConnectionOptions


def add_credential_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    group = parser.add_argument_group(
        "NATS credentials", f"who this command is on NATS (it plays the {role!r} role)"
    )
    group.add_argument("--creds", type=Path, help="NATS credentials file (JWT and nkey seed)")
    group.add_argument("--nkey", type=Path, help="NATS user nkey seed file")
    group.add_argument("--tls-ca", type=Path, help="CA bundle for the NATS TLS connection")
    group.add_argument("--tls-cert", type=Path, help="client certificate (mutual TLS)")
    group.add_argument("--tls-key", type=Path, help="client key (mutual TLS)")
    group.add_argument(
        "--inbox-prefix",
        default=inbox_prefix(role),
        help="subject prefix of reply inboxes; the role's own (default %(default)s)",
    )


def connection_options(args: argparse.Namespace, url: str, name: str) -> ConnectionOptions:
    return ConnectionOptions(
        url=url,
        name=name,
        creds=args.creds,
        nkeys_seed=args.nkey,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        inbox_prefix=args.inbox_prefix,
    )
