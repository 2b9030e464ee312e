"""`invsync plan`: the seller's playbook rendered from a policy (CONTRACT 8 and 14).

Four sections, one module each (`inventory`, `pricing`, `listing`, `risks`), built as
data (`document`) and written as Markdown (`markdown`).
"""

from __future__ import annotations

from datetime import date

from invsync.plan.buffers import buffers_at_peak
from invsync.plan.document import Document, Heading, Paragraph
from invsync.plan.inventory import inventory_section
from invsync.plan.listing import listing_section
from invsync.plan.pricing import pricing_section
from invsync.plan.risks import risk_section
from invsync.plan.settings import Settings
from invsync.plan.velocity import Velocity
from invsync.policy import Policy

__all__ = ["build_plan"]


def build_plan(policy: Policy, velocity: Velocity | None, rendered_on: date) -> Document:
    """The playbook of `policy`, with every buffer at the rates of `velocity` when given."""
    settings = Settings(policy)
    at_peak = None if velocity is None else buffers_at_peak(policy, settings, velocity)
    rates = f" at the peak rates of `{velocity.source}`" if velocity else ""
    intro = (
        Paragraph(f"Rendered by `invsync plan` on {rendered_on.isoformat()}{rates}."),
        Heading("How to read this"),
        Paragraph(
            "1. **Inventory matrix**: what each channel is shown of each SKU and why: tier, "
            "share, cap, buffer, pause, what a stale feed does, and safety stock.\n"
            "2. **Pricing matrix**: the price rules per channel.\n"
            "3. **Listing rules**: what each platform requires of a listing, which fields "
            "are shared, and the order a new listing is pushed in.\n"
            "4. **Risk checklist**: what can end in a cancellation, with what to do about "
            "it; tick each item off once handled.\n\n"
            "Settings resolve SKU > class > channel: a table of overrides follows the "
            "channels. Change the policy, not this document: run `invsync check` and "
            "`invsync plan` again after each change."
        ),
    )
    return Document(
        f"Channel playbook: {policy.source}",
        intro,
        (
            inventory_section(policy, settings, at_peak),
            pricing_section(policy),
            listing_section(policy),
            risk_section(policy, settings, at_peak),
        ),
    )
