"""What every calendar kind shares: a calendar holds every field, `get` answers from the
last listing, and a read-only kind refuses writes with one message."""

from __future__ import annotations

from syncd.adapter import Caps
from syncd.calendars.local import find
from syncd.errors import Gone, Rejected
from syncd.model import Event, Listing, Record


class Listed:
    """Mixin for calendar adapters that keep their last listing."""

    calendar_id: str
    _last: Listing | None = None

    def project(self, event: Event) -> Event:
        """A calendar holds every field."""
        return event

    def remember(self, listing: Listing) -> Listing:
        """Keep the listing for `get`; returns it."""
        self._last = listing
        return listing

    async def get(self, key: str) -> Record:
        """One event, from the last listing."""
        if self._last is None:
            raise Gone(f"{self.calendar_id}: nothing listed yet", key=key)
        return find(self._last, key)


class ReadOnly(Listed):
    """Mixin for calendar kinds syncd never writes."""

    caps = Caps(writable=False, deletable=False)
    kind = "calendar"

    def _refuse(self, key: str) -> Rejected:
        return Rejected(f"{self.calendar_id}: an {self.kind} calendar is read-only", key=key)

    async def create(self, key: str, event: Event) -> Record:
        """Refused: read-only."""
        raise self._refuse(key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Refused: read-only."""
        raise self._refuse(record.key)

    async def delete(self, record: Record) -> None:
        """Refused: read-only."""
        raise self._refuse(record.key)
