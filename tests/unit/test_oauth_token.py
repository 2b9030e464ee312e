"""The OAuth token request every refreshing profile uses: client credentials as HTTP
Basic auth through aiohttp's supported API, and errors that name sources, not values."""

from __future__ import annotations

import base64
import warnings
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from invsync.gateway.platforms.base import AuthError
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import oauth_token

pytestmark = pytest.mark.anyio

CLIENT = Secret("$EBAY_ID", "client-id-1")
SECRET = Secret("$EBAY_SECRET", "client-secret-2")
REFRESH = Secret("$EBAY_REFRESH", "refresh-3")


@pytest.fixture
async def token_url() -> AsyncIterator[str]:
    async def token(request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(b"client-id-1:client-secret-2").decode()
        form = await request.post()
        if (
            request.headers.get("Authorization") != expected
            or form.get("refresh_token") != "refresh-3"
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": "access-4", "expires_in": 7200})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/token"
    await runner.cleanup()


async def test_client_credentials_travel_as_basic_auth_without_deprecated_api(
    token_url: str,
) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH}
    async with aiohttp.ClientSession() as http:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            token, lifetime = await oauth_token(http, token_url, form, basic=(CLIENT, SECRET))
    assert (token.reveal(), lifetime) == ("access-4", 7200.0)
    assert "access-4" not in repr(token)


async def test_a_refused_token_request_names_sources_never_values(token_url: str) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH}
    wrong = Secret("$EBAY_SECRET", "not-the-secret")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(AuthError) as caught:
            await oauth_token(http, token_url, form, basic=(CLIENT, wrong))
    message = str(caught.value)
    assert "$EBAY_SECRET" in message
    assert "not-the-secret" not in message and "refresh-3" not in message
