"""The `syncd` command line: parse, then call the runner, the state or the demo.

Exit status (DESIGN.md section 4): 0 success, 1 a route failed (or no daemon runs),
2 a config or usage error, 3 the safety guard held deletes back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from syncd import heap, logs, registry, report
from syncd.config import Config, check_config, find_config_path, load_config, state_path
from syncd.daemon import PID_NAME, Daemon, DaemonRunning, running_pid
from syncd.errors import ConfigError, RouteBusy
from syncd.http import new_session
from syncd.runner import RouteRunner, RunReport
from syncd.simulators import SIMULATORS
from syncd.state import State, StateError

OK, FAILED, USAGE, HELD = 0, 1, 2, 3


def parser() -> argparse.ArgumentParser:
    """The argument parser; `-c/--config` works before or after the command."""
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help="config file (default: $SYNCD_CONFIG, else /etc/syncd/config.yaml)",
    )
    main = argparse.ArgumentParser(
        prog="syncd",
        parents=[config],
        description="Two-way sync between calendars and sales tools.",
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[config], help=text, description=text)

    add("run", "the daemon: every route on its schedule, until SIGTERM")
    add("sync", "one full pass of the named routes (default all)").add_argument(
        "routes", nargs="*", metavar="ROUTE"
    )
    plan = add("plan", "dry run: what a sync would do, per item; writes nothing")
    plan.add_argument("routes", nargs="*", metavar="ROUTE")
    plan.add_argument("--json", action="store_true", help="print JSON for machines")
    add("status", "per route: last run, outcome, counts, problems").add_argument("route", nargs="?")
    add("check-config", "validate the config and resolve every secret")
    for name, text in (
        ("release", "carry out the deletes the safety guard held back"),
        ("retry", "put quarantined items back into the next run"),
        ("reset", "forget the route's state; the next run re-adopts records"),
    ):
        add(name, text).add_argument("route", metavar="ROUTE")
    add("resync", "ask the running daemon to resync").add_argument("--full", action="store_true")
    simulate = add("simulate", "serve a vendor simulator on loopback")
    simulate.add_argument("kind", choices=sorted(SIMULATORS))
    simulate.add_argument("--port", type=int, default=8765, help="loopback port (default 8765)")
    demo = add("demo", "sample calendar -> Sales Ask simulator, in ./syncd-demo/")
    demo.add_argument("--once", action="store_true", help="exit after the first pass")
    demo.add_argument("--dir", type=Path, default=Path("syncd-demo"))
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = parser().parse_args(argv)
    heap.share_one_arena()  # before the first worker thread: see `syncd.heap`
    try:
        return _dispatch(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return USAGE
    except (RouteBusy, StateError) as exc:  # a busy route for reset/retry; an old state
        print(exc, file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from syncd.demo import run_demo  # the demo serves a simulator: loaded only here

        return asyncio.run(run_demo(args.dir, once=args.once))
    if args.command == "simulate":
        from syncd.demo import simulate

        return asyncio.run(simulate(args.kind, args.port))
    path = find_config_path(getattr(args, "config", None))
    if args.command == "check-config":
        return _check(path)
    if args.command == "resync":
        return resync(state_path(path), full=args.full)
    config = load_config(path)
    logs.setup(config.log.level, config.log.format)
    handler = {
        "sync": _sync_command,
        "plan": _plan_command,
        "status": _status,
        "release": _release,
        "retry": _retry,
        "reset": _reset,
        "run": _run,
    }
    return handler[args.command](config, args)


def _check(path: Path) -> int:
    problems = check_config(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return USAGE
    config = load_config(path)
    print(
        f"{path}: OK ({len(config.calendars)} calendars, {len(config.vendors)} vendors, "
        f"{len(config.routes)} routes)"
    )
    for warning in _changes_vendors_cannot_follow(config):
        print(f"warning: {warning}", file=sys.stderr)
    return OK


def _changes_vendors_cannot_follow(config: Config) -> list[str]:
    """What the state shows a route synced with that its vendor cannot change now:
    Apptoto cannot move events between calendars."""
    if not config.state.exists():
        return []
    warnings = []
    with closing(State(config.state, read_only=True)) as state:
        for name, route in config.routes.items():
            before = state.settings_of(name)
            if config.vendors[route.vendor].kind != "apptoto" or not before:
                continue
            old, new = before["options"].get("calendar_id"), route.options.get("calendar_id")
            if before["vendor_kind"] == "apptoto" and old is not None and old != new:
                warnings.append(
                    f"routes.{name}.options.calendar_id: Apptoto cannot move events between "
                    f"calendars; the events synced so far stay in calendar {old}, new ones go "
                    f"to {new}"
                )
    return warnings


def _route_names(config: Config, asked: Sequence[str]) -> list[str]:
    unknown = [name for name in asked if name not in config.routes]
    if unknown:
        raise ConfigError([f"routes.{name}: no such route in {config.source}" for name in unknown])
    return list(asked) or list(config.routes)


def _sync_command(config: Config, args: argparse.Namespace) -> int:
    reports = asyncio.run(sync(config, _route_names(config, args.routes)))
    for item in reports:
        print(report.summary(item))
    return exit_status(reports)


def _release(config: Config, args: argparse.Namespace) -> int:
    reports = asyncio.run(sync(config, _route_names(config, [args.route]), release=True))
    print(report.summary(reports[0]))
    return exit_status(reports)


def _plan_command(config: Config, args: argparse.Namespace) -> int:
    reports = asyncio.run(sync(config, _route_names(config, args.routes), dry_run=True))
    if args.json:
        print(report.plan_json(reports))
    else:
        rows = [row for item in reports for row in report.plan_rows(item)]
        print(report.table(rows, report.PLAN_COLUMNS) if rows else "nothing to do")
        for item in reports:
            if item.error:
                print(f"{item.route}: {item.error}", file=sys.stderr)
    return exit_status(reports)


def exit_status(reports: Sequence[RunReport]) -> int:
    """1 when a route failed, else 3 when deletes were held, else 0."""
    outcomes = {item.outcome for item in reports}
    return FAILED if "failed" in outcomes else HELD if "held" in outcomes else OK


async def sync(
    config: Config, names: Sequence[str], *, dry_run: bool = False, release: bool = False
) -> list[RunReport]:
    """Run the named routes once, side by side, each under its lock."""
    state = _open_state(config, dry_run)
    try:
        async with new_session() as session:
            runners = registry.runners(config, state, session, names)
            return list(
                await asyncio.gather(
                    *(_run_one(runner, dry_run, release) for runner in runners.values())
                )
            )
    finally:
        state.close()


def _open_state(config: Config, dry_run: bool) -> State:
    """The state store; a dry run opens it read-only, or in memory when there is none."""
    if not dry_run:
        return State(config.state)
    return State(config.state, read_only=True) if config.state.exists() else State(None)


async def _run_one(runner: RouteRunner, dry_run: bool, release: bool) -> RunReport:
    if dry_run:
        return await runner.run(dry_run=True)
    return await runner.run_locked(_holder("release" if release else "sync"), release=release)


def _status(config: Config, args: argparse.Namespace) -> int:
    names = _route_names(config, [args.route] if args.route else [])
    if not config.state.exists():
        print(f"no state yet at {config.state}: no route has run")
        return OK
    state = State(config.state, read_only=True)
    try:
        rows = {row["route"]: row for row in state.status()}
        for name in names:
            details = {
                "notes": state.notes(name),
                "pending": state.pending_creates(name),
                "quarantined": state.quarantined(name),
                "held": state.held_deletes(name),
                "conflicts": state.conflicts(name),
            }
            print(report.route_status(name, rows.get(name), state.last_run(name), details))
    finally:
        state.close()
    return OK


def _retry(config: Config, args: argparse.Namespace) -> int:
    [route] = _route_names(config, [args.route])
    with closing(State(config.state)) as state, state.locked(route, _holder("retry")):
        count = state.queue_retry(route)
    print(f"{route}: {count} quarantined items will be tried again on the next run")
    return OK


def _reset(config: Config, args: argparse.Namespace) -> int:
    [route] = _route_names(config, [args.route])
    with closing(State(config.state)) as state, state.locked(route, _holder("reset")):
        state.reset(route)
    print(f"{route}: state forgotten; the next run re-adopts records by vendor key")
    return OK


def _holder(command: str) -> str:
    """Who holds a route's lock: unique per run, not per process (a daemon runs many
    syncs in one process)."""
    return f"syncd {command} pid {os.getpid()} run {secrets.token_hex(4)}"


def resync(state: Path, *, full: bool) -> int:
    """Signal the daemon that runs on `state` (SIGUSR1, or SIGUSR2 for a full resync)."""
    pid_file = state.with_name(PID_NAME)
    pid = running_pid(pid_file)
    if pid is None:
        stale = " (its pid file is stale)" if pid_file.exists() else ""
        print(f"no syncd daemon runs for {state}{stale}", file=sys.stderr)
        return FAILED
    os.kill(pid, signal.SIGUSR2 if full else signal.SIGUSR1)
    print(f"asked the daemon (pid {pid}) for a {'full ' if full else ''}resync")
    return OK


def _run(config: Config, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(Daemon(config.source).run())
    except DaemonRunning as exc:
        print(exc, file=sys.stderr)
        return FAILED
