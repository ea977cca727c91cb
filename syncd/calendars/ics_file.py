"""`ics_file`: one local .ics file holding a whole calendar; writable.

The file is read on every poll and parsed (in a worker thread) only when it changed.
Absence is authoritative: the file is the calendar. A write reads the file, edits the
one event (`rewrite.py`: an occurrence becomes an override or an EXDATE, never a
flattened series) and replaces the file atomically; writes are serialised, so
concurrent edits of one run never lose each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncd.adapter import Caps
from syncd.calendars.base import Listed
from syncd.calendars.local import as_listing, find, parse_file, read_bytes, write_atomically
from syncd.calendars.reuse import Expansions
from syncd.calendars.rewrite import (
    add_event,
    held_fields,
    read_back_window,
    remove_event,
    write_event,
)
from syncd.ical import Limits
from syncd.model import SINGLE, Event, Listing, OccurrenceKey, Record, Window


@dataclass
class IcsFile(Listed):
    """A single .ics file."""

    calendar_id: str
    path: Path
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    caps = Caps()
    expansions: Expansions = field(init=False, repr=False)
    _writing: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)

    async def list(self, window: Window) -> Listing:
        """Every event of the file, expanded inside the window; parsed again only when
        the file's bytes changed."""
        data = await read_bytes(self.path, self.calendar_id)
        return self.remember(await self.expansions.listing(self.path.name, data, window))

    def forget_validators(self) -> None:
        """Parse the file again next time (a full resync, SIGUSR2)."""
        self.expansions.forget()

    async def create(self, key: str, event: Event) -> Record:
        """A new single event appended to the file, or an occurrence restored in its series."""
        occurrence = OccurrenceKey.parse(self.calendar_id, key)
        if occurrence.rid == SINGLE:
            added: _Edit = lambda data, new: add_event(data, occurrence, new)  # noqa: E731
            return await self._edit(occurrence, event, added)
        return await self._edit(occurrence, event, self._writer(occurrence, held_fields(event)))

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """The changed fields written into the event (an occurrence: its override)."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        return await self._edit(occurrence, event, self._writer(occurrence, changed))

    def _writer(self, occurrence: OccurrenceKey, changed: frozenset[str]) -> _Edit:
        def edit(data: bytes, event: Event) -> bytes:
            return write_event(data, occurrence, event, changed, self.timezone)

        return edit

    async def delete(self, record: Record) -> None:
        """The event removed from the file; an occurrence gets an EXDATE in its series."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        async with self._writing:
            data = await read_bytes(self.path, self.calendar_id)
            left = await asyncio.to_thread(remove_event, data, occurrence, True)
            assert left is not None  # keep_empty: the file stays
            await asyncio.to_thread(write_atomically, self.path, left)

    async def _edit(self, occurrence: OccurrenceKey, event: Event, edit: _Edit) -> Record:
        async with self._writing:
            data = await read_bytes(self.path, self.calendar_id)
            edited = await asyncio.to_thread(edit, data, event)
            await asyncio.to_thread(write_atomically, self.path, edited)
        return await self._read_back(occurrence, event)

    async def _read_back(self, occurrence: OccurrenceKey, event: Event) -> Record:
        """The record as the file now holds it: what the next listing will see."""
        window = read_back_window(occurrence, event)
        zone, limits = self.timezone, self.limits
        expansion = await parse_file(self.path, self.calendar_id, window, zone, limits)
        return find(as_listing(expansion), occurrence.text)


_Edit = Callable[[bytes, Event], bytes]
"""An edit of the file's bytes that writes one event."""
