"""End to end: `syncd run` as a real process against simulators on loopback: the signals
(USR1, USR2, HUP, TERM), systemd notify, a failing route beside a healthy one, the pid
file and `syncd resync`, the log formats, and no secret in the logs.

Polls are long enough (`POLL`) that between a route's first scheduled run and its next
only signals cause runs; runs are counted by the summary line each run logs. Every wait
is bounded, and every daemon is terminated (or killed) however its test ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from syncd.cli import FAILED, OK, main
from syncd.config import load_config
from syncd.simulators import salesask as sim
from syncd.state import State
from tests.builders import (
    REP,
    Vevent,
    calendar,
    day,
    run,
    salesask_server,
    serving,
    wait_until,
    write,
)

# The first scheduled run comes within POLL/10 of the start and the next one not before
# 0.9 * POLL after it: a test has that long to count the runs its signals cause.
POLL = "20s"
BOUND = 30.0  # seconds an awaited condition may take before the test fails
LIST = "/v1/scheduled-tasks"
EVENTS = [Vevent(f"e{n}", f"Meeting {n}", day(1 + n, 9 + n)) for n in range(3)]
KEYS = {f"cal:{e.uid}" for e in EVENTS}
# The test's own environment may come from systemd: the daemon must not inherit that.
ISOLATED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "SYNCD_CONFIG")

Json = dict[str, Any]


# --- configs -----------------------------------------------------------------------------


def ics_file(path: str = "calendar.ics", poll: str = POLL) -> Json:
    return {"kind": "ics_file", "path": path, "poll": poll}


def salesask(base_url: str, api_key: str = sim.DEFAULT_KEY, poll: str = POLL) -> Json:
    return {
        "kind": "salesask",
        "base_url": base_url,
        "api_key": api_key,
        "poll": poll,
        "rate_limit": False,
        "timeout": "5s",
    }


def route(calendar_id: str = "cal", vendor_id: str = "salesask") -> Json:
    return {"calendar": calendar_id, "vendor": vendor_id, "rep": {"email": REP}}


def write_config(folder: Path, calendars: Json, vendors: Json, routes: Json, **top: Any) -> Path:
    """`config.yaml` in `folder`; its state file is `state.db` beside it."""
    text = {"state": "state.db", **top, "calendars": calendars, "vendors": vendors}
    return write(folder, "config.yaml", yaml.safe_dump({**text, "routes": routes}))


def one_route(folder: Path, base_url: str, **top: Any) -> Path:
    """Calendar `cal` (calendar.ics: EVENTS) to the simulator as `salesask`, by route `r`."""
    write(folder, "calendar.ics", calendar(*EVENTS))
    vendors = {"salesask": salesask(base_url)}
    return write_config(folder, {"cal": ics_file()}, vendors, {"r": route()}, **top)


def lists(simulator: sim.SalesAskSim) -> int:
    """How many listings (GET of the collection) the simulator was asked for."""
    return sum(1 for r in simulator.requests if r["method"] == "GET" and r["path"] == LIST)


# --- the daemon as a process -------------------------------------------------------------


@dataclass
class Daemon:
    """A started `syncd run`, its stderr in a file."""

    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self, route_id: str = "r", outcome: str = "ok|failed|held") -> int:
        """Finished runs of the route, counted by the summary line each run logs."""
        return len(re.findall(rf"route {route_id}: (?:{outcome})\b", self.log()))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def until(self, condition: Callable[[], bool], seconds: float = BOUND) -> None:
        """Wait for `condition`; fail at once if the daemon exits, and show its log."""

        def check() -> bool:
            if self.process.returncode is not None:
                raise AssertionError(f"the daemon exited with {self.process.returncode}")
            return condition()

        try:
            await wait_until(check, seconds)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log:\n{self.log()}") from None

    async def stop(self) -> int:
        """SIGTERM; its exit status."""
        self.signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), BOUND)


def environment(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED} | extra


async def start(config_path: Path, **env: str) -> Daemon:
    """`syncd run` on the config, its stderr in `daemon.log` beside it."""
    log_path = config_path.parent / "daemon.log"
    with log_path.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "syncd", "-c", str(config_path), "run"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
            env=environment(**env),
        )
    return Daemon(process, log_path)


async def finish(process: asyncio.subprocess.Process) -> None:
    """Make sure the process is gone: SIGTERM, then SIGKILL if it does not exit."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


@asynccontextmanager
async def daemon(config_path: Path, **env: str) -> AsyncIterator[Daemon]:
    """A started daemon, ready (its signal handlers set) when this yields; afterwards its
    log holds no traceback."""
    running = await start(config_path, **env)
    try:
        await running.until(lambda: "syncd running" in running.log())
        yield running
    finally:
        await finish(running.process)
    assert "Traceback" not in running.log(), running.log()


async def syncd(*args: str) -> tuple[int, str]:
    """Another `syncd` command as a process: its exit status and its stderr."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "syncd", *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environment(),
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), BOUND)
    finally:
        await finish(process)
    assert process.returncode is not None
    return process.returncode, err.decode()


# --- SIGUSR1 and `syncd resync` ----------------------------------------------------------


async def test_sigusr1_makes_exactly_one_more_run_also_for_a_burst(tmp_path):
    async with (
        salesask_server() as (simulator, base_url),
        daemon(one_route(tmp_path, base_url)) as d,
    ):
        await d.until(lambda: d.runs() >= 1)
        assert lists(simulator) == 1 and set(simulator.org().tasks) == KEYS

        d.signal(signal.SIGUSR1)
        await d.until(lambda: d.runs() >= 2)
        for _ in range(5):
            d.signal(signal.SIGUSR1)
        await d.until(lambda: d.runs() >= 3)
        d.signal(signal.SIGUSR1)  # a fence: a run the burst still owed would show by now
        await d.until(lambda: d.runs() >= 4)

        assert d.runs() == 4 and lists(simulator) == 4
        assert d.log().count("a resync of 1 routes") == 3
        assert simulator.writes == 3  # the first run's creates, nothing since
        assert await d.stop() == 0


async def test_sigusr1_lists_both_sides_again_within_their_poll(tmp_path):
    # Regression: a resync re-planned the listings kept within each side's poll, so
    # with both polls unexpired it saw no change on either side: it did nothing.
    async with (
        salesask_server() as (simulator, base_url),
        daemon(one_route(tmp_path, base_url)) as d,
    ):
        await d.until(lambda: d.runs() >= 1)
        write(tmp_path, "calendar.ics", calendar(*EVENTS, Vevent("new", "New", day(5))))
        simulator.remove("cal:e0")  # a vendor-side delete: recreated (on_vendor_delete)
        simulator.requests.clear()

        d.signal(signal.SIGUSR1)
        await d.until(lambda: d.runs() >= 2)

        assert lists(simulator) == 1
        assert set(simulator.org().tasks) == KEYS | {"cal:new"}
        assert await d.stop() == 0


async def test_resync_signals_the_running_daemon_for_one_more_run(tmp_path):
    async with salesask_server() as (simulator, base_url):
        config_path = one_route(tmp_path, base_url)
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs() >= 1)

            assert await syncd("-c", str(config_path), "resync") == (OK, "")
            await d.until(lambda: d.runs() >= 2)
            assert await syncd("-c", str(config_path), "resync", "--full") == (OK, "")
            await d.until(lambda: d.runs() >= 3)  # also the fence for the first resync

            assert d.runs() == 3 and lists(simulator) == 3
            assert "a resync of 1 routes" in d.log() and "full resync of 1 routes" in d.log()
            assert await d.stop() == 0


async def test_a_resync_sent_while_the_daemon_starts_waits_instead_of_killing_it(tmp_path, capsys):
    # Regression: the pid file (which `syncd resync` reads) was written before the
    # signal handlers were set, and SIGUSR1's default action ended the daemon.
    async with salesask_server() as (_, base_url):
        config_path = one_route(tmp_path, base_url)
        # The daemon opens its state after writing the pid file: hold it there.
        lock = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        d = await start(config_path)
        try:
            await d.until(lambda: (tmp_path / "syncd.pid").exists())
            assert main(["-c", str(config_path), "resync"]) == OK
            assert f"asked the daemon (pid {d.pid})" in capsys.readouterr().out
            lock.close()

            await d.until(lambda: "a resync of 1 routes" in d.log() and d.runs() >= 1)
            assert await d.stop() == 0
        finally:
            lock.close()
            await finish(d.process)


def test_resync_without_a_daemon_says_so_and_exits_1(tmp_path, capsys):
    config_path = one_route(tmp_path, "http://127.0.0.1:9")

    assert main(["-c", str(config_path), "resync"]) == FAILED
    assert capsys.readouterr().err == f"no syncd daemon runs for {tmp_path / 'state.db'}\n"

    write(tmp_path, "syncd.pid", f"{os.getpid() + 1_000_000_000}\n")  # no such process
    assert main(["-c", str(config_path), "resync", "--full"]) == FAILED
    err = capsys.readouterr().err
    assert err.startswith("no syncd daemon runs for ") and "(its pid file is stale)" in err


async def test_a_second_daemon_on_the_same_state_refuses_while_the_first_runs(tmp_path):
    async with salesask_server() as (_, base_url):
        config_path = one_route(tmp_path, base_url)
        pid_file = tmp_path / "syncd.pid"
        async with daemon(config_path) as first:
            assert pid_file.read_text() == f"{first.pid}\n"

            status, err = await syncd("-c", str(config_path), "run")

            assert status == FAILED
            assert err == f"another syncd daemon (pid {first.pid}) runs on {tmp_path}\n"
            assert first.process.returncode is None
            assert pid_file.read_text() == f"{first.pid}\n"
            assert await first.stop() == 0
        assert not pid_file.exists()


# --- SIGHUP --------------------------------------------------------------------------------


async def test_sighup_with_a_broken_config_keeps_the_old_one_and_logs_every_problem(tmp_path):
    async with salesask_server() as (simulator, base_url):
        config_path = one_route(tmp_path, base_url)
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs() >= 1)
            broken = yaml.safe_load(config_path.read_text())
            broken["calendars"]["cal"]["poll"] = "often"
            broken["routes"]["r"]["vendor"] = "nowhere"
            write(tmp_path, "config.yaml", yaml.safe_dump(broken))

            d.signal(signal.SIGHUP)
            await d.until(lambda: d.runs() >= 2)  # the reload's resync, on the old config

            log = d.log()
            assert f"config {config_path} is invalid; still running on the previous one" in log
            assert re.search(r" ERROR calendars\.cal\.poll: must be a duration", log)
            assert re.search(r" ERROR routes\.r\.vendor: unknown vendor 'nowhere'", log)
            assert lists(simulator) == 2

            write(tmp_path, "calendar.ics", calendar(*EVENTS, Vevent("new", "New", day(5))))
            d.signal(signal.SIGUSR1)  # it goes on syncing
            await d.until(lambda: "cal:new" in simulator.org().tasks)
            assert await d.stop() == 0


async def test_sighup_adds_a_route_that_syncs_and_a_removed_route_stops(tmp_path):
    async with salesask_server() as (first, first_url), salesask_server() as (second, second_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        calendars = {"cal": ics_file()}
        a, b = salesask(first_url), salesask(second_url)
        config_path = write_config(tmp_path, calendars, {"a": a}, {"ra": route("cal", "a")})
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs("ra") >= 1)

            routes = {"ra": route("cal", "a"), "rb": route("cal", "b")}
            write_config(tmp_path, calendars, {"a": a, "b": b}, routes)
            d.signal(signal.SIGHUP)
            await d.until(lambda: d.runs("ra") >= 2 and d.runs("rb") >= 1)

            assert set(second.org().tasks) == KEYS
            assert "route rb scheduled" in d.log()
            assert "route ra restarted" not in d.log()  # unchanged: it keeps its schedule

            write_config(tmp_path, calendars, {"b": b}, {"rb": route("cal", "b")})
            seen = len(first.requests)
            d.signal(signal.SIGHUP)
            await d.until(lambda: d.runs("rb") >= 2)
            d.signal(signal.SIGUSR1)
            await d.until(lambda: d.runs("rb") >= 3)

            assert "route ra removed" in d.log() and d.runs("ra") == 2
            assert len(first.requests) == seen  # not one request for the removed route
            assert set(first.org().tasks) == KEYS  # and its records stay where they are
            assert await d.stop() == 0


# --- SIGUSR2 ---------------------------------------------------------------------------------


@dataclass
class Feed:
    """An iCalendar feed that honours If-None-Match and keeps the headers it was sent."""

    body: bytes = field(default_factory=lambda: calendar(*EVENTS).encode())
    etag: str = '"v1"'
    status: int = 200
    asked: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(dict(request.headers))
        if self.status != 200:
            return web.Response(status=self.status, text="no")
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        return web.Response(
            body=self.body, content_type="text/calendar", headers={"ETag": self.etag}
        )


@asynccontextmanager
async def feed_server() -> AsyncIterator[tuple[Feed, str]]:
    """The feed on a free loopback port, and its URL."""
    feed = Feed()
    async with serving(feed.handle) as base_url:
        yield feed, f"{base_url}/feed.ics"


async def test_sigusr2_relists_both_sides_though_the_feed_answers_304(tmp_path):
    async with feed_server() as (feed, url), salesask_server() as (simulator, base_url):
        calendars = {"cal": {"kind": "ics_url", "url": url, "poll": POLL}}
        vendors = {"salesask": salesask(base_url)}
        # the ETag is kept by the daemon's process: its first sync must run in it too
        inline = {"first_sync": "inline"}
        config = write_config(tmp_path, calendars, vendors, {"r": route()}, daemon=inline)
        async with daemon(config) as d:
            await d.until(lambda: d.runs() >= 1)
            d.signal(signal.SIGUSR1)  # a resync asks the feed conditionally: 304
            await d.until(lambda: d.runs() >= 2)
            assert [a.get("If-None-Match") for a in feed.asked] == [None, feed.etag]

            d.signal(signal.SIGUSR2)
            await d.until(lambda: d.runs() >= 3)

            assert len(feed.asked) == 3 and "If-None-Match" not in feed.asked[2]
            assert lists(simulator) == 3
            assert "full resync of 1 routes" in d.log()
            assert simulator.writes == 3  # the same feed: nothing more to write
            assert await d.stop() == 0


# --- SIGTERM ---------------------------------------------------------------------------------


async def test_sigterm_lets_the_slow_request_finish_and_commits_its_result(tmp_path):
    # Regression: the scheduler's shutdown cancelled the scheduled run in flight.
    simulator = sim.default()
    simulator.delay = 0.5  # every request takes this long
    async with salesask_server(simulator) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(EVENTS[0]))
        vendors = {"salesask": salesask(base_url)}
        config_path = write_config(tmp_path, {"cal": ics_file()}, vendors, {"r": route()})
        async with daemon(config_path) as d:
            await d.until(lambda: any(r["method"] == "POST" for r in simulator.requests))
            assert await d.stop() == 0  # while the create is on its way

        assert "stopping: letting 1 route runs finish" in d.log()
        assert "route r: ok, 1 created" in d.log()
        state = State(load_config(config_path).state)
        assert [link.vendor_key for link in state.links("r")] == ["cal:e0"]
        assert state.pending_creates("r") == []
        state.close()
        simulator.delay = 0

        assert await run(config_path) == OK  # what `syncd sync` runs

        assert simulator.writes == 1  # the daemon's create, and nothing since


# --- systemd notify ------------------------------------------------------------------------


async def test_the_notify_socket_gets_ready_status_watchdog_reloading_and_stopping(tmp_path):
    received: list[list[str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.setblocking(False)

        def got(line: str, times: int = 1) -> bool:
            while True:
                try:
                    received.append(notify.recv(4096).decode().splitlines())
                except BlockingIOError:
                    break
            return sum(line in message for message in received) >= times

        async with salesask_server() as (_, base_url):
            env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
            async with daemon(one_route(tmp_path, base_url), **env) as d:
                await d.until(lambda: got("READY=1"))
                [ready] = [m for m in received if "READY=1" in m]
                assert "STATUS=1 routes, 0 failing" in ready
                await d.until(lambda: got("WATCHDOG=1", times=3))

                d.signal(signal.SIGHUP)
                await d.until(lambda: got("RELOADING=1") and got("READY=1", times=2))
                [reloading] = [m for m in received if "RELOADING=1" in m]
                assert any(re.fullmatch(r"MONOTONIC_USEC=\d+", line) for line in reloading)

                assert not got("STOPPING=1")
                assert await d.stop() == 0
        assert got("STOPPING=1")


# --- one route failing beside another ------------------------------------------------------


async def test_a_route_refused_with_401_fails_on_its_own_while_another_keeps_syncing(tmp_path):
    async with salesask_server() as (good, good_url), salesask_server() as (bad, bad_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        vendors = {
            "good": salesask(good_url, poll="1s"),
            "bad": salesask(bad_url, api_key="not-a-key-of-this-org", poll="1s"),
        }
        routes = {"to-good": route("cal", "good"), "to-bad": route("cal", "bad")}
        config_path = write_config(tmp_path, {"cal": ics_file(poll="1s")}, vendors, routes)
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs("to-bad", "failed") >= 2 and d.runs("to-good") >= 2)
            write(tmp_path, "calendar.ics", calendar(*EVENTS, Vevent("new", "New", day(5))))

            await d.until(lambda: "cal:new" in good.org().tasks)
            await d.until(lambda: d.runs("to-bad", "failed") >= 3)  # it keeps trying

            log = d.log()
            assert d.runs("to-bad", "ok|held") == 0 and d.runs("to-good", "failed|held") == 0
            assert log.count("route to-bad is failing: credentials refused") == 1  # once
            assert bad.writes == 0 and bad.org().tasks == {}
            assert await d.stop() == 0


# --- logs ----------------------------------------------------------------------------------


async def test_under_journald_log_lines_carry_no_timestamp(tmp_path):
    async with (
        salesask_server() as (_, base_url),
        daemon(one_route(tmp_path, base_url), JOURNAL_STREAM="8:12345") as d,
    ):
        await d.until(lambda: d.runs() >= 1)
        assert await d.stop() == 0
    lines = d.log().splitlines()
    assert len(lines) >= 3  # scheduled, running, the run, stopping
    assert all(re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ", x) for x in lines)
    assert not any(re.search(r"\d{4}-\d\d-\d\d", x) for x in lines)


async def test_with_json_logs_every_line_is_a_json_object(tmp_path):
    async with salesask_server() as (_, base_url):
        config_path = one_route(tmp_path, base_url, log={"format": "json"})
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs() >= 1)
            write(tmp_path, "config.yaml", "calendars: [nonsense\n")  # problems are lines too
            d.signal(signal.SIGHUP)
            await d.until(lambda: d.runs() >= 2)
            assert await d.stop() == 0
    records = [json.loads(line) for line in d.log().splitlines()]
    assert len(records) >= 5 and all(isinstance(r, dict) and r["message"] for r in records)
    assert {"info", "error"} <= {r["level"] for r in records}


# --- secrets -------------------------------------------------------------------------------

API_KEY, FEED_TOKEN, FEED_PASSWORD = "sk-live-8f3e2a91d", "tok-5c0ffee7b1", "pw-9d8e7f6a5b"


async def test_secrets_never_appear_in_the_daemons_logs(tmp_path):
    simulator = sim.SalesAskSim()
    simulator.add_org("acme", API_KEY, sim.DEFAULT_REPS)
    async with feed_server() as (feed, url), salesask_server(simulator) as (_, base_url):
        feed_config = {
            "kind": "ics_url",
            "url": f"{url}?token={FEED_TOKEN}",
            "username": "someone",
            "password": FEED_PASSWORD,
            "poll": POLL,
        }
        vendors = {"salesask": salesask(base_url, api_key=API_KEY)}
        config_path = write_config(
            tmp_path, {"cal": feed_config}, vendors, {"r": route()}, log={"level": "debug"}
        )
        async with daemon(config_path) as d:
            await d.until(lambda: d.runs() >= 1)
            assert set(simulator.org().tasks) == KEYS
            simulator.fail_next(401)  # the vendor refuses the key
            d.signal(signal.SIGUSR1)
            await d.until(lambda: d.runs() >= 2)
            d.signal(signal.SIGUSR2)  # it recovers, the feed fetched afresh
            await d.until(lambda: d.runs() >= 3)
            feed.status = 403  # the feed refuses
            d.signal(signal.SIGUSR1)
            await d.until(lambda: d.runs() >= 4)

            broken = {**feed_config, "url": f"ftp://127.0.0.1/feed.ics?token={FEED_TOKEN}"}
            write_config(tmp_path, {"cal": broken}, vendors, {"r": route()}, log="loud")
            d.signal(signal.SIGHUP)  # a broken config, a secret in a broken key
            await d.until(lambda: d.runs() >= 5)
            assert await d.stop() == 0

    log = d.log()
    assert "route r is failing: credentials refused" in log and "route r recovered" in log
    assert re.search(r"route r is failing: .*cal: GET feed: HTTP 403", log)
    assert "calendars.cal.url: " in log
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("state.db*"))
    for secret in (API_KEY, FEED_TOKEN, FEED_PASSWORD):
        assert secret not in log
        assert secret.encode() not in stored
