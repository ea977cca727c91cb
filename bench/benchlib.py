"""What the vendor benches share: a generated calendar, a config for one simulated
vendor, and one route run of it, timed, with every response status counted on the
client (an aiohttp TraceConfig)."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from first_sync import REP

from syncd import registry
from syncd.config import load_config
from syncd.runner import RunReport
from syncd.state import State


def status_counter() -> tuple[aiohttp.TraceConfig, Counter[int]]:
    """A trace config and the counter of response statuses it fills."""
    statuses: Counter[int] = Counter()

    async def on_end(session: Any, context: SimpleNamespace, params: Any) -> None:
        statuses[params.response.status] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    return trace, statuses


async def timed_run(path: Path) -> tuple[RunReport, float, Counter[int]]:
    """Run the config's route once: its report, the seconds it took, the statuses."""
    settings = load_config(path)
    state = State(settings.state)
    trace, statuses = status_counter()
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            [runner] = registry.runners(settings, state, session, ["r"]).values()
            started = time.perf_counter()
            report = await runner.run()
            return report, time.perf_counter() - started, statuses
    finally:
        state.close()


def calendar(events: int, name: str, spread: Callable[[int], timedelta], *extra: str) -> str:
    """`events` VEVENTs from tomorrow on, the n-th at `spread(n)` after it, each with
    the rep as organiser, a customer, and the `extra` lines (an RRULE, say)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd bench//EN"]
    for n in range(events):
        at = start + spread(n)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{name}-{n}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{at:%Y%m%dT%H%M%SZ}",
            f"DTEND:{at + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{name.title()} {n}",
            *extra,
            f"ORGANIZER:mailto:{REP}",
            "ATTENDEE;CN=Customer:mailto:customer@client.test",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


@dataclass(frozen=True)
class Vendor:
    """One simulated vendor account: its kind, config stanza, route options, and the
    scaled rate limit both the simulator and syncd get (requests or cost, per seconds)."""

    kind: str
    stanza: str
    limit: tuple[float, float]
    options: str = "{}"


def simulator(vendor: Vendor) -> Any:
    """The vendor's default simulator under the vendor's scaled limit."""
    made = importlib.import_module(f"syncd.simulators.{vendor.kind}").default()
    made.rate_limit = vendor.limit
    return made


def config(vendor: Vendor, base_url: str) -> str:
    """A config syncing `calendar.ics` into the vendor at `base_url` under its limit."""
    requests, per = vendor.limit
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_file, path: calendar.ics, limits: {{per_calendar: 200000}}}}
vendors:
  v:
    kind: {vendor.kind}
    base_url: {base_url}
    {vendor.stanza}
    rate_limit: {{requests: {requests:g}, per: {int(per * 1000)}ms}}
    concurrency: 8
routes:
  r:
    calendar: cal
    vendor: v
    rep: {{email: {REP}}}
    window: {{past: 1d, future: 90d}}
    options: {vendor.options}
"""


async def served_run(
    vendor: Vendor, simulator: Any, text: str, folder: Path
) -> tuple[RunReport, float, Counter[int]]:
    """Serve `simulator` on loopback, sync the calendar `text` into it once, timed."""
    module = importlib.import_module(f"syncd.simulators.{vendor.kind}")
    runner = await module.serve("127.0.0.1", 0, sim=simulator)
    try:
        (folder / "calendar.ics").write_text(text, newline="")
        path = folder / "config.yaml"
        path.write_text(config(vendor, module.base_url(runner)))
        return await timed_run(path)
    finally:
        await runner.cleanup()
