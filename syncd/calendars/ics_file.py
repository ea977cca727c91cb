"""`ics_file`: one local .ics file holding a whole calendar; read-only for now.

The file is read on every poll and parsed (in a worker thread) only when it changed.
Absence is authoritative: the file is the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncd.calendars.base import ReadOnly
from syncd.calendars.local import read_bytes
from syncd.calendars.reuse import Expansions
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
    expansions: Expansions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)

    async def list(self, window: Window) -> Listing:
        """Every event of the file, expanded inside the window; parsed again only when
        the file's bytes changed."""
        data = await read_bytes(self.path, self.calendar_id)
        return self.remember(await self.expansions.listing(self.path.name, data, window))
