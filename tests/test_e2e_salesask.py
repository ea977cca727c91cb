"""End to end: an ICS file to the Sales Ask simulator over loopback, with a real state
file, through the same `sync` the CLI runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syncd import runner
from syncd.cli import OK, main
from syncd.model import Event, fingerprint
from syncd.simulators.salesask import SalesAskSim
from tests.builders import (
    FILE_CALENDAR,
    Vevent,
    calendar,
    config_text,
    day,
    run,
    salesask_server,
    utc,
    write,
)

SERIES_START = day(1, 9)
HOUR = timedelta(hours=1)


def series(*extra: str) -> list[Vevent]:
    """A weekly series of five, plus overrides given as extra VEVENTs by the caller."""
    return [
        Vevent("series", "Weekly review", SERIES_START, extra=["RRULE:FREQ=WEEKLY;COUNT=5", *extra])
    ]


def base_events() -> list[Vevent]:
    return [
        Vevent("single-a", "Intro A", day(1, 10)),
        Vevent("single-b", "Intro B", day(2, 10)),
        Vevent("doomed", "Will be deleted", day(3, 10)),
        *series(),
    ]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SalesAskSim, Path]]:
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*base_events()))
        yield simulator, write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))


def writes(simulator: SalesAskSim) -> list[tuple[str, str, dict[str, object] | None]]:
    """The write requests since the last call, as (method, event id, body); the id of a
    POST is in its body, of a PUT or DELETE in its (decoded) path."""
    done = []
    for request in simulator.requests:
        if request["method"] in ("POST", "PUT", "DELETE"):
            body = request["body"]
            key = body["event_id"] if request["method"] == "POST" else request["path"]
            done.append((request["method"], key.rsplit("/", 1)[-1], body))
    simulator.requests.clear()
    return sorted(done, key=lambda w: (w[0], w[1]))


def occurrence(n: int) -> str:
    """The vendor key of the series' n-th occurrence (0-based)."""
    return f"cal:series:{utc(SERIES_START + timedelta(weeks=n))}"


async def test_first_sync_creates_each_occurrence_and_second_writes_nothing(env):
    simulator, config_path = env
    expected = {"cal:single-a", "cal:single-b", "cal:doomed", *(occurrence(n) for n in range(5))}

    assert await run(config_path) == OK

    created = writes(simulator)
    assert [(method, key) for method, key, _ in created] == [("POST", k) for k in sorted(expected)]
    assert {task.event_id for task in simulator.org().tasks.values()} == expected
    assert await run(config_path) == OK
    assert writes(simulator) == []


async def test_edits_reach_the_vendor_as_exactly_the_right_requests(env):
    simulator, config_path = env
    await run(config_path)
    writes(simulator)
    moved = SERIES_START.replace(hour=15) + timedelta(weeks=1)
    override = Vevent(
        "series",
        "Weekly review",
        moved,
        extra=[f"RECURRENCE-ID:{utc(SERIES_START + timedelta(weeks=1))}"],
    )
    events = [
        Vevent("single-a", "Intro A, renamed", day(1, 10)),
        Vevent("single-b", "Intro B", day(2, 12)),
        *series(f"EXDATE:{utc(SERIES_START + timedelta(weeks=2))}"),
        override,
    ]
    write(config_path.parent, "calendar.ics", calendar(*events))

    assert await run(config_path) == OK

    assert writes(simulator) == [
        ("DELETE", "cal:doomed", None),
        ("DELETE", occurrence(2), None),
        ("PUT", occurrence(1), {"start_time": _ms(moved), "end_time": _ms(moved + HOUR)}),
        ("PUT", "cal:single-a", {"title": "Intro A, renamed"}),
        ("PUT", "cal:single-b", {"start_time": _ms(day(2, 12)), "end_time": _ms(day(2, 13))}),
    ]
    assert await run(config_path) == OK
    assert writes(simulator) == []


def _ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def weekly(start: datetime, *extra: str) -> Vevent:
    return Vevent("series", "Weekly review", start, extra=["RRULE:FREQ=WEEKLY;COUNT=5", *extra])


async def test_a_series_moved_by_an_hour_is_patched_not_recreated(env):
    simulator, config_path = env
    await run(config_path)
    writes(simulator)
    ids = {t.event_id: t.id for t in simulator.org().tasks.values()}
    write(
        config_path.parent,
        "calendar.ics",
        calendar(*base_events()[:3], weekly(SERIES_START + HOUR)),
    )

    assert await run(config_path) == OK

    done = writes(simulator)
    assert [(m, k) for m, k, _ in done] == [("PUT", occurrence(n)) for n in range(5)]
    assert {t.event_id: t.id for t in simulator.org().tasks.values()} == ids  # same records
    assert await run(config_path) == OK
    assert writes(simulator) == []


async def test_an_exdate_next_to_an_occurrence_entering_the_window_is_not_a_move(env):
    simulator, config_path = env
    await run(config_path)
    writes(simulator)
    # COUNT=5 becomes 6 (a new occurrence) and the third one is excluded: two facts, no shift.
    longer = Vevent(
        "series",
        "Weekly review",
        SERIES_START,
        extra=["RRULE:FREQ=WEEKLY;COUNT=6", f"EXDATE:{utc(SERIES_START + timedelta(weeks=2))}"],
    )
    write(config_path.parent, "calendar.ics", calendar(*base_events()[:3], longer))

    assert await run(config_path) == OK

    assert [(m, k) for m, k, _ in writes(simulator)] == [
        ("DELETE", occurrence(2)),
        ("POST", occurrence(5)),
    ]


async def test_reset_after_a_series_move_readopts_instead_of_duplicating(env):
    simulator, config_path = env
    await run(config_path)
    write(
        config_path.parent,
        "calendar.ics",
        calendar(*base_events()[:3], weekly(SERIES_START + HOUR)),
    )
    await run(config_path)
    writes(simulator)
    assert main(["-c", str(config_path), "reset", "r"]) == OK

    assert await run(config_path) == OK

    assert [m for m, _, _ in writes(simulator)] == []
    assert len(simulator.org().tasks) == 8


async def test_read_backs_that_echo_what_was_sent_are_not_fingerprinted_again(
    env: tuple[SalesAskSim, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A created task's read-back is the view syncd sent: its fingerprint is the
    calendar item's, not computed a second time (an eighth of a first sync's CPU)."""
    simulator, config = env
    computed: list[str] = []

    def counted(event: Event, fields: Iterable[str]) -> str:
        computed.append(event.title)
        return fingerprint(event, fields)

    monkeypatch.setattr(runner, "fingerprint", counted)
    assert await run(config) == OK
    assert len(writes(simulator)) == 8  # three singles, five occurrences
    assert len(computed) == 8  # once each, for the calendar's side
    assert await run(config) == OK
    assert writes(simulator) == []  # the fingerprints lent are the ones a listing gives
