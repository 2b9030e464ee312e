"""The role table, its rendering for nats-server and docs/security.md agree."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from invsync.cli import main
from invsync.commands import explain, loadtest, serve
from invsync.commands.credentials import connection_options
from invsync.security.natsconf import User, accounts, load_or_mint, mint_user
from invsync.security.reference import role_table
from invsync.security.roles import ADMIN_ACCOUNT, DATA_ACCOUNT, ROLE_NAMES, roles
from invsync.service.config import ServiceConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_show_the_role_table_as_the_code_has_it() -> None:
    # After a change to invsync.security.roles: `invsync auth --table`, paste it in.
    assert role_table() in (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or token not in ("*", tokens[i]):
            return False
    return len(tokens) == len(wanted)


def may_publish(role: str, subject: str) -> bool:
    return any(matches(pattern, subject) for pattern in roles()[role].publish)


LOG_SUBJECTS = ("inv.log.clock", "inv.log.policy", "inv.log.reserve.shopify")
ADMIN_ONLY = (
    "inv.admin.policy",
    "$JS.API.STREAM.PURGE.INVSYNC",
    "$JS.API.STREAM.DELETE.INVSYNC",
    "$JS.API.STREAM.MSG.DELETE.INVSYNC",
)


def test_subject_matching_follows_nats() -> None:
    assert matches("inv.log.>", "inv.log.reserve.x") and not matches("inv.log.>", "inv.log")
    assert matches("$JS.API.STREAM.*.S", "$JS.API.STREAM.PURGE.S")
    assert not matches("$JS.API.STREAM.*.S", "$JS.API.STREAM.MSG.DELETE.S")


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_only_the_service_may_write_the_log(role: str) -> None:
    assert all(may_publish(role, s) == (role == "service") for s in LOG_SUBJECTS)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_only_admin_may_reload_the_policy_or_purge_or_delete_the_stream(role: str) -> None:
    assert all(may_publish(role, s) == (role == "admin") for s in ADMIN_ONLY)


def test_admins_are_alone_in_an_account_that_imports_only_their_subjects() -> None:
    users = [mint_user(role, (role,)) for role in ROLE_NAMES]
    block = accounts(users)["accounts"]
    admin_keys = [u["nkey"] for u in block[ADMIN_ACCOUNT]["users"]]
    assert admin_keys == [users[ROLE_NAMES.index("admin")].public_key]
    imported = [i["service"]["subject"] for i in block[ADMIN_ACCOUNT]["imports"]]
    assert imported == list(roles()["admin"].publish)
    assert all(i["share"] for i in block[ADMIN_ACCOUNT]["imports"])  # the requester's identity
    assert block[DATA_ACCOUNT]["jetstream"] == "enabled"
    assert len(block[DATA_ACCOUNT]["users"]) == len(ROLE_NAMES) - 1


def test_admin_cannot_share_a_user_with_another_role() -> None:
    with pytest.raises(ValueError, match="admin"):
        mint_user("ops", ("admin", "observer"))


def test_auth_mints_owner_only_seeds_and_keeps_them_on_a_second_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["auth", "--out", str(tmp_path), "--user", "oms=producer"]) == 0
    seed = tmp_path / "oms.nk"
    assert seed.stat().st_mode & 0o777 == 0o600
    first = load_or_mint(seed, "oms", ("producer",))
    assert main(["auth", "--out", str(tmp_path), "--user", "oms=producer"]) == 0
    assert load_or_mint(seed, "oms", ("producer",)).public_key == first.public_key
    assert first.public_key in (tmp_path / "invsync-auth.conf").read_text()
    assert (tmp_path / "public-keys.env").read_text() == f"oms={first.public_key}\n"
    assert first.public_key in capsys.readouterr().out


def test_auth_refuses_an_unknown_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth", "--out", str(tmp_path), "--user", "x=superuser"]) == 2
    assert "superuser" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_the_users_entry_holds_the_public_key_only() -> None:
    user = mint_user("svc", ("service",))
    assert user.seed is not None
    rendered = str(accounts([User(user.name, user.roles, user.public_key, user.seed)]))
    assert user.public_key in rendered and user.seed.decode() not in rendered


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert parser.parse_args(["--policy", "p.toml"]).metrics_addr == "127.0.0.1"
    assert ServiceConfig(policy_path=Path("p.toml")).metrics_addr == "127.0.0.1"


@pytest.mark.parametrize(
    ("command", "argv", "role"),
    [
        (serve, [], "service"),
        (explain, ["SKU"], "observer"),
        (loadtest, ["--embedded"], "producer"),
    ],
)
def test_each_client_command_takes_the_credential_options_with_its_roles_inbox(
    command: ModuleType, argv: list[str], role: str
) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([*argv, "--policy", "p.toml", "--nkey", "me.nk"])
    options = connection_options(args, "nats://127.0.0.1:4222", "x")
    assert options.nkeys_seed == Path("me.nk")
    assert options.inbox_prefix == f"_INBOX.{role}"
