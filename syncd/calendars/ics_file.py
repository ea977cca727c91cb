"""`ics_file`: one local .ics file holding a whole calendar; read-only for now.

The file is read and parsed in a worker thread on every poll. Absence is authoritative:
the file is the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncd.adapter import Caps
from syncd.calendars.local import as_listing, find, parse_file
from syncd.errors import Rejected
from syncd.ical import Limits
from syncd.model import Event, Listing, Record, Window


@dataclass
class IcsFile:
    """A single .ics file."""

    calendar_id: str
    path: Path
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    caps = Caps(writable=False, deletable=False)
    _last: Listing | None = field(default=None, repr=False)

    def project(self, event: Event) -> Event:
        """A calendar holds every field."""
        return event

    async def list(self, window: Window) -> Listing:
        """Every event of the file, expanded inside the window."""
        expansion = await parse_file(
            self.path, self.calendar_id, window, self.timezone, self.limits
        )
        self._last = as_listing(expansion)
        return self._last

    async def get(self, key: str) -> Record:
        """One event, from the last listing."""
        if self._last is None:
            raise Rejected(f"{self.calendar_id}: list before get", key=key)
        return find(self._last, key)

    async def create(self, key: str, event: Event) -> Record:
        """ics_file calendars are read-only."""
        raise Rejected(f"{self.calendar_id}: an ics_file calendar is read-only", key=key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """ics_file calendars are read-only."""
        raise Rejected(f"{self.calendar_id}: an ics_file calendar is read-only", key=record.key)

    async def delete(self, record: Record) -> None:
        """ics_file calendars are read-only."""
        raise Rejected(f"{self.calendar_id}: an ics_file calendar is read-only", key=record.key)
