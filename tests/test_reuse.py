"""Not parsing what did not change: same bytes and a window inside the kept one reuse
the kept listing; new bytes or a window beyond it parse again."""

from __future__ import annotations

import asyncio
import tempfile
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from syncd.blocks import Body
from syncd.calendars import reuse
from syncd.calendars.ics_file import IcsFile
from syncd.calendars.reuse import SLACK, Expansions
from syncd.errors import Malformed
from syncd.ical import Limits, read_calendar
from syncd.model import Listing, Problem, Record, Window
from syncd.packed import GroupedRecords
from tests.builders import Vevent, calendar, day, write

WINDOW = Window(day(-1), day(30))
BODY = calendar(Vevent("a", "Call", day(1)), Vevent("b", "Visit", day(2))).encode()


async def test_the_same_bytes_in_a_window_inside_the_kept_one_are_not_parsed_again():
    expansions = Expansions("cal")
    first = await expansions.listing("feed", BODY, WINDOW)
    later = Window(WINDOW.start + timedelta(hours=6), WINDOW.end + timedelta(hours=6))
    assert await expansions.listing("feed", BODY, later) is first
    assert expansions.parses == 1


async def test_new_bytes_or_a_window_past_the_kept_one_are_parsed_again():
    expansions = Expansions("cal")
    await expansions.listing("feed", BODY, WINDOW)
    changed = calendar(Vevent("a", "Call, moved", day(3))).encode()
    assert [r.event.title for r in (await expansions.listing("feed", changed, WINDOW)).records] == [
        "Call, moved"
    ]
    beyond = Window(WINDOW.start, WINDOW.end + SLACK + timedelta(seconds=1))
    await expansions.listing("feed", changed, beyond)
    assert expansions.parses == 3
    expansions.forget()
    await expansions.listing("feed", changed, beyond)
    assert expansions.parses == 4


async def test_an_unchanged_ics_file_costs_a_read_not_a_parse(tmp_path):
    path = write(tmp_path, "cal.ics", BODY.decode())
    adapter = IcsFile("cal", path)
    await adapter.list(WINDOW)
    await adapter.list(WINDOW)
    assert adapter.expansions.parses == 1
    write(tmp_path, "cal.ics", calendar(Vevent("a", "Call", day(1))))
    assert [r.key for r in (await adapter.list(WINDOW)).records] == ["VEVENT:a:-"]
    assert adapter.expansions.parses == 2


# --- block level: only the UID groups whose blocks changed are parsed again -----------

OFFICE = [
    "BEGIN:VTIMEZONE",
    "TZID:Office Time",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0300",
    "TZOFFSETTO:+0300",
    "END:STANDARD",
    "END:VTIMEZONE",
]


def _local(uid: str, offset: int, title: str, extra: tuple[str, ...] = ()) -> str:
    start = day(offset).strftime("%Y%m%dT%H%M%S")
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z"]
    lines += [f"DTSTART;TZID=Office Time:{start}", "DURATION:PT1H", f"SUMMARY:{title}", *extra]
    return "\r\n".join([*lines, "END:VEVENT"])


def _override(uid: str, week: int, title: str) -> str:
    original = day(week * 7).strftime("%Y%m%dT%H%M%S")
    return _local(uid, week * 7, title, (f"RECURRENCE-ID;TZID=Office Time:{original}",))


def _body(events: list[str], zone: list[str] = OFFICE, stamp: str = "20260101T000000Z") -> bytes:
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//tests//EN",
            *zone,
            *events,
            "END:VCALENDAR",
            "",
        ]
    )
    return text.replace("DTSTAMP:20260101T000000Z", f"DTSTAMP:{stamp}").encode()


def _events() -> list[str]:
    singles = [Vevent(f"u{n}", f"Meeting {n}", day(n % 20)).text() for n in range(12)]
    local = [_local(f"z{n}", n, f"Local {n}") for n in range(3)]
    series = [_local("s1", 0, "Weekly", ("RRULE:FREQ=WEEKLY",)), _override("s1", 1, "Moved once")]
    return [*singles, *local, *series]


async def _whole(
    data: bytes, limits: Limits | None = None
) -> tuple[tuple[Record, ...], tuple[Problem, ...]]:
    """What one parse of the whole body gives (no blocks, no chunks)."""
    covers = Window(WINDOW.start, WINDOW.end + SLACK)
    expansion = read_calendar(data, calendar="cal", window=covers, limits=limits or Limits())
    return expansion.records, expansion.problems


def _by_key(listing: Listing) -> dict[str, Record]:
    return {record.key: record for record in listing.records}


def _reused(first: Listing, second: Listing) -> set[str]:
    """The UIDs whose packed group the second listing took from the first as it was."""
    before, after = first.records, second.records
    assert isinstance(before, GroupedRecords) and isinstance(after, GroupedRecords)
    return {uid for uid, packed in after.groups.items() if before.groups.get(uid) is packed}


async def test_one_changed_event_of_many_parses_one_group_and_reuses_the_others():
    expansions = Expansions("cal")
    events = _events()
    first = await expansions.listing("feed", _body(events), WINDOW)
    assert expansions.groups_parsed == 16
    events[3] = Vevent("u3", "Meeting 3, moved", day(9)).text()
    second = await expansions.listing("feed", _body(events), WINDOW)
    assert expansions.groups_parsed == 17 and expansions.whole_parses == 1
    assert _by_key(second)["VEVENT:u3:-"].event.title == "Meeting 3, moved"
    others = {f"u{n}" for n in range(12) if n != 3} | {"z0", "z1", "z2", "s1"}
    assert _reused(first, second) == others
    assert (second.records, second.problems) == await _whole(_body(events))


async def test_a_dtstamp_only_change_parses_nothing():
    expansions = Expansions("cal")
    first = await expansions.listing("feed", _body(_events()), WINDOW)
    again = await expansions.listing("feed", _body(_events(), stamp="20260707T070707Z"), WINDOW)
    assert (expansions.whole_parses, expansions.groups_parsed) == (1, 16)
    assert again.records == first.records


async def test_an_override_added_to_a_series_re_parses_that_series_only():
    expansions = Expansions("cal")
    events = _events()
    await expansions.listing("feed", _body(events), WINDOW)
    events.append(_override("s1", 2, "Moved twice"))
    listing = await expansions.listing("feed", _body(events), WINDOW)
    assert expansions.groups_parsed == 17
    titles = {r.event.title for r in listing.records if r.key.startswith("VEVENT:s1:")}
    assert {"Weekly", "Moved once", "Moved twice"} <= titles
    assert (listing.records, listing.problems) == await _whole(_body(events))


async def test_a_changed_vtimezone_re_expands_every_event_that_uses_it_and_no_other():
    expansions = Expansions("cal")
    events = _events()
    first = await expansions.listing("feed", _body(events), WINDOW)
    moved = [line.replace("+0300", "+0100") for line in OFFICE]
    second = await expansions.listing("feed", _body(events, moved), WINDOW)
    assert expansions.groups_parsed == 16 + 4  # z0, z1, z2 and the series s1
    before, after = _by_key(first), _by_key(second)
    start, later = before["VEVENT:z1:-"].event.start, after["VEVENT:z1:-"].event.start
    assert isinstance(start, datetime) and isinstance(later, datetime)
    assert later - start == timedelta(hours=2)  # +03:00 became +01:00
    assert _reused(first, second) == {f"u{n}" for n in range(12)}
    assert (second.records, second.problems) == await _whole(_body(events, moved))


async def test_a_truncated_body_still_fails_the_whole_listing():
    expansions = Expansions("cal")
    data = _body(_events())
    await expansions.listing("feed", data, WINDOW)
    with pytest.raises(Malformed, match="truncated"):
        await expansions.listing("feed", data.removesuffix(b"END:VCALENDAR\r\n"), WINDOW)
    with pytest.raises(Malformed):
        await expansions.listing("feed", b"<html>login</html>", WINDOW)


async def test_part_wise_listings_equal_whole_ones_after_several_kinds_of_edits():
    expansions = Expansions("cal")
    events = _events()
    await expansions.listing("feed", _body(events), WINDOW)
    edits: list[Callable[[list[str]], object]] = [
        lambda e: e.__setitem__(0, Vevent("u0", "Renamed", day(0)).text()),  # a summary
        lambda e: e.pop(5),  # an event deleted
        lambda e: e.append(Vevent("new", "Added", day(4)).text()),  # an event added
        lambda e: e.append(_override("s1", 3, "Third")),  # an override added
        lambda e: e.__setitem__(-2, _override("s1", 1, "Moved again")),  # an override edited
        lambda e: e.append(
            "BEGIN:VEVENT\r\nUID:bad\r\nSUMMARY:no start\r\nEND:VEVENT"
        ),  # a problem
        lambda e: e.insert(2, Vevent("u1", "Same uid, second block", day(6)).text()),
    ]
    for edit in edits:
        edit(events)
        listing = await expansions.listing("feed", _body(events), WINDOW)
        assert (listing.records, listing.problems) == await _whole(_body(events))
    assert expansions.whole_parses == 1
    assert any(p.key == "VEVENT:bad:-" for p in listing.problems)


async def test_a_dtstamp_only_change_returns_the_kept_listing_itself():
    expansions = Expansions("cal")
    first = await expansions.listing("feed", BODY, WINDOW)
    restamped = BODY.replace(b"DTSTAMP:20260101T000000Z", b"DTSTAMP:20270101T000000Z")
    assert restamped != BODY
    assert await expansions.listing("feed", restamped, WINDOW) is first


async def test_parsing_a_big_body_leaves_the_event_loop_free():
    """Parsing and expansion run in a worker thread: the daemon's other routes and its
    watchdog pings go on meanwhile (counted in loop turns, not time)."""
    body = calendar(*(Vevent(f"e{n}", "Call", day(1 + n)) for n in range(3))).encode()
    expansions = Expansions("cal")
    parse = asyncio.create_task(expansions.listing("feed", body, WINDOW))
    turns = 0
    while not parse.done():
        turns += 1
        await asyncio.sleep(0)
    assert len((await parse).records) == 3
    assert turns > 1  # a parse on the loop itself would finish before the second turn


# --- a body in a file is split where it lies ------------------------------------------


def _in_file(data: bytes) -> Body:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 # closed when the test's objects go
    spool.write(data)
    return Body(spool)


async def test_a_body_in_a_file_lists_as_the_same_bytes_in_memory() -> None:
    """A spooled feed is handed over where it lies: split a piece at a time and cut
    where a block lies, it gives what its bytes give, first parse and partial alike."""
    events = _events()
    in_memory, in_file = Expansions("cal"), Expansions("cal")
    moved = [*events[:3], Vevent("u3", "Moved", day(9)).text(), *events[4:]]
    for body in (_body(events), _body(moved, stamp="20270101T000000Z")):
        expected = await in_memory.listing("feed", body, WINDOW)
        listing = await in_file.listing("feed", _in_file(body), WINDOW)
        assert (listing.records, listing.problems) == (expected.records, expected.problems)
    assert in_file.groups_parsed == in_memory.groups_parsed == 16 + 1
    assert in_file.kept["feed"].digest == in_memory.kept["feed"].digest


async def test_a_changed_body_in_a_file_is_split_without_being_held_whole() -> None:
    """Regression: a changed feed was read back from its spool whole before it was
    split, so the bench feed's re-sync held its 3 MB beside the split. It is now read a
    piece at a time, and only the changed group's text is cut out again."""
    filler = "DESCRIPTION:" + "x" * 4000
    events = [_local(f"e{n}", n % 20, f"Call {n}", (filler,)) for n in range(600)]
    expansions = Expansions("cal")
    await expansions.listing("feed", _body(events), WINDOW)
    events[7] = _local("e7", 3, "Call 7, moved", (filler,))
    changed = _body(events)
    body = _in_file(changed)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        listing = await expansions.listing("feed", body, WINDOW)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert expansions.groups_parsed == 601 and expansions.whole_parses == 1
    assert "Call 7, moved" in {record.event.title for record in listing.records}
    assert peak < len(changed) / 3  # pieces of 64 KiB and their lines


# --- a first parse goes a chunk of groups at a time ----------------------------------


class _Parses:
    """Every body `read_calendar` is handed, as the UIDs of its VEVENTs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bodies: list[list[str]] = []
        monkeypatch.setattr(reuse, "read_calendar", self._read)

    def _read(self, data: bytes, **options: Any) -> Any:
        uids = [line[4:] for line in data.decode().split("\r\n") if line.startswith("UID:")]
        self.bodies.append(uids)
        return read_calendar(data, **options)


async def test_a_first_parse_goes_a_chunk_of_groups_at_a_time_and_equals_a_whole_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parse tree of a big feed never exists whole: a first listing hands the
    parser `CHUNK` UID groups at a time (a series with its overrides in one chunk)."""
    monkeypatch.setattr(reuse, "CHUNK", 5)
    parses = _Parses(monkeypatch)
    expansions = Expansions("cal")
    listing = await expansions.listing("feed", _body(_events()), WINDOW)
    assert [len(set(uids)) for uids in parses.bodies] == [5, 5, 5, 1]
    assert sorted(uid for uids in parses.bodies for uid in set(uids)) == sorted(
        [f"u{n}" for n in range(12)] + ["z0", "z1", "z2", "s1"]
    )
    assert (listing.records, listing.problems) == await _whole(_body(_events()))
    assert (expansions.whole_parses, expansions.groups_parsed) == (1, 16)


async def test_an_unreadable_vtimezone_no_event_uses_falls_back_to_one_whole_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks carry the VTIMEZONEs their events use, and the first one all of them: an
    unreadable zone is a calendar-level problem, which only a whole parse reports."""
    monkeypatch.setattr(reuse, "CHUNK", 5)
    parses = _Parses(monkeypatch)
    unused = [line.replace("Office Time", "Unused") for line in OFFICE]
    unused = [line.replace("TZOFFSETTO:+0300", "TZOFFSETTO:garbage") for line in unused]
    data = _body(_events(), OFFICE + unused)
    listing = await Expansions("cal").listing("feed", data, WINDOW)
    assert len(parses.bodies) == 2 and len(parses.bodies[-1]) == 17  # a chunk, then whole
    assert any(p.key.startswith("VTIMEZONE:") for p in listing.problems)
    assert (listing.records, listing.problems) == await _whole(data)


async def test_a_first_parse_past_the_per_calendar_cap_is_cut_as_a_whole_parse_cuts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks under the cap can add up past it: only a whole parse knows which
    occurrences the cap leaves out, so the listing is the whole parse's."""
    monkeypatch.setattr(reuse, "CHUNK", 5)
    limits = Limits(per_calendar=10)
    listing = await Expansions("cal", limits=limits).listing("feed", _body(_events()), WINDOW)
    assert len(listing.records) == 10
    assert (listing.records, listing.problems) == await _whole(_body(_events()), limits)


@pytest.mark.parametrize("wrapper", ["X-WRAP", "VTODO"])
async def test_a_vevent_inside_another_component_is_listed_as_a_whole_parse_lists_it(
    monkeypatch: pytest.MonkeyPatch, wrapper: str
) -> None:
    """The parser finds every VEVENT, nested ones too; chunks and changed groups carried
    only top-level VEVENTs, so an event inside an X- wrapper or a VTODO vanished from a
    first parse (and its vendor record was deleted as "deleted in the calendar"). A body
    with such an event is now parsed whole, first time and after a change."""
    monkeypatch.setattr(reuse, "CHUNK", 5)
    inner = Vevent("inner", "Inside", day(3)).text()
    nested = f"BEGIN:{wrapper}\r\nUID:w\r\n{inner}\r\nEND:{wrapper}"
    expansions = Expansions("cal")
    data = _body([*_events(), nested])
    listing = await expansions.listing("feed", data, WINDOW)
    assert "VEVENT:inner:-" in {record.key for record in listing.records}
    assert (listing.records, listing.problems) == await _whole(data)
    later = _body([*_events()[1:], nested])  # a change elsewhere: the partial path
    listing = await expansions.listing("feed", later, WINDOW)
    assert (listing.records, listing.problems) == await _whole(later)
