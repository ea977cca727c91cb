"""Builders for end-to-end tests: iCalendar text dated from today, configs, servers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

from syncd.cli import exit_status, sync
from syncd.config import load_config
from syncd.runner import RunReport
from syncd.simulators import salesask as sim

REP = "rep@example.com"


def day(offset: int, hour: int = 10, minute: int = 0) -> datetime:
    """Today plus `offset` days at `hour` UTC."""
    today = datetime.now(UTC).date() + timedelta(days=offset)
    return datetime.combine(today, time(hour, minute), UTC)


def utc(moment: datetime) -> str:
    """iCalendar UTC form."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


@dataclass
class Vevent:
    """One VEVENT, as text."""

    uid: str
    title: str
    start: datetime
    hours: float = 1.0
    guest: str = "customer@client.test"
    extra: list[str] = field(default_factory=list)

    def text(self) -> str:
        end = self.start + timedelta(hours=self.hours)
        lines = [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{utc(self.start)}",
            f"DTEND:{utc(end)}",
            f"SUMMARY:{self.title}",
            f"ORGANIZER:mailto:{REP}",
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{REP}",
        ]
        if self.guest:
            lines.append(f"ATTENDEE;CN=Customer:mailto:{self.guest}")
        return "\r\n".join([*lines, *self.extra, "END:VEVENT"])


def calendar(*events: Vevent) -> str:
    """A VCALENDAR around the events."""
    body = "\r\n".join(e.text() for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{body}\r\nEND:VCALENDAR\r\n"


def config_text(base_url: str, calendar_block: str, route_extra: str = "") -> str:
    """A config with one calendar `cal`, the simulator as `salesask`, one route `r`."""
    return f"""\
state: state.db
calendars:
  cal:
{calendar_block}
vendors:
  salesask:
    kind: salesask
    base_url: {base_url}
    api_key: {sim.DEFAULT_KEY}
    rate_limit: off
    timeout: 5s
routes:
  r:
    calendar: cal
    vendor: salesask
    rep: {{email: {REP}}}
{route_extra}"""


FILE_CALENDAR = "    kind: ics_file\n    path: calendar.ics"


@asynccontextmanager
async def simulated(
    module: ModuleType, simulator: Any = None, **switches: object
) -> AsyncIterator[tuple[Any, str]]:
    """A vendor simulator (`module.default()` unless given, with `switches` set) on a
    free loopback port: (the simulator, its base URL)."""
    simulator = simulator or module.default()
    for name, value in switches.items():
        setattr(simulator, name, value)
    runner = await module.serve("127.0.0.1", 0, sim=simulator)
    try:
        yield simulator, module.base_url(runner)
    finally:
        await runner.cleanup()


def salesask_server(
    simulator: sim.SalesAskSim | None = None,
) -> AbstractAsyncContextManager[tuple[sim.SalesAskSim, str]]:
    """The Sales Ask simulator on a free loopback port."""
    return simulated(sim, simulator)


async def start_sync(config_path: Path) -> asyncio.subprocess.Process:
    """`syncd sync` as a real process, its output discarded: for tests that kill it."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "-c",
        str(config_path),
        "sync",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def write(folder: Path, name: str, text: str) -> Path:
    """Write a file in the test's folder; returns its path."""
    path = folder / name
    path.write_text(text, newline="")
    return path


async def wait_until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    """Poll `condition` until it holds; fail after `seconds` instead of hanging."""
    step = 0.01
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {seconds}s")


async def run_sync(config_path: Path, **kwargs: bool) -> list[RunReport]:
    """Every route of the config once, through the same `sync` the CLI runs."""
    config = load_config(config_path)
    return await sync(config, list(config.routes), **kwargs)


async def run(config_path: Path, **kwargs: bool) -> int:
    """`run_sync`, as the exit status `syncd sync` would give."""
    return exit_status(await run_sync(config_path, **kwargs))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """`handler` answering every path and method on a free loopback port: its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class CountingRunner:
    """Stands for route `r`'s runner in a daemon: each run succeeds, and is counted."""

    runs = 0

    async def run(self, trigger: str) -> RunReport:
        self.runs += 1
        return RunReport("r", "ok")
