"""Kept expansions outlive the process: a restarted daemon, or the next one-shot
`syncd sync`, re-parses only the UID groups that changed (issue 6). Counted in parses,
never in time; the store is a real state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.calendars.reuse import Expansions
from syncd.codec import dumps, loads
from syncd.ical import read_calendar
from syncd.model import Window
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
