"""The listing rules in force for a policy: which platform each channel lists on, its rules
in words, which fields are shared and which per channel, and the push order of a new
listing. `invsync listing check` applies them; `invsync plan` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from invsync.catalog.schema import CHANNEL_FIELDS, SHARED_FIELDS
from invsync.marketplaces.listing_rules import PLATFORM_LISTINGS, ListingRule, Severity
from invsync.policy import Policy

__all__ = [
    "GENERIC",
    "PUSH_ORDER",
    "ChannelRules",
    "RuleRow",
    "describe",
    "listing_rules",
    "platform_name",
    "platform_of",
]

#: what a channel without a platform's rules (a B2B portal, a wholesale feed) is called
GENERIC: Final = "generic"

#: a new listing is pushed in this order: a platform refuses a price for a listing it does
#: not have, and a quantity without a price would put an unpriced item on sale
PUSH_ORDER: Final = (
    ("content", ("title", "description", "bullets", "images", "category", *SHARED_FIELDS[1:])),
    ("price", ("price", "currency")),
    ("quantity", ()),
)

Scope = Literal["shared", "per channel"]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule as a person reads it: `field` must be `rule` (limit `limit`)."""

    field: str
    scope: Scope
    rule: str
    limit: int | None
    severity: Severity
    source: str
    note: str


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """The listing rules a policy channel is checked against (none for a generic one), and
    what its platform's pages left open."""

    channel: str
    platform: str
    platform_name: str
    rows: tuple[RuleRow, ...]
    unknown: tuple[str, ...]


def platform_of(channel: str) -> str:
    """The platform a channel id lists on: `amazon` or `amazon-<anything>` (e.g.
    `amazon-eu`) is Amazon, and so on; any other id is `GENERIC`."""
    for platform in PLATFORM_LISTINGS:
        if channel == platform or channel.startswith(f"{platform}-"):
            return platform
    return GENERIC


def platform_name(platform: str) -> str:
    listing = PLATFORM_LISTINGS.get(platform)
    return listing.name if listing else "generic: no listing rules"


def listing_rules(policy: Policy) -> list[ChannelRules]:
    """The rules in force for each channel of `policy`, in the policy's channel order."""
    out = []
    for channel in policy.channels:
        platform = platform_of(channel)
        listing = PLATFORM_LISTINGS.get(platform)
        rows = tuple(_row(rule) for rule in listing.rules) if listing else ()
        unknown = listing.unknown if listing else ()
        out.append(ChannelRules(channel, platform, platform_name(platform), rows, unknown))
    return out


def _row(rule: ListingRule) -> RuleRow:
    scope: Scope = "per channel" if rule.field in CHANNEL_FIELDS else "shared"
    return RuleRow(
        rule.field, scope, describe(rule), rule.limit, rule.severity, rule.source, rule.note
    )


_NOUNS: Final = {"images": ("image", "images"), "bullets": ("bullet point", "bullet points")}


def _count(n: int | None, field: str) -> str:
    one, many = _NOUNS.get(field, (field, field))
    return f"{n} {one if n == 1 else many}"


def describe(rule: ListingRule) -> str:
    """The rule in a few words: "required", "at most 80 characters", "at most 9 images"."""
    n = rule.limit
    match rule.check:
        case "required":
            return "required"
        case "max_chars":
            each = " each" if rule.field == "bullets" else ""
            return f"at most {n} characters{each}"
        case "min_chars":
            return f"at least {n} characters"
        case "max_items":
            return f"at most {_count(n, rule.field)}"
        case "min_items":
            return f"at least {_count(n, rule.field)}"
        case "forbidden_chars":
            return f"none of {' '.join(rule.forbidden)}"
        case "max_option_names":
            return f"at most {n} options"
        case "max_option_values":
            return f"at most {n} values per option"
        case "max_option_name_chars":
            return f"option names of at most {n} characters"
        case "max_option_value_chars":
            return f"option values of at most {n} characters"
        case "max_variants":
            return f"at most {n} variants"
