"""What each SKU gets on each channel once SKU > class > channel precedence is applied.

Read from the tables the policy resolves for the core (`Policy.tables_json`), so the
plan shows exactly the settings the engine runs with, never a second reading of the
precedence rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec import Struct, json

from invsync.policy import ChannelOverride, Policy

__all__ = ["AutoRule", "ChannelRule", "Settings", "override_tables"]


class AutoRule(Struct, frozen=True):
    """An automatic buffer's bounds and safety factor."""

    min: int
    max: int | None
    risk: float


class ChannelRule(Struct, frozen=True):
    """One channel's resolved display settings for a SKU."""

    share: float
    cap: int | None
    buffer: int
    pause_below: int
    auto: AutoRule | None


class _Sku(Struct, frozen=True):
    id: str
    profile: int
    safety: int
    kind: str


class _Tables(Struct, frozen=True):
    safety: int
    profiles: list[list[ChannelRule]]
    skus: list[_Sku]


class Settings:
    """Per SKU: its safety stock, kind and channel rules; SKUs the policy does not list
    get the defaults and the channels' own rules."""

    def __init__(self, policy: Policy) -> None:
        tables = json.decode(policy.tables_json(), type=_Tables)
        self._channels = policy.channels
        self._profiles = tables.profiles
        self._default_safety = tables.safety
        self._skus = {sku.id: sku for sku in tables.skus}
        self._document = policy.document

    def written_by(self, sku: str, channel: str, field: str) -> str:
        """Who set `field` of `channel` for `sku`: `SKU A`, `class bestseller` or
        `the channel`, so a reader knows which line of the policy to change."""
        doc = self._document
        spec = next((s for s in doc.skus if s.id == sku), None)
        if spec is None:
            return "the channel"
        if _sets(spec.channels, channel, field):
            return f"SKU {sku}"
        cls = next((c for c in doc.classes if c.id == spec.class_), None)
        if cls is not None and _sets(cls.channels, channel, field):
            return f"class {cls.id}"
        return "the channel"

    def rule(self, sku: str, channel: str) -> ChannelRule:
        listed = self._skus.get(sku)
        profile = self._profiles[listed.profile if listed else 0]
        return profile[self._channels.index(channel)]

    def safety(self, sku: str) -> int:
        listed = self._skus.get(sku)
        return listed.safety if listed else self._default_safety

    def kind(self, sku: str) -> str:
        listed = self._skus.get(sku)
        return listed.kind if listed else "standard"


def _sets(overrides: Mapping[str, ChannelOverride], channel: str, field: str) -> bool:
    override = overrides.get(channel)
    return override is not None and getattr(override, field) is not None


def override_tables(policy: Policy) -> list[tuple[str, Mapping[str, ChannelOverride]]]:
    """Every class's and SKU's channel overrides, each with who wrote them as a reader
    finds it in the policy: `class bestseller (A, B)`, `SKU A`."""
    doc = policy.document
    members: dict[str, list[str]] = {}
    for sku in doc.skus:
        if sku.class_ is not None:
            members.setdefault(sku.class_, []).append(sku.id)
    tables: list[tuple[str, Mapping[str, ChannelOverride]]] = [
        (f"class {cls.id} ({', '.join(members.get(cls.id, [])) or 'no SKUs listed'})", cls.channels)
        for cls in doc.classes
    ]
    return tables + [(f"SKU {sku.id}", sku.channels) for sku in doc.skus]
