"""What the profiles' HTTP calls share: the time-out, reading a reply that may not be
JSON, and mapping a failed request to the whole-request exceptions of `base`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp

from invsync.gateway.platforms.base import BatchRefused, BudgetReport, Throttled, TransientError

REQUEST_TIMEOUT_S = 30.0
# Read at call time, so a test can shorten it.
TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)


@dataclass(frozen=True)
class Response:
    """A platform's reply: its status, its JSON body (None when it is not JSON) and
    the budget its headers report."""

    status: int
    payload: Any
    budget: BudgetReport


BudgetReader = Callable[[Mapping[str, str], int], BudgetReport]


def no_budget(headers: Mapping[str, str], status: int) -> BudgetReport:
    """For a platform whose replies report no budget."""
    return BudgetReport()


async def request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    what: str,
    budget: BudgetReader,
    **sent: Any,
) -> Response:
    """One request (`sent`: aiohttp's params, json, data, headers) read whatever its
    status: the caller decides what a status means. No reply at all is transient."""
    try:
        async with http.request(method, url, timeout=TIMEOUT, **sent) as resp:
            payload = await json_or_none(resp)
            return Response(resp.status, payload, budget(resp.headers, resp.status))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(what, exc) from None


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
