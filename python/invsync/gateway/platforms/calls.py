"""What the profiles' HTTP calls share: the time-out, reading a reply that may not be
JSON, and mapping a failed request to the whole-request exceptions of `base`."""

from __future__ import annotations

from typing import Any, NoReturn

import aiohttp

from invsync.gateway.platforms.base import BatchRefused, BudgetReport, Throttled, TransientError

REQUEST_TIMEOUT_S = 30.0
# Read at call time, so a test can shorten it.
TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)


async def json_or_none(resp: aiohttp.ClientResponse) -> Any:
    """The reply's JSON whatever its content type; None when it is not JSON (a proxy's
    error page), so the caller reports the status instead."""
    try:
        return await resp.json(content_type=None)
    except ValueError:
        return None


def unreachable(what: str, exc: BaseException) -> TransientError:
    """A request that got no reply (connection refused, reset, timed out): sent again."""
    return TransientError(f"{what}: {type(exc).__name__}")


def raise_refused(what: str, status: int, reason: str, budget: BudgetReport) -> NoReturn:
    """A whole request refused for no reason of the credentials: 429 throttled, 5xx
    transient, anything else refused as a batch."""
    if status == 429:
        raise Throttled(f"{what}: {reason}", budget)
    if status >= 500:
        raise TransientError(f"{what}: HTTP {status} {reason}")
    raise BatchRefused(f"{what}: HTTP {status} {reason}")
