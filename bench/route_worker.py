"""The route runs of `vs_vdirsyncer.py`, in a process of their own that imports only syncd.

One route runner kept across runs, its sides wrapped in `Polled` as the daemon wraps
them (the feed fetched every run, the vendor's listing kept for its poll). The bench
sends `run` on stdin and reads one JSON line per run: wall seconds (perf_counter), CPU
seconds (process_time, which counts the worker threads), this process's peak RSS in MiB
during the run (its high-water mark reset before each run through
/proc/self/clear_refs), the report's counts and the seconds it spent writing. `quit`
ends it. Running here rather than in the bench's own process keeps the bench's imports
and buffers (its feed server client, the vdirsyncer launcher) out of the figure.

    python bench/route_worker.py CONFIG
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
from rss import peak_rss_mib, reset_peak_rss

from syncd import registry
from syncd.config import load_config
from syncd.polled import Polled
from syncd.runner import RouteRunner
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
        """One timed route run, as the JSON line the bench reads."""
        resettable = reset_peak_rss()
        wall, cpu = time.perf_counter(), time.process_time()
        report = await self.runner.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()) if v)
        return {
            "wall": wall,
            "cpu": cpu,
            "rss": peak_rss_mib(),
            "resettable": resettable,
            "note": "" if report.outcome == "ok" else f"{report.outcome}: {report.error}",
            "summary": f"{report.outcome}; {counts or 'nothing to do'}",
            "writing": report.write_seconds,
        }

    async def close(self) -> None:
        await self.session.close()
        self.state.close()


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
