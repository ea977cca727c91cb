"""Carry out a plan: one op at a time per item, several items at once.

Each op is retried by the retry policy when the failure is transient; a refused item
is quarantined with its reason and the run goes on; refused credentials stop the run.
After every write the state records what the side *reported back*, not what was
sent, so vendor normalisation never looks like a change. A create is preceded by a
committed intent row, so a crash between the request and the record leaves a trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

from syncd.adapter import Adapter, BulkAdapter
from syncd.errors import (
    AdapterError,
    AuthFailed,
    Gone,
    Malformed,
    RateLimited,
    Rejected,
    Unavailable,
    VersionMismatch,
)
from syncd.model import (
    Event,
    Link,
    OccurrenceKey,
    Record,
    changed_fields,
    event_snapshot,
    vendor_key,
)
from syncd.plan import Item, Op
from syncd.retry import RetryPolicy, with_retries
from syncd.state import LinkRow, State

DEFAULT_CONCURRENCY = 8
LINK_BATCH = 200  # links recorded per state transaction (see `_commit_links`)
PROGRESS_FROM = 1000
UNREACHABLE_AFTER = 3  # writes that failed after all their retries, before the run stops
log = logging.getLogger("syncd.apply")


@dataclass
class RunCounts:
    """What a run did, by kind."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    adopted: int = 0
    forgotten: int = 0
    marked_missing: int = 0
    quarantined: int = 0
    parked: int = 0  # writes skipped because the item is quarantined and unchanged
    unavailable: int = 0
    conflicts: int = 0
    raced: int = 0  # writes refused because the record changed since the listing (412)
    last_error: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, int]:
        """The counts alone, for the runs table."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


@dataclass(frozen=True)
class Binding:
    """The route as apply needs it: both adapters and how to read back a record."""

    route_id: str
    calendar: Adapter
    vendor: Adapter
    calendar_item: Callable[[Record], Item | None]
    # a vendor record's view; given the item it was written from, an echo of that
    # item's view is not fingerprinted again
    vendor_item: Callable[[Record, Item | None], Item]
    fields: frozenset[str]
    calendar_id: str = ""

    def syncd_key(self, op: Op) -> str:
        """The key syncd chooses for the op's occurrence: what a record carries as its
        marker at a vendor that makes its own ids (never the vendor's id of an old
        record, which a re-create after a vendor-side delete would otherwise carry)."""
        return vendor_key(OccurrenceKey.parse(self.calendar_id, op.cal_key))


class Applier:
    """Applies one route's ops and records each outcome in the state store."""

    def __init__(
        self,
        binding: Binding,
        state: State,
        retry: RetryPolicy,
        concurrency: int = DEFAULT_CONCURRENCY,
        stop: asyncio.Event | None = None,
        raced_before: frozenset[str] = frozenset(),
    ) -> None:
        self.stop = stop or asyncio.Event()
        self.raced_before = raced_before  # keys that raced in this run's previous pass
        self.raced: set[str] = set()
        self.binding = binding
        self.state = state
        self.retry = retry
        self.counts = RunCounts()
        self.concurrency = concurrency
        self._parked = {
            side: state.parked(binding.route_id, side) for side in ("calendar", "vendor")
        }
        self._links: list[tuple[LinkRow, str]] = []  # recorded, not yet committed

    async def apply(self, ops: Sequence[Op]) -> RunCounts:
        """Apply every op; raise `AuthFailed` as soon as a side refuses the credentials."""
        try:
            return await self._apply(ops)
        finally:
            self._commit_links()

    async def _apply(self, ops: Sequence[Op]) -> RunCounts:
        bulk = self._bulk_ops(ops)
        if bulk:
            await self._bulk(bulk)
            chosen = {id(op) for op in bulk}
            ops = [op for op in ops if id(op) not in chosen]
        pending = iter(ops)  # shared by the workers: each takes the next op when free
        progress = _Progress(self.binding.route_id, len(ops))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(ops))):
                    group.create_task(self._worker(pending, progress))
        except* (AuthFailed, Unavailable) as failures:
            raise failures.exceptions[0] from None
        return self.counts

    def _bulk_ops(self, ops: Sequence[Op]) -> list[Op]:
        """The vendor upserts to send in bulk, when the vendor has a bulk path and there
        are at least `caps.bulk_from` of them (a large first sync, a series edit)."""
        vendor = self.binding.vendor
        threshold = vendor.caps.bulk_from
        upserts = [
            op
            for op in ops
            if op.side == "vendor" and op.action in ("create", "update") and not self._is_parked(op)
        ]
        return upserts if threshold and len(upserts) >= threshold else []

    async def _bulk(self, ops: list[Op]) -> None:
        vendor = self.binding.vendor
        assert isinstance(vendor, BulkAdapter), "caps.bulk_from set without upsert_many"
        items = [(op.vendor_key, _event(op)) for op in ops]
        log.info("route %s: %d upserts in bulk", self.binding.route_id, len(items))
        results = await vendor.upsert_many(items)
        for op, result in zip(ops, results, strict=True):
            if isinstance(result, AdapterError):
                self._failed(op, result)
                continue
            self._link(
                op,
                op.source,
                self.binding.vendor_item(result, op.source),
                "created" if op.action == "create" else "",
            )
            self.counts.created += op.action == "create"
            self.counts.updated += op.action == "update"

    def _failed(self, op: Op, exc: AdapterError) -> None:
        """One item's failure, as `_guarded` sorts it."""
        if isinstance(exc, AuthFailed):
            raise exc
        if isinstance(exc, Gone):
            self._vanished(op)
        elif isinstance(exc, VersionMismatch):
            self._raced(op, exc)
        elif isinstance(exc, Unavailable):
            self.counts.unavailable += 1
            self.counts.last_error = str(exc)
        else:
            self._quarantine(op, exc)

    async def _worker(self, pending: Iterator[Op], progress: _Progress) -> None:
        for op in pending:
            if self.stop.is_set():  # shutting down: finish what is in flight, start nothing
                return
            await self._guarded(op)
            progress.step()

    async def _guarded(self, op: Op) -> None:
        if self._is_parked(op):
            self.counts.parked += 1
            return
        try:
            await self._dispatch(op)
        except VersionMismatch as exc:
            self._raced(op, exc)
        except (Rejected, Malformed) as exc:
            self._quarantine(op, exc)
        except Gone:
            self._vanished(op)
        except RateLimited:
            raise  # the vendor wants a pause longer than a retry: stop the run
        except Unavailable as exc:
            self.counts.unavailable += 1
            self.counts.last_error = str(exc)
            if self.counts.unavailable >= UNREACHABLE_AFTER:
                raise  # the vendor is down: stop hammering it, the next run tries again

    def _is_parked(self, op: Op) -> bool:
        item = op.source or op.target  # what was written, or what was to be deleted
        return item is not None and self._parked.get(op.side, {}).get(op.cal_key) == item.fp

    def _quarantine(self, op: Op, exc: AdapterError) -> None:
        item = op.source or op.target
        fp = item.fp if item else ""
        self.state.quarantine(self.binding.route_id, op.side, op.cal_key, str(exc), fp)
        self.counts.quarantined += 1

    def _raced(self, op: Op, exc: VersionMismatch) -> None:
        """Somebody wrote the record between our listing and our write (HTTP 412): not
        an error, a change to plan again from a fresh listing. A record that races again
        in that re-plan is quarantined, so a side that always refuses cannot loop."""
        if op.cal_key in self.raced_before:
            self._quarantine(op, exc)
            return
        self.raced.add(op.cal_key)
        self.counts.raced += 1

    def _vanished(self, op: Op) -> None:
        """The record went away between the listing and the write: look again next run."""
        if op.link is not None and op.side:
            self.state.mark_missing(self.binding.route_id, op.link.cal_key, op.side)
        self.counts.marked_missing += 1

    async def _call(self, call: Callable[[], Awaitable[Record]], once: bool = False) -> Record:
        """The call under the retry policy; `once`: resend only what was refused."""
        return await with_retries(call, self.retry, refused_only=once)

    async def _dispatch(self, op: Op) -> None:
        handlers = {
            "create": self._create,
            "update": self._update,
            "delete": self._delete,
            "bind": self._bind,
            "forget": self._forget,
            "mark_missing": self._mark,
        }
        await handlers[op.action](op)
        if op.loser is not None:
            self._record_conflict(op)

    # --- the six actions ----------------------------------------------------------------

    async def _create(self, op: Op) -> None:
        assert op.source is not None
        b, event = self.binding, op.source.record.event
        adapter = b.vendor if op.side == "vendor" else b.calendar
        once = adapter.caps.server_ids  # not idempotent: a durable trace first, no resend
        if once:
            self.state.intend_create(b.route_id, op.side, op.cal_key, op.vendor_key)
        if op.side == "vendor":
            key = b.syncd_key(op) if once else op.vendor_key
            record = await self._call(lambda: b.vendor.create(key, event), once)
            self._link(op, op.source, b.vendor_item(record, op.source), "created")
        else:
            record = await self._call(lambda: b.calendar.create(op.cal_key, event))
            self._link(op, b.calendar_item(record), op.source, "imported")
        self.counts.created += 1

    async def _update(self, op: Op) -> None:
        assert op.source is not None and op.target is not None
        b, event, current = self.binding, op.source.record.event, op.target.record
        adapter = b.vendor if op.side == "vendor" else b.calendar
        if op.side == "vendor" and adapter.caps.server_ids:
            current = replace(current, marker=b.syncd_key(op))  # write our key back
        record = await self._call(lambda: adapter.update(current, event, op.changed))
        if op.side == "vendor":
            self._link(op, op.source, b.vendor_item(record, op.source))
        else:
            self._link(op, b.calendar_item(record), op.source)
        self.counts.updated += 1

    async def _delete(self, op: Op) -> None:
        assert op.target is not None
        b, record = self.binding, op.target.record
        adapter = b.vendor if op.side == "vendor" else b.calendar

        async def delete() -> Record:
            if op.cancel:  # the route keeps deleted occurrences as cancelled overrides
                cancelled = replace(record.event, status="cancelled")
                return await adapter.update(record, cancelled, frozenset({"status"}))
            await adapter.delete(record)
            return record

        await self._call(delete)
        key = op.vendor_key if op.side == "vendor" else op.cal_key
        self.state.forget_link(b.route_id, op.cal_key, (op.side, key, op.tombstone))
        self.counts.deleted += 1

    async def _bind(self, op: Op) -> None:
        assert op.source is not None and op.target is not None
        why = "the vendor cannot update" if op.case == "cannot_update" else ""
        self._link(op, op.source, op.target, "" if op.link else "adopted", why)
        self.counts.adopted += op.link is None

    async def _forget(self, op: Op) -> None:
        tombstone = ("calendar", op.cal_key, op.tombstone) if op.tombstone else None
        self.state.forget_link(self.binding.route_id, op.cal_key, tombstone)
        self.counts.forgotten += 1

    async def _mark(self, op: Op) -> None:
        self.state.mark_missing(self.binding.route_id, op.cal_key, op.side)
        self.counts.marked_missing += 1

    # --- recording ----------------------------------------------------------------------

    def _link(self, op: Op, cal: Item | None, ven: Item, origin: str = "", why: str = "") -> None:
        """Record the pair as both sides now hold it."""
        if cal is None:  # the written event no longer passes the route's rules
            self.state.forget_link(self.binding.route_id, op.cal_key, None)
            return
        replaces = op.link.cal_key if op.link is not None else ""
        row = link_row(cal, ven, self.binding.fields, origin or _origin(op), why)
        self._links.append((row, replaces))
        if len(self._links) >= LINK_BATCH:
            self._commit_links()

    def _commit_links(self) -> None:
        """Links are committed in batches: one transaction each costs a first sync more
        than its requests. A crash loses at most one batch of links, and the next run
        adopts those records again by key or marker (and imports by their stable key):
        nothing is written twice."""
        if self._links:
            rows, self._links = self._links, []
            self.state.record_links(self.binding.route_id, rows)

    def _record_conflict(self, op: Op) -> None:
        assert op.loser is not None and op.source is not None
        cal, ven = (op.source, op.loser) if op.side == "vendor" else (op.loser, op.source)
        winner = "calendar" if op.side == "vendor" else "vendor"
        snapshots = (event_snapshot(cal.record.event), event_snapshot(ven.record.event))
        self.state.add_conflict(self.binding.route_id, op.cal_key, op.vendor_key, winner, snapshots)
        self.counts.conflicts += 1


class _Progress:
    """A line every tenth of a long run (1,000 ops or more): a first sync of a big
    calendar takes minutes at a vendor's rate limit, and silence looks like a hang."""

    def __init__(self, route: str, total: int) -> None:
        self.route, self.total, self.done = route, total, 0
        self.every = max(1, total // 10) if total >= PROGRESS_FROM else 0

    def step(self) -> None:
        self.done += 1
        if self.every and self.done % self.every == 0 and self.done < self.total:
            log.info("route %s: %d of %d operations done", self.route, self.done, self.total)


def _event(op: Op) -> Event:
    assert op.source is not None
    return op.source.record.event


def _origin(op: Op) -> str:
    return "created" if op.link is None else ""  # "": keep the origin already recorded


def link_row(cal: Item, ven: Item, fields: frozenset[str], origin: str, why: str = "") -> LinkRow:
    """The state row for a pair; a difference the vendor keeps is noted and accepted."""
    record = cal.record
    differs = sorted(changed_fields(cal.view, ven.view, fields)) if cal.fp != ven.fp else []
    link = Link(
        cal_key=cal.key,
        vendor_key=ven.key,
        cal_fp=cal.fp,
        vendor_fp=ven.fp,
        anchor=record.anchor if record.anchor is not None else record.event.start,
        accepted=bool(differs),
        remote_id=ven.record.remote_id,
    )
    key = OccurrenceKey.parse("", cal.key)
    why = why or "the vendor holds other values for"
    note = f"{why}: {', '.join(differs)}" if differs else ""
    return LinkRow(
        link,
        uid=key.uid,
        rid=key.rid,
        title=record.event.title,
        cal_version=record.version,
        vendor_version=ven.record.version,
        note=note,
        origin=origin,
    )
