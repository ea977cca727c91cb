"""One route run: list both sides, plan, guard, apply, record.

`RouteRunner.run` is what `syncd sync`, `syncd plan` and the daemon call. It leaves
out the calendar UIDs that planned nothing last time and have not changed since
(`partition`), turns the rest of the two listings into the plan's `Side`s (route rules,
projection, fingerprints), confirms absences the way each side allows, asks the pure
plan what to do, holds mass deletions back, and hands the rest to `apply`. A listing
that fails fails the run: nothing is planned, so nothing is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from syncd import routing
from syncd.adapter import Adapter
from syncd.apply import Applier, Binding, RunCounts
from syncd.errors import AdapterError, AuthFailed, Gone, RateLimited, RouteBusy, Unavailable
from syncd.links import LinkIndex
from syncd.model import (
    Link,
    Listing,
    OccurrenceKey,
    Problem,
    Record,
    Window,
    calendar_uid,
    fingerprint,
    vendor_key,
)
from syncd.partition import Scope, Settled, Split, problem_uid
from syncd.plan import (
    CANNOT_DELETE,
    DELETED_BY_SYNCD,
    IMPORTED_PREFIX,
    Inputs,
    Item,
    Op,
    Policy,
    Side,
    SideName,
    plan_route,
)
from syncd.retry import RetryPolicy, with_retries
from syncd.settings import RouteConfig
from syncd.settle import Settling
from syncd.state import State

log = logging.getLogger("syncd.runner")
REPLANS = 2  # passes after the first when writes raced with another client (HTTP 412)
CHUNK_WEIGHT = 1000
"""How much a run plans at a time when it plans more (a first sync, the first run after
a restart), in `Split.weight`s (about a UID and its records): its memory is a chunk's
views and ops, not the whole calendar's."""
WRITE_BATCH = 1000  # ops of such a run written together (the writers stay busy)


@dataclass(frozen=True)
class RunReport:
    """What one route run did, for the CLI, the daemon and the tests."""

    route: str
    outcome: str  # ok | failed | held
    ops: tuple[Op, ...] = ()
    held: tuple[Op, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    error: str = ""
    retry_after: float | None = None  # the vendor asked for a pause this long
    write_seconds: float = 0.0  # time spent carrying out the plan (writes per second)


@dataclass
class RouteRunner:
    """Runs one route: a calendar adapter and a vendor adapter under the route's rules."""

    route_id: str
    route: RouteConfig
    calendar_id: str
    calendar: Adapter
    vendor: Adapter
    state: State
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set: no new ops
    vendor_kind: str = ""  # recorded with the route's options after each run
    chunk_weight: int = CHUNK_WEIGHT
    write_batch: int = WRITE_BATCH
    plans: int = field(default=0, init=False)  # how many times this runner planned
    _waiting: bool = field(default=False, init=False, repr=False)  # see `_inputs`
    settled: Settled = field(default_factory=Settled, init=False, repr=False)  # UIDs left out
    _last_window: Window = field(init=False, repr=False)
    _raced: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _fresh: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    _settling: Settling = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._settling = Settling(self.state.others_wrote)

    @property
    def fields(self) -> frozenset[str]:
        """The fields both sides hold: the only ones compared. A vendor's outcome flows
        only back, so a route that never writes the calendar does not compare it."""
        held = self.calendar.caps.fields & self.vendor.caps.fields
        return held - {"outcome"} if self.route.direction == "to_vendor" else held

    async def run(
        self, *, dry_run: bool = False, release: bool = False, trigger: str = "manual"
    ) -> RunReport:
        """One pass; with `dry_run` nothing is written anywhere, not even the state."""
        if dry_run:
            return await self._pass(dry_run=True, release=release)
        started = time.monotonic()
        run_id = self.state.begin_run(self.route_id, trigger)
        try:
            report = await self._passes(release)
        except Exception as exc:  # a bug must fail this route's run, not the others
            log.exception("route %s: internal error", self.route_id)
            report = RunReport(self.route_id, "failed", error=f"internal error: {exc!r}")
        previous = self.state.finish_run(
            run_id, self.route_id, report.outcome, report.counts, report.error
        )
        if report.outcome != "failed":
            self.state.remember_settings(self.route_id, self.vendor_kind, dict(self.route.options))
        log_run(report, previous, time.monotonic() - started)
        return report

    async def run_locked(
        self, holder: str, *, release: bool = False, trigger: str = "manual"
    ) -> RunReport:
        """`run` under the route's lock (`holder` names who takes it); a route somebody
        else holds is a failed run, not an error."""
        try:
            with self.state.locked(self.route_id, holder):
                return await self.run(release=release, trigger=trigger)
        except RouteBusy as exc:
            return RunReport(self.route_id, "failed", error=str(exc))

    async def _passes(self, release: bool) -> RunReport:
        """A pass, and a re-plan from fresh listings while writes raced with somebody
        else's (a 412 is a concurrent change, not an error)."""
        self._raced = frozenset()
        report = await self._pass(dry_run=False, release=release)
        for _ in range(REPLANS):
            if not self._raced:
                break
            log.info(
                "route %s: %d records changed while writing; planning again",
                self.route_id,
                len(self._raced),
            )
            again = await self._pass(dry_run=False, release=release)
            report = replace(again, counts=_summed(report.counts, again.counts))
        return report

    async def _pass(self, *, dry_run: bool, release: bool) -> RunReport:
        window = Window.around(self.clock(), self.route.window.past, self.route.window.future)
        self._last_window = window
        try:
            cal_listing, ven_listing = await self._list_both(window)
            if not (dry_run or release) and self._settling.quiet(cal_listing, ven_listing):
                return RunReport(self.route_id, "ok")
            links, tombstones = self.state.link_index(self.route_id), self._tombstones()
            scope = self._scope(window, (cal_listing, ven_listing), links, tombstones)
            if not dry_run and scope.weight() > self.chunk_weight:
                return await self._chunked(window, scope, len(links), tombstones, release)
            inputs, no_owner = await self._inputs(window, scope, tombstones)
        except AdapterError as exc:  # a side we cannot see: plan nothing, delete nothing
            return self._unseen(exc)
        ops = plan_route(inputs)
        self.plans += 1
        problems = (*cal_listing.problems, *no_owner, *ven_listing.problems)
        named = scope.problems | _uids_of(no_owner)
        if not dry_run:  # a UID whose plan is empty now plans nothing until it changes
            self.settled.settle(scope, ops, named)
        ops, held = self._guard(ops, len(links), release)
        if dry_run:
            return RunReport(self.route_id, "held" if held else "ok", ops, held, problems=problems)
        self._settling.before_writes(self.calendar, self.vendor)
        report = await self._timed(self._apply(ops, held, problems))
        self._after_writes(report, self._waiting, scope, window, named)
        return report

    async def _chunked(
        self,
        window: Window,
        scope: Scope,
        linked: int,
        tombstones: frozenset[tuple[SideName, str]],
        release: bool,
    ) -> RunReport:
        """A pass weighing more than `chunk_weight`, planned a chunk at a time: a chunk's
        plan is its UIDs' plans (`partition`). Creates, updates and state-only ops go out
        `write_batch` or more at a time (a batch per chunk would leave the writers idle at
        each chunk's end); deletes wait for the guard, which counts them over every chunk.
        The report keeps its ops without their content (`_light`)."""
        self.plans += 1
        self._settling.before_writes(self.calendar, self.vendor)
        tally, raced_before = _Tally(RunReport(self.route_id, "ok")), self._raced
        deletes: list[Op] = []
        pending: list[Op] = []
        no_owner: list[Problem] = []
        planned = 0
        for part in scope.chunks(self.chunk_weight):
            if self.stop.is_set():  # shutting down: what went through is recorded
                return self._tallied(tally)
            try:
                inputs, unjudged = await self._inputs(window, part, tombstones)
            except AdapterError as exc:  # the batches before went through and are recorded
                tally.add(self._unseen(exc))
                return self._tallied(tally)
            ops, no_owner = plan_route(inputs), no_owner + unjudged
            tally.waiting |= self._waiting
            self.settled.settle(part, ops, scope.problems | _uids_of(unjudged))
            scope.split.release(part.signatures)
            deletes += [op for op in ops if op.action == "delete"]
            pending += [op for op in ops if op.action != "delete"]
            planned += len(part.signatures)
            if len(pending) >= self.write_batch or planned == len(scope.signatures):
                await self._write_batch(tally, tuple(pending), raced_before)
                pending = []
                log.info(
                    "route %s: %d of %d calendar UIDs planned, %d operations done",
                    self.route_id,
                    planned,
                    len(scope.signatures),
                    len(tally.report.ops),
                )
            if tally.report.outcome == "failed":
                return self._tallied(tally)
        listed = scope.split.listings
        problems = (*listed[0].problems, *no_owner, *listed[1].problems)
        guarded, held = self._guard(tuple(deletes), linked, release)
        await self._write_batch(tally, guarded, raced_before, held, problems)
        report = self._tallied(tally)
        self._after_writes(
            report, tally.waiting, scope, window, scope.problems | _uids_of(no_owner)
        )
        return report

    async def _write_batch(
        self,
        tally: _Tally,
        ops: tuple[Op, ...],
        raced_before: frozenset[str],
        held: tuple[Op, ...] | None = None,
        problems: tuple[Problem, ...] = (),
    ) -> None:
        """Write one batch of a chunked pass; `held` (the last batch): record the held
        deletes and the listing problems too."""
        self._raced = raced_before
        if held is None:
            tally.add(await self._timed(self._write(ops)))
        else:
            tally.add(await self._timed(self._apply(ops, held, problems)))
        tally.raced |= self._raced

    def _tallied(self, tally: _Tally) -> RunReport:
        self._raced = frozenset(tally.raced)  # what raced in any chunk is planned again
        return tally.report

    async def _timed(self, writing: Awaitable[RunReport]) -> RunReport:
        """The report of `writing`, with the time it took."""
        started = time.monotonic()
        with _gc_frozen():
            report = await writing
        return replace(report, write_seconds=time.monotonic() - started)

    def _after_writes(
        self, report: RunReport, waiting: bool, scope: Scope, window: Window, named: frozenset[str]
    ) -> None:
        """Settle the route on what it wrote, or on nothing: it held deletes, failed, or
        waits on an absence's confirmation."""
        if report.held or report.outcome != "ok" or waiting:
            self._settling.forget()
            return
        sides, listings = (self.calendar, self.vendor), scope.split.listings
        self._settling.settle(listings, sides, report.ops, report.counts)
        self._settle_written(scope.split, window, report.ops, named)

    def _unseen(self, exc: AdapterError) -> RunReport:
        """A side we cannot see: plan nothing, delete nothing."""
        return RunReport(self.route_id, "failed", error=failure_text(exc), retry_after=_pause(exc))

    def _settle_written(
        self, planned: Split, window: Window, ops: tuple[Op, ...], named: frozenset[str]
    ) -> None:
        """When the route settled on listings holding this run's writes, the UIDs written
        settle on them too, with the links and tombstones the writes recorded."""
        settled = self._settling.last
        written = {calendar_uid(op.cal_key) for op in ops} - named
        if settled is None or not written:
            return
        listings = (settled.calendar, settled.vendor)
        links, tombstones = self.state.link_index(self.route_id), self._tombstones()
        split = planned.after_writes(listings, links, tombstones)
        self.settled.settle_written(split, window, _context(listings), written)

    async def _list_both(self, window: Window) -> tuple[Listing, Listing]:
        cal, ven = await asyncio.gather(
            with_retries(lambda: self.calendar.list(window), self.retry),
            with_retries(lambda: self.vendor.list(window), self.retry),
        )
        self._fresh = {
            "calendar": self._settling.looked_again(self.calendar, "calendar"),
            "vendor": self._settling.looked_again(self.vendor, "vendor"),
        }
        return cal, ven

    # --- building the plan's inputs ---------------------------------------------------

    def _scope(
        self,
        window: Window,
        listings: tuple[Listing, Listing],
        links: LinkIndex,
        tombstones: frozenset[tuple[SideName, str]],
    ) -> Scope:
        """The records and links of the UIDs this run plans: those not settled (see
        `partition`)."""
        split = Split(self.calendar_id, listings, links, tombstones)
        named = split.problem_uids(listings[0].problems, listings[1].problems)
        return self.settled.scope(split, window, _context(listings), named)

    async def _inputs(
        self, window: Window, scope: Scope, tombstones: frozenset[tuple[SideName, str]]
    ) -> tuple[Inputs, list[Problem]]:
        """The plan's inputs, and the calendar items the route's rules could not judge."""
        cal, ven, links = scope.calendar, scope.vendor, scope.links
        listed = {r.key for r in ven.records} | {r.marker for r in ven.records if r.marker}
        cal_items, dropped, unsure, no_owner = self._calendar_items(cal, window, links, listed)
        ven_items = {r.key: self.vendor_item(r, window) for r in ven.records}
        links = self._relinked(links, ven_items)
        ven_items, ven_absent, ven_unknown = await self._confirm_vendor(
            window, ven_items, links, cal_items, ven.complete
        )
        # An absence awaiting its confirmation (a second listing, a get that failed) is
        # decided by a later look at the side, even one that finds the same listing.
        self._waiting = bool(ven_unknown) or any(link.missing for link in links)
        cal_items = self._partners_by_marker(cal_items, ven_items, links)
        quarantined = unsure | {problem_uid(p.key) for p in cal.problems}
        cal_absent = dropped  # an incomplete listing's gaps prove nothing
        if cal.complete:
            cal_absent |= self._calendar_absent(window, cal_items, links, quarantined)
        inputs = Inputs(
            calendar=Side(
                cal_items,
                cal.complete,
                self.calendar.caps.writable,
                frozenset(cal_absent),
                quarantined,
                self.calendar.caps.updatable,
                self.calendar.caps.deletable,
            ),
            vendor=Side(
                ven_items,
                ven.complete,
                self.vendor.caps.writable,
                ven_absent,
                ven_unknown | {problem.key for problem in ven.problems},  # unreadable records
                self.vendor.caps.updatable,
                self.vendor.caps.deletable,
                found_by_listing=self.vendor.caps.server_ids,
            ),
            links=links,
            window=window,
            policy=self._policy(),
            calendar_id=self.calendar_id,
            tombstones=tombstones,
            fields=self.fields,
        )
        return inputs, no_owner

    def _policy(self) -> Policy:
        route = self.route
        return Policy(
            route.direction,
            route.conflict,
            route.on_vendor_delete,
            route.import_new,
            route.occurrence_delete,
        )

    def _calendar_items(
        self, listing: Listing, window: Window, links: Iterable[Link], listed: set[str]
    ) -> tuple[dict[str, Item], set[str], frozenset[str], list[Problem]]:
        """Items that pass the route's rules, the keys the rules drop (they count as
        absent), the UIDs of events the rules cannot judge (their absence is unsure), and
        a problem for each of those. Events outside the window that no link holds and
        whose vendor record (`listed`: the vendor's keys and markers) is not listed are
        left out: no plan acts on them (a single event is listed wherever it lies, so a
        linked one that moves far away is not taken for deleted), and in a big calendar
        they are a third of the records, each a view to build and keep. One whose record
        the vendor lists still partners it (it is no orphan to re-key)."""
        items: dict[str, Item] = {}
        dropped: set[str] = set()
        unsure: set[str] = set()
        problems: list[Problem] = []
        linked = {link.cal_key for link in links}
        for record in listing.records:
            if record.key not in linked and not self._may_matter(record, window, listed):
                continue
            try:
                item = self.calendar_item(record, window)
            except routing.NoOwner as exc:
                problems.append(Problem(record.key, str(exc)))
                unsure.add(calendar_uid(record.key))
                continue
            if item is None:
                dropped.add(record.key)
            else:
                items[record.key] = item
        return items, dropped, frozenset(unsure), problems

    def _may_matter(self, record: Record, window: Window, listed: set[str]) -> bool:
        """Whether an unlinked calendar record can bear on the plan: inside the window, an
        event syncd made for a vendor record (it pairs with that record wherever it
        lies), or one whose vendor record is listed."""
        if record.in_window(window) or record.key.startswith(IMPORTED_PREFIX):
            return True
        return vendor_key(OccurrenceKey.parse(self.calendar_id, record.key)) in listed

    def _unlinked_markers(
        self, ven_items: dict[str, Item], links: Iterable[Link]
    ) -> dict[str, str]:
        """marker -> key of the listed records that no link holds: a record already linked
        to another occurrence (a stale marker after a series moved) is never taken."""
        linked = {link.vendor_key for link in links}
        return {
            item.record.marker: key
            for key, item in ven_items.items()
            if item.record.marker and key not in linked
        }

    def _relinked(self, links: tuple[Link, ...], ven_items: dict[str, Item]) -> tuple[Link, ...]:
        """A link whose record is not listed moves to a listed record that carries the
        link's key as its marker: a re-create (after a vendor-side delete) that reached
        the vendor but was never recorded is found again, not sent a second time."""
        by_marker = self._unlinked_markers(ven_items, links)
        if not by_marker:
            return links
        moved = []
        for link in links:
            mine = vendor_key(OccurrenceKey.parse(self.calendar_id, link.cal_key))
            found = by_marker.get(mine)
            if link.vendor_key not in ven_items and found is not None:
                # "missing" makes the plan record the record's new id even when nothing
                # else changed (the case `missing_reappeared`)
                link = replace(
                    link,
                    vendor_key=found,
                    remote_id=ven_items[found].record.remote_id,
                    missing="vendor",
                )
                del by_marker[mine]
            moved.append(link)
        return tuple(moved)

    def _partners_by_marker(
        self, cal_items: dict[str, Item], ven_items: dict[str, Item], links: Iterable[Link]
    ) -> dict[str, Item]:
        """A calendar item's partner is the record that carries its key as a marker: at a
        vendor that generates its own ids (a create sent but never recorded, a crash in
        between, is adopted on the next run instead of sent again), and at one that
        re-creates under a fresh key (Apptoto after a soft delete)."""
        by_marker = self._unlinked_markers(ven_items, links)
        if not by_marker:
            return cal_items  # the common case: nothing to re-pair, no copies
        return {
            key: replace(item, partner=by_marker.get(item.partner, item.partner))
            for key, item in cal_items.items()
        }

    def calendar_item(self, record: Record, window: Window) -> Item | None:
        """The plan's view of a calendar record, or None when the route leaves it out."""
        event = routing.bind(record.event, self.route.rep)
        domain = routing.rep_domain(event.owner, self.route.rep)
        if routing.skip_reason(event, self.route.filter, domain):
            return None
        if event.status == "cancelled" and not self.vendor.caps.holds_cancelled:
            return None  # a vendor without a cancelled state: cancelling deletes
        view = self.vendor.project(event)
        key = OccurrenceKey.parse(self.calendar_id, record.key)
        return Item(
            replace(record, event=event),
            view,
            fingerprint(view, self.fields),
            record.in_window(window),
            partner=vendor_key(key),
        )

    def vendor_item(self, record: Record, window: Window, like: Item | None = None) -> Item:
        """The plan's view of a vendor record; `like`, the calendar item it was written
        from, lends its fingerprint when the vendor echoed its view exactly."""
        view = self.calendar.project(record.event)
        ours = (record.marker or record.key).startswith(f"{self.calendar_id}:")
        echo = like is not None and like.view == view  # most read-backs of our writes
        fp = like.fp if like is not None and echo else fingerprint(view, self.fields)
        return Item(record, view, fp, record.in_window(window), ours=ours)

    def _calendar_absent(
        self,
        window: Window,
        items: dict[str, Item],
        links: Iterable[Link],
        quarantined: frozenset[str],
    ) -> set[str]:
        """Linked calendar keys the listing lacks, where the calendar's word is final."""
        if self.calendar.caps.absence == "authoritative":
            return {
                link.cal_key
                for link in links
                if link.cal_key not in items
                and _anchored(link, window)
                and calendar_uid(link.cal_key) not in quarantined
            }
        if not self._fresh.get("calendar", True):
            return set()  # the same listing again is no second look
        return {link.cal_key for link in links if link.missing == "calendar"}

    async def _confirm_vendor(
        self,
        window: Window,
        items: dict[str, Item],
        links: Iterable[Link],
        cal_items: dict[str, Item],
        complete: bool,
    ) -> tuple[dict[str, Item], frozenset[str], frozenset[str]]:
        """Confirm each linked vendor record the listing lacks (DESIGN.md section 6): the
        items with those found, the keys confirmed gone, and the keys left unknown (a get
        that failed). An incomplete listing confirms nothing by itself, only a get can."""
        suspects = [
            link
            for link in links
            if link.vendor_key not in items
            and (_anchored(link, window) or _in_window(cal_items.get(link.cal_key)))
        ]
        absence = self.vendor.caps.absence
        none: frozenset[str] = frozenset()
        if absence != "get" and not complete:
            return items, none, none
        if absence == "authoritative":
            return items, frozenset(link.vendor_key for link in suspects), none
        if absence == "relist":
            if not self._fresh.get("vendor", True):
                return items, none, none  # the same listing again is no second look
            return items, frozenset(s.vendor_key for s in suspects if s.missing == "vendor"), none
        answers = await asyncio.gather(*(self._look_up(s.vendor_key) for s in suspects))
        found = [answer for answer in answers if isinstance(answer, Record)]
        items = dict(items) | {record.key: self.vendor_item(record, window) for record in found}
        keyed = list(zip(suspects, answers, strict=True))
        absent = frozenset(s.vendor_key for s, answer in keyed if isinstance(answer, Gone))
        unknown = frozenset(s.vendor_key for s, answer in keyed if isinstance(answer, AdapterError))
        return items, absent, unknown - absent

    async def _look_up(self, key: str) -> Record | AdapterError:
        """A confirming get: the record, `Gone`, or the error that leaves the key unknown
        this run. Refused credentials fail the run."""
        try:
            return await with_retries(lambda: self.vendor.get(key), self.retry)
        except AuthFailed:
            raise
        except AdapterError as exc:
            return exc

    def _tombstones(self) -> frozenset[tuple[SideName, str]]:
        """Calendar keys whose vendor deletion the route keeps, and vendor keys syncd
        deleted (so a late listing that still shows one does not import it)."""
        kept: set[tuple[SideName, str]] = set()
        for row in self.state.tombstones(self.route_id):
            if row["side"] == "vendor":
                kept.add(("vendor", row["key"]))
            elif row["reason"] not in (DELETED_BY_SYNCD, CANNOT_DELETE):
                kept.add(("calendar", row["key"]))
        return frozenset(kept)

    # --- the mass-delete guard and applying ----------------------------------------------

    def _guard(
        self, ops: tuple[Op, ...], linked: int, release: bool
    ) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
        """Hold every delete when they exceed both of the route's limits in one run. With
        `release`, the deletes held before (and shown to a person) go through; any others
        are guarded as usual."""
        released = self._held_keys() if release else set()
        deletes = [
            op for op in ops if op.action == "delete" and (op.side, op.cal_key) not in released
        ]
        safety = self.route.safety
        over = (
            len(deletes) > safety.max_delete_count
            and len(deletes) > safety.max_delete_fraction * linked
        )
        if not over:
            return ops, ()
        held = {id(op) for op in deletes}
        return tuple(op for op in ops if id(op) not in held), tuple(deletes)

    def _held_keys(self) -> set[tuple[str, str]]:
        return {(row["side"], row["cal_key"]) for row in self.state.held_deletes(self.route_id)}

    def _binding(self) -> Binding:
        window = self._last_window
        return Binding(
            self.route_id,
            self.calendar,
            self.vendor,
            calendar_item=lambda record: self.calendar_item(record, window),
            vendor_item=lambda record, like: self.vendor_item(record, window, like),
            fields=self.fields,
            calendar_id=self.calendar_id,
        )

    async def _apply(
        self, ops: tuple[Op, ...], held: tuple[Op, ...], problems: tuple[Problem, ...]
    ) -> RunReport:
        self.state.hold_deletes(self.route_id, (_held_row(op) for op in held))
        self.state.set_listing_problems(self.route_id, ((p.key, p.reason) for p in problems))
        return await self._write(ops, held, problems)

    async def _write(
        self, ops: tuple[Op, ...], held: tuple[Op, ...] = (), problems: tuple[Problem, ...] = ()
    ) -> RunReport:
        """Carry out `ops` (nothing recorded of the held deletes or the problems)."""
        applier = Applier(
            self._binding(), self.state, self.retry, stop=self.stop, raced_before=self._raced
        )
        try:
            counts = await applier.apply(ops)
        except (AuthFailed, Unavailable) as exc:  # refused, rate-limited for long, or down
            self._raced = frozenset()
            done, error = applier.counts.as_dict(), failure_text(exc)
            return RunReport(self.route_id, "failed", ops, held, done, problems, error, _pause(exc))
        self._raced = frozenset(applier.raced)
        return _report(self.route_id, ops, held, counts, problems)


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """The objects alive before the writes (listings, views, the plan: hundreds of
    thousands on a big first sync) set aside from the cyclic collector while they run:
    every collection rescanned them, a seventh of a first sync's writing time."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class _Tally:
    """A chunked pass so far: its reports merged, whether a chunk waits on an absence's
    confirmation, and the keys that raced in any batch."""

    report: RunReport
    waiting: bool = False
    raced: set[str] = field(default_factory=set)

    def add(self, part: RunReport) -> None:
        """One batch's report (or the deletes', or a failure's); its ops kept without
        their content."""
        total = self.report
        self.report = replace(
            total,
            outcome=_worse(total.outcome, part.outcome),
            ops=total.ops + tuple(_light(op) for op in part.ops),
            held=total.held + part.held,
            counts=_summed(total.counts, part.counts),
            problems=part.problems or total.problems,
            error=part.error or total.error,
            retry_after=part.retry_after or total.retry_after,
            write_seconds=total.write_seconds + part.write_seconds,
        )


def _worse(outcome: str, other: str) -> str:
    """The worse of two outcomes: failed, then held, then ok."""
    return other if other == "failed" or outcome == "ok" else outcome


def _light(op: Op) -> Op:
    """An op without the items it wrote (what a report of a long pass keeps)."""
    return replace(op, source=None, target=None, link=None, loser=None)


def _uids_of(problems: Iterable[Problem]) -> frozenset[str]:
    return frozenset(calendar_uid(problem.key) for problem in problems)


def _context(listings: tuple[Listing, Listing]) -> tuple[bool, bool]:
    """What every UID's plan reads besides its own records and links: whether each
    side's listing is whole (an absence counts only then)."""
    return listings[0].complete, listings[1].complete


def _summed(first: dict[str, int], second: dict[str, int]) -> dict[str, int]:
    """Counts of two passes of one run, added up."""
    return {key: first.get(key, 0) + second.get(key, 0) for key in first.keys() | second.keys()}


def _report(
    route: str,
    ops: tuple[Op, ...],
    held: tuple[Op, ...],
    counts: RunCounts,
    problems: tuple[Problem, ...],
) -> RunReport:
    outcome = "failed" if counts.unavailable else "held" if held else "ok"
    error = f"{counts.unavailable} writes failed: {counts.last_error}" if counts.unavailable else ""
    data = counts.as_dict() | {"held": len(held), "problems": len(problems)}
    return RunReport(route, outcome, ops, held, data, problems, error)


def _held_row(op: Op) -> dict[str, str]:
    title = op.target.record.event.title if op.target else ""
    return {
        "side": op.side,
        "cal_key": op.cal_key,
        "vendor_key": op.vendor_key,
        "case": op.case,
        "title": title,
    }


def _pause(exc: AdapterError) -> float | None:
    return exc.retry_after if isinstance(exc, RateLimited) else None


def failure_text(exc: AdapterError) -> str:
    """A failure as the user reads it: what happened and, where we know, what to do."""
    if isinstance(exc, AuthFailed):
        return f"credentials refused (check this side's keys or password in the config): {exc}"
    return str(exc)


def _anchored(link: Link, window: Window) -> bool:
    return link.anchor is None or window.holds(link.anchor)


def _in_window(item: Item | None) -> bool:
    return item is not None and item.in_window


def log_run(report: RunReport, previous: str, seconds: float) -> None:
    """One summary line per run; a warning when the route starts failing, one when it
    recovers (Home Assistant's coordinator: log on transitions, not on every poll)."""
    if report.outcome == "failed" and previous != "failing":
        log.warning("route %s is failing: %s", report.route, report.error)
    elif report.outcome != "failed" and previous == "failing":
        log.warning("route %s recovered", report.route)
    parts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items()) if v)
    log.info(
        "route %s: %s%s (%.1fs)",
        report.route,
        report.outcome,
        f", {parts}" if parts else "",
        seconds,
    )
