"""End to end against the Salesloft simulator: bulk jobs for a large first load under the
cost budget, series edits, cancellations, and the stale-write guard."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path

from syncd.cli import OK
from syncd.config import load_config
from syncd.simulators import salesloft as sim
from syncd.state import State
from tests.builders import Vevent, calendar, day, run, simulated, utc, write

START = day(1, 9)


def config_text(base_url: str, *, bulk: int = 500) -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics}}
vendors:
  sl:
    kind: salesloft
    base_url: {base_url}
    api_key: {sim.DEFAULT_KEY}
    rate_limit: {{requests: 600, per: 1s}}
    bulk_threshold: {bulk}
routes:
  r:
    calendar: cal
    vendor: sl
    rep: {{email: rep@example.com}}
    window: {{past: 1d, future: 90d}}
"""


def served(**switches: object) -> AbstractAsyncContextManager[tuple[sim.SalesloftSim, str]]:
    """The simulator on a free loopback port."""
    return simulated(sim, **switches)


def weekly(uid: str, start_hour: int = 9, count: int = 4, modified: str = "20260102") -> Vevent:
    start = START.replace(hour=start_hour)
    rule = f"RRULE:FREQ=WEEKLY;COUNT={count}"
    return Vevent(uid, "Pipeline review", start, extra=[rule, f"LAST-MODIFIED:{modified}T000000Z"])


async def test_a_first_load_of_5000_occurrences_goes_through_bulk_jobs_within_budget(tmp_path):
    series = [weekly(f"s{n}", 8 + n % 9, 10) for n in range(500)]
    async with served(budget=600, window=1.0, sliding=True) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*series))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))

        assert await run(config_path) == OK

        ids = [event["id"] for event in simulator.events()]
        bulk_calls = [r for r in simulator.requests if r["path"].startswith("/v2/bulk_jobs")]
        assert len(ids) == 5000 and len(set(ids)) == 5000
        assert bulk_calls and simulator.refused == 0
        assert await run(config_path) == OK
        assert len(simulator.events()) == 5000


async def test_a_series_moved_updates_every_occurrence_and_creates_none(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(weekly("w")))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)
        before = {event["id"] for event in simulator.events()}

        write(tmp_path, "calendar.ics", calendar(weekly("w", 11, modified="20260103")))
        assert await run(config_path) == OK

        after = simulator.events()
        assert {event["id"] for event in after} == before and len(after) == 4
        assert {event["start_time"][11:13] for event in after} == {"11"}


async def test_cancelling_an_occurrence_cancels_it_at_salesloft(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(weekly("w")))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)
        rid = utc(START + timedelta(weeks=1))
        cancelled = Vevent(
            "w",
            "Pipeline review",
            START + timedelta(weeks=1),
            extra=[f"RECURRENCE-ID:{rid}", "STATUS:CANCELLED", "LAST-MODIFIED:20260103T000000Z"],
        )
        write(tmp_path, "calendar.ics", calendar(weekly("w"), cancelled))

        assert await run(config_path) == OK

        status = {event["id"]: event["status"] for event in simulator.events()}
        assert status.pop(f"cal:w:{rid}") == "cancelled"
        assert set(status.values()) == {"confirmed"} and len(status) == 3


async def test_a_stale_write_is_recorded_once_not_retried(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(weekly("w", count=1)))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)
        older = Vevent(
            "w",
            "Renamed",
            START,
            extra=["RRULE:FREQ=WEEKLY;COUNT=1", "LAST-MODIFIED:20260101T000000Z"],
        )
        write(tmp_path, "calendar.ics", calendar(older))

        assert await run(config_path) == OK
        writes = simulator.writes
        assert await run(config_path) == OK

        assert simulator.writes == writes  # the outcome was recorded, not retried
        assert [event["title"] for event in simulator.events()] == ["Pipeline review"]
        state = State(load_config(config_path).state)
        [noted] = state.notes("r")
        state.close()
        assert "title" in noted["note"]
