"""What each emulated platform gives the sandbox application."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

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
