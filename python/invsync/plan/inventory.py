"""Section 1, the inventory matrix: what each channel is shown and why, the overrides
that change it for classes and SKUs, safety stock, and (with a velocity file) every
buffer at the planned peak rates."""

from __future__ import annotations

from collections.abc import Sequence

from invsync.plan.buffers import BufferAtPeak
from invsync.plan.document import Block, Heading, Paragraph, Section, Table
from invsync.plan.settings import Settings, override_tables
from invsync.plan.wording import number, seconds, units, written
from invsync.policy import ChannelSpec, Policy

__all__ = ["inventory_section"]

_OVERRIDE_FIELDS = ("share", "cap", "buffer", "buffer_min", "buffer_max", "risk", "pause_below")


def inventory_section(
    policy: Policy, settings: Settings, at_peak: Sequence[BufferAtPeak] | None
) -> Section:
    blocks: list[Block] = [
        Paragraph(
            "Each channel is shown `clamp(floor(share × pool of its tier) − buffer, 0, cap)` "
            "per SKU, where the pool of tier t is ATS less the units protected for the "
            "tiers above it; a channel is shown 0 while ATS is under its pause level."
        ),
        Heading("Tiers"),
        _tiers(policy),
        Heading("Channels"),
        _channels(policy),
    ]
    auto_anywhere = policy.auto_buffered_channels()
    automatic = [c for c in policy.document.channels if c.id in auto_anywhere]
    if automatic:
        blocks += [Heading("Automatic buffers: their inputs"), _automatic(automatic)]
    overrides = _overrides(policy)
    if overrides.rows:
        blocks += [Heading("Class and SKU overrides"), overrides]
    blocks += [Heading("Safety stock"), _safety(policy, settings)]
    blocks += [Heading("Buffers at peak velocity"), *_at_peak(at_peak)]
    return Section("Inventory matrix", tuple(blocks))


def _tiers(policy: Policy) -> Table:
    members: dict[int, list[str]] = {}
    for channel in policy.document.channels:
        members.setdefault(channel.tier, []).append(channel.id)
    rows = []
    for tier in sorted(policy.document.tiers, key=lambda t: t.tier):
        protect = (
            f"auto (EMSR-b, unit value {number(tier.value or 0.0)})"
            if tier.protect == "auto"
            else units(tier.protect)
        )
        rows.append((str(tier.tier), protect, ", ".join(members.get(tier.tier, [])) or "none"))
    return Table(("tier", "protect (only tiers ≤ it may take)", "channels"), tuple(rows))


def _channels(policy: Policy) -> Table:
    rows = tuple(
        (
            c.id,
            str(c.tier),
            number(c.share),
            "none" if c.cap is None else units(c.cap),
            "auto" if c.buffer == "auto" else units(c.buffer),
            f"shown 0 while ATS < {c.pause_below}" if c.pause_below else "never",
            ", ".join(c.conditions),
            f"`feed_stale` alert after {seconds(c.stale_after_s)} without an ack",
        )
        for c in policy.document.channels
    )
    return Table(
        ("channel", "tier", "share", "cap", "buffer", "pause", "sells", "stale feed"), rows
    )


def _automatic(channels: Sequence[ChannelSpec]) -> Table:
    rows = tuple(
        (
            c.id,
            seconds(c.lag_s or 0.0),
            seconds(c.order_lag_s),
            number(c.risk),
            units(c.buffer_min),
            "none" if c.buffer_max is None else units(c.buffer_max),
        )
        for c in channels
    )
    return Table(("channel", "lag_s", "order_lag_s", "risk", "buffer_min", "buffer_max"), rows)


def _overrides(policy: Policy) -> Table:
    rows = tuple(
        (who, name, changes)
        for who, overrides in override_tables(policy)
        for name, override in overrides.items()
        if (changes := written(override, _OVERRIDE_FIELDS))
    )
    return Table(("applies to", "channel", "changes"), rows)


def _safety(policy: Policy, settings: Settings) -> Table:
    doc = policy.document
    class_safety = {cls.id: cls.safety for cls in doc.classes}
    rows = [("every SKU not listed", units(doc.defaults.safety), "defaults")]
    rows += [
        (f"class {name}", units(safety), "the class")
        for name, safety in class_safety.items()
        if safety is not None
    ]
    for sku in doc.skus:
        if sku.kind == "non_inventory":
            rows.append((f"SKU {sku.id}", "none needed", "non-inventory: no stock"))
            continue
        if sku.safety is not None:
            origin = "the SKU"
        elif sku.class_ is not None and class_safety[sku.class_] is not None:
            origin = f"class {sku.class_}"
        else:
            origin = "defaults"
        rows.append((f"SKU {sku.id}", units(settings.safety(sku.id)), origin))
    return Table(("SKU or class", "safety", "from"), tuple(rows))


def _at_peak(at_peak: Sequence[BufferAtPeak] | None) -> list[Block]:
    if at_peak is None:
        return [
            Paragraph(
                "No velocity file was given. Run `invsync plan --velocity FILE.csv` with "
                "your peak sales rates to see every automatic buffer computed and each "
                "channel's buffer checked against its lag."
            )
        ]
    rows = tuple(
        (
            b.sku,
            b.channel,
            units(b.buffer),
            "lag_s not given" if b.exposure is None else units(b.exposure),
            b.formula or "static",
        )
        for b in at_peak
    )
    return [
        Paragraph(
            "Per hot SKU and channel: the buffer, and the units every channel sells while "
            "this channel's quantity is late (its `lag_s` plus each seller's "
            "`order_lag_s`, at the rates of the velocity file)."
        ),
        Table(("SKU", "channel", "buffer", "sold during the lag", "how"), rows),
    ]
