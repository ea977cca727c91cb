"""The route runs of `vs_vdirsyncer.py`, in a process of their own that imports only syncd.

One route runner kept across runs, its sides wrapped in `Polled` as the daemon wraps
them (the feed fetched every run, the vendor's listing kept for its poll). The bench
sends `run` on stdin and reads one JSON line per run: wall seconds (perf_counter), CPU
seconds (process_time, which counts the worker threads), this process's peak RSS in MiB
during the run (its high-water mark reset before each run through
/proc/self/clear_refs), the report's counts and the seconds it spent writing. `quit`
ends it. Running here rather than in the bench's own process keeps the bench's imports
and buffers (its feed server client, the vdirsyncer launcher) out of the figure.

As the daemon does (`daemon: {first_sync: process}`, the default), a run of the route
while it has no links goes to a child process (`syncd.child`) under this process's lock;
its CPU is the child's and this process's, and its MiB the two processes' peaks added
(both are alive through it; the child's peak is its ru_maxrss, which Linux takes as at
least this process's RSS when the child was forked, about 60 MiB: below its own peak).

    python bench/route_worker.py CONFIG
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from rss import peak_rss_mib, reset_peak_rss

from syncd import child, registry
from syncd.config import load_config
from syncd.polled import Polled
from syncd.runner import RouteRunner, RunReport
from syncd.state import State


class RouteRuns:
    """One route runner kept across runs, its sides wrapped as the daemon wraps them."""

    def __init__(self, config_path: Path) -> None:
        self.settings = load_config(config_path)
        self.state = State(self.settings.state)
        self.session = aiohttp.ClientSession()
        [made] = registry.runners(self.settings, self.state, self.session, ["bench"]).values()
        vendor_poll = self.settings.vendors["salesask"].poll
        self.runner: RouteRunner = replace(
            made,
            calendar=Polled(made.calendar, timedelta(0)),  # the feed re-fetched every run
            vendor=Polled(made.vendor, vendor_poll),  # as the daemon keeps the vendor's
        )

    async def run(self) -> dict[str, object]:
        """One timed route run, as the JSON line the bench reads. A first sync handed to
        a child is followed by this process's own first run (`then`): the run the daemon
        makes at its next poll, which reads everything the child left in the state."""
        if self.settings.daemon.first_sync == "process" and not self.state.has_links("bench"):
            figures = await self._timed(self._apart, apart=True)
            figures["then"] = await self._timed(self.runner.run)
            return figures
        return await self._timed(self.runner.run)

    async def _timed(
        self, work: Callable[[], Awaitable[RunReport]], apart: bool = False
    ) -> dict[str, Any]:
        resettable = reset_peak_rss()
        wall, cpu = time.perf_counter(), time.process_time() + _children_cpu()
        report = await work()
        wall, cpu = time.perf_counter() - wall, time.process_time() + _children_cpu() - cpu
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()) if v)
        return {
            "wall": wall,
            "cpu": cpu,
            "rss": peak_rss_mib() + (_children_peak_mib() if apart else 0.0),
            "resettable": resettable,
            "note": "" if report.outcome == "ok" else f"{report.outcome}: {report.error}",
            "summary": f"{report.outcome}; {counts or 'nothing to do'}",
            "writing": report.write_seconds,
        }

    async def _apart(self) -> RunReport:
        """The run in a child process, as the daemon hands over a first sync."""
        holder = f"bench route worker pid {os.getpid()}"
        text = self.settings.source.read_text()
        with self.state.locked("bench", holder):
            report = await child.run_apart(
                self.settings, text, "bench", holder, asyncio.Event(), self.state
            )
        for side in (self.runner.calendar, self.runner.vendor):
            if isinstance(side, Polled):
                side.expire(validators=False)  # the child wrote: list afresh
        assert report is not None, "the child refused the config"
        return report

    async def close(self) -> None:
        await self.session.close()
        self.state.close()


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _children_peak_mib() -> float:
    """The largest peak RSS of a waited-for child (here: the first sync's)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def serve(config_path: Path) -> None:
    """Answer `run` lines on stdin until `quit` (or the end of stdin)."""
    runs = RouteRuns(config_path)
    try:
        while (line := sys.stdin.readline().strip()) not in ("", "quit"):
            if line != "run":
                raise SystemExit(f"route_worker: unknown command {line!r}")
            print(json.dumps(await runs.run()), flush=True)
    finally:
        await runs.close()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
