"""`ics_file`: one local .ics file holding a whole calendar; read-only for now.

The file is read and parsed in a worker thread on every poll. Absence is authoritative:
the file is the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncd.calendars.base import ReadOnly
from syncd.calendars.local import as_listing, parse_file
from syncd.ical import Limits
from syncd.model import Listing, Window


@dataclass
class IcsFile(ReadOnly):
    """A single .ics file."""

    calendar_id: str
    path: Path
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    kind = "ics_file"

    async def list(self, window: Window) -> Listing:
        """Every event of the file, expanded inside the window."""
        expansion = await parse_file(
            self.path, self.calendar_id, window, self.timezone, self.limits
        )
        return self.remember(as_listing(expansion))
