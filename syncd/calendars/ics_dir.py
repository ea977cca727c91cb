"""`ics_dir`: a vdir folder, one .ics file per event UID; writable.

Writes are atomic (temp file, fsync, rename), so a reader or a crash never sees half a
file. A file that cannot be parsed is quarantined under the UID its name carries, and
that UID's links are left alone (their absence means nothing this run). Writing a
single occurrence back into a recurring series is not supported yet: such writes are
refused and quarantined, never applied by flattening the series.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import icalendar

from syncd.adapter import Caps
from syncd.calendars.base import Listed
from syncd.calendars.local import as_listing, parse_file, write_atomically
from syncd.errors import Gone, Malformed, Rejected
from syncd.ical import Limits, parse_for_rewrite
from syncd.model import SINGLE, Event, Listing, OccurrenceKey, Problem, Record, Window

PRODID = "-//syncd//syncd//EN"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


@dataclass
class IcsDir(Listed):
    """A folder of .ics files (vdir)."""

    calendar_id: str
    path: Path
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    caps = Caps()

    async def list(self, window: Window) -> Listing:
        """Every event of every file; a broken file is a problem, not a failed listing."""
        if not self.path.is_dir():
            raise Malformed(f"{self.calendar_id}: {self.path} is not a folder")
        files = sorted(self.path.glob("*.ics"))
        results = [await self._read(file, window) for file in files]
        records = tuple(r for listing in results for r in listing.records)
        problems = tuple(p for listing in results for p in listing.problems)
        return self.remember(Listing(records, problems))

    async def _read(self, file: Path, window: Window) -> Listing:
        try:
            expansion = await parse_file(file, self.calendar_id, window, self.timezone, self.limits)
        except Malformed as exc:
            key = OccurrenceKey(self.calendar_id, file.stem).text
            return Listing((), (Problem(key, str(exc)),))
        return as_listing(expansion)

    async def create(self, key: str, event: Event) -> Record:
        """Write a new single event as `<uid>.ics`."""
        occurrence = self._single(key)
        target = self._file_for(occurrence.uid)
        if target.exists():
            raise Rejected(f"{self.calendar_id}: {target.name} already exists", key=key)
        data = new_calendar(occurrence.uid, event).to_ical()
        await asyncio.to_thread(write_atomically, target, data)
        return Record(key, event, version=key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Rewrite the event's changed fields in its file, keeping everything else."""
        occurrence = self._single(record.key)
        target = self._file_for(occurrence.uid)
        await asyncio.to_thread(_rewrite, target, occurrence.uid, event)
        return Record(record.key, event, version=record.version)

    async def delete(self, record: Record) -> None:
        """Remove the event's file."""
        occurrence = self._single(record.key)
        await asyncio.to_thread(self._file_for(occurrence.uid).unlink, missing_ok=True)

    def _single(self, key: str) -> OccurrenceKey:
        occurrence = OccurrenceKey.parse(self.calendar_id, key)
        if occurrence.rid != SINGLE:
            raise Rejected(
                f"{self.calendar_id}: writing one occurrence of a recurring "
                "series back is not supported yet",
                key=key,
            )
        return occurrence

    def _file_for(self, uid: str) -> Path:
        return self.path / f"{_UNSAFE.sub('_', uid)}.ics"


def new_calendar(uid: str, event: Event) -> icalendar.Calendar:
    """A VCALENDAR with one VEVENT for a new event."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    vevent = icalendar.Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", datetime.now(UTC))
    vevent.add("sequence", 0)
    set_fields(vevent, event)
    calendar.add_component(vevent)
    return calendar


def set_fields(vevent: icalendar.Event, event: Event) -> None:
    """Write the model's fields into a VEVENT, leaving its other properties as they are."""
    values = {
        "dtstart": event.start,
        "dtend": event.end,
        "summary": event.title,
        "description": event.description,
        "location": event.location,
        "status": event.status.upper(),
    }
    vevent.pop("duration", None)
    for name, value in values.items():
        vevent.pop(name, None)
        if value:
            vevent.add(name, value)
    vevent.pop("last-modified", None)
    vevent.add("last-modified", datetime.now(UTC))


def _rewrite(path: Path, uid: str, event: Event) -> None:
    try:
        calendar = parse_for_rewrite(path.read_bytes())
    except FileNotFoundError as exc:
        raise Gone(f"{path.name} is gone", key=uid) from exc
    for vevent in calendar.walk("VEVENT"):
        if (
            isinstance(vevent, icalendar.Event)
            and str(vevent.get("uid")) == uid
            and ("rrule" not in vevent)
        ):
            set_fields(vevent, event)
            vevent["sequence"] = int(vevent.get("sequence", 0)) + 1
            write_atomically(path, calendar.to_ical())
            return
    raise Gone(f"{path.name} has no single event {uid}", key=uid)
