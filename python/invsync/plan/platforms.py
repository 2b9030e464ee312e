"""Which marketplace a policy channel sells on, read from its id."""

from __future__ import annotations

from invsync.gateway.config import PLATFORMS

__all__ = ["platform_of"]


def platform_of(channel: str) -> str | None:
    """The platform a channel id names: `amazon`, or `amazon-uk` / `amazon_de` for a
    second store on it; None for a channel of no known platform (a B2B portal)."""
    for platform in PLATFORMS:
        if channel == platform or channel.startswith((f"{platform}-", f"{platform}_")):
            return platform
    return None
