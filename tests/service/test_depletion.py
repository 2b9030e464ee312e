"""Reserve depletion: the share of a tier's protected band that sales have eaten."""

from __future__ import annotations

from invsync.service.depletion import depletion, tier_bands


def test_bands_stack_from_the_highest_tier_and_skip_unprotected_tiers() -> None:
    assert tier_bands({1: 20, 2: 10, 3: 0}) == {1: (0, 20), 2: (20, 10)}


def test_band_is_untouched_above_it_half_gone_midway_and_gone_below() -> None:
    band = (20, 10)  # tier 2 protects ATS units 21..30
    assert [depletion(ats, band) for ats in (40, 30, 25, 20, 0)] == [0.0, 0.0, 0.5, 1.0, 1.0]
