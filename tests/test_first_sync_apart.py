"""A route's first sync in a process of its own (`syncd.child`), as `syncd run` does it
by default: the daemon hands it over, keeps its lock, forwards a stop, reads the report
back, and runs every later run itself.

The processes are real: the daemon and its child as `syncd run` starts them, or the
child started by `run_apart` from the test, against the Sales Ask simulator on loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import yaml

from syncd import child
from syncd.cli import OK
from syncd.config import load_config
from syncd.daemon import Daemon, RouteJob
from syncd.runner import RunReport
from syncd.simulators import salesask as sim
from syncd.state import State
from tests.builders import CountingRunner, Vevent, calendar, day, run, salesask_server, write
from tests.test_daemon import daemon, ics_file, one_route, route, salesask, write_config

HOLDER = "syncd run pid 1 run test"
PROCESS = "the first sync's process"
APART = re.compile(r"route r: first sync in a process of its own \(pid (\d+)\)")


def child_pids(log: str) -> list[int]:
    return [int(pid) for pid in APART.findall(log)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def many_events(folder: Path, count: int, **vendor: object) -> Path:
    """A config of route `r`: `count` events in calendar.ics to the simulator at
    `vendor["base_url"]`."""
    events = [Vevent(f"m{n}", f"Meeting {n}", day(1 + n % 50, 8 + n % 9)) for n in range(count)]
    write(folder, "calendar.ics", calendar(*events))
    vendors = {"salesask": salesask(str(vendor["base_url"]))}
    return write_config(folder, {"cal": ics_file()}, vendors, {"r": route()})


def lock_rows(config_path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(config_path.with_name("state.db")) as db:
        return db.execute("SELECT route, holder FROM locks").fetchall()


def unfinished_runs(config_path: Path) -> int:
    with sqlite3.connect(config_path.with_name("state.db")) as db:
        [(count,)] = db.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL")
        return int(count)


# --- in the daemon -----------------------------------------------------------------------


async def test_a_routes_first_sync_runs_in_a_process_of_its_own_and_later_runs_in_the_daemon(
    tmp_path,
):
    async with salesask_server() as (simulator, base_url):
        async with daemon(one_route(tmp_path, base_url)) as d:
            await d.until(lambda: d.runs() >= 1)
            [pid] = child_pids(d.log())
            assert pid != d.pid
            assert simulator.writes == 3 and len(simulator.org().tasks) == 3

            d.signal(signal.SIGUSR1)
            await d.until(lambda: d.runs() >= 2)
            assert child_pids(d.log()) == [pid]  # the route has links now: run in the daemon
            assert simulator.writes == 3
            assert await d.stop() == 0
        assert not alive(pid)


async def test_inline_first_sync_runs_in_the_daemon(tmp_path):
    async with salesask_server() as (simulator, base_url):
        config = one_route(tmp_path, base_url, daemon={"first_sync": "inline"})
        async with daemon(config) as d:
            await d.until(lambda: d.runs() >= 1)
            assert child_pids(d.log()) == [] and simulator.writes == 3
            assert await d.stop() == 0


async def test_sigterm_reaches_the_first_syncs_process_which_records_what_went_through(
    tmp_path,
):
    simulator = sim.default()
    simulator.delay = 0.3  # every request takes this long: the stop comes mid-sync
    async with salesask_server(simulator) as (simulator, base_url):
        config_path = many_events(tmp_path, 40, base_url=base_url)
        async with daemon(config_path) as d:
            await d.until(lambda: any(r["method"] == "POST" for r in simulator.requests))
            [pid] = child_pids(d.log())
            assert await d.stop() == 0
        assert not alive(pid)
        assert f"asking its first sync (pid {pid}) to stop" in d.log()
        created = set(simulator.org().tasks)
        assert 0 < len(created) < 40  # stopped midway, after the creates in flight
        state = State(load_config(config_path).state)
        assert {link.vendor_key for link in state.links("r")} == created  # nothing lost
        state.close()
        assert lock_rows(config_path) == []
        simulator.delay = 0

        assert await run(config_path) == OK  # what `syncd sync` runs

        assert len(simulator.org().tasks) == simulator.writes == 40  # none created twice


async def test_a_killed_first_sync_process_fails_the_run_and_the_daemon_runs_on(tmp_path):
    simulator = sim.default()
    simulator.delay = 0.3
    async with salesask_server(simulator) as (simulator, base_url):
        config_path = many_events(tmp_path, 20, base_url=base_url)
        async with daemon(config_path) as d:
            await d.until(lambda: any(r["method"] == "POST" for r in simulator.requests))
            [pid] = child_pids(d.log())
            os.kill(pid, signal.SIGKILL)
            await d.until(lambda: "killed by signal 9" in d.log())
            assert "route r is failing: the first sync's process was killed" in d.log()
            assert lock_rows(config_path) == []  # the dead child's lock went with the run
            assert unfinished_runs(config_path) == 0  # its run is closed as failed
            simulator.delay = 0

            d.signal(signal.SIGUSR1)
            await d.until(lambda: "route r recovered" in d.log())
            assert len(simulator.org().tasks) == 20  # nothing created twice
            assert await d.stop() == 0


# --- the daemon's side of it -------------------------------------------------------------


async def test_the_process_runs_on_the_config_text_it_is_handed_not_on_the_file(tmp_path):
    async with salesask_server() as (simulator, base_url):
        config_path = one_route(tmp_path, base_url)
        text = config_path.read_text()
        config = load_config(config_path)
        config_path.write_text("routes: [")  # edited since the daemon read it, and broken

        with closing(State(config.state)) as state:
            report = await child.run_apart(config, text, "r", HOLDER, asyncio.Event(), state)

        assert report is not None and report.outcome == "ok"
        assert report.counts["created"] == 3 and simulator.writes == 3
        assert lock_rows(tmp_path / "config.yaml") == []


async def test_a_config_the_process_refuses_is_handed_back(tmp_path):
    async with salesask_server() as (simulator, base_url):
        config = load_config(one_route(tmp_path, base_url))

        with closing(State(config.state)) as state:
            stop = asyncio.Event()
            report = await child.run_apart(config, "routes: [", "r", HOLDER, stop, state)
            assert state.last_run("r") is None  # nothing ran, nothing recorded

        assert report is None and simulator.requests == []


async def test_the_daemon_runs_a_first_sync_itself_when_its_process_refuses(tmp_path, caplog):
    config_path = write(tmp_path, "config.yaml", yaml.safe_dump({"state": "state.db"}))
    host = Daemon(config_path)
    host.config, host.config_text = load_config(config_path), "routes: ["
    host.state, host.stopping = State(tmp_path / "state.db"), asyncio.Event()
    runner = CountingRunner()
    job = RouteJob("r", runner, timedelta(minutes=1), ())  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.WARNING, "syncd.daemon"):
            await host._once(job)
    finally:
        host.state.close()
    assert runner.runs == 1
    assert "route r: the first sync's process refused the config" in caplog.text


def test_a_report_line_is_read_back_and_one_of_another_route_or_none_is_no_report():
    report = RunReport("r", "held", counts={"created": 2}, retry_after=3.0, write_seconds=0.5)
    line = json.dumps(child.to_json(report)).encode()
    assert child.read_report("r", 0, b"a stray line\n" + line + b"\n") == report
    assert child.read_report("s", 0, line) is None
    assert child.read_report("r", 0, b"") is None
    assert child.read_report("r", 0, b"{}") is None
    assert child.read_report("r", 1, line) is None  # a report from a process that failed


def test_a_dead_childs_run_is_closed_as_failed_or_recorded_when_it_had_not_begun(tmp_path):
    with closing(State(tmp_path / "state.db")) as state:
        begun = state.begin_run("r", "daemon")  # the child began, then died
        assert state.fail_unfinished_runs("r", "killed") == "new"
        closed = state.last_run("r")
        assert closed is not None
        assert (closed["id"], closed["outcome"], closed["error"]) == (begun, "failed", "killed")
        assert state.fail_unfinished_runs("s", "died early") == "new"  # it never began one
        recorded = state.last_run("s")
        assert recorded is not None and (recorded["outcome"], recorded["error"]) == (
            "failed",
            "died early",
        )
        assert [row["state"] for row in state.status()] == ["failing", "failing"]
