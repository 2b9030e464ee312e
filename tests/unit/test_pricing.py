"""Prices in, guarded prices out (CONTRACT 14): a channel's price follows from the
SKU's base price by its policy, and a price that breaks a guard (MAP floor, margin
after fees, parity, a change large enough to send a listing to review) is never
published: the last good price stays and `price_guard` says why."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from invsync import Engine, Policy, _core
from invsync.errors import BadInputError, PolicyError, ReportedElsewhereError
from invsync.events import PriceUpdate, encode_json

_ids = itertools.count(1)

TS = "2026-12-05T10:00:00Z"

POLICY = """
[[tiers]]
tier = 1

[[locations]]
id = "wh-1"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1
price = { rounding = "0.99", fee_pct = 3, margin_floor_pct = 15, max_discount_pct = 30 }

[[channels]]
id = "amazon"
tier = 1
price = { markup_pct = 15, fee_pct = 15, rounding = "0.99", margin_floor_pct = 15 }

[[channels]]
id = "walmart"
tier = 1
price = { rounding = "0.05", parity = "not_above_lowest" }

[[channels]]
id = "lazada"
tier = 1
price = { markup_pct = 5, max_deviation_pct = 79 }

[[channels]]
id = "b2b"
tier = 1

[[classes]]
id = "premium"
channels = { amazon = { price = { markup_pct = 25 } } }

[[skus]]
id = "P"
class = "premium"
"""


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"e{next(_ids)}", "ts": TS, **fields}


def price_set(sku: str, price: str, **fields: Any) -> dict[str, Any]:
    return event("price.set", sku=sku, price=price, currency="USD", **fields)


def promo(
    promo_id: str, channels: list[str], skus: list[str], pct: float, **fields: Any
) -> dict[str, Any]:
    window = {"starts": "2026-12-05T12:00:00Z", "ends": "2026-12-05T14:00:00Z"} | fields
    return event(
        "promo.set", promo_id=promo_id, channels=channels, skus=skus, discount_pct=pct, **window
    )


def tick(at: str) -> dict[str, Any]:
    return event("clock.tick", ts=at)


def engine(text: str = POLICY) -> Engine:
    return Engine(Policy.from_toml(text))


def prices_explained(e: Engine, sku: str = "A") -> dict[str, dict[str, Any]]:
    return {p["channel"]: p for p in e.explain(sku).to_dict()["prices"]}


_PRICE = msgspec.json.Decoder(PriceUpdate)


def drained(e: Engine) -> list[tuple[str, PriceUpdate]]:
    """The prices a drain publishes, decoded; each body is what msgspec writes for it."""
    prices, _ = e.drain_prices()
    out = [(channel, _PRICE.decode(body)) for channel, body in prices]
    assert [body for _, body in prices] == [encode_json(p) for _, p in out]
    return out


def published(e: Engine) -> dict[tuple[str, str], str]:
    return {(channel, p.sku): p.price for channel, p in drained(e)}


def held(e: Engine) -> list[tuple[str | None, str | None, str | None, str | None]]:
    _, alerts = e.drain_prices()
    assert all(a.kind == "price_guard" for a in alerts)
    return [(a.channel, a.rule, a.price, a.limit) for a in alerts]


def test_each_channel_gets_its_markup_and_rounding_and_an_unpriced_channel_none() -> None:
    e = engine()
    e.apply(price_set("A", "19.00"))
    assert published(e) == {
        ("shopify", "A"): "19.99",  # 19.00 up to the next .99
        ("amazon", "A"): "21.99",  # 19.00 × 1.15 = 21.85 → 21.99
        ("walmart", "A"): "19.00",  # on a 0.05 step already, and the lowest
        ("lazada", "A"): "19.95",
    }
    assert published(e) == {}, "an unchanged price is not published again"


def test_a_class_override_replaces_only_the_fields_it_names() -> None:
    e = engine()
    e.apply(price_set("P", "19.00"))
    amazon = next(p for ch, p in drained(e) if ch == "amazon")
    assert amazon.price == "23.99"  # 19.00 × 1.25 = 23.75, still rounded to .99
    assert amazon.reason == "list: round_99(19.00 × 1.25)"
    assert amazon.currency == "USD"


def test_a_price_below_the_map_is_held_and_the_last_good_one_stays() -> None:
    e = engine()
    e.apply(price_set("A", "19.00", map="19.00"))
    published(e)
    e.apply(promo("wk", ["shopify"], ["A"], 20, starts="2026-12-05T09:00:00Z"))
    e.apply(tick("2026-12-05T10:00:01Z"))
    # 19.00 × 0.80 = 15.20 → 15.99 is below the MAP 19.00
    assert held(e) == [("shopify", "map", "15.99", "19.00")]
    assert prices_explained(e)["shopify"]["published"] == "19.99"


def test_a_price_under_the_margin_floor_after_fees_is_held_with_the_price_that_would_pass() -> None:
    e = engine()
    e.apply(price_set("A", "19.00", cost="16.00"))
    # shopify 19.99: (19.99 × 0.97 − 16) / 19.99 = 16.9% ≥ 15% passes;
    # amazon 21.99: (21.99 × 0.85 − 16) / 21.99 = 12.2% < 15% is held.
    assert held(e) == [("amazon", "margin", "21.99", "22.86")]


def test_parity_holds_a_price_above_the_lowest_elsewhere() -> None:
    e = engine()
    e.apply(price_set("A", "19.00"))
    published(e)
    # A shopify-only promotion takes shopify to 15.99: walmart's 19.00 is now above it.
    e.apply(promo("sale", ["shopify"], ["A"], 20, starts="2026-12-05T09:00:00Z"))
    e.apply(tick("2026-12-05T10:00:01Z"))
    prices, alerts = e.drain_prices()
    assert [(ch, _PRICE.decode(body).price) for ch, body in prices] == [("shopify", "15.99")]
    assert [(a.channel, a.rule, a.limit) for a in alerts] == [("walmart", "parity", "15.99")]
    walmart = prices_explained(e)["walmart"]
    assert (walmart["held_by"], walmart["published"]) == ("parity", "19.00")
    assert "parity > lowest elsewhere 15.99 broken" in walmart["reason"]


def test_a_change_of_80_percent_is_held_on_lazada_and_79_percent_passes() -> None:
    e = engine()
    e.apply(price_set("A", "10.00"))
    assert published(e)[("lazada", "A")] == "10.50"
    e.apply(price_set("A", "19.00"))  # 19.95: +90%
    assert ("lazada", "deviation", "19.95", "18.79") in held(e)
    e.apply(price_set("A", "17.80"))  # 18.69: +78%
    assert published(e)[("lazada", "A")] == "18.69"


def test_a_held_price_is_alerted_once_not_at_every_recompute() -> None:
    e = engine()
    e.apply(price_set("A", "19.00", cost="16.00"))
    assert len(held(e)) == 1
    e.set_policy(Policy.from_toml(POLICY))
    assert held(e) == []


def test_a_promotion_applies_inside_its_window_only() -> None:
    e = engine()
    e.apply(price_set("A", "20.00"))
    e.apply(tick("2026-12-05T11:00:00Z"))
    published(e)
    e.apply(promo("noon", ["shopify"], ["A"], 25))
    assert published(e) == {}
    e.apply(tick("2026-12-05T12:00:00Z"))
    assert [(ch, p.price, p.reason) for ch, p in drained(e)] == [
        ("shopify", "15.99", "promo: round_99(20.00 × 0.75) promo noon")
    ]
    e.apply(tick("2026-12-05T14:00:00Z"))
    assert published(e) == {("shopify", "A"): "20.99"}


def test_explain_shows_each_channel_price_as_a_formula_with_its_guards() -> None:
    e = engine()
    e.apply(price_set("A", "19.00", cost="10.00", map="18.00"))
    published(e)
    lines = str(e.explain("A")).splitlines()
    amazon = next(line for line in lines if "amazon" in line and "price" in line)
    assert "price 21.99 = round_99(19.00 × 1.15) ; guards: map 18.00 ok, margin" in amazon
    assert "≥ 15% ok" in amazon


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": "-1.00"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "99999999999999"}, "price"),
        ({"price": "19.999"}, "price"),
        ({"price": 1e400}, "price"),
        ({"currency": "XYZ"}, "currency"),
        ({"map": "25.00"}, "map"),
        ({"cost": "-2"}, "cost"),
    ],
)
def test_bad_prices_are_refused_and_change_nothing(fields: dict[str, Any], field: str) -> None:
    e = engine()
    e.apply(price_set("A", "19.00"))
    before = published(e)
    with pytest.raises(BadInputError, match=field):
        e.apply(price_set("A", "19.00") | fields)
    assert published(e) == {}
    assert prices_explained(e)["shopify"]["published"] == before[("shopify", "A")]


def test_a_second_currency_for_a_sku_is_refused() -> None:
    e = engine()
    e.apply(price_set("A", "19.00"))
    with pytest.raises(BadInputError, match="currency"):
        e.apply(price_set("A", "17.00") | {"currency": "EUR"})
    e.apply(price_set("B", "17.00") | {"currency": "EUR"})


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (promo("x", ["shopify"], ["A"], 10, ends="2026-12-05T11:00:00Z"), "ends"),
        (promo("x", ["shopify"], ["A"], 40), "discount_pct"),  # shopify allows 30
        (promo("x", ["b2b"], ["A"], 10), "channels"),  # not priced
        (promo("x", ["nowhere"], ["A"], 10), "channels"),
        (
            promo(
                "x",
                ["shopify"],
                ["A"],
                10,
                starts="2026-12-05T13:00:00Z",
                ends="2026-12-05T15:00:00Z",
            ),
            "overlaps",
        ),
    ],
)
def test_bad_promotions_are_refused_and_change_nothing(bad: dict[str, Any], field: str) -> None:
    e = engine()
    e.apply(price_set("A", "20.00"))
    e.apply(promo("first", ["shopify", "amazon"], ["A"], 10))
    e.apply(tick("2026-12-05T12:30:00Z"))
    before = published(e)
    with pytest.raises(BadInputError, match=field):
        e.apply(bad)
    e.apply(tick("2026-12-05T12:31:00Z"))
    assert published(e) == {}
    assert before[("shopify", "A")] == "18.99"


def test_promotions_on_one_sku_on_different_channels_at_once_are_alerted() -> None:
    e = engine()
    e.apply(promo("a", ["shopify"], ["A"], 10))
    fx = e.apply(promo("b", ["amazon"], ["A", "B"], 10, starts="2026-12-05T13:00:00Z"))
    assert [(a.kind, a.sku) for a in fx.alerts] == [("promo_collision", "A")]


def test_prices_and_promotions_survive_a_snapshot() -> None:
    e = engine()
    e.apply(price_set("A", "19.00"))
    e.apply(promo("noon", ["shopify"], ["A"], 25))
    published(e)
    back = Engine.restore(e.policy, e.snapshot())
    assert published(back) == {}, "what was published stands"
    back.apply(tick("2026-12-05T12:00:00Z"))
    assert published(back) == {("shopify", "A"): "14.99"}


def test_a_lazada_channel_may_not_allow_a_change_its_review_catches() -> None:
    text = POLICY.replace("max_deviation_pct = 79", "max_deviation_pct = 80")
    with pytest.raises(PolicyError, match="max_deviation_pct") as refused:
        Policy.from_toml(text)
    assert (
        refused.value.line
        == text.splitlines().index("price = { markup_pct = 5, max_deviation_pct = 80 }") + 1
    )
    with pytest.raises(PolicyError, match="Lazada"):
        Policy.from_toml(POLICY.replace(", max_deviation_pct = 79", ""))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('rounding = "0.99"', 'rounding = "0.07"', "rounding"),
        ('rounding = "0.99"', 'rounding = "ninety-nine"', "rounding"),
        ('parity = "not_above_lowest"', 'parity = "below"', "parity"),
        ("fee_pct = 15", "fee_pct = 100", "fee_pct"),
        (
            "channels = { amazon = { price = { markup_pct = 25 } } }",
            "channels = { b2b = { price = { markup_pct = 25 } } }",
            "price",
        ),
    ],
)
def test_a_wrong_price_table_is_refused_naming_the_field(old: str, new: str, field: str) -> None:
    assert old in POLICY
    with pytest.raises(PolicyError, match=field):
        Policy.from_toml(POLICY.replace(old, new, 1))


STOCKED = (
    POLICY
    + """
[[skus]]
id = "S"
"""
)


def stock(sku: str, on_hand: int) -> dict[str, Any]:
    return event("stock.set", sku=sku, location="wh-1", on_hand=on_hand)


def sale(channel: str, sku: str, qty: int) -> dict[str, Any]:
    lines = [{"line_id": "1", "sku": sku, "qty": qty}]
    return event("order.placed", order_id=f"o{next(_ids)}", channel=channel, lines=lines)


def test_a_promotion_stock_cap_is_kept_from_other_channels_and_released_in_waves() -> None:
    e = engine(STOCKED)
    e.apply(stock("S", 100))
    e.apply(price_set("S", "10.00"))
    # 12:00-14:00, 40 units for shopify: four waves of 10, every 30 minutes.
    e.apply(promo("flash", ["shopify"], ["S"], 20, stock_cap=40))
    e.apply(tick("2026-12-05T11:59:59Z"))
    assert (e.shown("S", "shopify"), e.shown("S", "amazon")) == (100, 100)
    e.apply(tick("2026-12-05T12:00:00Z"))
    assert e.shown("S", "shopify") == 10, "the first wave"
    assert e.shown("S", "amazon") == 60, "100 less the 40 set aside"
    e.apply(sale("shopify", "S", 10))
    assert e.shown("S", "shopify") == 10, "the first wave sold through: the second opens"
    assert e.shown("S", "amazon") == 60, "90 less the 30 still set aside"
    e.apply(tick("2026-12-05T13:00:00Z"))
    assert e.shown("S", "shopify") == 20, "the third wave by the clock"
    e.apply(sale("amazon", "S", 5))
    assert e.shown("S", "amazon") == 55
    explained = {ch["channel"]: ch["reason"] for ch in e.explain("S").to_dict()["channels"]}
    assert "promo flash released 30 − sold 10" in explained["shopify"]
    assert "promo flash set aside 30" in explained["amazon"]
    e.apply(tick("2026-12-05T14:00:00Z"))
    assert (e.shown("S", "shopify"), e.shown("S", "amazon")) == (85, 85), "the window closed"


def test_a_promotion_set_aside_survives_a_snapshot() -> None:
    e = engine(STOCKED)
    e.apply(stock("S", 100))
    e.apply(promo("flash", ["shopify"], ["S"], 20, stock_cap=40))
    e.apply(tick("2026-12-05T12:00:00Z"))
    e.apply(sale("shopify", "S", 4))
    back = Engine.restore(e.policy, e.snapshot())
    assert (back.shown("S", "shopify"), back.shown("S", "amazon")) == (6, 60)


def hold(channel: str, sku: str, qty: int) -> dict[str, Any]:
    return {
        "type": "reserve",
        "request_id": f"r{next(_ids)}",
        "order_id": f"h{next(_ids)}",
        "channel": channel,
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
        "ts": "2026-12-05T12:01:00Z",
    }


def test_reservations_keep_to_a_promotion_set_aside_too() -> None:
    e = engine(STOCKED)
    e.apply(stock("S", 100))
    e.apply(promo("flash", ["shopify"], ["S"], 20, stock_cap=40))
    e.apply(tick("2026-12-05T12:00:00Z"))
    assert e.reserve(hold("amazon", "S", 61))["ok"] is False, "40 of 100 are set aside"
    assert e.reserve(hold("amazon", "S", 60))["ok"] is True
    assert e.reserve(hold("shopify", "S", 11))["ok"] is False, "the first wave is 10"
    assert e.reserve(hold("shopify", "S", 10))["ok"] is True


def _sku_in(partition: int) -> str:
    return next(s for s in (f"S{i}" for i in range(100)) if _core.partition_of(s, 2) == partition)


def _two_partitions_priced() -> tuple[Engine, Engine, str, str]:
    """Partitions 0 and 1 of 2, each with a priced SKU of its own (mine: partition 0's,
    theirs: partition 1's) and the other's price applied too."""
    policy = Policy.from_toml(POLICY)
    first, second = (Engine(policy, partition=k, partitions=2) for k in (0, 1))
    mine, theirs = _sku_in(0), _sku_in(1)
    for e in (first, second):
        e.apply(price_set(mine, "20.00"))
        e.apply(price_set(theirs, "30.00"))
    return first, second, mine, theirs


def test_a_partition_prices_its_own_skus_and_partition_zero_alone_refuses_a_promotion() -> None:
    first, second, mine, theirs = _two_partitions_priced()
    assert {sku for _, sku in published(first)} == {mine}
    assert {sku for _, sku in published(second)} == {theirs}
    bad = promo("x", ["shopify"], [theirs], 10, ends="2026-12-05T11:00:00Z")
    with pytest.raises(BadInputError, match="ends") as refused:
        first.apply(bad)
    assert not isinstance(refused.value, ReportedElsewhereError)
    with pytest.raises(ReportedElsewhereError):
        second.apply(bad)


def test_a_promotion_overlapping_on_one_partitions_sku_is_refused_by_every_partition() -> None:
    first, second, mine, theirs = _two_partitions_priced()
    for e in (first, second):
        e.apply(promo("early", ["shopify"], [theirs], 10))
        published(e)  # the base prices; from here on only changes are published
    overlapping = promo("late", ["shopify"], [mine, theirs], 20)
    with pytest.raises(BadInputError, match="overlaps") as refused:
        first.apply(overlapping)
    assert not isinstance(refused.value, ReportedElsewhereError), "partition 0 reports it"
    with pytest.raises(ReportedElsewhereError):
        second.apply(overlapping)
    for e in (first, second):
        e.apply(tick("2026-12-05T12:30:00Z"))
    # Only the first promotion runs, and each partition prices its own SKUs alone.
    assert {sku for _, sku in published(first)} == set()
    assert {sku for _, sku in published(second)} == {theirs}
