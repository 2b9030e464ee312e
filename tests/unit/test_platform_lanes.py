"""A per-call lane refuses a batch its platform's call cannot take: a scheduler bug must
not reach the platform as a half-understood request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from invsync.gateway.platforms.base import Change, LaneLimits, Listing
from invsync.gateway.platforms.lanes import SynchronousLane

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class _Lane(SynchronousLane):
    name = "update"
    call = "UpdateStock"


def change(item: str) -> Change:
    listing = Listing(sku=f"stock-{item}", condition="new", ids={"item_id": item})
    return Change(listing=listing, qty=1, known=None, source_ts=TS)


def test_a_call_takes_one_to_batch_changes_of_one_parent() -> None:
    lane = _Lane(LaneLimits(rate=1, burst=1, batch=2, group_by="item_id"))
    lane.one_call([change("1"), change("1")])
    for changes in ([], [change("1")] * 3, [change("1"), change("2")]):
        with pytest.raises(ValueError, match="UpdateStock takes 1 to 2 listings of one item_id"):
            lane.one_call(changes)


def test_an_ungrouped_lane_takes_any_listings() -> None:
    lane = _Lane(LaneLimits(rate=1, burst=1, batch=2))
    lane.one_call([change("1"), change("2")])
    with pytest.raises(ValueError, match="UpdateStock takes 1 to 2 listings, not 3"):
        lane.one_call([change("1")] * 3)
