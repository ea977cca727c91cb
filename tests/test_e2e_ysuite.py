"""End to end against the YSUITE simulator: an ICS file synced through the real runner,
crash-safe creates at a vendor that makes its own ids, and what it cannot update."""

from __future__ import annotations

import signal
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path

from syncd.cli import FAILED, OK
from syncd.config import load_config
from syncd.model import split_marker
from syncd.simulators import ysuite as sim
from syncd.state import State
from tests.builders import (
    Vevent,
    calendar,
    day,
    run,
    run_sync,
    simulated,
    start_sync,
    wait_until,
    write,
)

EVENTS = [Vevent(f"e{n}", f"Visit {n}", day(1 + n, 9)) for n in range(3)]


def config_text(base_url: str, *, updates: bool = False, timeout: str = "5s") -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics}}
vendors:
  ys:
    kind: ysuite
    base_url: {base_url}
    access_key: {sim.ACCESS}
    secret_key: {sim.SECRET}
    account_timezone: Europe/Berlin
    supports_update: {str(updates).lower()}
    users: {{rep@example.com: 7}}
    rate_limit: off
    timeout: {timeout}
routes:
  r:
    calendar: cal
    vendor: ys
    rep: {{email: rep@example.com}}
    options: {{cstid: 10}}
"""


def served(**switches: object) -> AbstractAsyncContextManager[tuple[sim.YSuiteSim, str]]:
    """The simulator on a free loopback port."""
    return simulated(sim, **switches)


def tasks(simulator: sim.YSuiteSim) -> list[dict[str, object]]:
    return simulator.snapshot()


async def test_an_ics_file_syncs_to_ysuite_and_a_second_sync_writes_nothing(tmp_path: Path):
    async with served(supports_update=True) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, updates=True))
        assert await run(config_path) == OK
        stored = tasks(simulator)
        writes = simulator.writes
        assert await run(config_path) == OK

        assert simulator.writes == writes == 3
        assert sorted(str(t["title"]) for t in stored) == ["Visit 0", "Visit 1", "Visit 2"]
        assert all(t["cstid"] == 10 and t["assigned_user_id"] == 7 for t in stored)


async def test_a_create_that_stored_but_timed_out_is_not_sent_again(tmp_path: Path):
    async with served(stall_after_store=3.0) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, timeout="500ms"))

        [first] = await run_sync(config_path)
        assert first.outcome == "failed" and first.counts["unavailable"] == 1
        assert simulator.writes == 1  # stored once, not resent on the timeout
        state = State(load_config(config_path).state)
        assert [row["cal_key"] for row in state.pending_creates("r")] == ["VEVENT:e0:-"]
        state.close()

        simulator.stall_after_store = 0.0
        assert await run(config_path) == OK  # the marker finds it: adopted, not created

        assert len(tasks(simulator)) == 1 and simulator.writes == 1
        state = State(load_config(config_path).state)
        assert len(state.links("r")) == 1 and state.pending_creates("r") == []
        state.close()


async def test_sigkill_between_the_create_and_the_commit_leaves_exactly_one_task(tmp_path: Path):
    async with served(stall_after_store=60.0) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, timeout="2m"))
        process = await start_sync(config_path)
        await wait_until(lambda: len(tasks(simulator)) == 1)  # stored, answer held back
        process.send_signal(signal.SIGKILL)
        await process.wait()
        simulator.stall_after_store = 0.0

        assert await run(config_path) == OK

        assert len(tasks(simulator)) == 1
        assert simulator.writes == 1


async def test_without_update_support_a_change_is_recorded_once_not_retried(tmp_path, capsys):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        assert await run(config_path) == OK
        renamed = replace(EVENTS[0], title="Visit 0, moved")
        write(tmp_path, "calendar.ics", calendar(renamed, *EVENTS[1:]))

        assert await run(config_path) == OK
        assert await run(config_path) == OK

        assert simulator.writes == 3  # the three creates, nothing since
        state = State(load_config(config_path).state)
        [noted] = state.notes("r")
        state.close()
    assert noted["note"] == "the vendor cannot update: title"


async def test_refused_keys_fail_the_run(tmp_path: Path):
    async with served() as (_, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        text = config_text(base_url).replace(f"secret_key: {sim.SECRET}", "secret_key: wrong")
        assert await run(write(tmp_path, "config.yaml", text)) == FAILED


def markers(simulator: sim.YSuiteSim) -> dict[str, str]:
    return {
        str(t["activity_id"]): split_marker(str(t.get("description") or ""))[1]
        for t in tasks(simulator)
    }


async def test_a_recreate_carries_syncds_key_not_the_old_task_id(tmp_path: Path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        config_path = write(tmp_path, "config.yaml", config_text(base_url))
        await run(config_path)
        [old] = tasks(simulator)
        simulator.remove(int(str(old["activity_id"])))  # deleted at the vendor: re-created

        assert await run(config_path) == OK

        assert list(markers(simulator).values()) == ["cal:e0"]


async def test_a_recreate_that_timed_out_is_found_by_its_marker_not_sent_twice(tmp_path):
    async with served() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, timeout="500ms"))
        await run(config_path)
        [old] = tasks(simulator)
        simulator.remove(int(str(old["activity_id"])))
        simulator.stall_after_store = 3.0
        [failed] = await run_sync(config_path)  # stored, but the answer never came
        assert failed.outcome == "failed"
        simulator.stall_after_store = 0.0

        assert await run(config_path) == OK
        assert await run(config_path) == OK

        assert list(markers(simulator).values()) == ["cal:e0"]  # one task, not two
