"""`Polled`: a side listed at most once per its poll, kept current with syncd's writes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from syncd.errors import Unavailable
from syncd.model import Event, Window
from syncd.polled import Polled
from syncd.simulators.memory import MemoryAdapter

WINDOW = Window(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
START = datetime(2027, 3, 10, 9, tzinfo=UTC)
EVENT = Event(START, START + timedelta(hours=1), title="Call")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def polled() -> tuple[MemoryAdapter, Polled, Clock]:
    side, clock = MemoryAdapter(), Clock()
    side.put("a", EVENT)
    return side, Polled(side, timedelta(minutes=10), clock), clock


async def test_a_listing_is_reused_until_the_poll_interval_has_passed():
    side, cached, clock = polled()
    await cached.list(WINDOW)
    side.put("b", EVENT)  # somebody else adds a record: not seen until the next poll
    clock.now = 539  # 90% of the poll: a route firing early by its jitter still reuses it
    assert [r.key for r in (await cached.list(WINDOW)).records] == ["a"]
    clock.now = 540
    assert sorted(r.key for r in (await cached.list(WINDOW)).records) == ["a", "b"]
    assert side.listings == 2


async def test_syncds_own_writes_show_in_the_kept_listing():
    side, cached, _ = polled()
    [a] = (await cached.list(WINDOW)).records
    await cached.create("c", EVENT)
    await cached.update(a, replace(EVENT, title="Renamed"), frozenset({"title"}))
    listing = await cached.list(WINDOW)
    assert {r.key: r.event.title for r in listing.records} == {"a": "Renamed", "c": "Call"}
    await cached.delete(next(r for r in listing.records if r.key == "c"))
    assert [r.key for r in (await cached.list(WINDOW)).records] == ["a"]
    assert side.listings == 1


async def test_routes_asking_at_once_share_one_fetch_and_expire_forces_a_new_one():
    side, cached, _ = polled()
    await asyncio.gather(*(cached.list(WINDOW) for _ in range(5)))
    assert side.listings == 1
    cached.expire()
    await cached.list(WINDOW)
    assert side.listings == 2


async def test_a_failed_create_drops_the_kept_listing_so_the_next_run_lists_again():
    side, cached, _ = polled()
    await cached.list(WINDOW)
    side.fail_writes = True
    with pytest.raises(Unavailable):
        await cached.create("c", EVENT)
    side.fail_writes = False
    await cached.list(WINDOW)
    assert side.listings == 2
