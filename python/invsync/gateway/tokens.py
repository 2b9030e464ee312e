"""Access tokens that expire: fetched with a long-lived credential, refreshed before
they run out, and once more when the platform refuses one early.

Amazon (Login with Amazon) and eBay hand out access tokens for a refresh token;
Walmart for client credentials. All three use the OAuth 2.0 token request of RFC
6749 section 4: a form POST answered with `access_token` and `expires_in`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import anyio

from invsync.gateway.platforms.base import AuthError, TransientError
from invsync.gateway.secrets import Secret

# Refresh this long before the platform's expiry, so a request never carries a token
# that runs out on its way.
REFRESH_MARGIN_S = 60.0
TOKEN_TIMEOUT_S = 10.0

TokenFetch = Callable[[aiohttp.ClientSession], Awaitable[tuple[Secret, float]]]
R = TypeVar("R")


class RefreshingToken:
    """One platform account's access token: `get` returns a valid one, fetching a new
    one when it is missing, about to expire, or was refused (`invalidate`)."""

    def __init__(self, fetch: TokenFetch, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock = anyio.Lock()

    async def get(self, http: aiohttp.ClientSession) -> Secret:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                token, lifetime_s = await self._fetch(http)
                self._token = token
                self._expires_at = self._clock() + lifetime_s
            return self._token

    def invalidate(self, refused: Secret) -> None:
        """The platform refused `refused`: the next `get` fetches a new token, unless
        another request has already replaced it."""
        if self._token is refused:
            self._token = None

    async def call(
        self,
        http: aiohttp.ClientSession,
        attempt: Callable[[Secret], Awaitable[R]],
        refused: Callable[[R], bool],
        refused_again: Callable[[R], Exception],
    ) -> R:
        """`attempt` with a valid token; when the platform refuses the token (`refused`
        of the reply), once more with a fresh one. A token refused twice is not a stale
        token but wrong credentials: `refused_again` of the last reply is raised."""
        for _ in range(2):
            token = await self.get(http)
            reply = await attempt(token)
            if not refused(reply):
                return reply
            self.invalidate(token)
        raise refused_again(reply)


async def oauth_token(
    http: aiohttp.ClientSession,
    url: str,
    form: Mapping[str, str | Secret],
    basic: tuple[Secret, Secret] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Secret, float]:
    """POST an OAuth token request and return the access token and its lifetime in
    seconds. `basic` sends the client id and secret as HTTP Basic auth (eBay, Walmart);
    otherwise they travel in `form` (Amazon LWA). `headers` are the platform's own
    (Walmart's service name and correlation id). A 400/401 is an AuthError naming the
    credentials' sources; a 5xx or a time-out is transient."""
    sources = ", ".join(v.source for v in (*form.values(), *(basic or ())) if isinstance(v, Secret))
    body = {k: v.reveal() if isinstance(v, Secret) else v for k, v in form.items()}
    sent = {**(headers or {}), "Accept": "application/json"}
    if basic is not None:
        sent["Authorization"] = basic_authorization(basic[0], basic[1])
    try:
        async with http.post(
            url,
            data=body,
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=TOKEN_TIMEOUT_S),
        ) as resp:
            if resp.status >= 500 or resp.status == 429:
                raise TransientError(f"token endpoint answered HTTP {resp.status}")
            payload = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(payload, dict):
                error = payload.get("error") if isinstance(payload, dict) else None
                raise AuthError(
                    f"token request refused (HTTP {resp.status}, {error or 'no reason'}); "
                    f"check the credentials from {sources}"
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"token endpoint unreachable: {type(exc).__name__}") from None
    except ValueError:
        raise TransientError(f"token endpoint answered something other than JSON ({url})") from None
    token = payload.get("access_token")
    lifetime = payload.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
        raise AuthError(f"token endpoint reply lacks access_token or expires_in ({url})")
    return Secret(f"token from {url}", token), float(lifetime)


def basic_authorization(user: Secret, password: Secret) -> str:
    """The `Authorization` header value of HTTP Basic auth (RFC 7617), built here
    because aiohttp deprecates its `auth=` parameter and `encode_basic_auth` is only
    in its newest releases."""
    pair = f"{user.reveal()}:{password.reveal()}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
