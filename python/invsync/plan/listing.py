"""Section 3, the listing rules in force on each platform of the policy's channels."""

from __future__ import annotations

from invsync.plan.document import Paragraph, Section, Table
from invsync.plan.platforms import platform_of
from invsync.policy import Policy

__all__ = ["listing_section"]


def listing_section(policy: Policy) -> Section:
    """Until invsync carries the platforms' listing rules, the section lists the
    platforms they will be needed for and says they are missing."""
    by_platform: dict[str, list[str]] = {}
    for channel in policy.channels:
        by_platform.setdefault(platform_of(channel) or "no known platform", []).append(channel)
    rows = tuple(
        (platform, ", ".join(channels), "missing") for platform, channels in by_platform.items()
    )
    return Section(
        "Listing rules in force",
        (
            Paragraph(
                "Missing: this version of invsync has no listing rules (required fields, "
                "length limits, which fields are shared, push order) to check a catalog "
                "against. Check each platform's listing requirements by hand before a new "
                "listing goes live."
            ),
            Table(("platform", "channels", "listing rules"), rows),
        ),
    )
