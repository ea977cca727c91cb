"""Sustained rate against each vendor simulator at its rate limit, clock scaled.

For each vendor kind: serve its simulator with a rate limit of N calls per W seconds
(W scaled down so the whole bench takes well under a minute), give syncd the same
budget, sync a calendar of `--events` new events through the real runner, and count
every response status on the client (an aiohttp TraceConfig). Prints requests per
second as a fraction of the limit (the target is 0.9 or more) and the number of 429s
(the target is zero).

    .venv/bin/python bench/vendor_rates.py [--events 300]
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
    """One vendor: its simulator module, its scaled limit, and its config stanza."""

    kind: str
    requests: int
    per: float
    vendor: str
    route_options: str = "{}"


CASES = [
    Case("salesask", 25, 0.5, "api_key: sim-key"),
    Case("leadsquared", 25, 0.5, "access_key: sim-access\n    secret_key: sim-secret"),
    Case(
        "ysuite",
        20,
        0.5,
        "access_key: sim-access\n    secret_key: sim-secret\n"
        "    account_timezone: Europe/Berlin\n    users: {rep@example.com: 7}",
        "{cstid: 10}",
    ),
]


def calendar(events: int) -> str:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd bench//EN"]
    for n in range(events):
        at = start + timedelta(hours=n % 9, days=n // 9)
        lines += [
            "BEGIN:VEVENT",
            f"UID:rate-{n}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{at:%Y%m%dT%H%M%SZ}",
            f"DTEND:{at + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Call {n}",
            f"ORGANIZER:mailto:{REP}",
            "ATTENDEE;CN=Customer:mailto:customer@client.test",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


def config(case: Case, base_url: str) -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics}}
vendors:
  v:
    kind: {case.kind}
    base_url: {base_url}
    {case.vendor}
    rate_limit: {{requests: {case.requests}, per: {int(case.per * 1000)}ms}}
    concurrency: 8
routes:
  r:
    calendar: cal
    vendor: v
    rep: {{email: {REP}}}
    window: {{past: 1d, future: 90d}}
    options: {case.route_options}
"""


async def measure(case: Case, events: int, folder: Path) -> dict[str, float]:
    module = importlib.import_module(f"syncd.simulators.{case.kind}")
    simulator = module.default()
    simulator.rate_limit = (case.requests, case.per)
    runner = await module.serve("127.0.0.1", 0, sim=simulator)
    try:
        (folder / "calendar.ics").write_text(calendar(events), newline="")
        path = folder / "config.yaml"
        path.write_text(config(case, module.base_url(runner)))
        return await timed_sync(path, simulator)
    finally:
        await runner.cleanup()


async def timed_sync(path: Path, simulator: Any) -> dict[str, float]:
    report, seconds, statuses = await timed_run(path)
    return {
        "seconds": seconds,
        "requests": sum(statuses.values()),
        "429": statuses[429],
        "writes": simulator.writes,
        "created": report.counts.get("created", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.events} new events synced into each simulator; limits scaled ~10x down")
    print(
        f"{'vendor':<13}{'limit':>14}{'requests':>10}{'writes':>8}{'seconds':>9}"
        f"{'req/s':>8}{'of limit':>10}{'429s':>6}"
    )
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            figures = asyncio.run(measure(case, args.events, Path(folder)))
        rate = figures["requests"] / figures["seconds"]
        limit = case.requests / case.per
        print(
            f"{case.kind:<13}{f'{case.requests}/{case.per:g}s':>14}{figures['requests']:>10.0f}"
            f"{figures['writes']:>8.0f}{figures['seconds']:>9.2f}{rate:>8.1f}"
            f"{rate / limit:>10.2f}{figures['429']:>6.0f}"
        )


if __name__ == "__main__":
    main()
