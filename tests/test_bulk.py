"""The bulk path: many vendor upserts in one call when the vendor has one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.adapter import Caps
from syncd.errors import AdapterError, Rejected
from syncd.model import Event, Record
from syncd.runner import RouteRunner
from syncd.settings import RouteConfig
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State

NOW = datetime(2027, 3, 1, tzinfo=UTC)


class BulkMemory(MemoryAdapter):
    """A vendor in memory with a bulk path that refuses keys in `reject`."""

    def __init__(self, bulk_from: int) -> None:
        super().__init__(Caps(bulk_from=bulk_from))
        self.batches: list[int] = []

    async def upsert_many(self, items: Sequence[tuple[str, Event]]) -> list[Record | AdapterError]:
        self.batches.append(len(items))
        results: list[Record | AdapterError] = []
        for key, event in items:
            if key in self.reject:
                results.append(Rejected(f"refused {key}", key=key))
            else:
                results.append(await self.create(key, event))
        return results


def runner(tmp_path: Path, vendor: MemoryAdapter, events: int) -> RouteRunner:
    calendar = MemoryAdapter(windowed=False)
    for n in range(events):
        start = NOW + timedelta(days=1, hours=n)
        calendar.put(f"VEVENT:e{n}:-", Event(start, start + timedelta(hours=1), title=f"E{n}"))
    route = RouteConfig.model_validate(
        {
            "calendar": "cal",
            "vendor": "v",
            "window": {"past": "1d", "future": "30d"},
            "rep": {"email": "rep@example.com"},
        }
    )
    return RouteRunner(
        "r", route, "cal", calendar, vendor, State(tmp_path / "s.db"), clock=lambda: NOW
    )


async def test_upserts_above_the_threshold_go_in_one_bulk_call(tmp_path):
    vendor = BulkMemory(bulk_from=3)
    vendor.reject = {"cal:e4"}

    report = await runner(tmp_path, vendor, 6).run()

    assert vendor.batches == [6]
    assert report.counts["created"] == 5 and report.counts["quarantined"] == 1
    assert sorted(vendor.items) == [f"cal:e{n}" for n in (0, 1, 2, 3, 5)]
    second = await runner(tmp_path, vendor, 6).run()
    assert second.counts.get("created", 0) == 0 and vendor.batches == [6]  # parked, no loop


async def test_below_the_threshold_each_upsert_goes_alone(tmp_path):
    vendor = BulkMemory(bulk_from=10)
    report = await runner(tmp_path, vendor, 4).run()
    assert vendor.batches == [] and report.counts["created"] == 4
