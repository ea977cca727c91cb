"""The adapter contract: what every vendor adapter must do against its simulator.

A vendor's test module subclasses `AdapterContract` and provides two fixtures:

- `adapter`: the vendor adapter bound to its simulator over real loopback HTTP, built on
  an `HttpClient` with `budget=None` and a generous timeout;
- `sim`: that simulator, which offers `fail_next(status, headers, times)`,
  `stall_next(seconds)` and a `page_size` (the longest page it serves).

Everything vendor-specific sits behind the fixtures and hook methods below (`event`,
`window`, `key_for`, `nth`, `edited`, `small_pages`, `shorten_timeout`): override those,
not the tests. Record keys are read back from what `create` returns, so vendors whose
ids are generated server-side pass too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from syncd.adapter import Adapter
from syncd.errors import AuthFailed, Gone, RateLimited, Unavailable
from syncd.model import Event, Person, Window, changed_fields, fingerprint

WINDOW = Window(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


class Simulator(Protocol):
    """What the contract needs of a vendor simulator."""

    page_size: int

    def fail_next(
        self, status: int, headers: Mapping[str, str] | None = None, times: int = 1
    ) -> None: ...

    def stall_next(self, seconds: float, times: int = 1) -> None: ...


class AdapterContract:
    """Every vendor adapter passes these; subclasses provide `adapter` and `sim`."""

    slow_timeout = 0.3  # the client timeout for the slow-answer test, in seconds
    stall_seconds = 30.0  # how long the simulator holds that answer (released at teardown)

    # -- hooks -----------------------------------------------------------------------------

    @pytest.fixture
    def window(self) -> Window:
        """The listing window; the sample events start inside it."""
        return WINDOW

    @pytest.fixture
    def event(self) -> Event:
        """A sample calendar event, with more than most vendors hold."""
        return Event(
            start=datetime(2027, 3, 10, 14, 0, 30, 250_000, tzinfo=UTC),
            end=datetime(2027, 3, 10, 15, tzinfo=UTC),
            title="Discovery call",
            description="Agenda: pricing",
            location="Room 4",
            owner="rep@example.com",
            contact=Person(email="john@example.com", name="John Doe", partstat="ACCEPTED"),
        )

    def key_for(self, n: int) -> str:
        """The vendor key of the n-th sample record (as the runner would choose it)."""
        return f"team:uid-{n}@example.com"

    def nth(self, event: Event, n: int) -> Event:
        """The n-th of several events: pairs share a start, so ties must page stably."""
        shift = timedelta(hours=n // 2)
        return replace(event, start=event.start + shift, end=event.end + shift, title=f"#{n}")

    def edited(self, event: Event) -> tuple[Event, frozenset[str]]:
        """An edit of one field, and the fields it changes."""
        return replace(event, title=f"{event.title} (moved)"), frozenset({"title"})

    def small_pages(self, sim: Any, size: int) -> None:
        """Make the simulator serve pages of at most `size` records."""
        sim.page_size = size

    def shorten_timeout(self, adapter: Any, seconds: float) -> None:
        """Make the adapter's client give up after `seconds`."""
        adapter.http.timeout = seconds

    # -- the contract ----------------------------------------------------------------------

    async def test_created_record_is_listed_as_projected(
        self, adapter: Adapter, event: Event, window: Window
    ) -> None:
        made = await adapter.create(self.key_for(1), event)
        listing = await adapter.list(window)
        [listed] = [r for r in listing.records if r.key == made.key]
        fields = adapter.caps.fields
        assert listing.complete and not listing.problems
        assert fingerprint(adapter.project(event), fields) == fingerprint(listed.event, fields)
        assert (listed.version, listed.event) == (made.version, made.event)

    async def test_projection_is_stable_on_what_is_read_back(
        self, adapter: Adapter, event: Event
    ) -> None:
        made = await adapter.create(self.key_for(1), event)
        assert adapter.project(made.event) == made.event
        assert adapter.project(adapter.project(event)) == adapter.project(event)

    async def test_get_round_trips(self, adapter: Adapter, event: Event) -> None:
        made = await adapter.create(self.key_for(1), event)
        got = await adapter.get(made.key)
        assert (got.key, got.event, got.version) == (made.key, made.event, made.version)

    async def test_update_changes_only_that_field_and_bumps_the_version(
        self, adapter: Adapter, event: Event
    ) -> None:
        made = await adapter.create(self.key_for(1), event)
        new, changed = self.edited(event)
        updated = await adapter.update(made, new, changed)
        fields = adapter.caps.fields
        assert changed_fields(made.event, updated.event, fields) == changed & fields
        assert fingerprint(updated.event, fields) == fingerprint(adapter.project(new), fields)
        assert updated.version != made.version
        assert (await adapter.get(made.key)).event == updated.event

    async def test_deleted_record_is_gone(self, adapter: Adapter, event: Event) -> None:
        made = await adapter.create(self.key_for(1), event)
        await adapter.delete(made)
        with pytest.raises(Gone):
            await adapter.get(made.key)

    async def test_deleting_a_record_already_gone_is_fine(
        self, adapter: Adapter, event: Event
    ) -> None:
        made = await adapter.create(self.key_for(1), event)
        await adapter.delete(made)
        await adapter.delete(made)

    async def test_unknown_key_is_gone(self, adapter: Adapter) -> None:
        with pytest.raises(Gone):
            await adapter.get(self.key_for(404))

    async def test_listing_crosses_pages(
        self, adapter: Adapter, sim: Simulator, event: Event, window: Window
    ) -> None:
        self.small_pages(sim, 2)
        made = [await adapter.create(self.key_for(n), self.nth(event, n)) for n in range(7)]
        listing = await adapter.list(window)
        assert sorted(r.key for r in listing.records) == sorted(m.key for m in made)
        assert listing.complete

    async def test_429_becomes_rate_limited_with_retry_after(
        self, adapter: Adapter, sim: Simulator, window: Window
    ) -> None:
        sim.fail_next(429, {"Retry-After": "7"})
        with pytest.raises(RateLimited) as caught:
            await adapter.list(window)
        assert caught.value.retry_after == 7

    async def test_503_becomes_unavailable(
        self, adapter: Adapter, sim: Simulator, event: Event
    ) -> None:
        sim.fail_next(503)
        with pytest.raises(Unavailable) as caught:
            await adapter.create(self.key_for(1), event)
        assert not isinstance(caught.value, RateLimited)

    async def test_slow_answer_becomes_unavailable(
        self, adapter: Adapter, sim: Simulator, window: Window
    ) -> None:
        self.shorten_timeout(adapter, self.slow_timeout)
        sim.stall_next(self.stall_seconds)
        with pytest.raises(Unavailable):
            await adapter.list(window)

    async def test_401_becomes_auth_failed(
        self, adapter: Adapter, sim: Simulator, event: Event
    ) -> None:
        made = await adapter.create(self.key_for(1), event)
        sim.fail_next(401)
        with pytest.raises(AuthFailed):
            await adapter.get(made.key)
