"""Two-way behaviour that is the core's, not a vendor's (issue 5): a write that races
another client's (HTTP 412) is planned again, deleted occurrences can be kept as
cancelled overrides, cancelled records are never sent anywhere new, and conflicts are
settled by the route's policy with the losing version shown by `syncd status`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from syncd.cli import OK, main
from syncd.model import Event, OccurrenceKey
from syncd.retry import RetryPolicy
from syncd.runner import RouteRunner, RunReport
from syncd.settings import RouteConfig
from syncd.simulators.memory import MemoryAdapter
from syncd.simulators.salesask import SalesAskSim
from syncd.state import State
from tests.builders import Vevent, calendar, config_text, day, run, salesask_server, write

NOW = datetime(2027, 3, 1, tzinfo=UTC)
KEY = OccurrenceKey("team", "a").text
VENDOR_KEY = "team:a"


def meeting(title: str = "Intro", hours: int = 0) -> Event:
    start = NOW + timedelta(days=1, hours=10 + hours)
    return Event(start, start + timedelta(hours=1), title, owner="rep@example.com")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    store = State(tmp_path / "state.db")
    yield store
    store.close()


def runner(
    state: State, calendar: MemoryAdapter, vendor: MemoryAdapter, **route: str
) -> RouteRunner:
    config = RouteConfig.model_validate(
        {
            "calendar": "team",
            "vendor": "crm",
            "direction": "both",
            "rep": {"email": "rep@example.com"},
        }
        | route
    )
    return RouteRunner(
        "r", config, "team", calendar, vendor, state, RetryPolicy(attempts=1), clock=lambda: NOW
    )


# --- a write that races another client's ------------------------------------------------


async def raced_run(
    state: State, theirs: Event | None
) -> tuple[MemoryAdapter, MemoryAdapter, RouteRunner, RunReport]:
    """A synced event edited at the vendor, whose write-back into the calendar races
    another client writing `theirs` (None: every write of it races)."""
    calendar, vendor = MemoryAdapter(), MemoryAdapter()
    calendar.put(KEY, meeting())
    route = runner(state, calendar, vendor)
    await route.run()
    vendor.put(VENDOR_KEY, meeting("Vendor edit"))
    calendar.races[KEY] = theirs  # lands between syncd's listing and its write
    return calendar, vendor, route, await route.run()


async def test_a_write_refused_as_stale_is_planned_again_not_quarantined(state: State) -> None:
    calendar, vendor, route, report = await raced_run(state, meeting("Another client's edit"))
    assert report.outcome == "ok" and report.counts["raced"] == 1
    assert not state.quarantined("r")
    # The re-plan saw both sides changed: the route's conflict policy (calendar) decided.
    assert calendar.records()[KEY].event.title == "Another client's edit"
    assert vendor.records()[VENDOR_KEY].event.title == "Another client's edit"
    assert [row["winner"] for row in state.conflicts("r")] == ["calendar"]
    assert not (await route.run()).ops


async def test_a_record_that_races_again_in_the_re_plan_is_quarantined(state: State) -> None:
    *_, report = await raced_run(state, None)
    assert report.outcome == "ok"
    assert [row["key"] for row in state.quarantined("r")] == [KEY]
    assert "changed since it was listed" in state.quarantined("r")[0]["reason"]


# --- cancellations ----------------------------------------------------------------------


async def test_cancelled_records_are_never_created_on_the_other_side(state: State) -> None:
    calendar, vendor = MemoryAdapter(), MemoryAdapter()
    calendar.put(KEY, replace(meeting(), status="cancelled"))
    vendor.put("booked-at-vendor", replace(meeting("Booked"), status="cancelled"))
    await runner(state, calendar, vendor, import_new="true").run()
    assert (vendor.created, calendar.created) == (0, 0)


async def test_a_vendor_deleted_occurrence_can_be_kept_as_a_cancelled_override(
    state: State,
) -> None:
    calendar, vendor = MemoryAdapter(), MemoryAdapter()
    occurrence = OccurrenceKey("team", "weekly", "20270302T100000Z")
    calendar.put(occurrence.text, meeting("Weekly"))
    route = runner(state, calendar, vendor, occurrence_delete="cancel")
    await route.run()
    vendor.remove("team:weekly:20270302T100000Z")
    report = await route.run()
    assert [op.case for op in report.ops] == ["vendor_deleted_cancelled"]
    assert calendar.records()[occurrence.text].event.status == "cancelled"
    assert not state.links("r") and calendar.deleted == 0
    assert not (await route.run()).ops  # the cancelled occurrence is not offered again


# --- conflicts, end to end --------------------------------------------------------------

DIR_CALENDAR = "    kind: ics_dir\n    path: cal"


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[tuple[SalesAskSim, str, Path]]:
    async with salesask_server() as (simulator, base_url):
        folder = tmp_path / "cal"
        folder.mkdir()
        write(folder, "c1.ics", calendar(Vevent("c1", "Intro", day(2, 10))))
        yield simulator, base_url, folder / "c1.ics"


def configure(folder: Path, base_url: str, policy: str) -> Path:
    route = f"    direction: both\n    conflict: {policy}\n"
    return write(folder, "config.yaml", config_text(base_url, DIR_CALENDAR, route))


def edit_calendar(file: Path, title: str, modified: str) -> None:
    parsed = icalendar.Calendar.from_ical(file.read_bytes())
    [vevent] = parsed.walk("VEVENT")
    vevent["SUMMARY"] = icalendar.vText(title)
    vevent.pop("LAST-MODIFIED", None)
    vevent.add("last-modified", datetime.strptime(modified, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    file.write_bytes(parsed.to_ical())


def calendar_title(file: Path) -> str:
    [vevent] = icalendar.Calendar.from_ical(file.read_bytes()).walk("VEVENT")
    return str(vevent["SUMMARY"])


def status_of(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["-c", str(config), "status"]) == OK
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("policy", "calendar_modified", "winner", "loser_text"),
    [
        ("calendar", "20270101T000000Z", "Calendar title", "vendor had title 'Vendor title'"),
        ("vendor", "20990101T000000Z", "Vendor title", "calendar had title 'Calendar title'"),
        ("newest", "20200101T000000Z", "Vendor title", "calendar had title 'Calendar title'"),
        ("newest", "20990101T000000Z", "Calendar title", "vendor had title 'Vendor title'"),
    ],
)
async def test_a_conflict_follows_the_policy_and_status_shows_the_loser(
    both: tuple[SalesAskSim, str, Path],
    capsys: pytest.CaptureFixture[str],
    policy: str,
    calendar_modified: str,
    winner: str,
    loser_text: str,
) -> None:
    simulator, base_url, file = both
    config = configure(file.parent.parent, base_url, policy)
    assert await run(config) == OK
    edit_calendar(file, "Calendar title", calendar_modified)
    simulator.edit("cal:c1", {"title": "Vendor title"})
    assert await run(config) == OK
    assert calendar_title(file) == winner
    assert simulator.task("cal:c1").title == winner
    shown = status_of(config, capsys)
    assert "conflicts (the losing version" in shown and loser_text in shown
    before, writes = file.read_bytes(), simulator.writes
    assert await run(config) == OK
    assert (file.read_bytes(), simulator.writes) == (before, writes)
