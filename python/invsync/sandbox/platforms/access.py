"""Who may call an emulated platform: the channel's credentials it requires, and the
access tokens it hands out, each valid until it expires or is revoked."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market


def require_credentials(
    platform: str, market: Market, credentials: Mapping[str, Secret], names: Iterable[str]
) -> None:
    missing = [name for name in names if name not in credentials]
    if missing:
        raise ValueError(f"{platform} channel {market.channel}: credentials lack {missing}")


class IssuedTokens:
    """The access tokens handed out, each with the time it expires on `clock`."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._expiry: dict[str, float] = {}

    @property
    def expires_in(self) -> int | float:
        """The lifetime as a reply states it: whole seconds when it is whole."""
        return int(self.ttl_s) if float(self.ttl_s).is_integer() else self.ttl_s

    def issue(self, token: str) -> float:
        """Hand out `token`; returns when it expires."""
        expires_at = self._clock() + self.ttl_s
        self._expiry[token] = expires_at
        return expires_at

    def known(self, token: str) -> bool:
        """Handed out and not revoked, expired or not."""
        return token in self._expiry

    def valid(self, token: str) -> bool:
        expires_at = self._expiry.get(token)
        return expires_at is not None and self._clock() < expires_at

    def forget_expired(self) -> None:
        now = self._clock()
        self._expiry = {token: at for token, at in self._expiry.items() if at > now}

    def revoke_all(self) -> None:
        """The platform revoked every token early (a test's or a rehearsal's fault)."""
        self._expiry.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(self._expiry)
