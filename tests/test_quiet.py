"""An unchanged route skips planning: same listings, no other writer, a recent plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.model import Event
from syncd.polled import Polled
from syncd.runner import RouteRunner
from syncd.settings import RouteConfig
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def route_runner(tmp_path: Path) -> tuple[RouteRunner, MemoryAdapter, Polled]:
    calendar = MemoryAdapter(windowed=False)
    for n in range(3):
        start = NOW + timedelta(days=1, hours=n)
        calendar.put(f"VEVENT:e{n}:-", Event(start, start + timedelta(hours=1), title=f"E{n}"))
    kept_calendar = Polled(calendar, timedelta(hours=1))
    vendor = Polled(MemoryAdapter(), timedelta(hours=1))
    route = RouteConfig.model_validate(
        {"calendar": "cal", "vendor": "v", "rep": {"email": "rep@example.com"}}
    )
    runner = RouteRunner(
        "r", route, "cal", kept_calendar, vendor, State(tmp_path / "s.db"), clock=lambda: NOW
    )
    return runner, calendar, kept_calendar


async def test_an_unchanged_route_skips_planning_until_something_changes(tmp_path):
    runner, calendar, kept = route_runner(tmp_path)
    await runner.run()  # creates: the vendor listing changes with its own writes
    await runner.run()  # plans, finds nothing to do
    assert runner.plans == 2

    await runner.run()
    await runner.run()
    assert runner.plans == 2  # same listings, nothing else wrote: nothing to plan

    calendar.put("VEVENT:e9:-", Event(NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1)))
    kept.expire()  # the calendar is listed again (a new poll)
    report = await runner.run()
    assert runner.plans == 3 and report.counts["created"] == 1


async def test_another_process_writing_the_state_makes_the_route_plan_again(tmp_path):
    runner, _, _ = route_runner(tmp_path)
    await runner.run()
    await runner.run()
    assert runner.plans == 2
    other = State(tmp_path / "s.db")  # `syncd reset r` in another process
    other.reset("r")
    other.close()

    report = await runner.run()

    assert runner.plans == 3 and report.counts["adopted"] == 3  # re-adopted, not skipped
