"""The access tokens an emulated platform hands out: valid until they expire or are
revoked, and stated in whole seconds when the lifetime is whole."""

from __future__ import annotations

from invsync.sandbox.platforms.access import IssuedTokens


def test_a_token_is_valid_until_it_expires_and_stays_known() -> None:
    now = [100.0]
    tokens = IssuedTokens(60.0, lambda: now[0])
    assert tokens.issue("t-1") == 160.0
    assert tokens.valid("t-1") and not tokens.valid("t-2")
    now[0] = 160.0
    assert not tokens.valid("t-1") and tokens.known("t-1")
    tokens.forget_expired()
    assert not tokens.known("t-1")


def test_revoked_tokens_are_unknown() -> None:
    tokens = IssuedTokens(60.0, lambda: 0.0)
    tokens.issue("t-1")
    tokens.revoke_all()
    assert not tokens.known("t-1") and list(tokens) == []


def test_the_lifetime_is_stated_in_whole_seconds_when_whole() -> None:
    assert IssuedTokens(3600.0, lambda: 0.0).expires_in == 3600
    assert isinstance(IssuedTokens(3600.0, lambda: 0.0).expires_in, int)
    assert IssuedTokens(0.5, lambda: 0.0).expires_in == 0.5
