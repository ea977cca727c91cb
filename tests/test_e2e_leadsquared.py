"""End to end against the LeadSquared simulator: an ICS file synced through the real
runner, a crash between the create and the commit, notifications off by default."""

from __future__ import annotations

import signal
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path

from syncd.cli import OK
from syncd.config import load_config
from syncd.simulators import leadsquared as sim
from syncd.state import State
from tests.builders import Vevent, calendar, day, run, simulated, start_sync, wait_until, write

EVENTS = [Vevent(f"e{n}", f"Meeting {n}", day(1 + n, 9)) for n in range(4)]


def config_text(base_url: str, timeout: str = "5s") -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics}}
vendors:
  lsq:
    kind: leadsquared
    base_url: {base_url}
    access_key: {sim.DEFAULT_ACCESS_KEY}
    secret_key: {sim.DEFAULT_SECRET_KEY}
    rate_limit: off
    timeout: {timeout}
routes:
  r:
    calendar: cal
    vendor: lsq
    rep: {{email: rep@example.com}}
"""


def served() -> AbstractAsyncContextManager[tuple[sim.LeadSquaredSim, str]]:
    """The simulator on a free loopback port."""
    return simulated(sim)


async def test_an_ics_file_syncs_to_leadsquared_and_edits_follow(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        assert await run(config_path) == OK
        assert await run(config_path) == OK
        assert simulator.writes == 4  # the creates; the second sync wrote nothing

        write(tmp_path, "calendar.ics", calendar(replace(EVENTS[0], title="Renamed"), *EVENTS[2:]))
        assert await run(config_path) == OK

        tasks = simulator.account().tasks.values()
        assert sorted(t.name for t in tasks) == ["Meeting 2", "Meeting 3", "Renamed"]
        created = [r["body"] for r in simulator.requests if r["path"].endswith("/Task.svc/Create")]
        assert {(b["NotifyBy"], "Reminder" in b) for b in created} == {("1000", False)}


async def test_sigkill_between_the_create_and_the_commit_leaves_exactly_one_task(tmp_path: Path):
    async with served() as (simulator, base_url):
        simulator.stall_after_store(60.0)
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, timeout="2m"))
        process = await start_sync(config_path)
        await wait_until(lambda: len(simulator.account().tasks) == 1)  # stored, answer held
        process.send_signal(signal.SIGKILL)
        await process.wait()

        assert await run(config_path) == OK

        assert len(simulator.account().tasks) == 1 and simulator.writes == 1
        state = State(load_config(config_path).state)
        assert len(state.links("r")) == 1 and state.pending_creates("r") == []
        state.close()
