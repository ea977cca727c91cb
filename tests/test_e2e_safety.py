"""End to end: what must never happen (deletes on a bad feed, a mass delete, duplicate
records after a reset, two runs of one route at once), over loopback and a real state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from syncd.cli import FAILED, HELD, OK, main, sync
from syncd.config import load_config
from syncd.simulators.salesask import SalesAskSim
from syncd.state import State
from tests.builders import (
    FILE_CALENDAR,
    Vevent,
    calendar,
    config_text,
    day,
    run,
    run_sync,
    salesask_server,
    serving,
    wait_until,
    write,
)

EVENTS = [Vevent(f"e{n}", f"Meeting {n}", day(1 + n % 20, 8 + n % 9)) for n in range(60)]


def status_text(config_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["-c", str(config_path), "status"]) == OK
    return capsys.readouterr().out


# --- a feed that answers garbage ---------------------------------------------------------


class Feed:
    """A feed server whose next answer the test chooses."""

    def __init__(self) -> None:
        self.status = 200
        self.body = calendar(*EVENTS[:5]).encode()

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, body=self.body, content_type="text/calendar")


@pytest.fixture
async def feed_env(tmp_path: Path) -> AsyncIterator[tuple[SalesAskSim, Feed, Path]]:
    feed = Feed()
    async with serving(feed.handle) as feed_url, salesask_server() as (simulator, base_url):
        block = f"    kind: ics_url\n    url: {feed_url}/feed.ics?token=s3cret"
        yield simulator, feed, write(tmp_path, "config.yaml", config_text(base_url, block))


GARBAGE = {
    "html": (200, b"<!DOCTYPE html><html><body>Please log in</body></html>"),
    "empty": (200, b""),
    "server_error": (500, b"oops"),
    "truncated": (200, calendar(*EVENTS[:5]).encode()[:-40]),
}


@pytest.mark.parametrize("answer", sorted(GARBAGE))
async def test_a_feed_that_is_not_a_calendar_deletes_nothing(feed_env, capsys, answer):
    simulator, feed, config_path = feed_env
    assert await run(config_path) == OK
    assert len(simulator.org().tasks) == 5
    feed.status, feed.body = GARBAGE[answer]
    simulator.requests.clear()

    for _ in range(2):  # a second listing would confirm absences, were there any
        assert await run(config_path) == FAILED

    assert len(simulator.org().tasks) == 5
    assert not [r for r in simulator.requests if r["method"] == "DELETE"]
    shown = status_text(config_path, capsys)
    assert "r: failing" in shown and "error: cal: " in shown
    assert "s3cret" not in shown


# --- the mass-delete guard, release, reset, the route lock -------------------------------


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SalesAskSim, Path]]:
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*EVENTS))
        extra = "    safety: {max_delete_count: 10, max_delete_fraction: 0.2}\n"
        yield simulator, write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR, extra))


async def test_a_mass_deletion_is_held_shown_and_released(env, capsys):
    simulator, config_path = env
    assert await run(config_path) == OK
    write(config_path.parent, "calendar.ics", calendar(*EVENTS[:20]))  # 40 of 60 gone

    assert await run(config_path) == HELD
    assert len(simulator.org().tasks) == 60
    shown = status_text(config_path, capsys)
    assert "held deletes 40" in shown and "syncd release r" in shown

    assert await run(config_path, release=True) == OK  # what `syncd release r` runs
    assert len(simulator.org().tasks) == 20
    assert "held deletes 0" in status_text(config_path, capsys)


async def test_deletes_under_either_limit_are_not_held(env):
    simulator, config_path = env
    assert await run(config_path) == OK
    write(config_path.parent, "calendar.ics", calendar(*EVENTS[:50]))  # 10: not above 10
    assert await run(config_path) == OK
    assert len(simulator.org().tasks) == 50


async def test_reset_then_sync_readopts_everything_and_writes_nothing(env):
    simulator, config_path = env
    assert await run(config_path) == OK
    assert main(["-c", str(config_path), "reset", "r"]) == OK
    simulator.requests.clear()

    assert await run(config_path) == OK

    assert simulator.writes == 60  # the first sync's creates, and nothing since
    state = State(load_config(config_path).state)
    assert len(state.links("r")) == 60
    assert {row["origin"] for row in state._rows("SELECT origin FROM links")} == {"adopted"}
    state.close()


async def test_a_second_sync_of_a_running_route_refuses_and_never_interleaves(env):
    simulator, config_path = env
    simulator.delay = 0.05  # every request is slow: the first sync is still running
    first = asyncio.create_task(run(config_path))
    await wait_until(lambda: bool(simulator.requests))

    config = load_config(config_path)
    [second] = await sync(config, ["r"])

    assert second.outcome == "failed" and "is being synced by" in second.error
    assert await first == OK
    assert len(simulator.org().tasks) == 60


# --- the route's filter --------------------------------------------------------------------


async def test_filtered_events_never_reach_the_vendor(tmp_path):
    events = [
        Vevent("kept", "Customer call", day(1, 10)),
        Vevent("private", "Doctor", day(1, 12), extra=["CLASS:PRIVATE"]),
        Vevent("confidential", "Board", day(1, 13), extra=["CLASS:CONFIDENTIAL"]),
        Vevent("free", "Focus time", day(1, 14), extra=["TRANSP:TRANSPARENT"]),
        Vevent(
            "declined",
            "Declined",
            day(1, 15),
            extra=["ATTENDEE;PARTSTAT=DECLINED:mailto:rep@example.com"],
        ),
    ]
    all_day = (
        "BEGIN:VEVENT\r\nUID:allday\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{day(2):%Y%m%d}\r\nSUMMARY:Offsite\r\nEND:VEVENT"
    )
    text = calendar(*events).replace("END:VCALENDAR", all_day + "\r\nEND:VCALENDAR")
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", text)
        extra = "    filter: {skip_free: true, skip_all_day: true}\n"
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR, extra))
        assert await run(config_path) == OK
        assert set(simulator.org().tasks) == {"cal:kept"}


async def test_release_carries_out_only_the_deletes_that_were_held(env, capsys):
    simulator, config_path = env
    assert await run(config_path) == OK
    write(config_path.parent, "calendar.ics", calendar(*EVENTS[:20]))  # 40 gone: held
    assert await run(config_path) == HELD
    write(config_path.parent, "calendar.ics", calendar(*EVENTS[15:20]))  # 15 more since

    assert await run(config_path, release=True) == HELD  # the 40 go, the 15 new are held

    assert len(simulator.org().tasks) == 20
    assert "held deletes 15" in status_text(config_path, capsys)


def state_data(folder: Path) -> tuple[bytes, bytes]:
    """The database file and its write-ahead log (readers of a WAL database create the
    empty -wal and -shm coordination files; the data is what must not change)."""
    wal = folder / "state.db-wal"
    return (folder / "state.db").read_bytes(), wal.read_bytes() if wal.exists() else b""


async def test_plan_and_status_leave_the_state_file_untouched(env, capsys):
    simulator, config_path = env
    assert await run(config_path) == OK
    write(config_path.parent, "calendar.ics", calendar(*EVENTS[:59]))
    before = state_data(config_path.parent)

    [report] = await run_sync(config_path, dry_run=True)
    status_text(config_path, capsys)

    assert [op.case for op in report.ops] == ["calendar_deleted"]
    assert state_data(config_path.parent) == before
    assert len(simulator.org().tasks) == 60


async def test_a_fixed_broken_event_leaves_the_quarantine_by_itself(env, capsys):
    simulator, config_path = env
    broken = calendar(*EVENTS).replace(
        "UID:e0\r\nDTSTAMP:20260101T000000Z\r\n",
        "UID:e0\r\nDTSTAMP:20260101T000000Z\r\nRRULE:FREQ=BOGUS\r\n",
    )
    write(config_path.parent, "calendar.ics", broken)
    assert await run(config_path) == OK
    assert "quarantined 1" in status_text(config_path, capsys)
    assert "cal:e0" not in simulator.org().tasks

    write(config_path.parent, "calendar.ics", calendar(*EVENTS))
    assert await run(config_path) == OK

    assert "quarantined 0" in status_text(config_path, capsys)
    assert "cal:e0" in simulator.org().tasks
