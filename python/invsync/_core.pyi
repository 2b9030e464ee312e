"""The Rust core of invsync (built by maturin). Use `invsync.Engine`, which wraps it.

Times are Unix microseconds (int). What a call did comes back as a `BatchEffects`:
named lists, items that belong to an event led by its index (0 for calls that do one
thing). Errors raise the classes of `invsync.errors`: BadInputError for bad input
(nothing changed), SnapshotError.
"""

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, TypeAlias, final

import numpy as np
import numpy.typing as npt

__version__: str
SNAPSHOT_FORMAT: int
#: How long a hold lives when a reservation request does not say.
DEFAULT_HOLD_SECONDS: int
#: The longest hold a reservation request may ask for (30 days).
MAX_HOLD_SECONDS: int
#: Contract `type` of each event kind `Core.apply_events` takes, by kind number.
EVENT_KINDS: tuple[str, ...]
#: The most tiers, channels and levels of nested bundles a policy may have.
MAX_TIERS: int
MAX_CHANNELS: int
MAX_BUNDLE_DEPTH: int

#: Why the core refuses a policy: the path to the entry and field at fault, and why.
_PolicyRefusal: TypeAlias = tuple[tuple[str | int, ...], str]

def check_policy(tables_json: bytes) -> _PolicyRefusal | None:
    """None when the resolved tables would load into a `Core`, else the refusal;
    InvsyncError when they are not even the tables' shape."""

def partition_of(key: str, partitions: int) -> int:
    """`fnv1a_64(key) % partitions`: the partition of a SKU family key."""

def auto_buffer(
    risk: float, min: int, max: int | None, push_lag_s: float, sellers: list[tuple[float, float]]
) -> tuple[int, int]:
    """CONTRACT 13's automatic buffer for given rates: (the formula's value, the buffer
    within min..max). `sellers` are (units/s, order lag s) of every selling channel."""

def window_units(push_lag_s: float, sellers: list[tuple[float, float]]) -> float:
    """The units every selling channel sells while a channel's number is corrected:
    Σ rate × (push lag + order lag), as `auto_buffer` counts them."""

def clumps(units: float) -> int:
    """The least automatic buffer for `units` sold while a channel's number is late: the
    p99 of a Poisson count of them (the clumps a steady rate sells in)."""

@final
class BatchEffects:
    """What a core call did, as columns: a few flat lists instead of an object per event.
    Records list the fields of the contract Struct they become in its order."""

    @property
    def refused(self) -> list[tuple[int, Exception]]:
        """(event index, the exception that refused it)."""
    @property
    def duplicates(self) -> list[int]:
        """Indices of events applied before, which changed nothing."""
    @property
    def routes(self) -> list[tuple[str, bytes]]:
        """(location, the route message's JSON) per committed line."""
    @property
    def route_frames(self) -> bytes:
        """With a route prefix: routes to plain-token locations as `PUB` frames."""
    @property
    def alerts(self) -> list[tuple[int, str, str | None, str | None, str]]:
        """(event index, kind, sku, channel, detail)."""
    @property
    def backorders(self) -> list[tuple[str, str, str, str, str, int]]:
        """(order_id, line_id, sku, condition, channel, qty)."""
    @property
    def audit(self) -> list[tuple[int, str, str, str | None, str, int, int]]:
        """(event index, sku, condition, location, field, before, after)."""
    @property
    def expired(self) -> list[str]:
        """Order ids whose holds expired."""
    @property
    def dead_letters(self) -> list[tuple[str, bytes, str, str]]:
        """(event_id, the event's JSON, reason, error) of events the core had set aside
        and now refuses."""

class _Line(Protocol):
    """An order or reservation line as decoded (`OrderLine`, `ReserveLine`)."""

    @property
    def line_id(self) -> str: ...
    @property
    def sku(self) -> str: ...
    @property
    def condition(self) -> str: ...
    @property
    def qty(self) -> int: ...

__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "EVENT_KINDS",
    "MAX_BUNDLE_DEPTH",
    "MAX_CHANNELS",
    "MAX_HOLD_SECONDS",
    "MAX_TIERS",
    "SNAPSHOT_FORMAT",
    "BatchEffects",
    "Core",
    "FrameSplitter",
    "LogMessage",
    "__version__",
    "auto_buffer",
    "check_policy",
    "clumps",
    "partition_of",
    "window_units",
]

@final
class Core:
    """Lock-free per-key counters plus the event state machine behind one lock."""

    def __new__(cls, tables_json: bytes, partition: int = 0, partitions: int = 1) -> Core:
        """A core for a resolved policy (`Policy.tables_json()`); with `partitions` > 1,
        applying only the SKUs of `partition`."""
    @staticmethod
    def restore(tables_json: bytes, data: bytes, partition: int = 0, partitions: int = 1) -> Core:
        """A core from `snapshot()` bytes, adopting the given policy; SnapshotError if corrupt."""
    @staticmethod
    def split(tables_json: bytes, snapshots: list[bytes], partition: int, partitions: int) -> Core:
        """Partition `partition` of `partitions` from every old partition's snapshot at
        one log position (`snapshots[j]` is old partition j's); SnapshotError when they
        do not fit together or a spanning reservation is still undecided."""
    def holds(self) -> list[tuple[str, int, list[tuple[str, str, str, int]]]]:
        """Live checkout holds: (order id, expires at µs, [(line id, sku, condition,
        units held)])."""
    def undecided_requests(self) -> list[str]:
        """Ids of spanning reservations prepared here still waiting for votes."""
    def reserve_share(
        self,
        request_id: str,
        ts: int,
        order_id: str,
        channel: str,
        lines: Iterable[_Line],
        hold_seconds: int,
        reply_to: str | None = None,
    ) -> tuple[
        Literal["decided", "prepared", "pending", "elsewhere"],
        dict[str, Any] | None,
        tuple[int, bool, list[tuple[str, bool, str | None]]] | None,
        BatchEffects,
    ]:
        """A reservation in a partitioned core: decided here, prepared (with its vote
        for the log), a duplicate still pending, or another partition's."""
    def vote(
        self, request_id: str, partition: int, ok: bool, lines: list[tuple[str, str | None]]
    ) -> BatchEffects:
        """A partition's vote read from the log; decides the request when it is the last."""
    def take_cross_answers(self) -> list[tuple[str, str | None, str, dict[str, Any]]]:
        """Decided cross-partition requests this partition answers: (id, reply_to,
        channel, reply)."""
    def partition(self) -> tuple[int, int]:
        """(partition, partitions) this core applies."""
    def partition_of_sku(self, sku: str, partitions: int) -> int:
        """The partition of `sku` among `partitions`, by its policy family."""
    def set_policy(self, tables_json: bytes) -> BatchEffects:
        """Swaps the policy; locations and channels carry over by id."""
    def check_policy_against_state(self, tables_json: bytes) -> _PolicyRefusal | None:
        """What `set_policy` would refuse now (`check_policy`, then a location that still
        holds stock or a channel with open orders dropped), without changing anything."""
    def index(self, sku: str, condition: str) -> int:
        """Interns a stock key and returns its dense uint32 index."""
    def lookup(self, sku: str, condition: str) -> int | None:
        """The index of a known key, without creating it."""
    def key_count(self) -> int:
        """How many stock keys exist."""
    def key_names(self, start: int) -> list[tuple[str, str]]:
        """(sku, condition) of every key from index `start` on."""
    def newest_time(self) -> int | None:
        """The newest time an applied entry carried (a producer's as clamped, a tick's),
        or None: what a quantity no event stands behind is stamped with."""
    def now(self) -> int | None:
        """The log's clock: the newest tick's time (only ticks move it), or None."""
    def apply_events(
        self,
        events: Sequence[Any],
        kinds: bytes,
        ts: list[int],
        route_prefix: str | None = None,
        stop_at_refusal: bool = False,
    ) -> BatchEffects:
        """Applies decoded events in order in one call: `kinds[i]` indexes
        `EVENT_KINDS`, `ts[i]` is Unix µs. A refused event changes nothing (with
        `stop_at_refusal`, nor does any after it); the batch's effects come back as
        one `BatchEffects`. With `route_prefix`, routes to plain-token
        locations come as `PUB` frames."""
    def stock_set_many(
        self,
        event_id: str,
        ts: int,
        idx: npt.NDArray[np.uint32],
        location: str,
        on_hand: npt.NDArray[np.int64],
    ) -> BatchEffects:
        """Many `stock.set` at one location as one event (a cycle count); GIL released."""
    def expire(self, now: int) -> BatchEffects:
        """Releases holds whose expiry ≤ now."""
    def reserve(
        self,
        request_id: str,
        ts: int,
        order_id: str,
        channel: str,
        lines: Iterable[_Line],
        hold_seconds: int,
    ) -> tuple[dict[str, Any], BatchEffects | None]:
        """A tier-aware hold, all lines or none; the same request_id gets the same reply.

        Returns the contract reply dict and the effects (None when there are none)."""
    def reserve_plain(
        self, request: dict[str, Any]
    ) -> tuple[dict[str, Any], BatchEffects | None] | None:
        """`reserve` for a request dict of exact str/int/list/dict values that meets
        every constraint of the contract's request, `ts` given as
        `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`; None for any other dict, which the
        caller decodes in full and passes to `reserve`."""
    def ats(self, idx: int) -> int:
        """Available to sell of a key (0 for an unknown index)."""
    def shown(self, idx: int, channel: int) -> int:
        """The shown quantity of a key on the channel with that index."""
    def reserved(self, idx: int) -> int:
        """Units held for reservations and open orders of a key (0 for an unknown index)."""
    def backordered(self, idx: int) -> int:
        """Units of a key ordered without stock to take (0 for an unknown index)."""
    def drain_json(
        self, per_message: int, fallback_ts: int, max_keys: int | None = None
    ) -> list[tuple[int, bytes, npt.NDArray[np.uint32], npt.NDArray[np.int64]]]:
        """Changed shown quantities since the last drain as wire JSON items per channel,
        in pieces of at most `per_message`: (channel index, items joined by commas, keys,
        source µs). A quantity with no event behind it is stamped `fallback_ts`. At most
        `max_keys` keys are recomputed per call; the rest stay dirty."""
    def drain_quantities(
        self, max_keys: int | None = None
    ) -> list[tuple[int, npt.NDArray[np.uint32], npt.NDArray[np.int64]]]:
        """The drain of `drain_json` as numbers: (channel index, keys, shown quantities)
        per channel, in channel order."""
    def published_page(
        self, channel: int, start: int, limit: int
    ) -> tuple[list[tuple[str, str, int, str | None, str | None]], int | None]:
        """At most `limit` (sku, condition, qty, price, currency) of what was last
        published on a channel, keys in index order from `start` on, and the key the next
        page starts at (None on the last page). Never-published keys, and keys at 0 that
        the channel does not sell, are left out. `price` and `currency` are the SKU's
        last published price on the channel, None when it has none."""
    def drain_prices(
        self, ts: int, max_skus: int | None = None
    ) -> tuple[
        list[tuple[int, bytes]],
        list[tuple[str, str, str, str, str | None, str, str]],
    ]:
        """Recomputes up to `max_skus` SKUs whose price, promotions or policy moved (all
        when None): ([(channel index, the `PriceUpdate` message as JSON, stamped `ts`
        in Unix µs)], [(rule, channel, sku, price, limit or None, currency, detail)]),
        the prices to publish (changed, every guard passed) and the guards that held a
        price back (each held price once). Prices are decimal strings in the SKU's
        currency."""
    def take_alerts(self) -> BatchEffects:
        """`pause`, `reserve_low` and `sold_out_discontinued` alerts raised by drains
        since the last call, as the `alerts` of a `BatchEffects` (index 0)."""
    def explain(self, idx: int) -> bytes:
        """JSON of every number behind a key's shown quantities, and its SKU's prices."""
    def snapshot(self) -> bytes:
        """The state, versioned and checksummed (deterministic for equal states)."""
    def reserve_batch(
        self,
        idx: npt.NDArray[np.uint32],
        qty: npt.NDArray[np.int64],
        tier: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.bool_]:
        """Tier-aware conditional takes in input order; GIL released, thread-safe."""
    def release_batch(
        self, idx: npt.NDArray[np.uint32], qty: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Gives units back; False where a key holds no counted stock."""

@final
class LogMessage:
    """A message of the split subscription (see `FrameSplitter`)."""

    @property
    def subject(self) -> str: ...
    @property
    def reply(self) -> str | None:
        """The reply subject; None for JetStream deliveries (see the sequences)."""
    @property
    def headers(self) -> dict[str, str] | None: ...
    @property
    def data(self) -> bytes: ...
    @property
    def stream_seq(self) -> int:
        """Stream sequence of a JetStream delivery, else 0."""
    @property
    def consumer_seq(self) -> int:
        """Consumer sequence of a JetStream delivery, else 0."""

@final
class FrameSplitter:
    """Cuts NATS read buffers into routed subscriptions' messages and everything else."""

    def __new__(cls) -> FrameSplitter: ...
    def route(self, sid: int) -> None:
        """Subscription `sid`'s messages are split out from now on."""
    def unroute(self, sid: int) -> None: ...
    def split(
        self, buf: bytes
    ) -> tuple[int, list[tuple[int, list[LogMessage], list[LogMessage]]], list[tuple[int, int]]]:
        """(consumed, per routed sid (sid, messages, status messages), other spans)."""
