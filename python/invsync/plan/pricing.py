"""Section 2, the pricing matrix: how each channel's price follows from the SKU's base
price, and the guards a price must pass before it is sent (CONTRACT 14)."""

from __future__ import annotations

from invsync.plan.document import Block, Heading, Paragraph, Section, Table
from invsync.plan.settings import override_tables
from invsync.plan.wording import number, written
from invsync.policy import ChannelPrice, Policy, rounding_rule

__all__ = ["pricing_section"]

_HEADER = (
    "channel",
    "markup",
    "fees",
    "rounding",
    "max change",
    "margin floor",
    "parity",
    "max promotion discount",
)


def pricing_section(policy: Policy) -> Section:
    priced = [(c.id, c.price) for c in policy.document.channels if c.price is not None]
    if not priced:
        return Section(
            "Pricing matrix",
            (
                Paragraph(
                    "No pricing rules in this policy: no channel has a `price` table, so "
                    "invsync sends no prices and guards none."
                ),
            ),
        )
    blocks: list[Block] = [
        Paragraph(
            "A channel's price is `rounding(base × (1 + markup))`, less a running "
            "promotion's discount, from the SKU's base price (`price.set`). It is sent only "
            "if it passes, in order: the SKU's MAP, the margin floor after the channel's "
            "fees, parity and the largest change from the last price sent; otherwise the "
            "last good price stays and a `price_guard` alert names the rule."
        ),
        Table(_HEADER, tuple((channel, *_cells(price)) for channel, price in priced)),
    ]
    unpriced = [c for c in policy.channels if policy.channel_price(c) is None]
    if unpriced:
        blocks.append(
            Paragraph(f"Not priced by invsync (no `price` table): {', '.join(unpriced)}.")
        )
    overrides = _overrides(policy)
    if overrides.rows:
        blocks += [Heading("Class and SKU price overrides"), overrides]
    return Section("Pricing matrix", tuple(blocks))


def _cells(price: ChannelPrice) -> tuple[str, ...]:
    return (
        f"{number(price.markup_pct)}%",
        f"{number(price.fee_pct)}%",
        _rounding(price.rounding),
        "no limit" if price.max_deviation_pct is None else f"{number(price.max_deviation_pct)}%",
        "none" if price.margin_floor_pct is None else f"{number(price.margin_floor_pct)}%",
        "not above the lowest other channel" if price.parity == "not_above_lowest" else "none",
        f"{number(price.max_discount_pct)}%",
    )


def _rounding(rounding: str) -> str:
    rule = rounding_rule(rounding)
    if rule == "none":
        return "to the cent"
    if "charm" in rule:
        return f"up to .{rounding[2:]}"
    return f"up to a multiple of {rounding}"


def _overrides(policy: Policy) -> Table:
    rows = tuple(
        (who, name, written(override.price, override.price.__struct_fields__))
        for who, overrides in override_tables(policy)
        for name, override in overrides.items()
        if override.price is not None
    )
    return Table(("applies to", "channel", "changes"), rows)
