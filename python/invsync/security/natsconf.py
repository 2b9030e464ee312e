"""Minting NATS users with nkeys, and the nats-server authorization config for them.

A user is a name, the roles it holds and an nkey pair. The seed is what the
client keeps secret (`--nkey FILE`); the server config holds only the public key
and the permissions of the user's roles. Each top-level block is written as
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

from invsync.security.roles import Role, permissions, roles


@dataclass(frozen=True)
class User:
    """One NATS user: its roles, its public nkey and (when minted here) its seed."""

    name: str
    roles: tuple[str, ...]
    public_key: str
    seed: bytes | None = None


def _check_roles(name: str, held: Sequence[str]) -> None:
    unknown = [r for r in held if r not in roles()]
    if unknown or not held:
        known = ", ".join(roles())
        raise ValueError(f"user {name}: give one or more roles of {known} (not {unknown})")


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
    """The user's entry in the server's `authorization.users` list."""
    return {
        "nkey": user.public_key,
        "permissions": permissions(tuple(table[r] for r in user.roles)),
    }


def authorization(
    users: Sequence[User], prefix: str = "inv", stream: str = "INVSYNC"
) -> dict[str, Any]:
    """The `authorization` block: every user by public key, with its roles' permissions."""
    table = roles(prefix, stream)
    return {"authorization": {"users": [user_entry(u, table) for u in users]}}


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
