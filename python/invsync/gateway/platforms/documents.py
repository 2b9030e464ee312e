"""Feed documents built and serialized off the event loop.

A backlog's feed carries up to tens of thousands of items (Amazon's JSON_LISTINGS_FEED,
Walmart's bulk inventory feed). Building and serializing it on the event loop would
hold back the request that carries a sold-out listing's zero on another lane until the
document is done; in a worker thread the loop keeps sending.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio


async def json_document(build: Callable[[], Any]) -> bytes:
    """`build()` serialized as UTF-8 JSON, both in a worker thread."""

    def encoded() -> bytes:
        return json.dumps(build()).encode()

    return await anyio.to_thread.run_sync(encoded)
