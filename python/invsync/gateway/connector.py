"""One channel's connector: `{p}.qty.<channel>` and `{p}.price.<channel>` in, the
platform via the scheduler, `{p}.ack.<channel>` and alerts out.

It keeps nothing that `{p}.query.channel` cannot rebuild. On start, and whenever a
message's `seq` is not the next one, it resyncs: it reads every shown quantity as of
a `seq` in pages, queues each one the platform is not known to show already (a
mapped listing no page names is sent 0: the service shows it nothing), and then
applies only the messages after that `seq`, in order. A message lost after the last one seen is found by asking the service now
and then which `seq` it is at. Each message is acknowledged, in `seq` order, once the
platform has accepted
or refused everything it asked for; a newer quantity for the same listing answers
for an older one it replaced. A (sku, condition) the listing map does not name is
alerted as `mapping_missing`, counted as failed in the ack, and pushed as soon as a
map reload or a KV put names it. A listing the marketplace holds above the quantity
asked for (a promotion's reserved or locked stock) is pushed at that floor, counted
applied, alerted as `platform_hold` when the hold appears, changes or ends, and
reported to the service in the next ack's `held`.

Prices (`{sku, price, currency, reason}`, CONTRACT 14) go through the same scheduler:
the latest per listing wins, and where the platform sets price and quantity in one
call a listing's pending price and quantity go together. A price names a SKU, so it
is the `new` listing's unless the message names a `condition`. Prices carry no `seq`
and the service reads acks by `seq`, so they are not acknowledged: each is counted in
`invsync_channel_price_pushes_total{channel,outcome}`, and a refusal, a price in
another currency than the channel's, or a platform whose profile sends no prices is
alerted as `channel_error`. An unmapped price waits for its listing like a quantity.
A resync's pages carry each SKU's last published price too: each is queued as if its
message came again, unless the platform already accepted exactly that price from this
gateway, so a price published while the gateway was down or cut off still arrives.

Partitioned services send each channel's messages from every partition, each with
its own `seq` (`partition` in the message): the connector keeps the last `seq` per
partition, and a gap in one partition's resyncs that partition alone (its query
names it). How many partitions there are it learns from the first page of a resync.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from invsync.events import (
    PAGE_LIMIT_MAX,
    Alert,
    AlertKind,
    ChannelAck,
    ChannelPage,
    ChannelQuantities,
    HeldStock,
    ShownItem,
    encode_json,
)
from invsync.gateway.budget import RevisionBudget
from invsync.gateway.listings import Key, ListingMap, ListingSource
from invsync.gateway.metrics import ChannelMetrics
from invsync.gateway.platforms.base import Listing, Price, Profile
from invsync.gateway.scheduler import Scheduler, Settled
from invsync.gateway.secrets import Secret, redact
from invsync.marketplaces.money import price_problem
from invsync.service.subjects import Subjects

__all__ = ["Connector"]

log = logging.getLogger("invsync.gateway")

QUERY_TIMEOUT_S = 5.0
# How often the service is asked which `seq` it is at, and how long a message it
# announces may take to arrive before it counts as lost.
TAIL_CHECK_S = 30.0
TAIL_GRACE_S = 2.0
# Messages waiting for the consumer (during a long resync) at most; past it one is
# dropped, which the next shows as a gap.
QUEUE_MAX = 100_000
RESYNC_RETRY_S = (0.5, 1.0, 2.0, 5.0)
# How many item errors one ack's `error` quotes; the rest are counted.
ERRORS_QUOTED = 3

_QUANTITIES = msgspec.json.Decoder(ChannelQuantities)


class _PriceMessage(msgspec.Struct, frozen=True):
    """What the gateway reads of `{p}.price.<channel>` (CONTRACT 14). `condition` is not
    in the contract: a price is the SKU's `new` listing's unless a producer names one."""

    sku: str
    price: str
    currency: str
    reason: str = ""
    condition: str = "new"


_PRICE = msgspec.json.Decoder(_PriceMessage)
_PAGE = msgspec.json.Decoder(ChannelPage)


@dataclass(eq=False)
class _Acknowledgement:
    """One `seq` (of one partition) waiting for the platform's word on each of its items."""

    seq: int
    remaining: int
    partition: int = 0
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def settle(self, applied: bool, reason: str | None) -> None:
        self.remaining -= 1
        if applied:
            self.ok += 1
            return
        self.failed += 1
        if reason and len(self.errors) < ERRORS_QUOTED and reason not in self.errors:
            self.errors.append(reason)

    def message(self, held: list[HeldStock]) -> ChannelAck:
        error = None
        if self.failed:
            error = f"{self.failed} item(s) not applied: " + "; ".join(self.errors)
        return ChannelAck(
            seq=self.seq,
            ok=self.failed == 0,
            error=error,
            accepted_ts=datetime.now(UTC),
            items_ok=self.ok,
            items_failed=self.failed,
            held=held or None,
            partition=self.partition,
        )


class _ResyncFailed(Exception):
    """The service did not answer a channel query usefully; tried again later."""


class Connector:
    """Carries one channel's quantities to its platform and acknowledges them."""

    def __init__(
        self,
        channel: str,
        nc: Client,
        subjects: Subjects,
        profile: Profile,
        http: aiohttp.ClientSession,
        listings: ListingSource,
        metrics: ChannelMetrics,
        secrets: Mapping[str, Secret] | None = None,
        page_limit: int = PAGE_LIMIT_MAX,
        tail_check_s: float = TAIL_CHECK_S,
    ) -> None:
        self.channel = channel
        self.nc = nc
        self.subjects = subjects
        revisions = (
            None if profile.daily_revisions is None else RevisionBudget(profile.daily_revisions)
        )
        self.scheduler = Scheduler(
            profile,
            http,
            metrics,
            self.alert_listing,
            revisions=revisions,
            report_hold=self._hold_changed,
        )
        self.source = listings
        self.metrics = metrics
        self.page_limit = page_limit
        self.tail_check_s = tail_check_s
        # Scrubbed from every alert: a platform's reason must not carry them on.
        self._secrets = list((secrets or {}).values())
        self.map = ListingMap()
        # The last `seq` applied, per partition; how many partitions the service has.
        self.last_seqs: dict[int, int] = {}
        self.partitions = 1
        self.resyncs = 0
        # The latest quantity per key: what a listing gets when its mapping appears.
        self._latest: dict[Key, tuple[int, datetime]] = {}
        # The latest price per key, for the same reason.
        self._latest_price: dict[Key, tuple[Price, datetime]] = {}
        self._unsupported_alerted = False
        self._unmapped: set[Key] = set()
        self._acks: deque[_Acknowledgement] = deque()
        self._alerts: list[Alert] = []
        # Holds that appeared, changed or ended since the last ack, for the next one.
        self._held: dict[Key, HeldStock] = {}
        self._outbox_ready = anyio.Event()

    @property
    def last_seq(self) -> int | None:
        """Partition 0's last `seq` (the only one of an unpartitioned service)."""
        return self.last_seqs.get(0)

    @last_seq.setter
    def last_seq(self, seq: int) -> None:
        self.last_seqs[0] = seq

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Until cancelled; reports started once the first resync is queued."""
        # Messages, and the `seq` a tail check found the service at, in one queue:
        # the consumer is the only place that applies messages or resyncs.
        send, receive = anyio.create_memory_object_stream[Msg | tuple[int, int]](QUEUE_MAX)

        async def queued(msg: Msg) -> None:
            try:
                send.send_nowait(msg)
            except anyio.WouldBlock:
                # Dropped: the next message shows the gap and a resync covers it.
                log.warning("%s: %d messages waiting, one dropped", self.channel, QUEUE_MAX)

        async def price(msg: Msg) -> None:
            self._on_price(msg.data)

        sub = await self.nc.subscribe(self.subjects.qty(self.channel), cb=queued)
        prices = None
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(self.source.run, self.map, self._mapping_changed)
                prices = await self.nc.subscribe(self.subjects.price(self.channel), cb=price)
                tasks.start_soon(self.scheduler.run)
                tasks.start_soon(self._publish)
                await self._resync()
                task_status.started()
                tasks.start_soon(self._check_tail, send)
                async for msg in receive:
                    if isinstance(msg, tuple):
                        partition, seq = msg
                        seen = self.last_seqs.get(partition)
                        if seen is not None and seq > seen:
                            log.warning(
                                "%s: partition %d is at seq %d, we saw %d: resyncing it",
                                self.channel,
                                partition,
                                seq,
                                seen,
                            )
                            await self._resync_partition(partition)
                    else:
                        await self._on_message(msg)
        finally:
            await sub.unsubscribe()
            if prices is not None:
                await prices.unsubscribe()
            send.close()
            receive.close()

    # --- quantities in -----------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        try:
            body = _QUANTITIES.decode(msg.data)
        except msgspec.DecodeError as exc:
            log.warning("%s: unreadable quantities message skipped: %s", self.channel, exc)
            return
        partition = body.partition
        seen = self.last_seqs.get(partition)
        if seen is not None and body.seq <= seen:
            return  # already in the resync it arrived during
        if seen is None or body.seq != seen + 1:
            log.warning(
                "%s: partition %d seq %d after %s: resyncing it from the service",
                self.channel,
                partition,
                body.seq,
                seen,
            )
            self.partitions = max(self.partitions, partition + 1)
            await self._resync_partition(partition)
            if body.seq <= self.last_seqs.get(partition, 0):
                return
        self.last_seqs[partition] = body.seq
        ack = _Acknowledgement(body.seq, len(body.items), partition)
        self._acks.append(ack)
        for item in body.items:
            self._want(item.sku, item.condition, item.qty, item.source_ts, ack)
        self._outbox_ready.set()

    def _want(
        self,
        sku: str,
        condition: str,
        qty: int,
        source_ts: datetime,
        ack: _Acknowledgement,
        unless_shown: bool = False,
    ) -> None:
        """Queue `qty` for the (sku, condition)'s listing, answering `ack` when the
        platform did. `unless_shown` (a resync): not when the platform already accepted
        exactly that and nothing newer is on its way, which saves the budget, and
        eBay's revisions, a gap would otherwise spend on every listing."""
        key = (sku, condition)
        self._latest[key] = (qty, source_ts)
        listing = self.map.get(sku, condition)
        if listing is None:
            self._missing(key, f"quantity {qty}")
            ack.settle(False, f"no listing mapped for {sku} ({condition})")
            return
        if unless_shown and self.scheduler.queue.shows(listing) == qty:
            ack.settle(True, None)
            return
        self.scheduler.put(listing, qty, source_ts, self._waiter(ack))

    def _waiter(self, ack: _Acknowledgement) -> Settled:
        def settled(applied: bool, reason: str | None) -> None:
            ack.settle(applied, reason)
            self._outbox_ready.set()

        return settled

    def _missing(self, key: Key, what: str) -> None:
        if key in self._unmapped:
            return
        self._unmapped.add(key)
        self.metrics.unmapped.set(len(self._unmapped))
        self._alert(
            "mapping_missing",
            key[0],
            f"{self.channel} has no listing for {key[0]} ({key[1]}); {what} waits "
            "for the listing map to name it",
        )

    def _mapping_changed(self, keys: set[Key]) -> None:
        """A map reload or KV put named `keys`: send them their latest price and
        quantity."""
        for key in keys:
            listing = self.map.get(*key)
            if listing is None:
                continue
            price = self._latest_price.get(key)
            if price is not None:
                self.scheduler.put_price(listing, *price, self._price_waiter())
            latest = self._latest.get(key)
            if latest is not None:
                self.scheduler.put(listing, latest[0], latest[1])
            if price is not None or latest is not None:
                self._unmapped.discard(key)
        self.metrics.unmapped.set(len(self._unmapped))

    # --- prices in ---------------------------------------------------------------------

    def _on_price(self, data: bytes) -> None:
        """Queue one `{p}.price.<channel>` message's price for its listing."""
        try:
            body = _PRICE.decode(data)
        except msgspec.DecodeError as exc:
            log.warning("%s: unreadable price message skipped: %s", self.channel, exc)
            self.metrics.price("invalid")
            return
        self._want_price(body)

    def _want_price(self, body: _PriceMessage, unless_shown: bool = False) -> None:
        """Queue a price for its listing, from a message or a resync's page.
        `unless_shown` (a resync): not when the platform already accepted exactly that
        price from this gateway and no other is on its way."""
        key = (body.sku, body.condition)
        if not self.scheduler.sends_prices:
            self.metrics.price("unsupported")
            if not self._unsupported_alerted:
                self._unsupported_alerted = True
                self._alert(
                    "channel_error",
                    body.sku,
                    f"{self.channel}: the {self.scheduler.profile.platform} profile does not "
                    "send prices yet; prices for this channel are counted, not pushed",
                )
            return
        problem = price_problem(body.price, body.currency)
        currency = self.scheduler.profile.currency
        if problem is None and body.currency != currency:
            problem = f"the price is in {body.currency}, {self.channel} sells in {currency}"
        if problem is not None:
            self.metrics.price("invalid")
            self._alert(
                "channel_error",
                body.sku,
                f"price of {body.sku} not sent to {self.channel}: {problem}",
            )
            return
        price, now = Price(body.price, body.currency), datetime.now(UTC)
        self._latest_price[key] = (price, now)
        listing = self.map.get(*key)
        if listing is None:
            self.metrics.price("unmapped")
            self._missing(key, f"price {price}")
            return
        if unless_shown and self.scheduler.queue.shows_price(listing) == price:
            return
        self.scheduler.put_price(listing, price, now, self._price_waiter())

    def _price_waiter(self) -> Settled:
        """Counts what the platform did with a price (its refusal is alerted by the
        scheduler)."""

        def settled(applied: bool, reason: str | None) -> None:
            self.metrics.price("applied" if applied else "refused")
            self._outbox_ready.set()

        return settled

    # --- resync ------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Queue every quantity the service shows on the channel, as of a `seq` per
        partition; a mapped listing no partition's page names is sent 0."""
        asked = datetime.now(UTC)
        pages = [(0, *await self._read_until_answered(0))]
        for partition in range(1, self.partitions):  # known once partition 0 answered
            pages.append((partition, *await self._read_until_answered(partition)))
        named = {(item.sku, item.condition) for _, _, items in pages for item in items}
        unnamed = [key for key in self.map.listed() if key not in named]
        for partition, seq, items in pages:
            last = partition == pages[-1][0]
            self._queue_resync(partition, seq, items, unnamed if last else [], asked)

    async def _resync_partition(self, partition: int) -> None:
        """Queue every quantity one partition shows on the channel, as of its `seq`."""
        asked = datetime.now(UTC)
        self._queue_resync(partition, *await self._read_until_answered(partition), [], asked)

    async def _read_until_answered(self, partition: int) -> tuple[int, list[ShownItem]]:
        attempt = 0
        while True:
            try:
                return await self._read_all(partition)
            except _ResyncFailed as exc:
                delay = RESYNC_RETRY_S[min(attempt, len(RESYNC_RETRY_S) - 1)]
                attempt += 1
                log.warning("%s: resync failed (%s), again in %.1f s", self.channel, exc, delay)
                await anyio.sleep(delay)

    def _queue_resync(
        self,
        partition: int,
        seq: int,
        items: list[ShownItem],
        zeros: list[Key],
        asked: datetime,
    ) -> None:
        """Queue one partition's page items, and 0 for `zeros`, acknowledged as its `seq`;
        and each SKU's price as if its last price message came again, unless a price
        message for it arrived since the pages were `asked` for (prices have no `seq`:
        the page's may be the older one)."""
        self.resyncs += 1
        ack = _Acknowledgement(seq, 0, partition)
        now = datetime.now(UTC)
        prices: dict[str, _PriceMessage] = {}
        for item in items:
            ack.remaining += 1
            self._want(item.sku, item.condition, item.qty, now, ack, unless_shown=True)
            if item.price is not None and item.currency is not None:
                prices[item.sku] = _PriceMessage(item.sku, item.price, item.currency)
        for key in zeros:
            ack.remaining += 1
            self._want(key[0], key[1], 0, now, ack, unless_shown=True)
        for price in prices.values():
            heard = self._latest_price.get((price.sku, price.condition))
            if heard is None or heard[1] < asked:
                self._want_price(price, unless_shown=True)
        self.last_seqs[partition] = seq
        if seq > 0:
            self._acks.append(ack)
        self._outbox_ready.set()
        log.info(
            "%s: resynced %d quantities of partition %d as of seq %d",
            self.channel,
            len(items),
            partition,
            seq,
        )

    async def _check_tail(self, found: MemoryObjectSendStream[Msg | tuple[int, int]]) -> None:
        """A message lost after the last one we saw shows no gap until the next one,
        which on a quiet channel may be hours away: ask the service now and then
        which `seq` it is at. A `seq` ahead of ours that no message brings within a
        grace period means a lost message: the consumer resyncs."""
        while True:
            await anyio.sleep(self.tail_check_s)
            for partition in range(self.partitions):
                try:
                    seq = (await self._page(None, 1, partition)).seq
                except _ResyncFailed as exc:
                    log.info("%s: tail check skipped: %s", self.channel, exc)
                    continue
                seen = self.last_seqs.get(partition)
                if seen is None or seq <= seen:
                    continue
                await anyio.sleep(TAIL_GRACE_S)  # the message may just be on its way
                if seq > self.last_seqs.get(partition, 0):
                    await found.send((partition, seq))

    async def _read_all(self, partition: int) -> tuple[int, list[ShownItem]]:
        items: list[ShownItem] = []
        after: str | None = None
        seq: int | None = None
        while True:
            page = await self._page(after, self.page_limit, partition)
            if seq is None:
                seq = page.seq
                self.partitions = max(self.partitions, page.partitions)
            items += page.items
            if page.next is None:
                return seq, items
            after = page.next

    async def _page(self, after: str | None, limit: int, partition: int) -> ChannelPage:
        query: dict[str, object] = {"channel": self.channel, "limit": limit}
        if after is not None:
            query["after"] = after
        if partition:  # partition 0 answers a query that names none, as before partitions
            query["partition"] = partition
        try:
            reply = await self.nc.request(
                self.subjects.query_channel, encode_json(query), timeout=QUERY_TIMEOUT_S
            )
        except NatsTimeout:
            raise _ResyncFailed("no answer from the service") from None
        except NoRespondersError:
            # No service is serving the channel right now: a restart, or a standby
            # taking over from a leader that died.
            raise _ResyncFailed("no service is answering") from None
        try:
            return _PAGE.decode(reply.data)
        except msgspec.DecodeError:
            raise _ResyncFailed(_refusal(reply.data)) from None

    # --- acks and alerts out -----------------------------------------------------------

    async def _publish(self) -> None:
        """Send alerts as they are raised, and acknowledge finished messages in `seq`
        order as they finish."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready = anyio.Event()
            alerts, self._alerts = self._alerts, []
            for alert in alerts:
                await self.nc.publish(self.subjects.alert(alert.kind), encode_json(alert))
            while self._acks and self._acks[0].remaining <= 0:
                held, self._held = list(self._held.values()), {}
                ack = self._acks.popleft().message(held)
                await self.nc.publish(self.subjects.ack(self.channel), encode_json(ack))
                self.metrics.ack(ack.ok)

    def _hold_changed(self, listing: Listing, decided: int, held: int, reason: str) -> None:
        """The scheduler's word that the marketplace holds `held` of a listing (0: no
        longer) where invsync decided `decided`."""
        key = (listing.sku, listing.condition)
        self._held[key] = HeldStock(listing.sku, listing.condition, held, reason)
        name = f"{listing.sku} ({listing.condition})"
        if held:
            detail = (
                f"{self.channel} holds {held} of {name} for its promotions and will not go "
                f"below it; invsync decided {decided}, so {held} is sent and shown "
                f"({reason})"
            )
        else:
            detail = f"{self.channel} no longer holds stock of {name}; {decided} is shown"
        self._alert("platform_hold", listing.sku, detail)

    def alert_listing(self, listing: Listing | None, reason: str) -> None:
        """The scheduler's alerts: a platform's refusal, credentials, a stuck job."""
        self._alert("channel_error", listing.sku if listing else None, reason)

    def _alert(self, kind: AlertKind, sku: str | None, detail: str) -> None:
        detail = redact(detail, self._secrets)
        alert = Alert(kind=kind, sku=sku, channel=self.channel, detail=detail, ts=datetime.now(UTC))
        log.warning("%s alert %s: %s", self.channel, kind, detail)
        self._alerts.append(alert)
        self._outbox_ready.set()


def _refusal(data: bytes) -> str:
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return "an unreadable answer"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else "an answer that is not a page"
