"""A run over many UIDs (a first sync, the first run after a restart) planned and
written a chunk of UIDs at a time (`RouteRunner._chunked`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.model import Event
from syncd.partition import Split
from syncd.polled import FOLD_AT, Polled
from syncd.runner import RouteRunner
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State
from tests.test_quiet import route_config

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


def chunked_route(
    tmp_path: Path, events: int, **settings: object
) -> tuple[RouteRunner, MemoryAdapter, MemoryAdapter]:
    """A route over `events` single events of a packed calendar, planned two UIDs at a
    time and written once two ops wait; the vendor's listing kept and paged as the daemon's is."""
    calendar_side, vendor = MemoryAdapter(windowed=False, packed=True), MemoryAdapter(paged=True)
    for n in range(events):
        start = NOW + n * HOUR
        calendar_side.put(f"VEVENT:e{n}:-", Event(start, start + HOUR, f"Call {n}"))
    runner = RouteRunner(
        "r",
        route_config(**settings),
        "cal",
        calendar_side,
        Polled(vendor, timedelta(minutes=5)),
        State(tmp_path / "s.db"),
        clock=lambda: NOW,
        chunk_weight=4,  # two UIDs of one record each
        write_batch=2,
    )
    return runner, calendar_side, vendor


async def test_a_first_sync_of_many_uids_holds_one_chunks_groups_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Seven UIDs, two a chunk: four chunks, never more than two groups decoded at once;
    every event is created, and the UIDs settle, so the next run writes nothing."""
    held: list[int] = []
    release = Split.release

    def counted(self: Split, uids: object) -> None:
        held.append(len(self._decoded))
        release(self, uids)  # type: ignore[arg-type]

    monkeypatch.setattr(Split, "release", counted)
    runner, _, vendor = chunked_route(tmp_path, 7)

    report = await runner.run()

    assert report.outcome == "ok" and report.counts["created"] == 7
    assert held == [2, 2, 2, 1] and runner.plans == 1
    assert sorted(op.vendor_key for op in report.ops) == sorted(vendor.items)
    assert all(op.source is None for op in report.ops)  # kept without their content
    assert set(runner.settled.signatures) == {f"e{n}" for n in range(7)}
    again = await runner.run()
    assert again.ops == () and vendor.writes == 7


async def test_a_first_sync_whose_writes_fold_into_the_kept_listing_midway_settles(
    tmp_path: Path,
):
    """More creates than the kept vendor listing takes before it packs them
    (`polled.FOLD_AT`): the run settles on the kept listing, which holds every one of
    them, and the next run writes nothing."""
    events = 2 * FOLD_AT + 3
    runner, _, vendor = chunked_route(tmp_path, events)
    vendor_side = runner.vendor
    assert isinstance(vendor_side, Polled)

    report = await runner.run()

    assert report.counts["created"] == events and vendor_side.pending < FOLD_AT
    kept, settled = vendor_side.kept(), runner._settling.last
    assert kept is not None and sorted(r.key for r in kept.records) == sorted(vendor.items)
    assert settled is not None and settled.vendor is kept
    again = await runner.run()
    assert again.ops == () and vendor.writes == events


async def test_the_guard_counts_the_deletes_of_every_chunk(tmp_path: Path):
    """Six events gone from the calendar, two UIDs a chunk: each chunk deletes only two
    (under the limit of three), but the guard counts all six and holds them; `release`
    carries them out."""
    limits = {"max_delete_count": 3, "max_delete_fraction": 0.5}
    runner, calendar_side, vendor = chunked_route(tmp_path, 6, safety=limits)
    await runner.run()
    for key in list(calendar_side.items):
        calendar_side.remove(key)

    held = await runner.run()

    assert held.outcome == "held" and len(held.held) == 6 and len(vendor.items) == 6
    assert {row["cal_key"] for row in runner.state.held_deletes("r")} == {
        f"VEVENT:e{n}:-" for n in range(6)
    }
    released = await runner.run(release=True)
    assert released.counts["deleted"] == 6 and vendor.items == {}


async def test_a_chunked_run_stops_after_the_chunk_whose_writes_failed(tmp_path: Path):
    """The vendor is down: the first chunk's two creates fail and no later chunk is
    tried; once it is back, the next run creates everything."""
    runner, _, vendor = chunked_route(tmp_path, 6)
    vendor.fail_writes = True
    failed = await runner.run()
    assert failed.outcome == "failed" and failed.counts["unavailable"] == 2
    assert "writes failed" in failed.error and vendor.items == {}
    vendor.fail_writes = False

    report = await runner.run()

    assert report.outcome == "ok" and report.counts["created"] == 6
    assert len(runner.state.links("r")) == 6
