"""End to end: refused credentials, a refused rep, a crash in the middle of a first sync,
and the command line's exit statuses, against the simulator over loopback."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

from syncd.cli import FAILED, OK, USAGE, exit_status, main
from syncd.config import load_config
from syncd.simulators.salesask import default
from syncd.state import State
from tests.builders import (
    FILE_CALENDAR,
    Vevent,
    calendar,
    config_text,
    day,
    run_sync,
    salesask_server,
    start_sync,
    wait_until,
    write,
)


async def run_status(config_path: Path) -> tuple[int, str]:
    reports = await run_sync(config_path)
    return exit_status(reports), reports[0].error


async def test_refused_credentials_stop_the_route_with_a_clear_message(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        text = config_text(base_url, FILE_CALENDAR).replace("api_key: sim-key", "api_key: wrong")
        status, error = await run_status(write(tmp_path, "config.yaml", text))
    assert status == FAILED
    assert error.startswith(
        "credentials refused (check this side's keys or password in the config)"
    )
    assert "HTTP 401" in error
    assert "wrong" not in error
    assert simulator.org().tasks == {}


async def test_an_inactive_rep_is_quarantined_once_not_retried_every_run(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        text = config_text(base_url, FILE_CALENDAR).replace("rep@example.com", "gone@example.com")
        config_path = write(tmp_path, "config.yaml", text)

        assert (await run_status(config_path))[0] == OK  # a refused item is reported, not a failure
        assert (await run_status(config_path))[0] == OK
        posts = [r for r in simulator.requests if r["method"] == "POST"]

        state = State(load_config(config_path).state)
        [row] = state.quarantined("r")
        state.close()
    assert len(posts) == 1
    assert "gone@example.com" in row["reason"] or "HTTP 400" in row["reason"]


async def test_a_changed_quarantined_item_is_tried_again(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        text = config_text(base_url, FILE_CALENDAR).replace("rep@example.com", "gone@example.com")
        config_path = write(tmp_path, "config.yaml", text)
        await run_status(config_path)
        simulator.set_rep("gone@example.com", active=True)
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call, renamed", day(1))))

        assert (await run_status(config_path))[0] == OK
    assert set(simulator.org().tasks) == {"cal:a"}


async def test_sigkill_in_the_middle_of_a_first_sync_leaves_no_duplicate(tmp_path):
    events = [Vevent(f"e{n}", f"Meeting {n}", day(1 + n % 30, 8 + n % 10)) for n in range(300)]
    simulator = default()
    simulator.delay = 0.01
    async with salesask_server(simulator) as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*events))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))
        process = await start_sync(config_path)
        await wait_until(lambda: len(simulator.org().tasks) >= 60)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert 60 <= len(simulator.org().tasks) < 300
        simulator.delay = 0

        assert (await run_status(config_path))[
            0
        ] == OK  # the lock of the dead process is taken over

        tasks = simulator.org().tasks.values()
        assert sorted(t.event_id for t in tasks) == sorted(f"cal:e{n}" for n in range(300))
        assert len({t.id for t in tasks}) == 300
        state = State(load_config(config_path).state)
        assert len(state.links("r")) == 300
        assert state.pending_creates("r") == []
        state.close()


def test_check_config_reports_every_mistake_and_exits_2(tmp_path, capsys):
    text = """\
calendars:
  team:
    kind: ics_file
    path: team.ics
    poll: often
vendors:
  salesask:
    kind: salesask
    api_key: {env: SYNCD_TEST_MISSING_KEY}
routes:
  r:
    calendar: nowhere
    vendor: salesask
    rep: {email: rep@example.com}
"""
    os.environ.pop("SYNCD_TEST_MISSING_KEY", None)
    path = write(tmp_path, "config.yaml", text)

    assert main(["check-config", "-c", str(path)]) == USAGE

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("calendars.team.poll: ")
    assert (
        lines[1].startswith("vendors.salesask.api_key: ") and "SYNCD_TEST_MISSING_KEY" in lines[1]
    )
    assert lines[2].startswith("routes.r.calendar: ")


def test_a_missing_secret_is_named_and_no_secret_value_is_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEED_URL", "https://calendar.test/feed.ics?token=very-secret-token")
    text = config_text(
        "https://integrations.salesask.com", "    kind: ics_url\n    url: {env: FEED_URL}"
    )
    text = text.replace("api_key: sim-key", "api_key: {env: NOT_SET_ANYWHERE}")
    path = write(tmp_path, "config.yaml", text)

    assert main(["-c", str(path), "check-config"]) == USAGE

    out = capsys.readouterr()
    assert "NOT_SET_ANYWHERE" in out.err
    assert "very-secret-token" not in out.err + out.out


def test_unknown_route_is_a_usage_error(tmp_path, capsys):
    write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
    path = write(tmp_path, "config.yaml", config_text("http://127.0.0.1:9", FILE_CALENDAR))
    assert main(["-c", str(path), "sync", "nope"]) == USAGE
    assert "routes.nope: no such route" in capsys.readouterr().err


def test_status_before_any_run_says_so(tmp_path, capsys):
    path = write(tmp_path, "config.yaml", config_text("http://127.0.0.1:9", FILE_CALENDAR))
    assert main(["status", "-c", str(path)]) == OK
    assert "no route has run" in capsys.readouterr().out
    assert not (tmp_path / "state.db").exists()


async def test_a_long_retry_after_stops_the_run_instead_of_hammering(tmp_path):
    events = [Vevent(f"e{n}", f"Call {n}", day(1, 8 + n % 9)) for n in range(40)]
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(*events))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))
        await run_status(config_path)  # the first sync creates all 40
        write(
            tmp_path, "calendar.ics", calendar(*(replace(e, title=e.title + "!") for e in events))
        )
        simulator.requests.clear()
        simulator.fail_next(429, {"Retry-After": "900"}, times=100)

        status, error = await run_status(config_path)

    assert status == FAILED and "HTTP 429" in error
    assert len(simulator.requests) < 20  # a few in flight at most, not 40 writes x retries


async def test_a_short_retry_after_is_honoured_and_the_run_succeeds(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))
        simulator.fail_next(429, {"Retry-After": "0"}, times=2)

        assert await run_status(config_path) == (OK, "")

    assert set(simulator.org().tasks) == {"cal:a"}


async def test_a_refusal_while_confirming_an_absence_fails_the_run_cleanly(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))
        await run_status(config_path)
        simulator.remove("cal:a")  # the listing lacks it: syncd asks for it by key
        simulator.stall_next(0)  # the listing itself goes through
        simulator.fail_next(401)  # the confirming GET is refused

        status, error = await run_status(config_path)

        state = State(load_config(config_path).state)
        runs = state._rows("SELECT outcome FROM runs ORDER BY id")
    assert status == FAILED and "credentials refused" in error
    assert [r["outcome"] for r in runs] == ["ok", "failed"]


async def test_a_failed_confirming_get_leaves_that_record_alone_and_the_run_goes_on(tmp_path):
    async with salesask_server() as (simulator, base_url):
        write(tmp_path, "calendar.ics", calendar(Vevent("a", "Call", day(1))))
        config_path = write(tmp_path, "config.yaml", config_text(base_url, FILE_CALENDAR))
        await run_status(config_path)
        simulator.remove("cal:a")  # the listing lacks it: syncd asks for it by key
        write(
            tmp_path,
            "calendar.ics",
            calendar(Vevent("a", "Call", day(1)), Vevent("b", "New", day(2))),
        )
        simulator.stall_next(0)  # the listing goes through
        simulator.fail_next(400)  # the confirming GET fails, not with "not found"
        simulator.requests.clear()

        assert await run_status(config_path) == (OK, "")

        created = [r["body"]["event_id"] for r in simulator.requests if r["method"] == "POST"]
    assert created == ["cal:b"]  # "a" is unknown this run: neither re-created nor forgotten


def test_resync_needs_no_secret_and_says_when_no_daemon_runs(tmp_path, capsys):
    text = config_text("http://127.0.0.1:9", FILE_CALENDAR).replace(
        "api_key: sim-key", "api_key: {credential: not_here}"
    )
    path = write(tmp_path, "config.yaml", text)
    (tmp_path / "syncd.pid").write_text("999999\n")  # a pid that is not running

    assert main(["-c", str(path), "resync"]) == FAILED

    err = capsys.readouterr().err
    assert f"no syncd daemon runs for {tmp_path / 'state.db'} (its pid file is stale)" in err
