"""`ics_dir`: a vdir folder, one .ics file per event UID; writable.

Writes are atomic (temp file, fsync, rename), so a reader or a crash never sees half a
file. A file that cannot be parsed is quarantined under the UID its name carries, and
that UID's links are left alone (their absence means nothing this run). One occurrence
of a series is written as a RECURRENCE-ID override or an EXDATE in the series' file
(`rewrite.py`); a series is never flattened.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from syncd.adapter import Caps
from syncd.calendars.base import Listed
from syncd.calendars.local import as_listing, find, parse_file, read_bytes, write_atomically
from syncd.calendars.reuse import Expansions
from syncd.calendars.rewrite import (
    held_fields,
    read_back_window,
    remove_event,
    uids,
    write_event,
)
from syncd.errors import Gone, Malformed, Rejected
from syncd.ical import Limits
from syncd.model import SINGLE, Event, Listing, OccurrenceKey, Problem, Record, Window
from syncd.packed import by_uid, joined

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
    _locks: dict[Path, asyncio.Lock] = field(default_factory=dict, repr=False)
    expansions: Expansions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)

    async def list(self, window: Window) -> Listing:
        """Every event of every file. A file that cannot be read is a problem, and makes
        the listing incomplete: its UIDs are unknown, so nothing may count as deleted."""
        if not self.path.is_dir():
            raise Malformed(f"{self.calendar_id}: {self.path} is not a folder")
        files = sorted(self.path.glob("*.ics"))
        self.expansions.retain({file.name for file in files})
        results = [await self._read(file, window) for file in files]
        records = joined([listing.records for listing in results])
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
        for uid in by_uid(listing.records).uids():
            # vdir file names are hrefs, often but not always the UID: remember which
            self._files[uid] = file
        return listing

    def forget_validators(self) -> None:
        """Parse every file again next time (a full resync, SIGUSR2)."""
        self.expansions.forget()

    async def create(self, key: str, event: Event) -> Record:
        """A new single event as `<uid>.ics`. When the file holding the UID exists (the
        event is there but outside the route's rules, or syncd wrote it before a crash)
        the event is written into it, keeping the file's other events and properties;
        an occurrence goes into its series the same way."""
        occurrence = OccurrenceKey.parse(self.calendar_id, key)
        target = self._file_for(occurrence.uid)
        data = await _existing(target)
        if data is not None or occurrence.rid != SINGLE:
            if data is not None and occurrence.uid not in await asyncio.to_thread(uids, data):
                raise Rejected(f"{self.calendar_id}: {target.name} holds another event", key=key)
            return await self._edit(target, occurrence, event, held_fields(event))
        async with self._lock(target):
            await asyncio.to_thread(
                write_atomically, target, write_event(None, occurrence, event, ())
            )
        return await self._read_back(target, occurrence, event)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Rewrite the changed fields in the event's file (an occurrence: its override),
        keeping everything else."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        return await self._edit(self._file_for(occurrence.uid), occurrence, event, changed)

    async def delete(self, record: Record) -> None:
        """Remove the event's file (or its part of a shared file); an occurrence gets an
        EXDATE in its series."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        target = self._file_for(occurrence.uid)
        async with self._lock(target):
            data = await _existing(target)
            if data is None:
                return  # already gone
            left = await asyncio.to_thread(remove_event, data, occurrence)
            if left is None:
                await asyncio.to_thread(target.unlink, missing_ok=True)
            else:
                await asyncio.to_thread(write_atomically, target, left)

    async def _edit(
        self, target: Path, occurrence: OccurrenceKey, event: Event, changed: frozenset[str]
    ) -> Record:
        async with self._lock(target):
            data = await _existing(target)
            if data is None:
                raise Gone(f"{self.calendar_id}: {target.name} is gone", key=occurrence.text)
            edited = await asyncio.to_thread(
                write_event, data, occurrence, event, changed, self.timezone
            )
            await asyncio.to_thread(write_atomically, target, edited)
        return await self._read_back(target, occurrence, event)

    async def _read_back(self, file: Path, occurrence: OccurrenceKey, event: Event) -> Record:
        """The record as the file now holds it: what was written, as a reader sees it."""
        window = read_back_window(occurrence, event)
        expansion = await parse_file(file, self.calendar_id, window, self.timezone, self.limits)
        return find(as_listing(expansion), occurrence.text)

    def _lock(self, file: Path) -> asyncio.Lock:
        """One writer per file: occurrences of one series are edited in one file."""
        return self._locks.setdefault(file, asyncio.Lock())

    def _file_for(self, uid: str) -> Path:
        return self._files.get(uid) or self.path / f"{_UNSAFE.sub('_', uid)}.ics"


async def _existing(target: Path) -> bytes | None:
    try:
        return await asyncio.to_thread(target.read_bytes)
    except FileNotFoundError:
        return None
