"""First sync of 10,000 occurrences into the Apptoto and Salesloft simulators.

1,000 weekly series of ten occurrences each, synced through the real runner into each
simulator under its rate limit with the clock scaled down (Apptoto 100 calls per 0.6 s
instead of per minute; Salesloft 600 cost per 0.5 s instead of per minute), Salesloft
once with bulk jobs and once with single upserts. Prints wall time, calls, 429s and the
occurrences the simulator holds afterwards.

    .venv/bin/python bench/vendor_first_sync.py [--series 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchlib import Vendor, calendar, served_run, simulator

CASES = [
    (
        "apptoto",
        Vendor(
            "apptoto", "username: sim-user\n    api_key: sim-key", (100, 0.6), "{calendar_id: 1}"
        ),
    ),
    (
        "salesloft, bulk jobs",
        Vendor("salesloft", "api_key: sim-key\n    bulk_threshold: 500", (600, 0.5)),
    ),
    (
        "salesloft, single upserts",
        Vendor("salesloft", "api_key: sim-key\n    bulk_threshold: 0", (600, 0.5)),
    ),
]


def spread(n: int) -> timedelta:
    return timedelta(hours=n % 9, days=n % 7)


def simulator_for(case: Vendor) -> Any:
    """The case's simulator; Salesloft's limit is a cost budget over a sliding window."""
    if case.kind != "salesloft":
        return simulator(case)
    made = importlib.import_module("syncd.simulators.salesloft").default()
    requests, per = case.limit
    made.budget, made.window, made.sliding = int(requests), per, True
    made.bulk_tick, made.bulk_per_tick = 0.01, 1000
    return made


def held(case: Vendor, simulator: Any) -> int:
    if case.kind == "salesloft":
        return len(simulator.events())
    return sum(1 for e in simulator.account().events.values() if not e.is_deleted)


async def measure(case: Vendor, series: int, folder: Path) -> dict[str, float]:
    simulator = simulator_for(case)
    text = calendar(
        series, "meeting", spread, "LAST-MODIFIED:20260101T000000Z", "RRULE:FREQ=WEEKLY;COUNT=10"
    )
    report, seconds, statuses = await served_run(case, simulator, text, folder)
    return {
        "seconds": seconds,
        "calls": sum(statuses.values()),
        "429": statuses[429],
        "created": report.counts.get("created", 0),
        "held": held(case, simulator),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.series * 10} occurrences ({args.series} weekly series of 10), first sync")
    print(f"{'run':<28}{'limit':>12}{'seconds':>9}{'calls':>8}{'429s':>6}{'created':>9}{'held':>7}")
    for name, case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            f = asyncio.run(measure(case, args.series, Path(folder)))
        limit = f"{case.limit[0]:g}/{case.limit[1]:g}s"
        print(
            f"{name:<28}{limit:>12}{f['seconds']:>9.1f}{f['calls']:>8.0f}"
            f"{f['429']:>6.0f}{f['created']:>9.0f}{f['held']:>7.0f}"
        )


if __name__ == "__main__":
    main()
