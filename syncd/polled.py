"""Listings reused within a side's poll interval, for the daemon.

`Polled` wraps an adapter: its listing is fetched at most once per `every`, shared by
the routes that use it, and kept current with syncd's own writes in between, so a
route can run as often as its most frequent side without re-listing the other. A
wrapper serves one window shape only (one calendar and one `past`/`future` pair): a
listing made for a shorter window must never stand in for a longer one, or what lies
outside it would look deleted. `expire` forgets the listing (a resync), and the side's
ETags too for a full one.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from syncd.adapter import Adapter, BulkAdapter, Caps
from syncd.errors import AdapterError, VersionMismatch
from syncd.model import Event, Listing, Record, Window
from syncd.packed import GroupedRecords
from syncd.paged import PAGE, PagedRecords, folded

FOLD_AT = 2 * PAGE
"""Writes a packed vendor listing takes before they are packed into it: a first sync of
10,000 records held every read-back as an object until the next listing, and the
interpreter kept that high-water mark for good (`bench/daemon_rss.py`: the daemon's
peaks after its first sync 1–3 MiB higher)."""
FRESH = 0.9
"""A listing older than this share of the poll is stale: routes fire up to 10% early
(the schedule's jitter), and must not then wait almost a second poll for a re-listing."""


class Polled:
    """An adapter whose listing is reused for `every`, with its own writes applied."""

    def __init__(
        self, inner: Adapter, every: timedelta, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.caps: Caps = inner.caps
        self.every = every.total_seconds()
        self.clock = clock
        self._listing: Listing | None = None
        self._writes: dict[str, Record | None] = {}  # key -> written record (None: gone)
        self._last: Listing | None = None  # the last listing answered, whatever became of it
        self._fetched = 0.0
        self.fetches = 0  # listings asked of the side itself: a new one is a second look
        self.written = 0  # writes folded into the kept listing, by every route sharing it
        self._turn = asyncio.Lock()

    def project(self, event: Event) -> Event:
        """As the wrapped side would read it back."""
        return self.inner.project(event)

    async def list(self, window: Window) -> Listing:
        """The last listing while it is younger than `every`, else a fresh one."""
        async with self._turn:  # routes asking at once share one fetch
            current = self.kept()
            if current is None:
                last = self._folded() or self._last
                fresh = _reused(await self.inner.list(window), last)
                self._listing, self._writes = fresh, {}
                self._fetched = self.clock()
                self.fetches += 1
                current = fresh
            self._last = current
            return current

    def kept(self) -> Listing | None:
        """The listing `list` would answer now without asking the side, or None."""
        if self._listing is None or self.clock() - self._fetched >= self.every * FRESH:
            return None
        return self._folded()

    def _folded(self) -> Listing | None:
        """The kept listing with syncd's writes since folded in (once per listing asked,
        not once per write), fresh or not."""
        if self._listing is not None and self._writes:
            written = tuple(r for r in self._writes.values() if r is not None)
            records = folded(self._listing.records, self._writes.keys(), written)
            self._listing, self._writes = replace(self._listing, records=records), {}
        return self._listing

    def expire(self, validators: bool = True) -> None:
        """Forget the listing (a resync); with `validators` also any the side keeps
        (ETags): a full resync."""
        self._listing, self._last = None, None  # a resync plans again, whatever it finds
        forget = getattr(self.inner, "forget_validators", None)
        if validators and callable(forget):
            forget()

    async def get(self, key: str) -> Record:
        """Straight to the side."""
        return await self.inner.get(key)

    async def create(self, key: str, event: Event) -> Record:
        """Create, and show the new record in the kept listing. When the create fails it
        may still have happened (a timeout): the kept listing is dropped so the next run
        lists the side again and finds the record by its key or marker."""
        try:
            record = await self.inner.create(key, event)
        except BaseException:
            self._listing = None
            raise
        self._keep(record)
        return record

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Update, and show the result in the kept listing. Somebody else wrote first (a
        412): the kept listing is stale, so the re-plan lists the side again."""
        try:
            written = await self.inner.update(record, event, changed)
        except VersionMismatch:
            self._listing = None
            raise
        self._keep(written, replaces=record.key)
        return written

    async def upsert_many(
        self, items: Sequence[tuple[str, Event]]
    ) -> builtins.list[Record | AdapterError]:
        """The side's bulk path (only called when it has one), kept listing updated."""
        assert isinstance(self.inner, BulkAdapter)
        try:
            results = await self.inner.upsert_many(items)
        except BaseException:
            self._listing = None
            raise
        if any(not isinstance(result, Record) for result in results):
            self._listing = None  # some may have been written anyway: list again
        for (key, _), result in zip(items, results, strict=True):
            if isinstance(result, Record):
                self._keep(result, replaces=key)
        return results

    async def delete(self, record: Record) -> None:
        """Delete, and drop the record from the kept listing (a 412: forget the listing)."""
        try:
            await self.inner.delete(record)
        except VersionMismatch:
            self._listing = None
            raise
        self._keep(None, replaces=record.key)

    def _keep(self, record: Record | None, replaces: str = "") -> None:
        if self._listing is None:
            return
        self.written += 1
        if replaces:
            self._writes[replaces] = None
        if record is not None:
            self._writes[record.key] = record
        if len(self._writes) >= FOLD_AT and isinstance(self._listing.records, PagedRecords):
            self._folded()  # a calendar's packed groups are not: folding decodes them all

    @property
    def pending(self) -> int:
        """Writes held as records, not yet folded into the kept listing."""
        return len(self._writes)


def _reused(fresh: Listing, last: Listing | None) -> Listing:
    """A new listing that holds the very record objects of the last one wherever they are
    equal (an unchanged record is not held twice); the last listing itself
    when nothing at all differs, so a route settled on it stays quiet (a vendor polled
    again, unchanged, costs a comparison instead of a plan over every record)."""
    if last is None or isinstance(fresh.records, GroupedRecords):
        return fresh  # a calendar's packed groups: its expansions already share them
    if isinstance(fresh.records, PagedRecords):
        return last if _same_paged(fresh, last) else fresh
    before = {record.key: record for record in last.records}
    records = tuple(_same(record, before.get(record.key)) for record in fresh.records)
    unchanged = (
        len(records) == len(last.records)
        and {record.key for record in records} == before.keys()  # a repeat hides no loss
        and all(record is before[record.key] for record in records)
        and (fresh.problems, fresh.complete) == (last.problems, last.complete)
    )
    return last if unchanged else replace(fresh, records=records)


def _same_paged(fresh: Listing, last: Listing) -> bool:
    """Whether a paged listing holds what the last one did (nothing to share: pages)."""
    new, old = fresh.records, last.records
    return (
        isinstance(new, PagedRecords)
        and isinstance(old, PagedRecords)
        and new.same_content(old)
        and (fresh.problems, fresh.complete) == (last.problems, last.complete)
    )


def _same(record: Record, old: Record | None) -> Record:
    return old if old is not None and old == record else record
