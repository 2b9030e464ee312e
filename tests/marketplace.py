"""What the tests of every emulated platform share: a clock the test moves, and an
emulation served alone on a free loopback port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from aiohttp import web

from invsync.sandbox.platforms.base import SandboxPlatform

S = TypeVar("S", bound=SandboxPlatform)
Handler = Callable[[web.Request], Awaitable[web.Response]]


class ManualClock:
    """A clock the test moves: the sandbox's token lifetimes, buckets and timestamp
    windows."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def frozen_wall() -> ManualClock:
    """A clock standing still at the real Unix time it was made: the time a profile
    signs with, for the platforms that check a request's timestamp."""
    return ManualClock(time.time())


@asynccontextmanager
async def served_app(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """`app` on 127.0.0.1 at `port` (0: one the system chooses); yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass
class Served(Generic[S]):
    sandbox: S
    url: str


@asynccontextmanager
async def served_alone(sandbox: S, port: int = 0) -> AsyncIterator[Served[S]]:
    """One emulated platform alone on an application of its own."""
    app = web.Application()
    app.add_routes(sandbox.routes())
    async with served_app(app, port) as url:
        yield Served(sandbox, url)


@asynccontextmanager
async def token_endpoint_beside(
    sandbox: SandboxPlatform, token_path: str, *routes: web.RouteDef
) -> AsyncIterator[str]:
    """The emulation's token endpoint alone beside the test's own `routes` (a failing
    API): the profile gets its access token, then meets the failure. Yields the URL."""
    token = [route for route in sandbox.routes() if getattr(route, "path", None) == token_path]
    if not token:
        raise LookupError(f"the emulation serves no {token_path}")
    app = web.Application()
    app.add_routes([*token, *routes])
    async with served_app(app) as url:
        yield url


def failing(fault: str, reply: Callable[[], web.Response]) -> Handler:
    """A handler that on `fault` "time-out" stalls past the test's short request
    time-out (the `short_timeout` fixture), else answers `reply()`."""

    async def handle(request: web.Request) -> web.Response:
        if fault == "time-out":
            await anyio.sleep(1)
        return reply()

    return handle
