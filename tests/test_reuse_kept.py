"""Kept expansions outlive the process: a restarted daemon, or the next one-shot
`syncd sync`, re-parses only the UID groups that changed (issue 6). Counted in parses,
never in time; the store is a real state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.calendars.ics_dir import IcsDir
from syncd.calendars.ics_file import IcsFile
from syncd.calendars.reuse import Expansions
from syncd.codec import dumps, loads
from syncd.ical import read_calendar
from syncd.model import Window
from syncd.packed import GroupedRecords
from syncd.state import State
from tests.builders import Vevent, calendar, day

WINDOW = Window(day(-1), day(30))
EVENTS = [Vevent(f"e{n}", f"Call {n}", day(1 + n % 20)) for n in range(30)]
SERIES = Vevent("weekly", "Standup", day(1, 9), extra=["RRULE:FREQ=WEEKLY;COUNT=4"])
BODY = calendar(*EVENTS, SERIES).encode()


@pytest.fixture
def state_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state.db"


def restarted(path: Path, timezone: str = "UTC") -> tuple[Expansions, State]:
    """A new process's view: a fresh `Expansions` over the same state file."""
    state = State(path)
    return Expansions("cal", timezone, store=state), state


async def test_a_restart_parses_nothing_for_an_unchanged_body(state_file: Path) -> None:
    first, state = restarted(state_file)
    whole = await first.listing("feed", BODY, WINDOW)
    state.close()
    again, state = restarted(state_file)
    listing = await again.listing("feed", BODY, WINDOW)
    state.close()
    assert (again.parses, again.groups_parsed) == (0, 0)
    assert sorted(listing.records, key=lambda r: r.key) == sorted(
        whole.records, key=lambda r: r.key
    )


async def test_after_a_restart_only_the_changed_group_is_parsed(state_file: Path) -> None:
    first, state = restarted(state_file)
    await first.listing("feed", BODY, WINDOW)
    state.close()
    edited = calendar(*EVENTS[:-1], Vevent("e29", "Moved call", day(5)), SERIES).encode()
    again, state = restarted(state_file)
    listing = await again.listing("feed", edited, WINDOW)
    state.close()
    assert (again.whole_parses, again.groups_parsed) == (0, 1)
    expected = read_calendar(edited, calendar="cal", window=WINDOW).records
    assert {r.key: r.event for r in listing.records} == {r.key: r.event for r in expected}


async def test_a_calendars_groups_share_one_primer_before_and_after_a_restart(
    state_file: Path,
) -> None:
    """Every group of a calendar is packed with the same preset dictionary, held once;
    a restarted process makes its own from the kept text and packs new groups with it."""
    first, state = restarted(state_file)
    await first.listing("feed", BODY, WINDOW)
    state.close()
    edited = calendar(*EVENTS[:-1], Vevent("e29", "Moved call", day(5)), SERIES).encode()
    again, state = restarted(state_file)
    await again.listing("feed", edited, WINDOW)
    state.close()
    for expansions in (first, again):
        parts = expansions.kept["feed"].parts
        assert parts is not None and expansions.primer
        assert {id(part.primer) for part in parts.values()} == {id(expansions.primer)}


async def test_a_restart_reads_the_kept_expansion_once_when_the_feed_changed(
    state_file: Path,
) -> None:
    """Regression: a restarted feed asked first whether only volatile lines changed; the
    expansion read from the store for that question was not held, so the listing that
    followed read and decoded every kept group from the store a second time."""
    first, state = restarted(state_file)
    await first.listing("feed", BODY, WINDOW)
    state.close()
    edited = calendar(*EVENTS[:-1], Vevent("e29", "Moved call", day(5)), SERIES).encode()
    again, state = restarted(state_file)
    loads: list[str] = []
    load = state.load_parts

    def counted(
        calendar: str, source: str, stamp: str
    ) -> tuple[str, Window, dict[str, tuple[str, str]]] | None:
        loads.append(source)
        return load(calendar, source, stamp)

    state.load_parts = counted  # type: ignore[method-assign]
    assert await again.restamped("feed", "new digest", "another stable digest", WINDOW) is None
    await again.listing("feed", edited, WINDOW)
    state.close()
    assert loads == ["feed"] and again.groups_parsed == 1


async def test_kept_parts_of_other_settings_or_a_full_resync_are_not_used(state_file: Path) -> None:
    first, state = restarted(state_file)
    await first.listing("feed", BODY, WINDOW)
    state.close()
    other_zone, state = restarted(state_file, timezone="Europe/Berlin")
    await other_zone.listing("feed", BODY, WINDOW)
    assert other_zone.whole_parses == 1  # floating times would read differently
    other_zone.forget()  # `syncd resync --full`
    state.close()
    again, state = restarted(state_file, timezone="Europe/Berlin")
    await again.listing("feed", BODY, WINDOW)
    state.close()
    assert again.whole_parses == 1


async def test_a_dry_run_reads_kept_parts_but_writes_none(state_file: Path) -> None:
    first, state = restarted(state_file)
    await first.listing("feed", BODY, WINDOW)
    state.close()
    read_only = State(state_file, read_only=True)
    dry = Expansions("cal", store=read_only)
    await dry.listing("feed", calendar(*EVENTS).encode(), WINDOW)
    read_only.close()
    assert dry.whole_parses == 0 and dry.groups_parsed == 0  # a group removed: no parse
    again, state = restarted(state_file)
    await again.listing("feed", BODY, WINDOW)  # the kept parts are still the first body's
    state.close()
    assert again.parses == 0


def test_records_survive_the_codec_unchanged() -> None:
    expansion = read_calendar(BODY, calendar="cal", window=WINDOW)
    records, problems = loads(dumps(expansion.records, expansion.problems))
    assert records == expansion.records and problems == expansion.problems


def test_kept_records_read_back_share_the_rep_as_a_fresh_parse_does() -> None:
    """A restarted process reads a calendar's records from the state: the rep on every
    event is one Person and one address there too, not one an event."""
    body = calendar(*(Vevent(f"r{n}", "Call", day(1 + n)) for n in range(3))).encode()
    expansion = read_calendar(body, calendar="cal", window=WINDOW)
    records, _ = loads(dumps(expansion.records, expansion.problems))
    assert records == expansion.records
    reps = [record.event.attendees[0] for record in records]
    assert all(person is reps[0] for person in reps)
    assert all(record.event.organizer is reps[0].email for record in records)


# --- regressions found by review -------------------------------------------------------

A_AND_B = calendar(Vevent("a", "Call", day(1)), Vevent("b", "Visit", day(2))).encode()
ONLY_A = calendar(Vevent("a", "Call", day(1))).encode()


async def keys_after_restart(path: Path, body: bytes, timezone: str = "UTC") -> set[str]:
    expansions, state = restarted(path, timezone)
    listing = await expansions.listing("feed", body, WINDOW)
    state.close()
    return {record.key for record in listing.records}


async def test_a_deleted_event_does_not_come_back_after_the_settings_changed(
    state_file: Path,
) -> None:
    """B was deleted while the calendar's time zone changed: the save under the new
    stamp left B's old row behind, and the next start listed B again (and re-created
    it at the vendor)."""
    await keys_after_restart(state_file, A_AND_B)
    assert await keys_after_restart(state_file, ONLY_A, "Europe/Berlin") == {"VEVENT:a:-"}
    assert await keys_after_restart(state_file, ONLY_A, "Europe/Berlin") == {"VEVENT:a:-"}


async def test_two_processes_sharing_the_state_leave_it_consistent(state_file: Path) -> None:
    """The daemon saved only what changed against its memory, while `syncd sync` had
    saved another version in between: a restart then listed a mix of both."""
    v1 = calendar(Vevent("g", "Call", day(1)), Vevent("h", "Visit", day(2))).encode()
    v2 = calendar(Vevent("g", "Call moved", day(3)), Vevent("h", "Visit", day(2))).encode()
    v3 = calendar(Vevent("g", "Call", day(1)), Vevent("h", "Visit moved", day(4))).encode()
    daemon, daemon_state = restarted(state_file)
    await daemon.listing("feed", v1, WINDOW)
    await keys_after_restart(state_file, v2)  # a one-shot `syncd sync` meanwhile
    await daemon.listing("feed", v3, WINDOW)
    daemon_state.close()
    again, state = restarted(state_file)
    listing = await again.listing("feed", v3, WINDOW)
    state.close()
    expected = read_calendar(v3, calendar="cal", window=WINDOW).records
    assert {r.key: r.event for r in listing.records} == {r.key: r.event for r in expected}


async def test_a_kept_row_that_does_not_read_back_is_parsed_again(state_file: Path) -> None:
    await keys_after_restart(state_file, A_AND_B)
    state = State(state_file)
    spoiled = state.db.execute("UPDATE block_cache SET data = '[[[' WHERE uid = 'b'")
    assert spoiled.rowcount == 1
    state.db.conn.commit()
    state.close()
    assert await keys_after_restart(state_file, A_AND_B) == {"VEVENT:a:-", "VEVENT:b:-"}


async def test_local_calendars_drop_kept_expansions_on_a_full_resync(tmp_path: Path) -> None:
    """SIGUSR2 reached only the feed and CalDAV kinds: a file's kept rows stayed."""
    path = tmp_path / "cal.ics"
    path.write_bytes(A_AND_B)
    state = State(tmp_path / "state.db")
    adapter = IcsFile("cal", path)
    adapter.expansions.store = state
    await adapter.list(WINDOW)
    assert state.load_parts("cal", "cal.ics", adapter.expansions.stamp) is not None
    adapter.forget_validators()
    assert state.load_parts("cal", "cal.ics", adapter.expansions.stamp) is None
    state.close()


async def test_files_deleted_while_syncd_was_down_leave_no_kept_rows(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    for name in ("one", "two", "three"):
        (folder / f"{name}.ics").write_bytes(calendar(Vevent(name, "Call", day(1))).encode())
    state = State(tmp_path / "state.db")
    first = IcsDir("cal", folder)
    first.expansions.store = state
    await first.list(WINDOW)
    (folder / "two.ics").unlink()
    (folder / "three.ics").unlink()
    later = IcsDir("cal", folder)  # a new process
    later.expansions.store = state
    await later.list(WINDOW)
    stamp = later.expansions.stamp
    kept = {
        name for name in ("one.ics", "two.ics", "three.ics") if state.load_parts("cal", name, stamp)
    }
    state.close()
    assert kept == {"one.ics"}


async def test_a_kept_listing_holds_its_parts_themselves() -> None:
    """Regression: a kept expansion held each group twice over, a part (digest, packed
    records, problems) and, for the listing, a dict of the packed records alone: 10,000
    more objects and a 10,000-entry dict for the bench feed. A part is packed records
    now, and the listing holds the parts."""
    expansions = Expansions("cal")
    listing = await expansions.listing("feed", BODY, WINDOW)
    parts = expansions.kept["feed"].parts
    assert parts is not None and isinstance(listing.records, GroupedRecords)
    assert listing.records.groups.keys() == parts.keys()
    assert all(listing.records.groups[uid] is part for uid, part in parts.items())
