"""Each channel's buffer for each hot SKU at the seller's peak rates, against what
every channel can sell while that channel's quantity is late (CONTRACT 13).

An automatic buffer is `clamp(max(ceil(risk × units), clumps(units)), buffer_min,
buffer_max)` with `units = Σ_d v_d × (push_lag_c + order_lag_d)` and `clumps` the p99
of a Poisson count of them: the core's rule, worded as
`invsync explain` words it. The plan has no acks or orders to
measure lags from, so push lag is the policy's `lag_s` and order lag its `order_lag_s`,
as in a freshly started service. As in the core, a kit's sales count on its parts too,
and a kit's buffer is the largest of its own and each part's sales in kits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from invsync._core import auto_buffer, clumps, window_units
from invsync.explain import buffer_reason
from invsync.plan.settings import AutoRule, Settings
from invsync.plan.velocity import Velocity
from invsync.policy import ChannelSpec, Component, Policy

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


#: (v_d units/s, order_lag_d s) of every channel d selling a SKU.
Sellers = list[tuple[float, float]]


def buffers_at_peak(policy: Policy, settings: Settings, velocity: Velocity) -> list[BufferAtPeak]:
    """For every SKU of `velocity` with stock (and every part and kit its sales move),
    every channel's buffer, in file order."""
    specs = {channel.id: channel for channel in policy.document.channels}
    kits = {sku.id: sku.components for sku in policy.document.skus if sku.components}
    counted = _counted(velocity, kits)
    out = []
    for sku in _moved(counted, kits):
        if settings.kind(sku) == "non_inventory":
            continue  # shown a constant: nothing to oversell
        # In the policy's channel order, as the core sums them; a part's in kits.
        sources: list[tuple[dict[str, object] | None, Sellers]] = [
            (None, _sellers(counted.get(sku, {}), specs, 1))
        ]
        for line in kits.get(sku, ()):
            rates = counted.get(line.sku, {})
            sources.append(
                ({"sku": line.sku, "per_kit": line.qty}, _sellers(rates, specs, line.qty))
            )
        for channel, spec in specs.items():
            rule = settings.rule(sku, channel)
            exposure = None
            if spec.lag_s is not None:
                exposure = max(math.ceil(window_units(spec.lag_s, s)) for _, s in sources)
            if rule.auto is None:
                out.append(BufferAtPeak(sku, channel, rule.buffer, None, exposure))
                continue
            # `check` refuses an automatic buffer on a channel without lag_s.
            push = spec.lag_s or 0.0
            auto = rule.auto
            # The first of the largest: the SKU's own sales where no part asks for more.
            sized = [
                (auto_buffer(auto.risk, auto.min, auto.max, push, s), part, s)
                for part, s in sources
            ]
            (formula, buffer), decides, sellers = max(sized, key=lambda one: one[0][1])
            inputs = _explain_inputs(auto, formula, push, sellers) | {"part": decides}
            reason = buffer_reason(buffer, inputs)
            out.append(BufferAtPeak(sku, channel, buffer, reason, exposure))
    return out


def _counted(
    velocity: Velocity, kits: Mapping[str, Sequence[Component]]
) -> dict[str, dict[str, float]]:
    """Each SKU's rates per channel as the core counts them: a kit's sales are its
    parts' sales too (qty units of the part per kit)."""
    counted = {sku: dict(rates) for sku, rates in velocity.rates.items()}
    for kit, parts in kits.items():
        for channel, rate in velocity.rates.get(kit, {}).items():
            for part in parts:
                into = counted.setdefault(part.sku, {})
                into[channel] = into.get(channel, 0.0) + rate * part.qty
    return counted


def _moved(counted: Mapping[str, object], kits: Mapping[str, Sequence[Component]]) -> list[str]:
    """The SKUs whose buffers the rates move: those with rates (velocity's first), then
    every kit one of whose parts has rates."""
    moved = list(counted)
    moved += [
        kit
        for kit, parts in kits.items()
        if kit not in counted and any(p.sku in counted for p in parts)
    ]
    return moved


def _sellers(rates: Mapping[str, float], specs: Mapping[str, ChannelSpec], per: int) -> Sellers:
    """(rate in lots of `per`, order lag) of every channel selling, in policy order."""
    return [(rates[c] / per, spec.order_lag_s) for c, spec in specs.items() if c in rates]


def _explain_inputs(
    rule: AutoRule, formula: int, push_s: float, sellers: Sellers
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
