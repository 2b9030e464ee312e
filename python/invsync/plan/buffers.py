"""Each channel's buffer for each hot SKU at the seller's peak rates, against what
every channel can sell while that channel's quantity is late (CONTRACT 13).

An automatic buffer is `clamp(max(ceil(risk × units), clumps(units)), buffer_min,
buffer_max)` with `units = Σ_d v_d × (push_lag_c + order_lag_d)` and `clumps` a slow
mover's (the p99 of a Poisson count of up to one unit): the core's rule, worded as
`invsync explain` words it. The plan has no acks or orders to
measure lags from, so push lag is the policy's `lag_s` and order lag its `order_lag_s`,
as in a freshly started service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from invsync._core import auto_buffer, clumps, window_units
from invsync.explain import buffer_reason
from invsync.plan.settings import AutoRule, Settings
from invsync.plan.velocity import Velocity
from invsync.policy import Policy

__all__ = ["BufferAtPeak", "buffers_at_peak"]


@dataclass(frozen=True)
class BufferAtPeak:
    """A channel's buffer for a SKU at the planned rates."""

    sku: str
    channel: str
    #: units held back from what the channel is shown
    buffer: int
    #: the CONTRACT 13 formula with its numbers; None for a static buffer
    formula: str | None
    #: units every channel sells during this channel's push lag plus their order lags
    #: (risk 1); None when the policy gives the channel no `lag_s`
    exposure: int | None


def buffers_at_peak(policy: Policy, settings: Settings, velocity: Velocity) -> list[BufferAtPeak]:
    """For every SKU of `velocity` with stock, every channel's buffer, in file order."""
    specs = {channel.id: channel for channel in policy.document.channels}
    out = []
    for sku, rates in velocity.rates.items():
        if settings.kind(sku) == "non_inventory":
            continue  # shown a constant: nothing to oversell
        # In the policy's channel order, as the core sums them.
        sellers = [(rates[c], spec.order_lag_s) for c, spec in specs.items() if c in rates]
        for channel, spec in specs.items():
            rule = settings.rule(sku, channel)
            exposure = None if spec.lag_s is None else math.ceil(window_units(spec.lag_s, sellers))
            if rule.auto is None:
                out.append(BufferAtPeak(sku, channel, rule.buffer, None, exposure))
                continue
            # `check` refuses an automatic buffer on a channel without lag_s.
            push = spec.lag_s or 0.0
            auto = rule.auto
            formula, buffer = auto_buffer(auto.risk, auto.min, auto.max, push, sellers)
            inputs = _explain_inputs(auto, formula, push, sellers)
            reason = buffer_reason(buffer, inputs)
            out.append(BufferAtPeak(sku, channel, buffer, reason, exposure))
    return out


def _explain_inputs(
    rule: AutoRule, formula: int, push_s: float, sellers: list[tuple[float, float]]
) -> dict[str, object]:
    """The inputs in the shape `explain` words them."""
    return {
        "formula": formula,
        "clumps": clumps(window_units(push_s, sellers)),
        "risk": rule.risk,
        "min": rule.min,
        "max": rule.max,
        "push_lag": {"seconds": push_s},
        "sellers": [{"rate": v, "order_lag": {"seconds": lag}} for v, lag in sellers],
    }
