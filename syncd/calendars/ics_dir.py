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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import icalendar

from syncd.adapter import Caps
from syncd.calendars.base import Listed
from syncd.calendars.local import as_listing, find, parse_file, read_bytes, write_atomically
from syncd.calendars.reuse import Expansions
from syncd.errors import Gone, Malformed, Rejected
from syncd.ical import Limits, parse_for_rewrite
from syncd.model import SINGLE, Event, Listing, OccurrenceKey, Problem, Record, Window

PRODID = "-//syncd//syncd//EN"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


@dataclass
class IcsDir(Listed):
    """A folder of .ics files (vdir)."""

    calendar_id: str
    path: Path
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    caps = Caps()

    _files: dict[str, Path] = field(default_factory=dict, repr=False)  # UID -> its file
    expansions: Expansions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)

    async def list(self, window: Window) -> Listing:
        """Every event of every file. A file that cannot be read is a problem, and makes
        the listing incomplete: its UIDs are unknown, so nothing may count as deleted."""
        if not self.path.is_dir():
            raise Malformed(f"{self.calendar_id}: {self.path} is not a folder")
        files = sorted(self.path.glob("*.ics"))
        for gone in set(self.expansions.kept) - {file.name for file in files}:
            del self.expansions.kept[gone]
        results = [await self._read(file, window) for file in files]
        records = tuple(r for listing in results for r in listing.records)
        problems = tuple(p for listing in results for p in listing.problems)
        complete = all(listing.complete for listing in results)
        return self.remember(Listing(records, problems, complete))

    async def _read(self, file: Path, window: Window) -> Listing:
        try:
            data = await read_bytes(file, self.calendar_id)
            listing = await self.expansions.listing(file.name, data, window)
        except Malformed as exc:
            key = OccurrenceKey(self.calendar_id, file.stem).text
            return Listing((), (Problem(key, str(exc)),), complete=False)
        for record in listing.records:
            # vdir file names are hrefs, often but not always the UID: remember which
            self._files[OccurrenceKey.parse(self.calendar_id, record.key).uid] = file
        return listing

    async def create(self, key: str, event: Event) -> Record:
        """Write a new single event as `<uid>.ics` (or over the file syncd wrote for it
        before a crash: the UIDs syncd makes are its own)."""
        occurrence = self._single(key)
        target = self._file_for(occurrence.uid)
        if target.exists() and _uid_in(target) != occurrence.uid:
            raise Rejected(f"{self.calendar_id}: {target.name} holds another event", key=key)
        data = new_calendar(occurrence.uid, event).to_ical()
        await asyncio.to_thread(write_atomically, target, data)
        return await self._read_back(target, key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Rewrite the changed fields in the event's file, keeping everything else."""
        occurrence = self._single(record.key)
        target = self._file_for(occurrence.uid)
        await asyncio.to_thread(_rewrite, target, occurrence.uid, event, changed)
        return await self._read_back(target, record.key)

    async def delete(self, record: Record) -> None:
        """Remove the event's file."""
        occurrence = self._single(record.key)
        await asyncio.to_thread(self._file_for(occurrence.uid).unlink, missing_ok=True)

    async def _read_back(self, file: Path, key: str) -> Record:
        """The record as the file now holds it: what was written, as a reader sees it."""
        nothing = Window(EPOCH, EPOCH)  # single events are listed whatever the window
        expansion = await parse_file(file, self.calendar_id, nothing, self.timezone, self.limits)
        return find(as_listing(expansion), key)

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
        return self._files.get(uid) or self.path / f"{_UNSAFE.sub('_', uid)}.ics"


def _uid_in(file: Path) -> str:
    try:
        calendar = parse_for_rewrite(file.read_bytes())
    except Exception:  # an unreadable file is not ours to overwrite
        return ""
    return next((str(v.get("uid")) for v in calendar.walk("VEVENT")), "")


def new_calendar(uid: str, event: Event) -> icalendar.Calendar:
    """A VCALENDAR with one VEVENT for a new event."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    vevent = icalendar.Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", datetime.now(UTC))
    vevent.add("sequence", 0)
    set_fields(vevent, event, _PROPERTIES)
    calendar.add_component(vevent)
    return calendar


_PROPERTIES = {
    "start": "dtstart",
    "end": "dtend",
    "title": "summary",
    "description": "description",
    "location": "location",
    "status": "status",
}
"""The model fields syncd writes into a VEVENT, and their properties. Organizer and
attendees are left as the calendar has them."""


def set_fields(vevent: icalendar.Event, event: Event, changed: Iterable[str]) -> None:
    """Write the changed fields into a VEVENT, leaving every other property as it is."""
    for name in changed:
        prop = _PROPERTIES.get(name)
        if prop is None:
            continue
        if prop == "dtend":
            vevent.pop("duration", None)  # DTEND and DURATION must not both be present
        value = getattr(event, name)
        vevent.pop(prop, None)
        if value:
            vevent.add(prop, value.upper() if prop == "status" else value)
    vevent.pop("last-modified", None)
    vevent.add("last-modified", datetime.now(UTC))


def _rewrite(path: Path, uid: str, event: Event, changed: frozenset[str]) -> None:
    try:
        calendar = parse_for_rewrite(path.read_bytes())
    except FileNotFoundError as exc:
        raise Gone(f"{path.name} is gone", key=uid) from exc
    for vevent in calendar.walk("VEVENT"):
        if isinstance(vevent, icalendar.Event) and str(vevent.get("uid")) == uid:
            set_fields(vevent, event, changed)
            vevent["sequence"] = int(vevent.get("sequence", 0)) + 1
            write_atomically(path, calendar.to_ical())
            return
    raise Gone(f"{path.name} has no event {uid}", key=uid)
