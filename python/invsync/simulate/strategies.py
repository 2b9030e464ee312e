"""The policies a simulation compares: static buffers, the engine's automatic ones, and
the oracle's.

Each is the seller's policy with channel buffers (and tier protection) replaced, so
shares, caps and tiers stay as the seller wrote them: only what the strategy decides
differs. A channel whose checkout reserves keeps a buffer of 0 in every strategy: its
sale waits for the engine's answer, so a buffer there only turns buyers away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from invsync.policy import ChannelOverride, ChannelSpec, Policy, TierSpec
from invsync.simulate.run import Strategy
from invsync.simulate.scenario import Scenario

#: The risk factors a frontier is drawn at (CONTRACT 13: 1.0-2.0).
RISKS = (1.0, 1.25, 1.5, 1.75, 2.0)


def _with_channels(
    policy: Policy,
    changes: Mapping[str, Mapping[str, Any]],
    protect: Mapping[int, int | str] | None = None,
) -> Policy:
    """`policy` with fields of the named channels replaced for every SKU: the channel's
    own settings change, and class and SKU overrides of its buffer are dropped."""
    doc = policy.document

    def unbuffered(overrides: Mapping[str, ChannelOverride]) -> dict[str, ChannelOverride]:
        return {
            name: msgspec.structs.replace(override, buffer=None) if name in changes else override
            for name, override in overrides.items()
        }

    def tier(spec: TierSpec) -> TierSpec:
        if protect is None or spec.tier not in protect:
            return spec
        return msgspec.structs.replace(spec, protect=protect[spec.tier])

    document = msgspec.structs.replace(
        doc,
        tiers=tuple(tier(spec) for spec in doc.tiers),
        channels=tuple(
            msgspec.structs.replace(channel, **changes[channel.id])
            if channel.id in changes
            else channel
            for channel in doc.channels
        ),
        classes=tuple(
            msgspec.structs.replace(cls, channels=unbuffered(cls.channels)) for cls in doc.classes
        ),
        skus=tuple(
            msgspec.structs.replace(sku, channels=unbuffered(sku.channels)) for sku in doc.skus
        ),
    )
    return Policy(document, policy.text, policy.source)


def _static_buffer(channel: ChannelSpec) -> int:
    return channel.buffer_min if channel.buffer == "auto" else channel.buffer


def static(policy: Policy) -> Strategy:
    """The policy's integers: its buffers as written (an automatic one at its
    `buffer_min`), its protection levels (an automatic one at 0)."""
    automatic = {c.id: {"buffer": _static_buffer(c)} for c in policy.document.channels}
    protect = {t.tier: 0 for t in policy.document.tiers if t.protect == "auto"}
    return Strategy("static", _with_channels(policy, automatic, protect))


def static_buffers(policy: Policy, buffers: Mapping[str, int]) -> Strategy:
    """Fixed buffers per channel, as a static search tries them."""
    label = ",".join(f"{name}={value}" for name, value in buffers.items())
    changes = {name: {"buffer": value} for name, value in buffers.items()}
    protect = {t.tier: 0 for t in policy.document.tiers if t.protect == "auto"}
    return Strategy(f"static[{label}]", _with_channels(policy, changes, protect))


def auto(policy: Policy, scenario: Scenario, risk: float | None = None) -> Strategy:
    """The engine's automatic buffers on every channel the scenario sells on (0 where the
    checkout reserves), and automatic protection when every tier has a unit `value`.

    A channel's `lag_s` and `order_lag_s` are the policy's when it gives them, else the
    p99s of the scenario's delays (the push lag plus the wait for a feed slot): what a
    seller writes from the platform's documentation until acks and orders measure them.
    `risk` replaces the policy's on every channel when given.
    """
    by_id = {channel.id: channel for channel in policy.document.channels}
    changes: dict[str, dict[str, Any]] = {}
    for plan in scenario.channels:
        spec = by_id[plan.id]
        if plan.checkout_reserves:
            changes[plan.id] = {"buffer": 0}
            continue
        changes[plan.id] = {
            "buffer": "auto",
            "lag_s": spec.lag_s
            if spec.lag_s is not None
            else plan.push_lag.p99 + plan.push_every_s,
            "order_lag_s": spec.order_lag_s or plan.order_lag.p99,
            "risk": spec.risk if risk is None else risk,
        }
    tiers = policy.document.tiers
    protect: dict[int, int | str] | None = None
    if tiers and all(t.value is not None for t in tiers):
        protect = {t.tier: "auto" for t in tiers}
    name = "auto" if risk is None else f"auto risk {risk:g}"
    return Strategy(name, _with_channels(policy, changes, protect))


def oracle(policy: Policy) -> Strategy:
    """No delays anywhere, so no buffer either: the most the policy can sell."""
    zero = {channel: {"buffer": 0} for channel in policy.channels}
    protect = {t.tier: 0 for t in policy.document.tiers if t.protect == "auto"}
    return Strategy("oracle", _with_channels(policy, zero, protect), lagged=False)
