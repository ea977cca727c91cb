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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import timed_run

REP = "rep@example.com"


@dataclass(frozen=True)
class Case:
    """One run: a simulator, its scaled limit, the vendor stanza and route options."""

    name: str
    kind: str
    limit: tuple[float, float]  # requests (or cost), per seconds
    vendor: str
    options: str = "{}"


CASES = [
    Case(
        "apptoto",
        "apptoto",
        (100, 0.6),
        "username: sim-user\n    api_key: sim-key",
        "{calendar_id: 1}",
    ),
    Case(
        "salesloft, bulk jobs", "salesloft", (600, 0.5), "api_key: sim-key\n    bulk_threshold: 500"
    ),
    Case(
        "salesloft, single upserts",
        "salesloft",
        (600, 0.5),
        "api_key: sim-key\n    bulk_threshold: 0",
    ),
]


def calendar(series: int) -> str:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd bench//EN"]
    for n in range(series):
        at = start + timedelta(hours=n % 9, days=n % 7)
        lines += [
            "BEGIN:VEVENT",
            f"UID:first-{n}",
            "DTSTAMP:20260101T000000Z",
            "LAST-MODIFIED:20260101T000000Z",
            f"DTSTART:{at:%Y%m%dT%H%M%SZ}",
            f"DTEND:{at + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Meeting {n}",
            "RRULE:FREQ=WEEKLY;COUNT=10",
            f"ORGANIZER:mailto:{REP}",
            "ATTENDEE;CN=Customer:mailto:customer@client.test",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def config(case: Case, base_url: str) -> str:
    requests, per = case.limit
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics, limits: {{per_calendar: 200000}}}}
vendors:
  v:
    kind: {case.kind}
    base_url: {base_url}
    {case.vendor}
    rate_limit: {{requests: {requests:g}, per: {int(per * 1000)}ms}}
    concurrency: 8
routes:
  r:
    calendar: cal
    vendor: v
    rep: {{email: {REP}}}
    window: {{past: 1d, future: 90d}}
    options: {case.options}
"""


def simulator_for(case: Case, module: Any) -> Any:
    simulator = module.default()
    requests, per = case.limit
    if case.kind == "salesloft":
        simulator.budget, simulator.window, simulator.sliding = int(requests), per, True
        simulator.bulk_tick, simulator.bulk_per_tick = 0.01, 1000
    else:
        simulator.rate_limit = (requests, per)
    return simulator


def held(case: Case, simulator: Any) -> int:
    if case.kind == "salesloft":
        return len(simulator.events())
    return sum(1 for e in simulator.account().events.values() if not e.is_deleted)


async def measure(case: Case, series: int, folder: Path) -> dict[str, float]:
    module = importlib.import_module(f"syncd.simulators.{case.kind}")
    simulator = simulator_for(case, module)
    runner = await module.serve("127.0.0.1", 0, sim=simulator)
    try:
        (folder / "calendar.ics").write_text(calendar(series), newline="")
        path = folder / "config.yaml"
        path.write_text(config(case, module.base_url(runner)))
        figures = await timed_sync(path)
        return figures | {"held": held(case, simulator)}
    finally:
        await runner.cleanup()


async def timed_sync(path: Path) -> dict[str, float]:
    report, seconds, statuses = await timed_run(path)
    return {
        "seconds": seconds,
        "calls": sum(statuses.values()),
        "429": statuses[429],
        "created": report.counts.get("created", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.series * 10} occurrences ({args.series} weekly series of 10), first sync")
    print(f"{'run':<28}{'limit':>12}{'seconds':>9}{'calls':>8}{'429s':>6}{'created':>9}{'held':>7}")
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            f = asyncio.run(measure(case, args.series, Path(folder)))
        limit = f"{case.limit[0]:g}/{case.limit[1]:g}s"
        print(
            f"{case.name:<28}{limit:>12}{f['seconds']:>9.1f}{f['calls']:>8.0f}"
            f"{f['429']:>6.0f}{f['created']:>9.0f}{f['held']:>7.0f}"
        )


if __name__ == "__main__":
    main()
