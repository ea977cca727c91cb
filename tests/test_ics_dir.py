"""The `ics_dir` calendar: writes keep what they do not change, land in the file that
holds the event, and a broken file makes the listing incomplete."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from syncd.calendars.ics_dir import IcsDir
from syncd.errors import Rejected
from syncd.model import Event, OccurrenceKey, Window

WINDOW = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
EVENT = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//someone else//EN
BEGIN:VEVENT
UID:meeting-1@example.test
DTSTAMP:20270101T000000Z
DTSTART:20270301T090000Z
DTEND:20270301T100000Z
SUMMARY:Quarterly review
DESCRIPTION:Bring the numbers
LOCATION:Room 4
X-CUSTOM:kept
SEQUENCE:2
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT15M
END:VALARM
END:VEVENT
END:VCALENDAR
"""
KEY = OccurrenceKey("desk", "meeting-1@example.test").text


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "3f2a-href-not-uid.ics").write_text(EVENT.replace("\n", "\r\n"), newline="")
    return tmp_path


async def test_an_update_writes_only_the_changed_fields_into_the_file_that_holds_it(folder):
    calendar = IcsDir("desk", folder)
    [record] = (await calendar.list(WINDOW)).records
    vendor_side = Event(record.event.start, record.event.end, title="Quarterly review (moved)")

    written = await calendar.update(record, vendor_side, frozenset({"title"}))

    assert [p.name for p in folder.glob("*.ics")] == ["3f2a-href-not-uid.ics"]
    [vevent] = icalendar.Calendar.from_ical((folder / "3f2a-href-not-uid.ics").read_bytes()).walk(
        "VEVENT"
    )
    assert str(vevent["summary"]) == "Quarterly review (moved)"
    assert str(vevent["description"]) == "Bring the numbers"
    assert str(vevent["location"]) == "Room 4"
    assert str(vevent["x-custom"]) == "kept"
    assert vevent.decoded("sequence") == 3
    assert len(vevent.walk("VALARM")) == 1
    # LAST-MODIFIED is new: the file says when it was written
    assert written.event.modified is not None
    expected = replace(record.event, title="Quarterly review (moved)")
    assert replace(written.event, modified=None) == replace(expected, modified=None)


async def test_a_move_rewrites_start_and_end(folder):
    calendar = IcsDir("desk", folder)
    [record] = (await calendar.list(WINDOW)).records
    start, end = datetime(2027, 3, 2, 14, tzinfo=UTC), datetime(2027, 3, 2, 15, tzinfo=UTC)

    written = await calendar.update(
        record, replace(record.event, start=start, end=end), frozenset({"start", "end"})
    )

    assert (written.event.start, written.event.end) == (start, end)
    assert written.event.description == "Bring the numbers"


async def test_a_broken_file_makes_the_listing_incomplete(folder):
    (folder / "broken.ics").write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\n")
    listing = await IcsDir("desk", folder).list(WINDOW)
    assert not listing.complete
    assert [p.key for p in listing.problems] == ["VEVENT:broken:-"]
    assert [r.key for r in listing.records] == [KEY]


async def test_create_writes_a_new_file_and_reads_it_back(tmp_path):
    calendar = IcsDir("desk", tmp_path)
    event = Event(
        datetime(2027, 5, 1, 9, tzinfo=UTC),
        datetime(2027, 5, 1, 10, tzinfo=UTC),
        title="Booked at the vendor",
        location="Online",
    )
    key = OccurrenceKey("desk", "syncd-abc").text

    record = await calendar.create(key, event)

    assert record.key == key and record.event.title == "Booked at the vendor"
    assert (tmp_path / "syncd-abc.ics").exists()
    assert await calendar.create(key, event)  # again after a crash: same file, no error


async def test_create_never_overwrites_another_event(folder):
    (folder / "syncd-abc.ics").write_text(EVENT.replace("meeting-1@example.test", "other"))
    event = Event(datetime(2027, 5, 1, 9, tzinfo=UTC), datetime(2027, 5, 1, 10, tzinfo=UTC))
    with pytest.raises(Rejected):
        await IcsDir("desk", folder).create(OccurrenceKey("desk", "syncd-abc").text, event)


async def test_a_rewritten_file_keeps_its_mode_and_a_new_one_follows_the_umask(folder, tmp_path):
    calendar = IcsDir("desk", folder)
    existing = folder / "3f2a-href-not-uid.ics"
    existing.chmod(0o640)
    [record] = (await calendar.list(WINDOW)).records
    await calendar.update(record, replace(record.event, title="x"), frozenset({"title"}))
    assert existing.stat().st_mode & 0o777 == 0o640

    event = Event(datetime(2027, 5, 1, 9, tzinfo=UTC), datetime(2027, 5, 1, 10, tzinfo=UTC))
    old = os.umask(0o022)
    try:
        await IcsDir("desk", tmp_path).create(OccurrenceKey("desk", "new").text, event)
    finally:
        os.umask(old)
    assert (tmp_path / "new.ics").stat().st_mode & 0o777 == 0o644
