"""What the tests of every emulated platform share: a clock the test moves, and an
emulation served alone on a free loopback port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from invsync.sandbox.platforms.base import SandboxPlatform

S = TypeVar("S", bound=SandboxPlatform)


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
