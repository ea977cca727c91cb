"""What the local calendar kinds share: reading and parsing off the event loop, and
atomic writes (a temp file in the same folder, fsync, rename)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from syncd.errors import Gone, Malformed, Unavailable
from syncd.ical import Expansion, Limits, read_calendar
from syncd.model import Listing, Record, Window, calendar_uid
from syncd.packed import by_uid


async def parse_file(
    path: Path,
    calendar: str,
    window: Window,
    tz: str,
    limits: Limits,
) -> Expansion:
    """Read and expand one .ics file in a worker thread."""
    return await asyncio.to_thread(_parse_file, path, calendar, window, tz, limits)


async def read_bytes(path: Path, calendar: str) -> bytes:
    """A file's bytes, read in a worker thread; a missing file is `Malformed`."""
    return await asyncio.to_thread(_read_bytes, path, calendar)


def _read_bytes(path: Path, calendar: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise Malformed(f"{calendar}: {path.name} does not exist") from exc
    except OSError as exc:
        raise Unavailable(f"{calendar}: cannot read {path.name}: {exc.strerror}") from exc


def _parse_file(
    path: Path,
    calendar: str,
    window: Window,
    tz: str,
    limits: Limits,
) -> Expansion:
    data = _read_bytes(path, calendar)
    try:
        return read_calendar(data, calendar=calendar, window=window, default_tz=tz, limits=limits)
    except Malformed as exc:
        raise Malformed(f"{calendar}: {path.name}: {exc}") from exc


def as_listing(expansion: Expansion) -> Listing:
    """An expansion as a complete listing."""
    return Listing(expansion.records, expansion.problems)


def find(listing: Listing, key: str) -> Record:
    """One record of a listing by key, or `Gone`."""
    group = by_uid(listing.records).group(calendar_uid(key))  # packed: decodes one group
    found = next((record for record in group if record.key == key), None)
    if found is None:
        raise Gone(f"no event {key}", key=key)
    return found


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never half."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".syncd-", suffix=".tmp")
    try:
        # mkstemp makes the file 0600: give it the mode the file had, or the one a new
        # file would get, so people and tools sharing the folder can still read it.
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
