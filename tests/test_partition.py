"""Planning only the UIDs that changed: which UID a record belongs to, and when a UID
that planned nothing is planned again (`syncd.partition`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.adapter import Caps
from syncd.errors import Unavailable
from syncd.links import LinkIndex
from syncd.model import (
    Event,
    Link,
    Listing,
    OccurrenceKey,
    Problem,
    Record,
    Window,
    calendar_uid,
    vendor_key,
)
from syncd.packed import GroupedRecords, Packed, by_uid
from syncd.partition import UNKNOWN, Partitioner, Settled, Split
from syncd.plan import imported_key
from syncd.polled import Polled
from syncd.runner import RouteRunner
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State
from tests.builders import Vevent, calendar, day, write
from tests.test_quiet import ROUTE, file_route, route_config, views_made

NOW = datetime(2027, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(key: str, marker: str = "") -> Record:
    return Record(key, Event(NOW, NOW + HOUR, "Call"), marker=marker)


def link(cal_key: str, vendor: str) -> Link:
    return Link(cal_key, vendor, "fp", "fp")


def test_a_uid_is_read_from_an_occurrence_key_whose_uid_holds_colons():
    assert calendar_uid("VEVENT:urn:uuid:1234:20270301T090000Z") == "urn:uuid:1234"
    assert calendar_uid("VEVENT:plain:-") == "plain"


def listed(*records: Record, packed: bool = False) -> Listing:
    """A calendar listing of `records`, eager or as packed UID groups."""
    if not packed:
        return Listing(records)
    groups: dict[str, list[Record]] = {}
    for item in records:
        groups.setdefault(calendar_uid(item.key), []).append(item)
    return Listing(GroupedRecords({uid: Packed.of(found) for uid, found in groups.items()}))


@pytest.mark.parametrize("packed", [False, True])
def test_a_vendor_record_takes_the_uid_of_its_link_of_its_event_or_of_its_import(packed: bool):
    long_uid = "x" * 200  # its vendor key is hashed: no UID can be read from it
    hashed = vendor_key(OccurrenceKey("cal", long_uid))
    listing = listed(record(f"VEVENT:{long_uid}:-"), packed=packed)
    links = LinkIndex.of([link("VEVENT:linked:-", "srv-9")])
    partitioner = Partitioner("cal", links, by_uid(listing.records))

    assert partitioner.vendor_uid("srv-9") == "linked"  # by its link, whatever its key
    assert partitioner.vendor_uid(hashed) == long_uid  # the key the event chooses
    assert partitioner.vendor_uid("srv-1", marker=hashed) == long_uid  # by its marker
    assert partitioner.vendor_uid("cal:series:20270301T090000Z") == "series"  # an orphan
    born = calendar_uid(imported_key("cal", "booking-7"))
    assert partitioner.vendor_uid("booking-7") == born  # born at the vendor: its import's
    assert partitioner.vendor_uid("cal:h:abcdef") == UNKNOWN  # nothing names its UID


def test_a_links_uid_is_one_string_for_both_of_the_splits_maps():
    """A run splits every link of its route by UID twice over (the link's own UID, and
    the UID a vendor record takes from its link); each UID was sliced out of the
    calendar key for each, 0.7 MiB more of a 10,000-link re-sync's peak."""
    links = (link("VEVENT:call-a:-", "srv-1"), link("VEVENT:call-b:20270301T090000Z", "srv-2"))
    split = Split("cal", (listed(), Listing(())), LinkIndex.of(links), ())
    for uid, vendor in (("call-a", "srv-1"), ("call-b", "srv-2")):
        (held,) = (key for key in split.links if key == uid)
        assert split.partitioner.vendor_uid(vendor) is held


def test_tombstones_are_split_by_the_uid_of_their_key():
    split = Split(
        "cal",
        (Listing(()), Listing(())),
        LinkIndex.of(()),
        [("calendar", "VEVENT:gone:-"), ("vendor", "booking-7")],
    )
    born = calendar_uid(imported_key("cal", "booking-7"))
    assert split.tombstones == {
        "gone": {("calendar", "VEVENT:gone:-")},
        born: {("vendor", "booking-7")},
    }


SERIES = "RRULE:FREQ=DAILY;COUNT=5"


async def test_a_changed_series_is_planned_and_the_unchanged_one_is_not(tmp_path: Path):
    """The daemon's path: after the first sync (the route settles on the vendor's kept
    listing holding the creates) an edit to one series makes views for its occurrences
    only."""
    one, two = Vevent("one", "Standup", day(1), extra=[SERIES]), Vevent("two", "Review", day(1))
    runner = file_route(tmp_path, [one, two])
    first = await runner.run()
    assert first.counts["created"] == 6
    made = views_made(runner)
    write(tmp_path, "calendar.ics", calendar(one, Vevent("two", "Review moved", day(2))))

    report = await runner.run()

    assert report.counts["updated"] == 1
    assert made == ["VEVENT:two:-"]


@pytest.mark.parametrize("packed", [False, True])
async def test_a_settled_uid_is_planned_again_when_its_event_enters_the_window(
    tmp_path: Path, packed: bool
):
    """The window moves: an event beyond it planned nothing, and is created once the
    window reaches it, though nothing about its record changed (packed: its group's
    bytes are the same, but the window's end has passed its start)."""
    now = [NOW]
    calendar_side, vendor = MemoryAdapter(windowed=False, packed=packed), MemoryAdapter()
    later = NOW + timedelta(days=31)  # the route looks 30 days ahead
    calendar_side.put("VEVENT:later:-", Event(later, later + HOUR, "Later"))
    calendar_side.put("VEVENT:soon:-", Event(NOW + HOUR, NOW + 2 * HOUR, "Soon"))
    route = route_config(window={"past": "1d", "future": "30d"})
    runner = RouteRunner(
        "r", route, "cal", calendar_side, vendor, State(tmp_path / "s.db"), clock=lambda: now[0]
    )
    await runner.run()
    await runner.run()  # every UID planned nothing: settled
    assert set(vendor.items) == {"cal:soon"} and set(runner.settled.signatures) == {"later", "soon"}

    now[0] = NOW + timedelta(days=2)
    report = await runner.run()

    assert report.counts["created"] == 1 and "cal:later" in vendor.items


async def test_a_first_sync_decodes_each_packed_group_once(tmp_path: Path, decoded: list[str]):
    """Regression: settling the UIDs a first sync wrote decoded every packed group a
    second time, which set the first sync's memory peak. The split of the listings
    holding the writes shares the groups the plan decoded, and the UIDs still settle."""
    calendar_side = MemoryAdapter(windowed=False, packed=True)
    for n in range(3):
        calendar_side.put(f"VEVENT:e{n}:-", Event(NOW + n * HOUR, NOW + (n + 1) * HOUR, "Call"))
    vendor = Polled(MemoryAdapter(), timedelta(minutes=5))
    state = State(tmp_path / "s.db")
    runner = RouteRunner("r", ROUTE, "cal", calendar_side, vendor, state, clock=lambda: NOW)

    report = await runner.run()

    assert report.counts["created"] == 3
    assert len(decoded) == 3 and len(set(decoded)) == 3
    assert set(runner.settled.signatures) == {"e0", "e1", "e2"}


class GetFails(MemoryAdapter):
    """A vendor that confirms absences with a get, while its gets fail."""

    def __init__(self) -> None:
        super().__init__(Caps(absence="get"))
        self.down = False

    async def get(self, key: str) -> Record:
        if self.down:
            raise Unavailable("memory: get failed")
        return await super().get(key)


class Troubled(MemoryAdapter):
    """A calendar whose listing cannot read one event (`VEVENT:bad:-`)."""

    async def list(self, window: Window) -> Listing:
        listing = await super().list(window)
        return replace(listing, problems=(Problem("VEVENT:bad:-", "cannot read it"),))


async def test_a_link_whose_record_could_not_be_confirmed_is_looked_at_every_run(tmp_path: Path):
    """While the get fails the UID plans nothing but waits, so it is never settled, and
    its absence is confirmed once a get answers."""
    calendar_side = MemoryAdapter(windowed=False)
    calendar_side.put("VEVENT:e0:-", Event(NOW + HOUR, NOW + 2 * HOUR, "E0"))
    vendor = GetFails()
    runner = RouteRunner(
        "r", ROUTE, "cal", calendar_side, vendor, State(tmp_path / "s.db"), clock=lambda: NOW
    )
    await runner.run()
    vendor.remove("cal:e0")
    vendor.down = True
    assert (await runner.run()).ops == ()  # unknown: nothing done
    assert "e0" not in runner.settled.signatures
    vendor.down = False

    report = await runner.run()

    assert report.counts["created"] == 1  # confirmed gone, and re-created


async def test_a_uid_a_listing_problem_names_is_never_settled(tmp_path: Path):
    calendar_side = Troubled(windowed=False)
    for uid in ("good", "bad"):
        calendar_side.put(f"VEVENT:{uid}:-", Event(NOW + HOUR, NOW + 2 * HOUR, uid))
    runner = RouteRunner(
        "r",
        ROUTE,
        "cal",
        calendar_side,
        MemoryAdapter(),
        State(tmp_path / "s.db"),
        clock=lambda: NOW,
    )
    await runner.run()
    await runner.run()
    assert set(runner.settled.signatures) == {"good"}


async def test_a_uid_whose_tombstone_is_cleared_is_planned_again(tmp_path: Path):
    """A vendor deletion the route keeps leaves the event unlinked, held back by its
    tombstone, and its UID plans nothing; `syncd reset` clears the tombstone (and
    nothing else the UID's plan reads), and the event is sent to the vendor again."""
    calendar_side = MemoryAdapter(windowed=False)
    calendar_side.put("VEVENT:e0:-", Event(NOW + HOUR, NOW + 2 * HOUR, "E0"))
    vendor, state = MemoryAdapter(), State(tmp_path / "s.db")
    route = route_config(on_vendor_delete="keep_deleted")
    runner = RouteRunner("r", route, "cal", calendar_side, vendor, state, clock=lambda: NOW)
    await runner.run()
    vendor.remove("cal:e0")
    assert [op.case for op in (await runner.run()).ops] == ["vendor_deleted_kept"]
    assert (await runner.run()).ops == () and "e0" in runner.settled.signatures
    state.reset("r")

    report = await runner.run()

    assert report.counts["created"] == 1 and "cal:e0" in vendor.items


def test_a_settled_uid_with_nothing_left_on_either_side_is_forgotten():
    """Forgotten once a run, when its scope is taken (a chunked run took it once a chunk):
    a UID with no record and no link left holds no signature."""
    settled = Settled({"gone": 1, "kept": 2})
    split = Split("cal", (listed(record("VEVENT:kept:-")), Listing(())), LinkIndex.of(()), ())

    scope = settled.scope(split, Window(NOW, NOW + HOUR), (True, True), set())

    assert set(settled.signatures) <= {"kept"} and "kept" in scope.signatures
