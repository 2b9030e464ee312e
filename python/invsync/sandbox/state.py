"""`invsync sandbox --state FILE`: what the marketplaces show, and the orders they
still owe the OMS, kept across a restart. A real marketplace does not forget its
quantities when the seller's integration restarts, so a rehearsal's must not either.

The file is JSON, rewritten atomically (a temporary file renamed over it) whenever
something changed, at most every `SAVE_EVERY_S`, and once more on shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import anyio
import msgspec

from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.orders import OrderBook, PendingOrder

log = logging.getLogger("invsync.sandbox")

SAVE_EVERY_S = 0.5
FORMAT = 1


class SavedListing(msgspec.Struct, frozen=True):
    key: str
    sku: str
    condition: str
    ids: dict[str, str]
    qty: int
    sold: int = 0
    updates: int = 0
    price: str | None = None
    revenue: str = "0"


class SavedState(msgspec.Struct, frozen=True):
    format: int
    # channel -> its listings
    markets: dict[str, list[SavedListing]]
    orders: list[PendingOrder]


class StateFileError(Exception):
    """The state file exists but cannot be used; the message names it and says why."""


def snapshot(markets: Iterable[Market], orders: OrderBook) -> SavedState:
    return SavedState(
        format=FORMAT,
        markets={
            m.channel: [
                SavedListing(
                    li.key,
                    li.sku,
                    li.condition,
                    dict(li.ids),
                    li.qty,
                    li.sold,
                    li.updates,
                    li.price,
                    str(li.revenue),
                )
                for li in m.listings.values()
            ]
            for m in markets
        },
        orders=orders.pending,
    )


def load(path: Path) -> SavedState | None:
    """The saved state, or None when there is no file yet (a first start)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        state = msgspec.json.decode(data, type=SavedState)
    except msgspec.DecodeError as exc:
        raise StateFileError(f"{path}: not a sandbox state file ({exc})") from None
    if state.format != FORMAT:
        raise StateFileError(f"{path}: state format {state.format}, this version reads {FORMAT}")
    return state


def restore(state: SavedState, markets: Mapping[str, Market], orders: OrderBook) -> None:
    """Put back what each channel's listings showed, and requeue the undelivered
    orders. A listing the listing file still maps keeps the file's sku and ids (the
    seller's current map) with the saved quantity; one only the state knows (added
    with POST /sandbox/listings) comes back whole. A channel no longer in the
    channels file is skipped with a warning: its listings are not for sale any more."""
    for channel, listings in state.markets.items():
        market = markets.get(channel)
        if market is None:
            log.warning("state file has channel %r, which the channels file no longer has", channel)
            continue
        for saved in listings:
            held = market.listings.get(saved.key)
            if held is None:
                held = SandboxListing(saved.key, saved.sku, saved.condition, dict(saved.ids))
                market.listings[saved.key] = held
            held.qty, held.sold, held.updates = saved.qty, saved.sold, saved.updates
            held.price, held.revenue = saved.price, Decimal(saved.revenue)
    orders.restore(state.orders)


def save(path: Path, state: SavedState) -> None:
    write_atomically(path, msgspec.json.encode(state))


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def keep_saved(path: Path, markets: Iterable[Market], orders: OrderBook) -> None:
    """Rewrite the file whenever its content would change, until cancelled; the caller
    saves once more after the last request is served."""
    markets = list(markets)
    last = b""
    while True:
        data = msgspec.json.encode(snapshot(markets, orders))
        if data != last:
            # Written in the event loop: a small file, and no write can still be under
            # way when the last save on shutdown replaces it.
            try:
                write_atomically(path, data)
            except OSError as exc:  # a full disk: keep serving, say so, try again
                log.error("cannot write %s: %s", path, exc.strerror)
            else:
                last = data
        await anyio.sleep(SAVE_EVERY_S)
