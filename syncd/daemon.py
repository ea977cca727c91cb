"""The daemon (`syncd run`): every route on a schedule, signals, systemd notify.

Each route is a `RouteJob` fired by the schedule every `min(calendar poll, vendor
poll)`; its sides are wrapped in `Polled`, so each side is listed at most once per its
own poll and a calendar shared by routes with the same window is fetched once. Runs of
a route never overlap, take the same state lock as `syncd sync`, and a request that
comes while one runs makes exactly one more run. A failing route backs off on its own.

Signals (DESIGN.md section 5): HUP re-reads the config (a broken one is logged and the
old one keeps running; routes whose settings changed are rebuilt, the others keep their
schedule) and resyncs; USR1 resyncs now, both sides listed afresh (a burst is one
resync); USR2 also forgets every ETag; TERM/INT stop scheduling, let the operations in
flight finish and exit 0.

A route's first sync (a route without links) runs in a process of its own
(`syncd.child`) unless the config says `daemon: {first_sync: inline}`: the memory it
takes goes back to the system when that process exits, where the daemon would keep it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd import child, heap, registry
from syncd.config import Config, load_config, read_text
from syncd.errors import ConfigError, RouteBusy, SyncdError
from syncd.http import new_session
from syncd.notify import Notifier
from syncd.polled import Polled
from syncd.runner import RouteRunner, RunReport
from syncd.schedule import Schedule
from syncd.state import State

log = logging.getLogger("syncd.daemon")
PID_NAME = "syncd.pid"
RESYNC_DEBOUNCE = 0.25  # seconds: a burst of signals within this is one resync
MAX_BACKOFF = timedelta(hours=1)
# Their default action kills, and the pid file invites them (`syncd resync`) before their
# handlers are set: blocked until then, one sent early waits instead of killing us.
HELD_SIGNALS = frozenset({signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2})


class DaemonRunning(SyncdError):
    """Another daemon already runs on this state file."""


@dataclass
class RouteJob:
    """One scheduled route: its runner, its cadence and its run bookkeeping."""

    name: str
    runner: RouteRunner
    interval: timedelta
    settings: tuple[Any, ...]  # the route's config and its sides': a change rebuilds it
    running: bool = False
    again: bool = False
    failures: int = 0
    last: RunReport | None = None


@dataclass
class Daemon:
    """The long-running service of one config file."""

    config_path: Path
    notifier: Notifier = field(default_factory=Notifier)
    schedule: Schedule = field(default_factory=Schedule)
    jobs: dict[str, RouteJob] = field(default_factory=dict)
    _active: set[asyncio.Task[None]] = field(default_factory=set)
    _resync: asyncio.Task[None] | None = None
    _full: bool = False

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit status (0)."""
        config, self.config_text = self._load()
        self.stopping, self.stopped = asyncio.Event(), asyncio.Event()
        pid = PidFile(config.state.with_name(PID_NAME))
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)  # until `_handle_signals`
        try:
            pid.claim()
            self.state = State(config.state)
            try:
                async with new_session() as session:
                    self.session, self.config = session, config
                    await self._serve(config)
            finally:
                self.state.close()
                pid.release()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
        return 0

    async def _serve(self, config: Config) -> None:
        self._install(config)
        self.schedule.start()
        self._handle_signals()
        self.notifier.send("READY=1", f"STATUS={self.status_line()}")
        log.info("syncd running: %d routes from %s", len(self.jobs), self.config_path)
        watchdog = asyncio.create_task(self.notifier.keep_alive())
        await self.stopped.wait()
        self.notifier.send("STOPPING=1")
        log.info("stopping: letting %d route runs finish", len(self._active))
        await asyncio.gather(*self._active, return_exceptions=True)
        watchdog.cancel()

    # --- routes and their schedule -------------------------------------------------------

    def _install(self, config: Config) -> None:
        """Make the scheduled routes those of `config`: add, rebuild what changed, remove."""
        wanted = {name: _settings(config, name) for name in config.routes}
        for name in set(self.jobs) - set(wanted):
            self.schedule.remove(name)
            del self.jobs[name]
            log.info("route %s removed", name)
        runners = self._runners(config)
        for name, runner in runners.items():
            self._place(name, runner, wanted[name], config)
        self.config = config

    def _runners(self, config: Config) -> dict[str, RouteRunner]:
        """Every route's runner, its sides wrapped so each is listed once per its poll."""
        made = registry.runners(config, self.state, self.session, list(config.routes))
        calendars: dict[tuple[Any, ...], Polled] = {}
        result = {}
        for name, runner in made.items():
            route = config.routes[name]
            shape = (route.calendar, route.window.past, route.window.future)
            if shape not in calendars:
                poll = config.calendars[route.calendar].poll
                calendars[shape] = Polled(runner.calendar, poll)
            vendor = Polled(runner.vendor, config.vendors[route.vendor].poll)
            result[name] = replace(
                runner, calendar=calendars[shape], vendor=vendor, stop=self.stopping
            )
        return result

    def _place(
        self, name: str, runner: RouteRunner, settings: tuple[Any, ...], config: Config
    ) -> None:
        job = self.jobs.get(name)
        if job is not None and job.settings == settings:
            job.runner = runner  # unchanged: same schedule, fresh adapters
            return
        route = config.routes[name]
        interval = min(config.calendars[route.calendar].poll, config.vendors[route.vendor].poll)
        self.jobs[name] = RouteJob(name, runner, interval, settings)
        self.schedule.every(
            name,
            interval,
            functools.partial(self._fire, name),
            first_in=_jitter(min(interval / 10, timedelta(seconds=5))),
            jitter=min(interval / 10, timedelta(seconds=30)),
        )
        log.info("route %s %s, every %s", name, "restarted" if job else "scheduled", interval)

    async def _fire(self, name: str) -> None:
        job = self.jobs.get(name)
        if job is not None and not self.stopping.is_set():
            # in a task of ours: the scheduler's shutdown cancels the coroutines it runs
            self._spawn(self._run(job))

    async def _run(self, job: RouteJob) -> None:
        """Run the route; a request during a run makes exactly one more run after it."""
        if job.running:
            job.again = True
            return
        job.running = True
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        try:
            job.again = True
            while job.again and not self.stopping.is_set():
                job.again = False
                await self._once(job)
        finally:
            job.running = False
            if task is not None:
                self._active.discard(task)

    async def _once(self, job: RouteJob) -> None:
        holder = f"syncd run pid {os.getpid()} run {secrets.token_hex(4)}"
        try:
            with self.state.locked(job.name, holder):
                report = await self._route_run(job, holder)
        except RouteBusy as exc:
            log.info("route %s skipped this time: %s", job.name, exc)
            return
        finally:
            heap.release_free_memory()  # a fraction of a millisecond; a feed read frees MiBs
        job.last = report
        self._back_off(job, report)
        self.notifier.send(f"STATUS={self.status_line()}")

    async def _route_run(self, job: RouteJob, holder: str) -> RunReport:
        """The route's run, in a process of its own when it is a first sync."""
        if self._first_sync_apart(job.name):
            config, text, stop = self.config, self.config_text, self.stopping
            report = await child.run_apart(config, text, job.name, holder, stop, self.state)
            if report is not None:
                self._expire_sides(job, validators=False)  # the child wrote: list afresh
                return report
            log.warning("route %s: the first sync's process refused the config", job.name)
        return await job.runner.run(trigger="daemon")

    def _first_sync_apart(self, name: str) -> bool:
        apart = self.config.daemon.first_sync == "process" and bool(sys.executable)
        return apart and not self.state.has_links(name)

    def _back_off(self, job: RouteJob, report: RunReport) -> None:
        """A failing route waits longer each time (and at least what the vendor asked);
        the others keep their pace."""
        if report.outcome != "failed":
            job.failures = 0
            return
        job.failures += 1
        delay = min(job.interval * 2 ** (job.failures - 1), MAX_BACKOFF)
        if report.retry_after:
            delay = max(delay, timedelta(seconds=report.retry_after))
        self.schedule.next_in(job.name, delay)

    def status_line(self) -> str:
        """A one-line summary for systemd's STATUS=."""
        failing = [job.name for job in self.jobs.values() if job.failures]
        done = [job.last for job in self.jobs.values() if job.last]
        line = f"{len(self.jobs)} routes, {len(failing)} failing"
        if failing:
            line += f" ({', '.join(sorted(failing))})"
        if done:
            line += f"; last run {datetime.now(UTC):%H:%M:%S} UTC"
        return line

    # --- signals -----------------------------------------------------------------------

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self.resync)
        loop.add_signal_handler(signal.SIGUSR2, lambda: self.resync(full=True))
        for stop in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop, self.stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)  # any sent early: now

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._active.add(task)
        task.add_done_callback(self._active.discard)

    def resync(self, full: bool = False) -> None:
        """Run every route soon; requests within `RESYNC_DEBOUNCE` are one resync."""
        self._full = self._full or full
        if self._resync is None or self._resync.done():
            self._resync = asyncio.create_task(self._resync_soon())

    async def _resync_soon(self) -> None:
        await asyncio.sleep(RESYNC_DEBOUNCE)
        full, self._full = self._full, False
        self._expire(validators=full)  # "now": not the listings kept within a poll
        log.info("%s resync of %d routes", "full" if full else "a", len(self.jobs))
        for job in self.jobs.values():
            self._spawn(self._run(job))

    def _expire(self, validators: bool) -> None:
        for job in self.jobs.values():
            self._expire_sides(job, validators)

    @staticmethod
    def _expire_sides(job: RouteJob, validators: bool) -> None:
        for side in (job.runner.calendar, job.runner.vendor):
            if isinstance(side, Polled):
                side.expire(validators)

    async def reload(self) -> None:
        """Re-read the config; keep the old one when the new one is broken; resync."""
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}")
        try:
            config, text = self._load()
        except ConfigError as exc:
            log.error("config %s is invalid; still running on the previous one:", self.config_path)
            for problem in exc.problems:
                log.error("%s", problem)
        else:
            if config.state != self.config.state:
                log.warning(
                    "state: a new state file takes a restart; keeping %s", self.config.state
                )
            self._install(config)
            self.config_text = text
            log.info("config reloaded: %d routes", len(self.jobs))
        self.notifier.send("READY=1", f"STATUS={self.status_line()}")
        self.resync()

    def _load(self) -> tuple[Config, str]:
        """The config, and the text it was read from (a first sync's process runs on
        that text, not on the file as it may be by then)."""
        text = read_text(self.config_path.expanduser().absolute())
        return load_config(self.config_path, text=text), text

    def stop(self) -> None:
        """Stop scheduling; runs in flight finish the operation they are on."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.schedule.shutdown()
        self.stopped.set()


class PidFile:
    """`syncd.pid` next to the state database: who runs, for `syncd resync`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def claim(self) -> None:
        """Write our pid; refuse when a live daemon already holds the file."""
        other = running_pid(self.path)
        if other is not None and other != os.getpid():
            raise DaemonRunning(f"another syncd daemon (pid {other}) runs on {self.path.parent}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".pid.tmp")
        temp.write_text(f"{os.getpid()}\n")
        temp.replace(self.path)

    def release(self) -> None:
        """Remove the file if it is still ours."""
        if running_pid(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


def running_pid(path: Path) -> int | None:
    """The pid in the file when that process is alive, else None (stale or absent)."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _settings(config: Config, name: str) -> tuple[Any, ...]:
    route = config.routes[name]
    return (route, config.calendars[route.calendar], config.vendors[route.vendor])


def _jitter(most: timedelta) -> timedelta:
    return timedelta(seconds=random.uniform(0, most.total_seconds()))


def _monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, which systemd wants beside RELOADING=1."""
    return int(time.monotonic() * 1_000_000)
