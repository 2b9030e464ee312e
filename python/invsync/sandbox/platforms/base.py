"""What each emulated platform gives the sandbox application."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market


class SandboxPlatform(Protocol):
    """One marketplace: its routes on the shared application, its `Market`, and the
    delay between a sale and the order reaching the seller's OMS."""

    platform: str
    market: Market
    order_delay_s: float

    def routes(self) -> Iterable[web.RouteDef]:
        """The platform's documented endpoints (quantity update, token, feeds...)."""
        ...

    def state(self) -> Mapping[str, Any]:
        """Platform-specific state for `GET /sandbox/state` beside the listings and
        counters (e.g. eBay revisions used today, Amazon feeds in progress)."""
        ...


@dataclass(frozen=True)
class SandboxSettings:
    """Knobs a rehearsal or a test may turn; None keeps the platform's documented value.
    `token_ttl_s` is the lifetime of the access tokens the sandbox hands out (short, to
    exercise refresh); `order_delay_s` the time from a sale to its `order.placed`;
    `job_delay_s` how long an asynchronous feed takes to process; `review_delay_s` how
    long a listing a price change sent back to review (Lazada's QC) stays off sale."""

    token_ttl_s: float = 3600.0
    order_delay_s: float | None = None
    job_delay_s: float | None = None
    review_delay_s: float | None = None

    def order_delay(self, documented_s: float) -> float:
        """`order_delay_s`, else the platform's documented delay."""
        return documented_s if self.order_delay_s is None else self.order_delay_s


class SandboxFactory(Protocol):
    """Builds one emulated platform for `market`, accepting exactly the credentials the
    channels file names for that channel (the same ones `invsync connect` sends)."""

    def __call__(
        self, market: Market, credentials: Mapping[str, Secret], settings: SandboxSettings
    ) -> SandboxPlatform: ...


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """Login and password of an HTTP Basic `Authorization` header; empty when absent or
    malformed, which no configured credential matches."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    login, _, password = decoded.partition(":")
    return login, password
