"""Section 3, the listing rules in force on each platform the policy's channels list on:
what a catalog line needs before it goes live, which fields are shared, and the order a
new listing is pushed in. The rules are `invsync listing check`'s own."""

from __future__ import annotations

from invsync.catalog.rules import PUSH_ORDER, ChannelRules, listing_rules
from invsync.catalog.schema import CHANNEL_FIELDS, SHARED_FIELDS
from invsync.plan.document import Block, Heading, Paragraph, Section, Table
from invsync.policy import Policy

__all__ = ["listing_section"]


def listing_section(policy: Policy) -> Section:
    blocks: list[Block] = [
        Paragraph(
            f"Shared by every channel: {_fields(SHARED_FIELDS)}. May differ per channel: "
            f"{_fields(CHANNEL_FIELDS)}. A new listing is pushed in this order: "
            + ", then ".join(stage for stage, _ in PUSH_ORDER)
            + " (a platform refuses a price for a listing it does not have, and a "
            "quantity without a price would put an unpriced item on sale). Check a "
            "catalog against these rules with `invsync listing check`."
        )
    ]
    by_platform: dict[str, list[ChannelRules]] = {}
    for channel in listing_rules(policy):
        by_platform.setdefault(channel.platform, []).append(channel)
    for channels in by_platform.values():
        blocks += _platform(channels)
    return Section("Listing rules in force", tuple(blocks))


def _fields(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _platform(channels: list[ChannelRules]) -> list[Block]:
    first = channels[0]
    names = ", ".join(channel.channel for channel in channels)
    if not first.rows:
        return [
            Heading(f"Other channels ({names})"),
            Paragraph("No marketplace listing rules: only the catalog's own shape is checked."),
        ]
    rows = tuple(
        (
            row.field,
            row.scope,
            row.rule if row.severity == "error" else f"{row.rule} (warning)",
            row.note,
            row.source,
        )
        for row in first.rows
    )
    blocks: list[Block] = [
        Heading(f"{first.platform_name} ({names})"),
        Table(("field", "scope", "rule", "note", "source"), rows),
    ]
    if first.unknown:
        blocks.append(
            Paragraph("Not given by the platform's pages: " + "; ".join(first.unknown) + ".")
        )
    return blocks
