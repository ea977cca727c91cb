"""End to end against the Apptoto simulator: an ICS file synced through the real
runner, a series edit, a cancellation, and no auto-message by default."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

from syncd.cli import OK, main
from syncd.simulators import apptoto as sim
from tests.builders import Vevent, calendar, day, run, simulated, utc, write

START = day(1, 9)


def events(start_hour: int = 9, *, cancel_second: bool = False) -> list[Vevent]:
    start = START.replace(hour=start_hour)
    series = Vevent("weekly", "Check-in", start, extra=["RRULE:FREQ=WEEKLY;COUNT=4"])
    found = [Vevent("single", "Kick-off", day(2, 14)), series]
    if cancel_second:
        rid = utc(start + timedelta(weeks=1))
        found.append(
            Vevent(
                "weekly",
                "Check-in",
                start + timedelta(weeks=1),
                extra=[f"RECURRENCE-ID:{rid}", "STATUS:CANCELLED"],
            )
        )
    return found


def config_text(base_url: str) -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics, timezone: Europe/Berlin}}
vendors:
  ap:
    kind: apptoto
    base_url: {base_url}
    username: {sim.USERNAME}
    api_key: {sim.API_KEY}
    rate_limit: off
routes:
  r:
    calendar: cal
    vendor: ap
    rep: {{email: rep@example.com}}
    options: {{calendar_id: {sim.CALENDAR_ID}}}
"""


def served() -> AbstractAsyncContextManager[tuple[sim.ApptotoSim, str]]:
    """The simulator on a free loopback port."""
    return simulated(sim)


def live(simulator: sim.ApptotoSim) -> dict[str, sim.Appointment]:
    return {e.external_id or "": e for e in simulator.account().events.values() if not e.is_deleted}


async def test_an_ics_file_syncs_to_apptoto_and_a_second_sync_writes_nothing(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*events()))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        assert await run(config_path) == OK
        writes = simulator.writes
        assert await run(config_path) == OK
        assert simulator.writes == writes
        assert len(live(simulator)) == 5  # one single + four occurrences
        assert simulator.messages == []  # nobody was texted or emailed


async def test_a_series_moved_in_the_calendar_updates_every_occurrence_and_creates_none(tmp_path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*events()))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)
        ids = {key: event.id for key, event in live(simulator).items()}

        write(tmp_path, "calendar.ics", calendar(*events(start_hour=11)))
        assert await run(config_path) == OK

        after = live(simulator)
        assert {key: event.id for key, event in after.items()} == ids  # the same records
        series = [event for key, event in after.items() if ":weekly:" in key]
        assert len(series) == 4 and {
            e.start_time.astimezone(START.tzinfo).hour for e in series
        } == {11}


async def test_cancelling_an_occurrence_soft_deletes_it_at_apptoto(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*events()))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)

        write(tmp_path, "calendar.ics", calendar(*events(cancel_second=True)))
        assert await run(config_path) == OK

        second = f"cal:weekly:{utc(START + timedelta(weeks=1))}"
        assert second not in live(simulator)
        assert simulator.event(second).is_deleted
        assert len(live(simulator)) == 4


async def test_check_config_warns_when_a_route_moves_to_another_calendar(tmp_path, capsys):
    async with served() as (_, base_url):
        write(tmp_path, "calendar.ics", calendar(*events()))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        assert await run(config_path) == OK
    moved = config_text(base_url).replace(f"calendar_id: {sim.CALENDAR_ID}", "calendar_id: 99")
    write(tmp_path, "config.yaml", moved)
    capsys.readouterr()

    assert main(["-c", str(config_path), "check-config"]) == OK

    err = capsys.readouterr().err
    assert "routes.r.options.calendar_id: Apptoto cannot move events between calendars" in err
    assert f"stay in calendar {sim.CALENDAR_ID}, new ones go to 99" in err
