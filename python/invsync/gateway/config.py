"""The channels file of `invsync connect` and `invsync sandbox` (CONTRACT 10): one
`[[channels]]` table per policy channel, naming its platform, where to send, which
credentials to read and where its listing map lives.

The file is checked whole at load, so a running gateway never meets a half-valid
entry: each refusal is a `ChannelsError` naming the file, the line and the field.
Credential values are not read here (`ChannelConfig.secrets` reads them), so checking
a file needs no secrets.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from invsync.errors import ChannelsError
from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import CredentialError, Secret, read_secret
from invsync.tomlpos import FieldPath, locate, syntax_problem

__all__ = ["PLATFORMS", "ChannelConfig", "ChannelsFile", "load_channels"]

# The platforms CONTRACT 10 names; which of them have a profile is the registry's
# business (`invsync.gateway.platforms.PROFILES`), so a file stays valid as profiles land.
PLATFORMS: Final = ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")

# Overrides of the per-item lane's documented limits; the integer ones count items.
_COUNT_OVERRIDES: Final = frozenset({"batch", "daily_revisions"})
_RATE_OVERRIDES: Final = frozenset({"rate", "burst"})
_KNOWN: Final = frozenset({"id", "platform", "base_url", "credentials", "listings"})
_CREDENTIAL_SUFFIXES: Final = ("_env", "_file")
KV_PREFIX: Final = "kv:"


@dataclass(frozen=True)
class ChannelConfig:
    """One channel as the file gives it. `credentials` is the raw spec (`<name>_env` /
    `<name>_file` -> variable or path), `listings` a CSV path relative to the file or
    `kv:<bucket>`, `options` the platform's other string keys (e.g. `seller_id`,
    `location_id`), `overrides` the numeric ones (`rate`, `burst`, `batch`,
    `daily_revisions`)."""

    id: str
    platform: str
    base_url: str | None
    credentials: Mapping[str, str]
    listings: str
    options: Mapping[str, str]
    overrides: Mapping[str, float]

    @property
    def credential_names(self) -> tuple[str, ...]:
        """The credentials this channel names (`refresh_token` for `refresh_token_env`)."""
        names = (key.rsplit("_", 1)[0] for key in self.credentials)
        return tuple(dict.fromkeys(names))

    def secrets(self, base: Path) -> dict[str, Secret]:
        """Read every credential the channel names; a relative `_file` is read from
        `base`, the channels file's folder. Raises CredentialError naming the channel
        and the credential's source, never a value."""
        secrets: dict[str, Secret] = {}
        for name in self.credential_names:
            try:
                secrets[name] = read_secret(name, self.credentials, base)
            except CredentialError as exc:
                raise CredentialError(f"channel {self.id}: {exc}") from None
        return secrets

    def settings(self, secrets: Mapping[str, Secret]) -> ProfileSettings:
        """What the platform profile is built from."""
        return ProfileSettings(
            channel=self.id,
            base_url=self.base_url,
            credentials=dict(secrets),
            options=dict(self.options),
            overrides=dict(self.overrides),
        )

    @property
    def listings_bucket(self) -> str | None:
        """The JetStream KV bucket of the listing map, None when it is a CSV file."""
        return (
            self.listings.removeprefix(KV_PREFIX) if self.listings.startswith(KV_PREFIX) else None
        )

    def listings_path(self, base: Path) -> Path:
        """The listing CSV, relative paths taken from `base` (the channels file's folder)."""
        return base / self.listings


@dataclass(frozen=True)
class ChannelsFile:
    """A loaded channels file: its channels in file order, and where it was read from
    (relative listing and credential paths are taken from its folder)."""

    path: Path
    channels: list[ChannelConfig]

    @property
    def base(self) -> Path:
        return self.path.parent


def load_channels(path: Path) -> ChannelsFile:
    """Read and check a channels file; raise ChannelsError at the first problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChannelsError(source, 0, "file", f"cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ChannelsError(source, *syntax_problem(exc, text)) from None
    try:
        channels = _channels(raw)
    except _Refusal as refused:
        raise ChannelsError(source, *locate(text, raw, refused.path, refused.message)) from None
    return ChannelsFile(path, channels)


class _Refusal(Exception):
    """A rule broken at `path`; turned into a ChannelsError once the line is known."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _channels(raw: Mapping[str, Any]) -> list[ChannelConfig]:
    for key in raw:
        if key != "channels":
            raise _Refusal((key,), "unknown key; the file holds only [[channels]] tables")
    tables = raw.get("channels")
    if not isinstance(tables, list) or not tables:
        raise _Refusal(("channels",), "give at least one [[channels]] table")
    channels: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise _Refusal(("channels", index), "must be a table")
        channel = _channel(("channels", index), table)
        if channel.id in seen:
            raise _Refusal(("channels", index, "id"), f"channel {channel.id!r} appears twice")
        seen.add(channel.id)
        channels.append(channel)
    return channels


def _channel(at: FieldPath, table: Mapping[str, Any]) -> ChannelConfig:
    channel_id = _text(at, table, "id")
    platform = _text(at, table, "platform")
    if platform not in PLATFORMS:
        raise _Refusal((*at, "platform"), f"unknown platform; use one of {', '.join(PLATFORMS)}")
    base_url = table.get("base_url")
    if base_url is not None:
        base_url = _text(at, table, "base_url")
        if not base_url.startswith(("https://", "http://")):
            raise _Refusal((*at, "base_url"), "must start with https:// (or http:// for a sandbox)")
    listings = _text(at, table, "listings")
    if listings.startswith(KV_PREFIX) and not listings.removeprefix(KV_PREFIX):
        raise _Refusal((*at, "listings"), "name the KV bucket after kv:")
    options: dict[str, str] = {}
    overrides: dict[str, float] = {}
    for key, value in table.items():
        if key in _KNOWN:
            continue
        if key in _COUNT_OVERRIDES:
            overrides[key] = float(_count(at, key, value))
        elif key in _RATE_OVERRIDES:
            overrides[key] = _rate(at, key, value)
        elif isinstance(value, str):
            options[key] = value
        else:
            raise _Refusal(
                (*at, key),
                "unknown override; the numeric overrides are "
                f"{', '.join(sorted(_RATE_OVERRIDES | _COUNT_OVERRIDES))}, "
                "and platform options are strings",
            )
    return ChannelConfig(
        id=channel_id,
        platform=platform,
        base_url=base_url,
        credentials=_credentials(at, table),
        listings=listings,
        options=options,
        overrides=overrides,
    )


def _text(at: FieldPath, table: Mapping[str, Any], key: str) -> str:
    if key not in table:
        raise _Refusal((*at, key), "missing")
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise _Refusal((*at, key), "must be a non-empty string")
    return value


def _count(at: FieldPath, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Refusal((*at, key), "must be a whole number of at least 1")
    return value


def _rate(at: FieldPath, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _Refusal((*at, key), "must be a number above 0")
    return float(value)


def _credentials(at: FieldPath, table: Mapping[str, Any]) -> dict[str, str]:
    spec = table.get("credentials")
    if spec is None:
        raise _Refusal((*at, "credentials"), 'missing; e.g. { access_token_env = "SHOP_TOKEN" }')
    if not isinstance(spec, dict) or not spec:
        raise _Refusal((*at, "credentials"), "must be a table of <name>_env or <name>_file keys")
    for key, value in spec.items():
        where = (*at, "credentials", key)
        if not key.endswith(_CREDENTIAL_SUFFIXES) or key in _CREDENTIAL_SUFFIXES:
            raise _Refusal(where, "name a credential as <name>_env (a variable) or <name>_file")
        if not isinstance(value, str) or not value.strip():
            raise _Refusal(where, "must be a non-empty string (a variable name or a path)")
        name = key.rsplit("_", 1)[0]
        if key.endswith("_file") and f"{name}_env" in spec:
            raise _Refusal(where, f"give {name}_env or {name}_file, not both")
    return dict(spec)
