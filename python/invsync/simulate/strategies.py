"""The policies a simulation compares: the seller's own, static buffers chosen by a search,
and the oracle's.

Each is the seller's policy with channel buffers replaced, so shares, caps, tiers and
protection stay as the seller wrote them: only the buffers differ between strategies.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from invsync.policy import ChannelOverride, Policy
from invsync.simulate.run import Strategy


def with_buffers(policy: Policy, buffers: Mapping[str, int]) -> Policy:
    """`policy` with each named channel's buffer set for every SKU: the channel's own
    buffer, with the class and SKU overrides of that buffer dropped."""
    doc = policy.document
    channels = tuple(
        msgspec.structs.replace(channel, buffer=buffers[channel.id])
        if channel.id in buffers
        else channel
        for channel in doc.channels
    )

    def unbuffered(overrides: Mapping[str, ChannelOverride]) -> dict[str, ChannelOverride]:
        return {
            name: msgspec.structs.replace(override, buffer=None) if name in buffers else override
            for name, override in overrides.items()
        }

    document = msgspec.structs.replace(
        doc,
        channels=channels,
        classes=tuple(
            msgspec.structs.replace(cls, channels=unbuffered(cls.channels)) for cls in doc.classes
        ),
        skus=tuple(
            msgspec.structs.replace(sku, channels=unbuffered(sku.channels)) for sku in doc.skus
        ),
    )
    return Policy(document, policy.text, policy.source)


def static(policy: Policy) -> Strategy:
    """The seller's policy as written."""
    return Strategy("static", policy)


def static_buffers(policy: Policy, buffers: Mapping[str, int]) -> Strategy:
    """Fixed buffers per channel, as a static search tries them."""
    label = ",".join(f"{name}={value}" for name, value in buffers.items())
    return Strategy(f"static[{label}]", with_buffers(policy, buffers))


def oracle(policy: Policy) -> Strategy:
    """No delays anywhere, so no buffer either: the most the policy can sell."""
    return Strategy("oracle", with_buffers(policy, dict.fromkeys(policy.channels, 0)), lagged=False)
