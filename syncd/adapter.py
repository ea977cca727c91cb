"""The adapter contract: what both sides of a route look like to the runner.

A calendar and a vendor account are the same thing to the sync core: a set of
versioned records inside a window that can be listed, fetched, created, updated and
deleted. What a side can do is declared as data in `Caps`. Adapters translate and
talk; they never sleep, retry or touch the state store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from syncd.errors import AdapterError
from syncd.model import EVENT_FIELDS, Absence, Event, Listing, Record, Window


@dataclass(frozen=True)
class Caps:
    """What a side can do, as data."""

    writable: bool = True
    updatable: bool = True  # can change a record it holds (YSUITE: only when configured)
    deletable: bool = True
    partial_update: bool = False  # update() sends only the changed fields
    server_ids: bool = False  # the vendor generates ids: creates carry a marker (model.py)
    holds_cancelled: bool = True  # can store status=cancelled; else cancelling deletes
    fields: frozenset[str] = EVENT_FIELDS  # the Event fields it stores and reads back
    absence: Absence = "authoritative"  # how a record missing from a listing is confirmed gone
    bulk_from: int = 0  # this many pending upserts or more go through `upsert_many`; 0: never


class Adapter(Protocol):
    """One calendar, or one vendor account bound to one route."""

    caps: Caps

    def project(self, event: Event) -> Event:
        """The event as this side would read it back (pure): what it can hold of it."""
        ...

    async def list(self, window: Window) -> Listing:
        """Every record inside the window; raise when the listing is not whole."""
        ...

    async def get(self, key: str) -> Record:
        """One record by its key; raise `Gone` when it does not exist."""
        ...

    async def create(self, key: str, event: Event) -> Record:
        """Create (or, for upsert vendors, create-or-replace) the record `key`."""
        ...

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Write `event` over `record`; `changed` names the fields that differ."""
        ...

    async def delete(self, record: Record) -> None:
        """Delete the record; a record already gone is not an error."""
        ...


@runtime_checkable
class KeepsListing(Protocol):
    """A side that keeps its last listing, with its own writes in it (the daemon's)."""

    fetches: int  # listings it asked of the side itself
    written: int  # writes folded into its kept listing

    def kept(self) -> Listing | None:
        """The listing it would answer now without asking the side, or None."""
        ...


@runtime_checkable
class BulkAdapter(Adapter, Protocol):
    """A side that can also write many records in one go (`Caps.bulk_from` > 0)."""

    async def upsert_many(self, items: Sequence[tuple[str, Event]]) -> list[Record | AdapterError]:
        """Create or update each (key, event); one result per item, in order."""
        ...
