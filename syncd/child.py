"""A route's run in a process of its own: the daemon's first sync of a route.

A first sync writes every event of the calendar (10,000 for a big feed), and the objects
it makes on the way leave CPython's arenas with free pools the daemon would keep for
months: a daemon that did the bench feed's first sync itself re-syncs it in 78-80 MiB,
one whose first sync ran in another process in 74-77 (`bench/daemon_rss.py`). So with
`daemon: {first_sync: process}` (the default) the daemon hands a route without links to
`python -m syncd.child`, whose memory goes back to the system when it exits.

The daemon's side (`run_apart`) holds the route's lock and passes its holder on: the
child takes the lock over under the same holder, so nobody else's run slips in between.
The child reads the config's text on stdin (the text the daemon runs on, not the file
as it is now: an edited file is only read on SIGHUP) and writes its run report as one
JSON line on stdout. It starts a session of its own, so a Ctrl-C in a terminal reaches
the daemon only; the daemon forwards a stop to it as SIGTERM, and the child then stops
as the daemon does: the operation in flight finishes and is recorded.

    python -m syncd.child --config PATH --holder HOLDER ROUTE < CONFIG_TEXT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from syncd import heap, logs, registry
from syncd.config import Config, load_config
from syncd.errors import ConfigError
from syncd.http import new_session
from syncd.runner import RunReport, log_run
from syncd.state import State

log = logging.getLogger("syncd.daemon")
CONFIG_REFUSED = 2  # the child's exit status when the config text does not load


# --- the daemon's side -------------------------------------------------------------------


async def run_apart(
    config: Config, text: str, route: str, holder: str, stop: asyncio.Event, state: State
) -> RunReport | None:
    """Run `route` in a child process; its report, or None when the child refused the
    config (the caller then runs the route itself). A child that dies without a report
    fails the run: recorded in `state` (its run closed) and logged here."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *child_command(config.source, route, holder),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    log.info("route %s: first sync in a process of its own (pid %d)", route, process.pid)
    forward = asyncio.create_task(_stop_when(stop, route, process))
    try:
        out, _ = await process.communicate(text.encode())
    finally:
        forward.cancel()
        if process.returncode is None:  # we were cancelled: the child stops as we would
            _terminate(process)
    status = process.returncode
    assert status is not None
    if status == CONFIG_REFUSED:
        return None
    report = read_report(route, status, out)
    if report is None:
        report = RunReport(route, "failed", error=f"the first sync's process {_ended(status)}")
        previous = state.fail_unfinished_runs(route, report.error)
        log_run(report, previous, time.monotonic() - started)
    return report


def child_command(config_path: Path, route: str, holder: str) -> list[str]:
    """The child's command line: this interpreter, this package."""
    module = [sys.executable, "-m", "syncd.child"]
    return [*module, "--config", str(config_path), "--holder", holder, route]


async def _stop_when(stop: asyncio.Event, route: str, process: asyncio.subprocess.Process) -> None:
    await stop.wait()
    log.info("route %s: asking its first sync (pid %d) to stop", route, process.pid)
    _terminate(process)


def _terminate(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)


def read_report(route: str, status: int, out: bytes) -> RunReport | None:
    """The report line the child printed last, or None when it printed none."""
    lines = out.decode(errors="replace").strip().splitlines()
    if status != 0 or not lines:
        return None
    try:
        return from_json(route, json.loads(lines[-1]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _ended(status: int) -> str:
    if status < 0:
        return f"was killed by signal {-status}"
    return "gave no report" if status == 0 else f"exited with status {status}"


def to_json(report: RunReport) -> dict[str, Any]:
    """What the daemon reads back of a child's report."""
    return {
        "route": report.route,
        "outcome": report.outcome,
        "counts": report.counts,
        "error": report.error,
        "retry_after": report.retry_after,
        "write_seconds": report.write_seconds,
    }


def from_json(route: str, data: dict[str, Any]) -> RunReport:
    """A report line of the child, as the daemon keeps it (without its operations)."""
    if data["route"] != route or data["outcome"] not in ("ok", "failed", "held"):
        raise ValueError(f"not a report of route {route}: {data!r}")
    retry_after = data["retry_after"]
    return RunReport(
        route,
        data["outcome"],
        counts={str(key): int(value) for key, value in data["counts"].items()},
        error=str(data["error"]),
        retry_after=None if retry_after is None else float(retry_after),
        write_seconds=float(data["write_seconds"]),
    )


# --- the child's side --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.child",
        description="Run one route once for `syncd run`; the config's text on stdin.",
    )
    parser.add_argument("--config", required=True, type=Path, help="where the config lives")
    parser.add_argument("--holder", required=True, help="the daemon's holder of the lock")
    parser.add_argument("route")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the route once; print its report as one JSON line. Exit status 0 with a
    report (whatever its outcome), 2 when the config text does not load."""
    args = _parser().parse_args(argv)
    heap.share_one_arena()  # before the first worker thread: see `syncd.heap`
    try:
        config = load_config(args.config, text=sys.stdin.buffer.read().decode("utf-8"))
    except (ConfigError, UnicodeDecodeError) as exc:
        for problem in getattr(exc, "problems", [str(exc)]):
            print(problem, file=sys.stderr)
        return CONFIG_REFUSED
    if args.route not in config.routes:
        print(f"routes.{args.route}: no such route in {config.source}", file=sys.stderr)
        return CONFIG_REFUSED
    logs.setup(config.log.level, config.log.format)
    report = asyncio.run(_run(config, args.route, args.holder))
    print(json.dumps(to_json(report)), flush=True)
    return 0


async def _run(config: Config, route: str, holder: str) -> RunReport:
    """The route's run under the daemon's lock holder; SIGTERM or SIGINT stop it after
    the operation in flight, as they stop the daemon."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with closing(State(config.state)) as state:
        async with new_session() as session:
            runner = registry.runners(config, state, session, [route])[route]
            return await replace(runner, stop=stop).run_locked(holder, trigger="daemon")


if __name__ == "__main__":
    sys.exit(main())
