"""A Hypothesis state machine over the real `RouteRunner`, two `MemoryAdapter`s and a real
`State` on a temporary SQLite file (vdirsyncer's stateful test, with fault switches).

Rules edit the calendar (add, edit, move, delete), edit or delete the vendor's copies of
what syncd created there, switch a fault on for the next run (a failing listing, an
incomplete listing, failing writes), forget the route's state (`syncd reset`) and sync.
Invariants (DESIGN.md section 10):

- every delete removes something whose counterpart is really gone: a failed or
  incomplete listing deletes nothing;
- a run whose listing failed writes nothing at all; a read-only side is never written;
- `syncd plan` (a dry run) writes nothing, not even the state, and announces the plan
  the run then carries out;
- after a run without faults, both sides agree on the compared fields for every
  calendar event inside the window (up to what the vendor cannot hold), every link
  points at records both sides hold, and a second run plans nothing and writes nothing
  (a vendor that confirms absence by a second listing gets that listing first).

Module notes. The calendar lists single events outside the window too, as the calendar
files do; the vendor lists only the window. Vendor-side moves stay inside the window: a
record moved out of it is, to a vendor whose listing is its word ("authoritative" or
"relist"), indistinguishable from a deletion. The calendar holds the customer as an
attendee (`calendar_view`), where the route's rep rule finds it again: the ics
calendars cannot write attendees back yet, so on them a contact written back from the
vendor ends as a difference the state accepts and notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from syncd.adapter import Caps
from syncd.model import Absence, Event, OccurrenceKey, Person, Record, Window
from syncd.partition import Settled
from syncd.plan import Op
from syncd.retry import RetryPolicy
from syncd.runner import CHUNK_WEIGHT, WRITE_BATCH, RouteRunner, RunReport
from syncd.settings import RouteConfig
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State

CAL = "team"
ROUTE = "r"
NOW = datetime(2027, 3, 1, tzinfo=UTC)
PAST, FUTURE = timedelta(days=1), timedelta(days=30)
WINDOW = Window.around(NOW, PAST, FUTURE)
VENDOR_FIELDS = frozenset({"start", "end", "title", "owner", "contact"})
CLIENTS = (None, Person("ann@client.test", "Ann"), Person("bob@other.test", "Bob", "ACCEPTED"))
TITLES = st.sampled_from(["Intro", "Demo", "Pricing", "Follow-up"])
PICK = st.integers(min_value=0, max_value=1_000)
SIDES = st.sampled_from(["calendar", "vendor"])


def vendor_view(event: Event) -> Event:
    """What the vendor holds: times, title, owner and the customer (no partstat)."""
    contact = Person(event.contact.email, event.contact.name) if event.contact else None
    return Event(event.start, event.end, event.title, owner=event.owner, contact=contact)


def calendar_view(event: Event) -> Event:
    """What the calendar holds: the customer (`contact`) as its one external attendee,
    where the route's rep rule finds it again, so writing a contact rewrites attendees."""
    colleagues = tuple(p for p in event.attendees if p.email.endswith("@example.com"))
    customer = (event.contact,) if event.contact else ()
    return replace(event, attendees=customer + colleagues)


def note(case: str) -> None:
    """Count a planned case in Hypothesis' statistics (`--hypothesis-show-statistics`);
    outside a Hypothesis test (a scenario test driving a machine by hand) do nothing."""
    with contextlib.suppress(InvalidArgument):
        event(case)


def run(runner: RouteRunner) -> RunReport:
    """One route run on a fresh event loop (rules are plain functions)."""
    return asyncio.run(runner.run())


class SyncMachine(RuleBasedStateMachine):
    """One route; subclasses choose the direction, the vendor's absence rule and more."""

    direction: ClassVar[str] = "to_vendor"
    vendor_absence: ClassVar[Absence] = "get"
    calendar_writable: ClassVar[bool] = True
    packed_calendar: ClassVar[bool] = False  # the calendar lists packed UID groups
    paged_vendor: ClassVar[bool] = False  # the vendor lists packed pages
    chunk_weight: ClassVar[int] = CHUNK_WEIGHT  # what a run plans at a time
    write_batch: ClassVar[int] = WRITE_BATCH  # ops such a run writes together
    on_vendor_delete: ClassVar[str] = "recreate"
    conflict: ClassVar[str] = "calendar"
    agree: ClassVar[bool] = True  # False where the route cannot bring the sides together

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.state = State(Path(self.folder.name) / "state.db")
        self.state.db.execute("PRAGMA synchronous = OFF")  # a scratch file: skip the fsyncs
        self.calendar = MemoryAdapter(
            Caps(writable=self.calendar_writable, partial_update=True),
            project=calendar_view,
            windowed=False,
            packed=self.packed_calendar,
        )
        self.vendor = MemoryAdapter(
            Caps(partial_update=True, fields=VENDOR_FIELDS, absence=self.vendor_absence),
            project=vendor_view,
            paged=self.paged_vendor,
        )
        route = RouteConfig.model_validate(
            {
                "calendar": CAL,
                "vendor": "crm",
                "direction": self.direction,
                "window": {"past": "1d", "future": "30d"},
                "rep": {"email": "rep@example.com"},
                "on_vendor_delete": self.on_vendor_delete,
                "conflict": self.conflict,
                "safety": {"max_delete_count": 10_000, "max_delete_fraction": 1.0},
            }
        )
        self.runner = RouteRunner(
            ROUTE,
            route,
            CAL,
            self.calendar,
            self.vendor,
            self.state,
            retry=RetryPolicy(attempts=1),
            clock=lambda: NOW,
            chunk_weight=self.chunk_weight,
            write_batch=self.write_batch,
        )
        self.uids = 0

    def teardown(self) -> None:
        self.state.close()
        self.folder.cleanup()

    # --- the calendar changes ---------------------------------------------------------------

    @rule(
        title=TITLES,
        day=st.integers(min_value=-3, max_value=34),
        hour=st.integers(min_value=0, max_value=23),
        client=st.sampled_from(CLIENTS),
    )
    def add_event(self, title: str, day: int, hour: int, client: Person | None) -> None:
        self.uids += 1
        start = NOW + timedelta(days=day, hours=hour)
        event = Event(start, start + timedelta(hours=1), title, contact=client)
        self.calendar.put(OccurrenceKey(CAL, f"u{self.uids}").text, event)

    @precondition(lambda self: self.calendar.items)
    @rule(
        pick=PICK,
        title=TITLES,
        description=st.sampled_from(["", "agenda", "notes"]),
        client=st.sampled_from(CLIENTS),
    )
    def edit_event(self, pick: int, title: str, description: str, client: Person | None) -> None:
        key, event = self._pick(self.calendar, pick)
        self.calendar.put(key, replace(event, title=title, description=description, contact=client))

    @precondition(lambda self: self.calendar.items)
    @rule(pick=PICK, hours=st.integers(min_value=-40 * 24, max_value=40 * 24))
    def move_event(self, pick: int, hours: int) -> None:
        key, event = self._pick(self.calendar, pick)
        shift = timedelta(hours=hours)
        self.calendar.put(key, replace(event, start=event.start + shift, end=event.end + shift))

    @precondition(lambda self: self.calendar.items)
    @rule(pick=PICK)
    def delete_event(self, pick: int) -> None:
        self.calendar.remove(self._pick(self.calendar, pick)[0])

    # --- the vendor changes what syncd created there ------------------------------------------

    @precondition(lambda self: self.vendor.items)
    @rule(pick=PICK, title=TITLES, hours=st.sampled_from([0, 0, -30, -2, 1, 26]))
    def vendor_edits(self, pick: int, title: str, hours: int) -> None:
        """A new title, maybe a new time (inside the window: see the module notes)."""
        key, event = self._pick(self.vendor, pick)
        shift = timedelta(hours=hours)
        if not WINDOW.holds(event.start + shift):
            shift = timedelta(0)
        start, end = event.start + shift, event.end + shift
        self.vendor.put(key, replace(event, title=title, start=start, end=end))

    @precondition(lambda self: self.vendor.items)
    @rule(pick=PICK)
    def vendor_deletes(self, pick: int) -> None:
        self.vendor.remove(self._pick(self.vendor, pick)[0])

    # --- faults, each for the next run ---------------------------------------------------------

    @rule(side=SIDES, fault=st.sampled_from(["listing_fails", "listing_incomplete", "writes_fail"]))
    def fault(self, side: str, fault: str) -> None:
        adapter = self.calendar if side == "calendar" else self.vendor
        if fault == "listing_fails":
            adapter.fail_lists = 1
        elif fault == "listing_incomplete":
            adapter.incomplete_lists = 1
        else:
            adapter.fail_writes = True

    # --- the state -----------------------------------------------------------------------------

    @rule()
    def state_reset(self) -> None:
        """`syncd reset`: the next run adopts what it created instead of duplicating it."""
        self.state.reset(ROUTE)

    @rule()
    def restart(self) -> None:
        """The daemon restarted (or reloaded): its next run plans every UID once (in
        chunks, where a machine plans few UIDs at a time)."""
        self.runner = replace(self.runner)

    # --- syncing -------------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        sides = (self.calendar, self.vendor)
        faulty = any(side.fail_lists or side.incomplete_lists or side.fail_writes for side in sides)
        failing = self.calendar.fail_lists or self.vendor.fail_lists
        dry = None if faulty else self._dry_run()
        before = self._writes()
        report = self._run()
        if failing:
            assert report.outcome == "failed"
            assert self._writes() == before, "a run whose listing failed wrote something"
        if faulty:
            for side in sides:
                side.fail_lists = side.incomplete_lists = 0
                side.fail_writes = False
            return
        assert report.outcome == "ok", report
        assert dry == _shape(report.ops), "the run planned otherwise than a plan of every UID"
        settled = self._run()
        if settled.counts.get("marked_missing"):  # a second listing confirms the absence
            settled = self._run()
        self._assert_settled(settled)

    def _dry_run(self) -> list[tuple[str, str, str, str, str]]:
        """`syncd plan` over every UID, none left out as settled: it writes nothing, not
        even the state; returns what it planned. The run that follows plans only the
        UIDs that changed since their plan came out empty, and must do exactly this."""
        before, links = self._writes(), self.state.links(ROUTE)
        settled, self.runner.settled = self.runner.settled, Settled()
        try:
            report = asyncio.run(self.runner.run(dry_run=True))
        finally:
            self.runner.settled = settled
        assert self._writes() == before and self.state.links(ROUTE) == links
        return _shape(report.ops)

    def _run(self) -> RunReport:
        """One run, checking the invariants that hold whatever the faults."""
        calendar, vendor = self.calendar.records(), self.vendor.records()
        report = run(self.runner)
        for op in report.ops:
            note(op.case)
            self._assert_delete_confirmed(op, calendar, vendor)
        if not self.calendar_writable:
            assert self.calendar.writes == 0, "the read-only calendar was written"
        return report

    def _assert_delete_confirmed(
        self, op: Op, calendar: dict[str, Record], vendor: dict[str, Record]
    ) -> None:
        """A delete on one side follows a real absence on the other (no window slip, no
        incomplete listing taken for a deletion)."""
        if op.action != "delete":
            return
        if op.side == "vendor":
            assert op.cal_key not in calendar, f"deleted {op.vendor_key}: its event exists"
        else:
            assert op.vendor_key not in vendor, f"deleted {op.cal_key}: its record exists"

    def _assert_settled(self, again: RunReport) -> None:
        before = self._writes()
        last = self._run()
        assert last.ops == (), f"a second run planned {[op.case for op in last.ops]}"
        assert self._writes() == before, "a second run wrote something"
        assert again.outcome == last.outcome == "ok"
        self._assert_links_hold()
        if self.agree:
            self._assert_agree()

    def _assert_links_hold(self) -> None:
        for link in self.state.links(ROUTE):
            assert link.cal_key in self.calendar.items, link
            assert link.vendor_key in self.vendor.items, link
            assert not link.missing, link

    def _assert_agree(self) -> None:
        """Every calendar event inside the window has its vendor record, equal on the
        fields both sides hold (a deletion the route keeps is the one exception)."""
        kept = {row["key"] for row in self.state.tombstones(ROUTE) if row["side"] == "calendar"}
        vendor = self.vendor.records()
        for key, record in self.calendar.records().items():
            item = self.runner.calendar_item(record, WINDOW)
            if item is None or not item.in_window or key in kept:
                continue
            assert item.partner in vendor, f"{key} has no vendor record"
            twin = self.runner.vendor_item(vendor[item.partner], WINDOW)
            assert twin.fp == item.fp, (record.event, twin.record.event)

    # --- helpers -----------------------------------------------------------------------------

    def _pick(self, side: MemoryAdapter, pick: int) -> tuple[str, Event]:
        keys = sorted(side.items)
        key = keys[pick % len(keys)]
        return key, side.items[key][1]

    def _writes(self) -> tuple[int, int]:
        return self.calendar.writes, self.vendor.writes


def _shape(ops: tuple[Op, ...]) -> list[tuple[str, str, str, str, str]]:
    """The ops in any order: a run applies them concurrently, a chunked one deletes last."""
    return sorted((op.action, op.side, op.case, op.cal_key, op.vendor_key) for op in ops)


SETTINGS = settings(deadline=None)  # examples: the profile's (tests/conftest.py)


class ToVendor(SyncMachine):
    """The calendar is the truth; the vendor confirms absence with a get (Sales Ask)."""


class Both(SyncMachine):
    """Two-way, conflicts won by the calendar; the vendor confirms absence with a get."""

    direction = "both"


class BothVendorWins(SyncMachine):
    """Direction both, conflicts won by the vendor."""

    direction = "both"
    conflict = "vendor"


class BothAuthoritativeVendor(SyncMachine):
    """A vendor whose complete listing is its word on what exists."""

    direction = "both"
    vendor_absence = "authoritative"


class ToVendorRelistKeepDeleted(SyncMachine):
    """A vendor without an unambiguous get, and a route that respects vendor deletions."""

    vendor_absence = "relist"
    on_vendor_delete = "keep_deleted"


class ReadOnlyCalendarToVendor(SyncMachine):
    """An ics_url feed: read-only, so the route is to_vendor."""

    calendar_writable = False


class ReadOnlyCalendarBoth(SyncMachine):
    """Direction both, but the calendar cannot be written: vendor edits stay there."""

    direction = "both"
    calendar_writable = False
    agree = False


class BothPackedCalendar(SyncMachine):
    """Two-way, the calendar listing packed UID groups as the feed and file calendars do:
    its UIDs are judged by their groups' tokens, and only planned ones decoded."""

    direction = "both"
    packed_calendar = True


class ReadOnlyPackedCalendarToVendor(SyncMachine):
    """A feed as the daemon sees it: read-only, packed UID groups."""

    calendar_writable = False
    packed_calendar = True


class BothChunked(SyncMachine):
    """Two-way, planned a few UIDs at a time and written three ops or more at a time (as
    a first sync of a big calendar is): the deletes wait for the guard over every chunk."""

    direction = "both"
    chunk_weight = 4  # two to four UIDs
    write_batch = 3  # a batch holds the ops of one chunk or of several


class BothPackedCalendarPagedVendor(SyncMachine):
    """Two-way, both listings packed as the daemon's are for a feed or file and a vendor:
    a vendor record is judged by its entry's token, and only planned ones decoded."""

    direction = "both"
    packed_calendar = True
    paged_vendor = True


def case_of(kind: type[SyncMachine]) -> Any:
    """The machine's pytest test case, with the file's settings over the loaded profile."""
    test = kind.TestCase
    test.settings = SETTINGS
    return test


TestToVendor = case_of(ToVendor)
TestBoth = case_of(Both)
TestBothVendorWins = case_of(BothVendorWins)
TestBothAuthoritativeVendor = case_of(BothAuthoritativeVendor)
TestToVendorRelistKeepDeleted = case_of(ToVendorRelistKeepDeleted)
TestReadOnlyCalendarToVendor = case_of(ReadOnlyCalendarToVendor)
TestReadOnlyCalendarBoth = case_of(ReadOnlyCalendarBoth)
TestBothPackedCalendar = case_of(BothPackedCalendar)
TestReadOnlyPackedCalendarToVendor = case_of(ReadOnlyPackedCalendarToVendor)
TestBothPackedCalendarPagedVendor = case_of(BothPackedCalendarPagedVendor)
TestBothChunked = case_of(BothChunked)


# --- regressions found by the machine ----------------------------------------------------


def machine(kind: type[SyncMachine]) -> SyncMachine:
    """A machine to drive by hand, for scenario tests."""
    return kind()


def test_incomplete_calendar_listing_deletes_nothing() -> None:
    """An incomplete calendar listing lacked an event: it was taken as deleted and its
    vendor record deleted (the absence was never confirmed)."""
    m = machine(ToVendor)
    try:
        m.add_event("Intro", 1, 9, None)
        m.add_event("Demo", 2, 9, None)
        assert run(m.runner).outcome == "ok"
        m.calendar.incomplete_lists = 1  # shows u1, hides u2
        report = run(m.runner)
        assert [op.case for op in report.ops] == []
        assert m.vendor.deleted == 0 and len(m.vendor.items) == 2
    finally:
        m.teardown()


def test_incomplete_vendor_listing_deletes_nothing() -> None:
    """An incomplete listing of a vendor whose listing is authoritative lacked a record:
    it was taken as deleted there and the calendar event deleted."""
    m = machine(BothAuthoritativeVendor)
    try:
        m.add_event("Intro", 1, 9, None)
        m.add_event("Demo", 2, 9, None)
        assert run(m.runner).outcome == "ok"
        m.vendor.incomplete_lists = 1
        report = run(m.runner)
        assert [op.case for op in report.ops] == []
        assert m.calendar.deleted == 0 and len(m.calendar.items) == 2
    finally:
        m.teardown()


def test_incomplete_relisting_does_not_confirm_an_absence() -> None:
    """A vendor confirming absence by a second listing: an incomplete second listing is
    not that confirmation."""
    m = machine(ToVendorRelistKeepDeleted)
    try:
        m.add_event("Intro", 1, 9, None)
        m.add_event("Demo", 2, 9, None)
        assert run(m.runner).outcome == "ok"
        held = m.vendor.items.pop("team:u2")  # not in one complete listing: marked missing
        first = run(m.runner)
        assert [op.case for op in first.ops] == ["vendor_missing_unconfirmed"]
        m.vendor.items["team:u2"] = held  # back, but the next listing is incomplete
        m.vendor.incomplete_lists = 1  # shows u1, hides u2
        report = run(m.runner)
        assert "vendor_deleted_kept" not in [op.case for op in report.ops]
        assert m.state.tombstones(ROUTE) == []
    finally:
        m.teardown()


def test_vendor_edit_after_calendar_delete_writes_no_read_only_calendar() -> None:
    """Direction both over a read-only calendar: an event deleted there whose vendor record
    was edited was re-created in the calendar (edit_beats_delete ignored `writable`)."""
    m = machine(ReadOnlyCalendarBoth)
    try:
        m.calendar.put(OccurrenceKey(CAL, "u1").text, Event(NOW, NOW + timedelta(hours=1)))
        assert run(m.runner).outcome == "ok"
        m.calendar.remove(OccurrenceKey(CAL, "u1").text)
        m.vendor_edits(pick=0, title="Demo", hours=0)
        report = run(m.runner)
        assert [op.case for op in report.ops] == ["calendar_deleted"]
        assert m.calendar.writes == 0 and m.vendor.items == {}
    finally:
        m.teardown()


# --- the other switches of the memory side, through the runner ----------------------------


def test_rejected_vendor_write_is_parked_and_the_rest_syncs() -> None:
    m = machine(ToVendor)
    try:
        m.add_event("Intro", 1, 9, None)
        m.add_event("Demo", 2, 9, None)
        m.vendor.reject.add("team:u1")
        first = run(m.runner)
        assert first.counts["quarantined"] == 1 and list(m.vendor.items) == ["team:u2"]
        again = run(m.runner)  # unchanged and refused before: parked, not retried
        assert again.counts["parked"] == 1 and m.vendor.writes == 1
    finally:
        m.teardown()


def test_server_generated_keys_are_linked_not_duplicated() -> None:
    m = machine(ToVendor)
    m.vendor.prefix = "crm-"
    m.vendor.caps = replace(m.vendor.caps, server_ids=True)
    try:
        m.add_event("Intro", 1, 9, None)
        assert run(m.runner).outcome == "ok"
        [key] = m.vendor.items
        assert key.startswith("crm-") and [link.vendor_key for link in m.state.links(ROUTE)] == [
            key
        ]
        m.edit_event(pick=0, title="Demo", description="", client=None)
        report = run(m.runner)
        assert [op.case for op in report.ops] == ["calendar_changed"]
        assert list(m.vendor.items) == [key] and m.vendor.items[key][1].title == "Demo"
        assert run(m.runner).ops == ()
    finally:
        m.teardown()
