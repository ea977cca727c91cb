"""What the vendor benches share: one route run of a config, timed, with every response
status counted on the client (an aiohttp TraceConfig)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

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


async def timed_run(path: Path, route: str = "r") -> tuple[RunReport, float, Counter[int]]:
    """Run `route` of the config once: its report, the seconds it took, the statuses."""
    settings = load_config(path)
    state = State(settings.state)
    trace, statuses = status_counter()
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            [runner] = registry.runners(settings, state, session, [route]).values()
            started = time.perf_counter()
            report = await runner.run()
            return report, time.perf_counter() - started, statuses
    finally:
        state.close()
