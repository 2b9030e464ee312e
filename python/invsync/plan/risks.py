"""Section 4, the risk checklist: what in the policy can turn into cancellations, and
what to do about each, with the marketplaces' cancellation limits it counts against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from invsync.catalog.rules import GENERIC, platform_name, platform_of
from invsync.plan.buffers import BufferAtPeak
from invsync.plan.document import Block, Check, Checklist, Heading, Paragraph, Section, Table
from invsync.plan.settings import Settings
from invsync.plan.wording import count_of, number, seconds, units
from invsync.policy import Policy

__all__ = ["CANCELLATION_LIMITS", "PRICE_PARITY_RULES", "CancellationLimit", "risk_section"]


@dataclass(frozen=True)
class CancellationLimit:
    """A marketplace's documented limit on seller cancellations, as its page words it."""

    measure: str
    limit: str
    past_it: str
    source: str


#: Every unit oversold on these marketplaces is an order the seller cancels.
CANCELLATION_LIMITS: Final = {
    "amazon": CancellationLimit(
        "pre-fulfilment cancel rate: seller-fulfilled orders the seller cancels before "
        "ship confirmation ÷ all seller-fulfilled orders",
        "< 2.5%",
        "selling privileges may be removed",
        "https://sellercentral.amazon.com/gp/help/external/200370550",
    ),
    "walmart": CancellationLimit(
        "cancellation rate: orders the seller cancels after receiving them, over the "
        "last 30 days (Walmart-fulfilled orders excluded)",
        "< 2%",
        "seller-fulfilled listings suppressed, then suspension or termination",
        "https://marketplacelearn.walmart.com/guides/Policies%20&%20standards/Performance/"
        "Seller-performance-standards",
    ),
    "ebay": CancellationLimit(
        "transaction defect rate: transactions the seller cancels (out of stock) plus "
        "cases closed without seller resolution ÷ transactions",
        "≤ 2%",
        "a higher final value fee, selling limits, lower search placement",
        "https://sellercentre.ebay.com.au/how-we-measure-seller-standards",
    ),
}


#: Marketplaces that penalise a price above what the item costs elsewhere, and how.
PRICE_PARITY_RULES: Final = {
    "amazon": "Amazon's fair pricing policy can take the Featured Offer (Buy Box) away from "
    "an offer priced above the item elsewhere "
    "(https://sellercentral.amazon.com.au/gp/help/external/G5TUVJKZHUVMN77V)",
    "walmart": "Walmart unpublishes offers priced well above the same item elsewhere, "
    'reason "Reasonable Price Not Satisfied" (https://marketplacelearn.walmart.com/guides/'
    "Catalog%20management/Price%20management/Pricing-rules)",
}


def risk_section(
    policy: Policy, settings: Settings, at_peak: Sequence[BufferAtPeak] | None
) -> Section:
    checks = [
        *_lag_checks(policy, settings, at_peak),
        *_safety_checks(policy, settings),
        *_measured_lag_checks(policy),
        *_price_checks(policy),
        *_cancellation_checks(policy),
    ]
    blocks: list[Block] = [
        Paragraph(
            "Each item is something in this policy that can end in an oversold unit, "
            "which a marketplace counts as a cancellation by the seller."
        ),
        Checklist(tuple(checks)) if checks else Paragraph("Nothing found."),
        Heading("Marketplace cancellation limits"),
        Table(
            ("marketplace", "measure", "limit", "past the limit", "source"),
            tuple(
                (name, c.measure, c.limit, c.past_it, c.source)
                for name, c in CANCELLATION_LIMITS.items()
            ),
        ),
    ]
    return Section("Risk checklist", tuple(blocks))


def _lag_checks(
    policy: Policy, settings: Settings, at_peak: Sequence[BufferAtPeak] | None
) -> list[Check]:
    """Buffers smaller than what sells during their channel's lag, at the peak rates."""
    if at_peak is None:
        return [
            Check(
                "Buffers against lags",
                "not checked: no velocity file was given.",
                "run `invsync plan --velocity FILE.csv` with the peak sales rate of each hot "
                "SKU on each channel.",
            )
        ]
    specs = {channel.id: channel for channel in policy.document.channels}
    checks = []
    for b in at_peak:
        if b.exposure is None or b.buffer >= b.exposure:
            continue
        finding = (
            f"at peak, the channels sell {count_of(b.exposure, 'unit')} during "
            f"{b.channel}'s {seconds(specs[b.channel].lag_s or 0.0)} lag and the order "
            f"lags; its buffer is {units(b.buffer)}."
        )
        checks.append(Check(f"{b.channel} · {b.sku}", finding, _lag_action(settings, b)))
    unknown = {b.channel for b in at_peak if b.exposure is None}
    if unknown:
        checks.append(
            Check(
                ", ".join(c for c in policy.channels if c in unknown),
                "no `lag_s` in the policy, so their buffers cannot be checked against what "
                "sells before their quantities are corrected.",
                "write each one's push lag as `lag_s` (the platform's documented delay, or "
                "the p99 `invsync explain` shows once acks are measured).",
            )
        )
    return checks


def _lag_action(settings: Settings, b: BufferAtPeak) -> str:
    """What to change, and where in the policy, for a buffer short of its exposure."""
    at_least = units(b.exposure or 0)
    if b.formula is not None:
        where = settings.written_by(b.sku, b.channel, "buffer_max")
        return f"raise buffer_max (set by {where}) to at least {at_least}, or shorten the lag."
    where = settings.written_by(b.sku, b.channel, "buffer")
    action = f'raise the buffer (set by {where}) to at least {at_least} or make it "auto"'
    if platform_of(b.channel) in ("shopify", GENERIC):
        return action + "; a storefront whose checkout reserves through invsync can leave it."
    return action + "."


def _safety_checks(policy: Policy, settings: Settings) -> list[Check]:
    """Stock kinds with no safety: a miscount on the last units becomes a cancellation."""
    doc = policy.document
    action = (
        "set `safety` to the units a stock count or damage found at picking can take away, "
        "or accept that those oversell."
    )
    checks = []
    if doc.defaults.safety == 0:
        checks.append(
            Check("SKUs not listed", "no safety stock (`[defaults] safety = 0`).", action)
        )
    for cls in doc.classes:
        if cls.safety == 0:
            members = [sku.id for sku in doc.skus if sku.class_ == cls.id]
            held = f" ({', '.join(members)})" if members else ""
            checks.append(Check(f"class {cls.id}{held}", "safety stock 0.", action))
    classless_zero = [
        sku.id
        for sku in doc.skus
        if sku.kind != "non_inventory"
        and settings.safety(sku.id) == 0
        and not any(cls.id == sku.class_ and cls.safety == 0 for cls in doc.classes)
    ]
    checks += [Check(f"SKU {sku}", "safety stock 0.", action) for sku in classless_zero]
    return checks


def _measured_lag_checks(policy: Policy) -> list[Check]:
    """Automatic buffers run on the written lags until acks and orders measure them."""
    automatic = policy.auto_buffered_channels()
    if not automatic:
        return []
    channels = policy.document.channels
    action = (
        "after the first busy day compare the lags `invsync explain SKU --json` shows "
        "(`buffer_auto`) with the policy's, and write the measured ones."
    )
    checks = [
        Check(
            channel.id,
            f"its automatic buffer uses lag_s {seconds(channel.lag_s or 0.0)} as written "
            "until 20 acks measure its push lag.",
            action,
        )
        for channel in channels
        if channel.id in automatic
    ]
    unwritten = [c.id for c in channels if c.order_lag_s == 0]
    if unwritten:
        checks.append(
            Check(
                ", ".join(unwritten),
                "no `order_lag_s`: automatic buffers count their sales as reaching invsync "
                "at once until 20 orders measure the delay.",
                "write each one's sale-to-order delay as `order_lag_s` (a storefront whose "
                "checkout reserves through invsync has none).",
            )
        )
    return checks


def _price_checks(policy: Policy) -> list[Check]:
    """Priced channels a marketplace's price rules or the seller's margin can catch out."""
    checks = []
    for channel in policy.document.channels:
        price = channel.price
        if price is None:
            continue
        rule = PRICE_PARITY_RULES.get(platform_of(channel.id))
        if rule is not None and price.parity == "none":
            checks.append(
                Check(
                    f"{channel.id} prices",
                    f"parity none: {rule}.",
                    'set `parity = "not_above_lowest"` in its `price` table.',
                )
            )
        if price.margin_floor_pct is None:
            checks.append(
                Check(
                    f"{channel.id} prices",
                    "no `margin_floor_pct`: a price may be sent below cost after the "
                    f"channel's {number(price.fee_pct)}% fees.",
                    "set `margin_floor_pct` (and send `cost` with `price.set`).",
                )
            )
    return checks


def _cancellation_checks(policy: Policy) -> list[Check]:
    checks = []
    for channel in policy.channels:
        platform = platform_of(channel)
        if platform not in CANCELLATION_LIMITS:
            continue
        limit = CANCELLATION_LIMITS[platform]
        checks.append(
            Check(
                f"{channel} cancellations",
                f"{platform_name(platform)} wants a {limit.measure.split(':')[0]} "
                f"{limit.limit}; every "
                f"unit oversold on {channel} is one cancellation.",
                f'watch `invsync_oversold_units_total{{channel="{channel}"}}` against the '
                "channel's orders, and raise its buffer or `risk` when cancellations pass "
                "half the limit.",
            )
        )
    return checks
