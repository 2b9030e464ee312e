"""How every number came about (CONTRACT section 7): the core's figures as the
contract JSON and as one line of arithmetic per channel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from invsync.timeconv import from_micros, rfc3339

_MINUS = "−"


class Explanation:
    """One stock key's numbers; `to_dict()` is the contract JSON, `str()` the text."""

    def __init__(
        self,
        raw: bytes,
        protect: Sequence[int],
        stale: frozenset[str] = frozenset(),
        holds: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        self._core: dict[str, Any] = msgspec.json.decode(raw)
        self._protect = tuple(protect)
        self._stale = stale
        # Per channel: what its marketplace holds for promotions, and its reason.
        self._holds = dict(holds or {})

    def to_dict(self) -> dict[str, Any]:
        c = self._core
        return {
            "sku": c["sku"],
            "condition": c["condition"],
            "kind": c["kind"],
            "ats": c["ats"],
            "on_hand": c["on_hand"],
            "reserved": c["reserved"],
            "backordered": c["backordered"],
            "preordered": c["preordered"],
            "preorder_limit": c["preorder_limit"],
            "safety": c["safety"],
            "inbound": c["inbound"],
            "quarantined": c["quarantined"],
            "damaged": c["damaged"],
            "locations": [
                {
                    "location": loc["location"],
                    "on_hand": loc["on_hand"],
                    "counted": loc["counted"],
                    "online": loc["online"],
                    "quarantined": loc["quarantined"],
                    "inbound": loc["inbound"],
                }
                for loc in c["locations"]
            ],
            "components": [
                {"sku": sku, "qty": qty, "ats": ats} for sku, qty, ats in c["components"]
            ],
            "channels": [self._channel(ch) for ch in c["channels"]],
            "velocity": [
                {
                    key: v[key]
                    for key in ("channel", "rate", "fast", "slow", "peak", "floor", "long")
                }
                | ({"slow_share": v["slow_share"]} if v["slow_share"] is not None else {})
                for v in c["velocity"]
            ],
            **({"protect": [self._protect_level(p) for p in c["protect"]]} if c["protect"] else {}),
            **({"prices": [_price(p) for p in c["prices"]]} if c.get("prices") else {}),
        }

    def _hold(self, channel: str, shown: int) -> dict[str, Any]:
        """`platform_hold` of a channel whose marketplace holds stock: the units, the
        platform's reason and what the marketplace therefore shows."""
        if channel not in self._holds:
            return {}
        qty, reason = self._holds[channel]
        return {
            "platform_hold": {"qty": qty, "reason": reason, "marketplace_shows": max(shown, qty)}
        }

    def _channel(self, ch: dict[str, Any]) -> dict[str, Any]:
        out = {
            "channel": ch["channel"],
            "tier": ch["tier"],
            "shown": ch["shown"],
            "reason": self._reason(ch),
            "feed_stale": ch["channel"] in self._stale,
            **self._hold(ch["channel"], ch["shown"]),
            **({"promo": ch["promo"]} if ch.get("promo") else {}),
        }
        auto = ch["buffer_auto"]
        if auto is not None:
            out["buffer_auto"] = {
                "buffer": ch["buffer"],
                "formula": auto["formula"],
                "clumps": auto["clumps"],
                "risk": auto["risk"],
                "min": auto["min"],
                "max": auto["max"],
                "push_lag_s": auto["push_lag"]["seconds"],
                "push_lag_measured": auto["push_lag"]["measured"],
                "sellers": [
                    {
                        "channel": s["channel"],
                        "rate": s["rate"],
                        "order_lag_s": s["order_lag"]["seconds"],
                        "order_lag_measured": s["order_lag"]["measured"],
                    }
                    for s in auto["sellers"]
                ],
                "part": auto["part"],
                "computed_at": None if auto["at"] is None else rfc3339(from_micros(auto["at"])),
                "reason": buffer_reason(ch["buffer"], auto),
            }
        return out

    def _protect_level(self, p: dict[str, Any]) -> dict[str, Any]:
        level = {"tier": p["tier"], "protect": p["protect"], "auto": p["auto"]}
        if p["auto"]:
            level |= {"value": p["value"], "demand": p["demand"]}
        return level

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_dict())

    def _pool_expr(self, ch: dict[str, Any]) -> str:
        if self._core["kind"] == "bundle":
            return f"pool[{ch['tier']}] {ch['pool']}"
        ats = self._core["ats"]
        # A key's own levels where a tier's protection is automatic, else the policy's.
        levels = [p["protect"] for p in self._core["protect"]] or self._protect
        above = [f"protect[{t}] {levels[t - 1]}" for t in range(1, ch["tier"])]
        if not above:
            return str(ats)
        expr = f" {_MINUS} ".join([str(ats), *above])
        return expr if ats >= ch["protect_above"] else f"max(0, {expr})"

    def _reason(self, ch: dict[str, Any]) -> str:
        shown, rule = ch["shown"], ch["rule"]
        if rule == "non_inventory":
            return f"{shown} = non-inventory quantity"
        if rule == "condition":
            return f"0 = condition {self._core['condition']} not sold here"
        if rule == "paused":
            return f"0 = paused: ATS {self._core['ats']} < pause_below {ch['pause_below']}"
        if rule == "preorder":
            c = self._core
            left = f"preorder_limit {c['preorder_limit']} {_MINUS} preordered {c['preordered']}"
            held = left if ch["cap"] is None else f"min(cap {ch['cap']}, {left})"
            return f"{shown} = {held} (before sellable_from)"
        expr = self._pool_expr(ch)
        promo = ch.get("promo")
        if promo and not promo["own"]:
            expr = f"max(0, {expr} {_MINUS} promo {promo['promo']} set aside {promo['held']})"
        if ch["share"] < 1:
            expr = f"floor({ch['share']:g} × ({expr}))"
        if ch["buffer"]:
            expr = f"{expr} {_MINUS} buffer {ch['buffer']}"
        if ch["cap"] is not None:
            expr = f"min(cap {ch['cap']}, {expr})"
        if promo and promo["own"]:
            waves = f"released {promo['released']} {_MINUS} sold {promo['sold']}"
            expr = f"min({expr}, promo {promo['promo']} {waves})"
        return f"{shown} = {expr}"

    def __str__(self) -> str:
        return render(self.to_dict())


def _price(p: dict[str, Any]) -> dict[str, Any]:
    """One channel's price (CONTRACT 14): what the rule computes now, what the channel
    was last sent, and each guard's verdict; `reason` is the whole line."""
    return {
        "channel": p["channel"],
        "price": p["price"],
        "currency": p["currency"],
        "published": p["published"],
        "formula": p["formula"],
        "promo": p["promo"],
        "guards": [
            {"rule": rule, "ok": ok, "limit": limit, "detail": text}
            for rule, ok, limit, text in p["guards"]
        ],
        "held_by": p["held_by"],
        "reason": p["text"],
    }


def _seconds(s: float) -> str:
    return f"{s:.4g} s"


def buffer_reason(buffer: int, auto: dict[str, Any]) -> str:
    """`buffer 14 = ceil(3.1/s × (3.0 s + 0 s) × 1.5)`: CONTRACT 13 with its numbers,
    `max(…, p99 3)` where the clumps a steady rate sells in decide (the Poisson p99 of
    the units), and the part whose sales decide a kit's buffer."""
    push = _seconds(auto["push_lag"]["seconds"])
    terms = [
        f"{s['rate']:.3g}/s × ({push} + {_seconds(s['order_lag']['seconds'])})"
        for s in auto["sellers"]
    ]
    units = " + ".join(terms) if terms else "0"
    if len(terms) > 1:
        units = f"({units})"
    expr = f"ceil({units} × {auto['risk']:g})"
    if auto["clumps"] == auto["formula"] and auto["clumps"] > 0:
        expr = f"max({expr}, p99 {auto['clumps']})"
    if buffer != auto["formula"]:
        bounds = [f"min {auto['min']}"]
        if auto["max"] is not None:
            bounds.append(f"max {auto['max']}")
        expr = f"clamp({expr} = {auto['formula']}, {', '.join(bounds)})"
    part = auto.get("part")
    if part:
        expr += f" (from {part['sku']}'s sales, in kits of {part['per_kit']})"
    return f"buffer {buffer} = {expr}"


def _protect_line(d: dict[str, Any]) -> str:
    auto = [p for p in d.get("protect", []) if p["auto"]]
    if not auto:
        return ""
    inputs = ", ".join(
        f"tier {p['tier']} value {p['value']:g} demand {p['demand']:.3g}" for p in auto
    )
    levels = ", ".join(f"protect[{p['tier']}] {p['protect']}" for p in auto)
    return f"  {levels} = EMSR-b({inputs})"


def _velocity_line(d: dict[str, Any]) -> str:
    """The sales rates, where an automatic number was computed from them."""
    automatic = d.get("protect") or any("buffer_auto" in ch for ch in d["channels"])
    if not d.get("velocity") or not automatic:
        return ""
    rates = ", ".join(
        f"{v['channel']} {v['rate']:.3g}/s (fast {v['fast']:.3g}, slow {v['slow']:.3g}"
        f"{_warming(v)}, peak {v['peak']:.3g}, floor {v['floor']:.3g}, day {v['long']:.3g})"
        for v in d["velocity"]
    )
    return f"  velocity now  {rates}"


def _warming(v: dict[str, Any]) -> str:
    """How a freshly started engine corrected a slow rate: its count ÷ the share of a
    steady rate it holds yet."""
    share = v.get("slow_share")
    return "" if share is None else f" = count ÷ {share:.2f} while warming up"


def _ats_formula(d: dict[str, Any]) -> str:
    if d["kind"] == "bundle":
        parts = ", ".join(f"floor({c['sku']} {c['ats']} / {c['qty']})" for c in d["components"])
        return f"ATS {d['ats']} = min({parts})"
    terms = [f"on hand {d['on_hand']}", f"reserved {d['reserved']}"]
    if d["backordered"]:
        terms.append(f"backordered {d['backordered']}")
    terms.append(f"safety {d['safety']}")
    expr = f" {_MINUS} ".join(terms)
    raw = d["on_hand"] - d["reserved"] - d["backordered"] - d["safety"]
    return f"ATS {d['ats']} = " + (expr if raw >= 0 else f"max(0, {expr})")


def _not_counted(d: dict[str, Any]) -> str:
    notes = [f"{k} {d[k]}" for k in ("inbound", "quarantined", "damaged") if d.get(k)]
    offline = [loc for loc in d["locations"] if not loc["online"] and loc["on_hand"]]
    notes += [f"{loc['location']} {loc['on_hand']} offline" for loc in offline]
    return f"   ({', '.join(notes)} not counted)" if notes else ""


def render(d: dict[str, Any]) -> str:
    """The human text of an explanation in its contract JSON form."""
    name = d["sku"] if d["condition"] == "new" else f"{d['sku']} ({d['condition']})"
    lines = [f"{name}  {_ats_formula(d)}{_not_counted(d)}"]
    width = max((len(ch["channel"]) for ch in d["channels"]), default=0)
    for ch in d["channels"]:
        shown, _, formula = ch["reason"].partition(" = ")
        stale = "   (feed stale: no good ack)" if ch.get("feed_stale") else ""
        lines.append(
            f"  {ch['channel']:<{width}}  tier {ch['tier']}  {shown:>5}  = {formula}{stale}"
        )
        if "buffer_auto" in ch:
            lines.append(f"  {'':<{width}}  {ch['buffer_auto']['reason']}")
        if "platform_hold" in ch:
            lines.append(f"  {'':<{width}}  {_hold_text(ch)}")
    for price in d.get("prices", []):
        lines.append(f"  {price['channel']:<{width}}  {price['currency']} {price['reason']}")
    lines += [line for line in (_protect_line(d), _velocity_line(d)) if line]
    return "\n".join(lines)


def _hold_text(ch: dict[str, Any]) -> str:
    """What a marketplace's hold does to the number it shows."""
    hold = ch["platform_hold"]
    held = f"the platform holds {hold['qty']} for a promotion"
    if hold["qty"] > ch["shown"]:
        return (
            f"{ch['channel']} shows {hold['marketplace_shows']}: {held} "
            f"(invsync decided {ch['shown']}; {hold['reason']})"
        )
    return f"{held}, within what invsync shows ({hold['reason']})"
