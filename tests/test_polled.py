"""`Polled`: a side listed at most once per its poll, kept current with syncd's writes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from syncd.errors import Unavailable
from syncd.model import Event, Listing, Window
from syncd.paged import PagedRecords
from syncd.polled import FOLD_AT, Polled
from syncd.simulators.memory import MemoryAdapter

WINDOW = Window(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
START = datetime(2027, 3, 10, 9, tzinfo=UTC)
EVENT = Event(START, START + timedelta(hours=1), title="Call")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


Side = TypeVar("Side", bound=MemoryAdapter)


def polled(side: Side) -> tuple[Side, Polled, Clock]:
    """`side` holding record "a", kept for a 10-minute poll on a clock the test moves."""
    clock = Clock()
    side.put("a", EVENT)
    return side, Polled(side, timedelta(minutes=10), clock), clock


async def test_a_listing_is_reused_until_the_poll_interval_has_passed():
    side, cached, clock = polled(MemoryAdapter())
    await cached.list(WINDOW)
    side.put("b", EVENT)  # somebody else adds a record: not seen until the next poll
    clock.now = 539  # 90% of the poll: a route firing early by its jitter still reuses it
    assert [r.key for r in (await cached.list(WINDOW)).records] == ["a"]
    clock.now = 540
    assert sorted(r.key for r in (await cached.list(WINDOW)).records) == ["a", "b"]
    assert side.listings == 2


async def test_syncds_own_writes_show_in_the_kept_listing():
    side, cached, _ = polled(MemoryAdapter())
    [a] = (await cached.list(WINDOW)).records
    await cached.create("c", EVENT)
    await cached.update(a, replace(EVENT, title="Renamed"), frozenset({"title"}))
    listing = await cached.list(WINDOW)
    assert {r.key: r.event.title for r in listing.records} == {"a": "Renamed", "c": "Call"}
    await cached.delete(next(r for r in listing.records if r.key == "c"))
    assert [r.key for r in (await cached.list(WINDOW)).records] == ["a"]
    assert side.listings == 1


async def test_routes_asking_at_once_share_one_fetch_and_expire_forces_a_new_one():
    side, cached, _ = polled(MemoryAdapter())
    await asyncio.gather(*(cached.list(WINDOW) for _ in range(5)))
    assert side.listings == 1
    cached.expire()
    await cached.list(WINDOW)
    assert side.listings == 2


async def test_a_failed_create_drops_the_kept_listing_so_the_next_run_lists_again():
    side, cached, _ = polled(MemoryAdapter())
    await cached.list(WINDOW)
    side.fail_writes = True
    with pytest.raises(Unavailable):
        await cached.create("c", EVENT)
    side.fail_writes = False
    await cached.list(WINDOW)
    assert side.listings == 2


class Repeating(MemoryAdapter):
    """A side whose next listing repeats its first record in place of its last (a paging
    glitch), then lists normally again."""

    glitch = False

    async def list(self, window: Window) -> Listing:
        listing = await super().list(window)
        if not self.glitch:
            return listing
        self.glitch = False
        records = listing.records
        return replace(listing, records=(*records[:-1], records[0]))


async def test_an_unchanged_side_listed_again_answers_the_very_listing_it_answered():
    """Listed again after its poll, a side that changed nothing gives back the listing
    (and record objects) it gave before, so a route settled on it stays quiet; a change
    anywhere makes a new listing that still holds the unchanged record objects."""
    side, cached, clock = polled(MemoryAdapter())
    side.put("b", EVENT)
    first = await cached.list(WINDOW)
    clock.now = 600
    assert await cached.list(WINDOW) is first and side.listings == 2
    side.put("b", replace(EVENT, title="Moved"))
    clock.now = 1200
    changed = await cached.list(WINDOW)
    old, new = ({r.key: r for r in listing.records} for listing in (first, changed))
    assert changed is not first and new["a"] is old["a"] and new["b"].event.title == "Moved"
    cached.expire(validators=False)  # a resync takes nothing from before
    again = await cached.list(WINDOW)
    assert again is not changed and {r.key: r for r in again.records}["a"] is not new["a"]


async def test_a_relisting_that_repeats_one_record_in_place_of_another_is_not_the_same():
    """The same number of records, each equal to one held before, yet one record is gone
    and another listed twice: it must read as a change, not as the listing before."""
    side, cached, clock = polled(Repeating())
    side.put("b", replace(EVENT, title="Other"))
    first = await cached.list(WINDOW)
    side.glitch, clock.now = True, 600
    glitched = await cached.list(WINDOW)
    assert glitched is not first
    assert sorted(r.key for r in glitched.records) == ["a", "a"]


async def test_a_paged_side_listed_again_unchanged_answers_the_very_listing_it_answered():
    """A vendor's packed pages (`syncd.paged`): listed again unchanged, the listing
    before (a route settled on it stays quiet); a write folds into the kept pages and
    the listing stays packed; a change anywhere is a new listing."""
    side, cached, clock = polled(MemoryAdapter(paged=True))
    first = await cached.list(WINDOW)
    clock.now = 600
    assert await cached.list(WINDOW) is first and isinstance(first.records, PagedRecords)

    await cached.create("b", replace(EVENT, title="New"))
    kept = cached.kept()
    assert kept is not None and isinstance(kept.records, PagedRecords)
    assert {r.key: r.event.title for r in kept.records} == {"a": "Call", "b": "New"}
    clock.now = 1200
    assert await cached.list(WINDOW) is kept  # the re-listing holds what was folded in
    side.put("b", replace(EVENT, title="Moved"))
    clock.now = 1800
    changed = await cached.list(WINDOW)
    assert changed is not kept and [r.event.title for r in changed.records] == ["Call", "Moved"]


async def test_a_paged_sides_writes_are_packed_as_they_come_not_held_until_it_is_listed():
    """Regression: a first sync's every read-back was held as a record object until the
    vendor was listed again, 10,000 of them for the bench's feed, and the daemon kept
    that high-water mark for good. They are packed into the kept listing every
    `FOLD_AT` writes now."""
    side, cached, _ = polled(MemoryAdapter(paged=True))
    await cached.list(WINDOW)
    held = []
    for n in range(3 * FOLD_AT + 5):
        await cached.create(f"k{n}", replace(EVENT, title=f"T{n}"))
        held.append(cached.pending)

    assert 0 < max(held) < FOLD_AT
    kept = cached.kept()
    assert kept is not None and isinstance(kept.records, PagedRecords)
    titles = {f"k{n}": f"T{n}" for n in range(3 * FOLD_AT + 5)}
    assert {r.key: r.event.title for r in kept.records} == {"a": "Call", **titles}
    assert side.listings == 1
