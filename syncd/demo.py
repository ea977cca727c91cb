"""`syncd demo` and `syncd simulate`: the real sync against a simulator on loopback.

The demo writes a sample calendar dated from today and a config into a folder, starts
the Sales Ask simulator in-process on a free port, syncs, and prints what the
simulator holds. Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import importlib
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from syncd import logs, report
from syncd.cli import exit_status, sync
from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.notify import Notifier
from syncd.simulators import SIMULATORS
from syncd.simulators import salesask as sim

REP = "rep@example.com"


def sample_calendar(today: date) -> str:
    """A small calendar around `today`: singles in two time zones, a weekly series with
    an EXDATE and a moved occurrence, an all-day event and a private one."""
    day = [today + timedelta(days=n) for n in range(8)]
    series = day[1]
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//syncd//demo//EN",
            *_event(
                "demo-discovery-acme",
                "Discovery call with Acme",
                "Europe/Berlin",
                _at(day[1], 10),
                _at(day[1], 11),
                "jane@acme.test",
                "Jane Doe",
            ),
            *_event(
                "demo-globex-demo",
                "Product demo for Globex",
                "America/New_York",
                _at(day[2], 14),
                _at(day[2], 15),
                "bob@globex.test",
                "Bob Smith",
            ),
            *_event(
                "demo-pipeline-initech",
                "Weekly pipeline review with Initech",
                "Europe/Berlin",
                _at(series, 9),
                _at(series, 10),
                "peter@initech.test",
                "Peter Gibbons",
                extra=[
                    "RRULE:FREQ=WEEKLY;COUNT=6",
                    f"EXDATE;TZID=Europe/Berlin:{_stamp(_at(series + timedelta(14), 9))}",
                ],
            ),
            *_event(
                "demo-pipeline-initech",
                "Weekly pipeline review with Initech (moved)",
                "Europe/Berlin",
                _at(series + timedelta(21), 11),
                _at(series + timedelta(21), 12),
                "peter@initech.test",
                "Peter Gibbons",
                extra=[
                    f"RECURRENCE-ID;TZID=Europe/Berlin:{_stamp(_at(series + timedelta(21), 9))}",
                    "SEQUENCE:1",
                ],
            ),
            "BEGIN:VEVENT",
            "UID:demo-trade-show",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;VALUE=DATE:{day[5]:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day[6]:%Y%m%d}",
            "SUMMARY:Trade show with Umbrella Corp",
            f"ORGANIZER:mailto:{REP}",
            "ATTENDEE;CN=Alice Wesker:mailto:alice@umbrella.test",
            "END:VEVENT",
            *_event(
                "demo-dentist",
                "Dentist",
                "Europe/Berlin",
                _at(day[3], 8),
                _at(day[3], 9),
                "",
                "",
                extra=["CLASS:PRIVATE"],
            ),
            "END:VCALENDAR",
            "",
        ]
    )


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _event(
    uid: str,
    title: str,
    tz: str,
    start: datetime,
    end: datetime,
    guest: str,
    name: str,
    extra: list[str] | None = None,
) -> list[str]:
    ZoneInfo(tz)  # fail early on a typo in the sample
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;TZID={tz}:{_stamp(start)}",
        f"DTEND;TZID={tz}:{_stamp(end)}",
        f"SUMMARY:{title}",
        f"ORGANIZER:mailto:{REP}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{REP}",
    ]
    if guest:
        lines.append(f"ATTENDEE;CN={name}:mailto:{guest}")
    return [*lines, *(extra or []), "END:VEVENT"]


def sample_config(base_url: str) -> str:
    """The demo's config: the sample file to the simulator, rate limit off."""
    return f"""\
# Written by `syncd demo`. Edit calendar.ics and run `syncd -c {{this file}} sync`.
state: state.db
calendars:
  demo:
    kind: ics_file
    path: calendar.ics
    timezone: Europe/Berlin
    poll: 10s
vendors:
  salesask:
    kind: salesask
    base_url: {base_url}
    api_key: {sim.DEFAULT_KEY}
    rate_limit: off
    poll: 10s
routes:
  demo-to-salesask:
    calendar: demo
    vendor: salesask
    rep: {{email: {REP}}}
    window: {{past: 1d, future: 60d}}
"""


async def run_demo(folder: Path, *, once: bool) -> int:
    """Write the sample, serve the simulator, sync, print what the simulator holds."""
    logs.setup("info")
    runner = await sim.serve("127.0.0.1", 0)
    try:
        config_path = _write_sample(folder, sim.base_url(runner))
        config = load_config(config_path)
        reports = await sync(config, list(config.routes))
        for item in reports:
            print(report.summary(item))
        print(f"\nThe Sales Ask simulator at {sim.base_url(runner)} now holds:")
        print(report.table(_tasks(runner.app[sim.SIM]), ("event_id", "start", "title", "customer")))
        print(f"\nSample calendar: {config_path.parent / 'calendar.ics'}; config: {config_path}")
        if once:
            return exit_status(reports)
        print(
            "\nRunning the daemon: edit the sample calendar and watch the change arrive "
            "(every 10 s). Ctrl-C stops it."
        )
        return await Daemon(config_path, Notifier({})).run()
    finally:
        await runner.cleanup()


def _write_sample(folder: Path, base_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("state.db*"):  # a fresh simulator: start the state afresh
        stale.unlink()
    (folder / "calendar.ics").write_text(sample_calendar(date.today()), newline="")
    config = folder / "config.yaml"
    config.write_text(sample_config(base_url))
    return config


def _tasks(simulator: sim.SalesAskSim) -> list[dict[str, str]]:
    rows = []
    for task in sorted(simulator.org().tasks.values(), key=lambda t: (t.start, t.event_id)):
        rows.append(
            {
                "event_id": task.event_id,
                "start": f"{task.start:%Y-%m-%d %H:%M}Z",
                "title": task.title or "",
                "customer": task.customer.get("email", ""),
            }
        )
    return rows


SIMULATOR_CREDENTIALS = {
    "salesask": f"api_key: {sim.DEFAULT_KEY}; reps {', '.join(sim.DEFAULT_REPS)}",
    "leadsquared": "access_key: sim-access, secret_key: sim-secret; owner rep@example.com",
    "apptoto": "username: sim-user, api_key: sim-key; calendar_id 1",
    "salesloft": "api_key: sim-key; user rep@example.com (guid u-1, calendar external_u-1)",
    "ysuite": "access_key: sim-access, secret_key: sim-secret; contact cstid 10, "
    "users {rep@example.com: 7}",
}
"""What a config needs to talk to each simulator's `default()` account."""


async def simulate(kind: str, port: int) -> int:
    """Serve a simulator on 127.0.0.1 until interrupted."""
    module = importlib.import_module(SIMULATORS[kind])
    runner = await module.serve("127.0.0.1", port)
    print(f"{kind} simulator at {module.base_url(runner)}  {SIMULATOR_CREDENTIALS[kind]}")
    print("Ctrl-C stops it.")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0
