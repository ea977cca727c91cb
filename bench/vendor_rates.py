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
import tempfile
from datetime import timedelta
from pathlib import Path

from benchlib import Vendor, calendar, served_run, simulator
from first_sync import REP

CASES = [
    Vendor("salesask", "api_key: sim-key", (25, 0.5)),
    Vendor("leadsquared", "access_key: sim-access\n    secret_key: sim-secret", (25, 0.5)),
    Vendor(
        "ysuite",
        "access_key: sim-access\n    secret_key: sim-secret\n"
        f"    account_timezone: Europe/Berlin\n    users: {{{REP}: 7}}",
        (20, 0.5),
        "{cstid: 10}",
    ),
]


def spread(n: int) -> timedelta:
    return timedelta(hours=n % 9, days=n // 9)


async def measure(case: Vendor, events: int, folder: Path) -> dict[str, float]:
    made = simulator(case)
    text = calendar(events, "call", spread)
    report, seconds, statuses = await served_run(case, made, text, folder)
    return {
        "seconds": seconds,
        "requests": sum(statuses.values()),
        "429": statuses[429],
        "writes": made.writes,
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
        requests, per = case.limit
        print(
            f"{case.kind:<13}{f'{requests:g}/{per:g}s':>14}{figures['requests']:>10.0f}"
            f"{figures['writes']:>8.0f}{figures['seconds']:>9.2f}{rate:>8.1f}"
            f"{rate / (requests / per):>10.2f}{figures['429']:>6.0f}"
        )


if __name__ == "__main__":
    main()
