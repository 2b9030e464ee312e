"""After a sale, each marketplace is compared with what invsync decides when the wait
ends: automatic buffers move shown quantities on their cadence with no event behind them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import anyio

from invsync.flashsale.checker import SkuState
from invsync.flashsale.session import CONVERGE_ROUNDS, converge_on_latest


def state(amazon: int) -> SkuState:
    return SkuState(on_hand=200, reserved=0, backordered=0, ats=190, shown={"amazon": amazon})


class Service:
    """invsync's answers, one per ask: the last repeats."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)

    async def query_all(self, skus: Iterable[str]) -> dict[str, SkuState | None]:
        amazon = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {sku: state(amazon) for sku in skus}


class Market:
    """A marketplace that records what it was compared with."""

    def __init__(self) -> None:
        self.compared: list[int] = []

    async def converge(self, decided: Mapping[str, SkuState | None]) -> list[int]:
        sku_state = decided["CASE-B"]
        assert sku_state is not None
        self.compared.append(sku_state.shown["amazon"])
        return list(self.compared)


def run(service: Service, first: int) -> tuple[Market, Any]:
    market = Market()

    async def main() -> Any:
        return await converge_on_latest(
            cast(Any, service), cast(Any, market), ["CASE-B"], {"CASE-B": state(first)}
        )

    return market, anyio.run(main)


def test_a_cadence_during_the_wait_is_compared_at_its_new_number() -> None:
    # Asked before the wait: 37; a cadence after it (lags measured, rates decayed): 129.
    market, results = run(Service(129), first=37)
    assert market.compared == [37, 129]
    assert results == [37, 129]


def test_numbers_that_stay_put_are_compared_once() -> None:
    market, _ = run(Service(37), first=37)
    assert market.compared == [37]


def test_numbers_that_keep_moving_end_the_wait_after_a_bounded_number_of_rounds() -> None:
    market, _ = run(Service(*range(100, 200)), first=37)
    assert len(market.compared) == CONVERGE_ROUNDS
