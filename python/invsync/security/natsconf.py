"""Minting NATS users with nkeys, and the nats-server authorization config for them.

A user is a name, the roles it holds and an nkey pair. The seed is what the
client keeps secret (`--nkey FILE`); the server config holds only the public key
and the permissions of the user's roles, in its roles' account: the data
account exports the admin subjects to the admin account only, which imports
them sharing the requester's identity. Each top-level block is written as
`key: <JSON>`, which nats-server reads as its own configuration syntax (also
from an `include`d file), so no hand-made quoting is involved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from invsync.security.roles import (
    ADMIN_ACCOUNT,
    DATA_ACCOUNT,
    Role,
    permissions,
    roles,
)


@dataclass(frozen=True)
class User:
    """One NATS user: its roles, its public nkey and (when minted here) its seed."""

    name: str
    roles: tuple[str, ...]
    public_key: str
    seed: bytes | None = None


def _check_roles(name: str, held: Sequence[str]) -> None:
    table = roles()
    unknown = [r for r in held if r not in table]
    if unknown or not held:
        known = ", ".join(table)
        raise ValueError(f"user {name}: give one or more roles of {known} (not {unknown})")
    if len({table[r].account for r in held}) > 1:
        raise ValueError(f"user {name}: admin cannot be combined with other roles (own account)")


def mint_user(name: str, held: Sequence[str]) -> User:
    """A fresh user nkey pair for `name` holding `held` roles."""
    _check_roles(name, held)
    seed = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    public_key = nkeys.from_seed(bytearray(seed)).public_key.decode()
    return User(name, tuple(held), public_key, seed)


def load_or_mint(seed_file: Path, name: str, held: Sequence[str]) -> User:
    """The user whose seed is in `seed_file`, or a freshly minted one when there is none."""
    if not seed_file.is_file():
        return mint_user(name, held)
    _check_roles(name, held)
    seed = seed_file.read_bytes().strip()
    public_key = nkeys.from_seed(bytearray(seed)).public_key.decode()
    return User(name, tuple(held), public_key, seed)


def user_entry(user: User, table: Mapping[str, Role]) -> dict[str, Any]:
    """The user's entry in its account's `users` list."""
    return {
        "nkey": user.public_key,
        "permissions": permissions(tuple(table[r] for r in user.roles)),
    }


def accounts(users: Sequence[User], prefix: str = "inv", stream: str = "INVSYNC") -> dict[str, Any]:
    """The `accounts` block: the data account (JetStream) and the admin account, each
    with its users by public key, and the admin subjects exported from one to the other."""
    table = roles(prefix, stream)

    def members(account: str) -> list[dict[str, Any]]:
        return [user_entry(u, table) for u in users if table[u.roles[0]].account == account]

    admin_subjects = table["admin"].publish
    return {
        "accounts": {
            DATA_ACCOUNT: {
                "jetstream": "enabled",
                "users": members(DATA_ACCOUNT),
                "exports": [{"service": s, "accounts": [ADMIN_ACCOUNT]} for s in admin_subjects],
            },
            ADMIN_ACCOUNT: {
                "users": members(ADMIN_ACCOUNT),
                "imports": [
                    {"service": {"account": DATA_ACCOUNT, "subject": s}, "share": True}
                    for s in admin_subjects
                ],
            },
        }
    }


def write_seeds(users: Sequence[User], directory: Path) -> dict[str, Path]:
    """Each minted user's seed as `<name>.nk`, readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for user in users:
        if user.seed is None:
            continue
        path = directory / f"{user.name}.nk"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(user.seed + b"\n")
        written[user.name] = path
    return written


def render(config: Mapping[str, Any]) -> str:
    """A nats-server config file's text (a whole file, or one to `include`)."""
    return "".join(f"{key}: {json.dumps(value, indent=2)}\n" for key, value in config.items())
