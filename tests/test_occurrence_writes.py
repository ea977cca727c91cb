"""Writing single occurrences back into series: overrides, EXDATEs and restores keep the
series and everything around it (issue 5, point 2), in the pure rewrite and in both
writable local kinds."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.calendars.ics_dir import IcsDir
from syncd.calendars.ics_file import IcsFile
from syncd.calendars.rewrite import remove_event, write_event
from syncd.errors import Rejected
from syncd.ical import read_calendar
from syncd.model import Event, OccurrenceKey, Record, Window

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 30, tzinfo=UTC))
SERIES = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//someone else//EN
X-WR-CALNAME:Team
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly@example.test
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Berlin:20270301T090000
DTEND;TZID=Europe/Berlin:20270301T100000
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:Standup
DESCRIPTION:Kept description
X-CUSTOM:kept
SEQUENCE:3
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT15M
END:VALARM
END:VEVENT
END:VCALENDAR
"""
UID = "weekly@example.test"
THIRD = "20270315T080000Z"  # 2027-03-15 09:00 in Berlin


def key(rid: str = THIRD, uid: str = UID) -> OccurrenceKey:
    return OccurrenceKey("team", uid, rid)


def records(data: bytes | str, window: Window = WINDOW) -> dict[str, Record]:
    raw = data.encode() if isinstance(data, str) else data
    expansion = read_calendar(raw, calendar="team", window=window)
    assert not expansion.problems
    return {record.key: record for record in expansion.records}


def components(data: bytes) -> list[Any]:
    return [c for c in icalendar.Calendar.from_ical(data).walk("VEVENT")]


def moved(record: Record, hours: int = 2, **fields: Any) -> Event:
    event = record.event
    shift = timedelta(hours=hours)
    return replace(event, start=event.start + shift, end=event.end + shift, **fields)


def test_an_occurrence_edit_becomes_an_override_and_the_series_stays() -> None:
    before = records(SERIES)
    third = before[key().text]
    data = write_event(SERIES.encode(), key(), moved(third, title="Moved"), {"title", "start"})
    series, override = components(data)
    assert series["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=6"
    assert (str(series["X-CUSTOM"]), int(series["SEQUENCE"])) == ("kept", 3)
    assert override["RECURRENCE-ID"].dt == datetime(2027, 3, 15, 9, tzinfo=BERLIN)
    assert override["DTSTART"].dt == datetime(2027, 3, 15, 11, tzinfo=BERLIN)
    assert int(override["SEQUENCE"]) == 4 and "LAST-MODIFIED" in override
    assert str(override["X-CUSTOM"]) == "kept" and "RRULE" not in override
    assert [a.name for a in override.subcomponents] == ["VALARM"]
    assert str(override["DESCRIPTION"]) == "Kept description"  # not among the changed
    after = records(data)
    assert after[key().text].event.title == "Moved"
    assert after[key().text].event.start == third.event.start + timedelta(hours=2)
    assert {k: r.event for k, r in after.items() if k != key().text} == {
        k: r.event for k, r in before.items() if k != key().text
    }


def test_the_written_object_re_reads_identically() -> None:
    third = records(SERIES)[key().text]
    data = write_event(SERIES.encode(), key(), moved(third), {"start", "end"})
    assert icalendar.Calendar.from_ical(data).to_ical() == data
    assert b"BEGIN:VTIMEZONE" in data and b"X-WR-CALNAME:Team" in data


def test_a_second_edit_of_an_occurrence_changes_its_override_not_adds_one() -> None:
    third = records(SERIES)[key().text]
    once = write_event(SERIES.encode(), key(), moved(third), {"start"})
    twice = write_event(once, key(), moved(third, hours=3, title="Later"), {"start", "title"})
    overrides = [c for c in components(twice) if "RECURRENCE-ID" in c]
    assert len(overrides) == 1 and str(overrides[0]["SUMMARY"]) == "Later"
    assert int(overrides[0]["SEQUENCE"]) == 5


def test_an_override_written_in_utc_by_another_client_is_found() -> None:
    other = SERIES.replace(
        "END:VEVENT\nEND:VCALENDAR",
        "END:VEVENT\nBEGIN:VEVENT\nUID:weekly@example.test\nDTSTAMP:20270101T000000Z\n"
        "RECURRENCE-ID:20270315T080000Z\nDTSTART:20270315T090000Z\n"
        "DTEND:20270315T100000Z\nSUMMARY:Theirs\nEND:VEVENT\nEND:VCALENDAR",
    )
    third = records(other)[key().text]
    data = write_event(other.encode(), key(), replace(third.event, title="Ours"), {"title"})
    overrides = [c for c in components(data) if "RECURRENCE-ID" in c]
    assert [str(c["SUMMARY"]) for c in overrides] == ["Ours"]


def test_deleting_an_occurrence_adds_an_exdate_in_the_series_form() -> None:
    third = records(SERIES)[key().text]
    edited = write_event(SERIES.encode(), key(), moved(third), {"start"})
    data = remove_event(edited, key())
    assert data is not None
    [series] = components(data)  # the override went with the occurrence
    [exdate] = series["EXDATE"].dts
    assert exdate.dt == datetime(2027, 3, 15, 9, tzinfo=BERLIN)
    assert exdate.params["TZID"] == "Europe/Berlin"
    assert int(series["SEQUENCE"]) == 4
    after = records(data)
    assert key().text not in after and len(after) == 5


def test_writing_an_excluded_occurrence_restores_it() -> None:
    third = records(SERIES)[key().text]
    excluded = remove_event(SERIES.encode(), key())
    assert excluded is not None and key().text not in records(excluded)
    data = write_event(excluded, key(), third.event, {"title", "status"})
    assert "EXDATE" not in components(data)[0]
    assert records(data)[key().text].event.start == third.event.start


def test_all_day_and_floating_series_get_ids_of_their_own_form() -> None:
    all_day = SERIES.replace(
        "DTSTART;TZID=Europe/Berlin:20270301T090000", "DTSTART;VALUE=DATE:20270301"
    ).replace("DTEND;TZID=Europe/Berlin:20270301T100000", "DTEND;VALUE=DATE:20270302")
    day = records(all_day)[key("20270315").text]
    data = write_event(all_day.encode(), key("20270315"), replace(day.event, title="x"), {"title"})
    assert components(data)[1]["RECURRENCE-ID"].dt == date(2027, 3, 15)
    floating = SERIES.replace(";TZID=Europe/Berlin", "")
    rid = "20270315T090000L"
    wall = records(floating)[key(rid).text]
    data = write_event(floating.encode(), key(rid), moved(wall), {"start"})
    override = components(data)[1]
    assert override["RECURRENCE-ID"].dt == datetime(2027, 3, 15, 9)
    assert override["DTSTART"].dt == datetime(2027, 3, 15, 11)  # wall time, like the series


def test_an_occurrence_of_a_missing_series_is_refused_and_a_last_event_empties() -> None:
    event = Event(datetime(2027, 3, 1, 9, tzinfo=UTC), datetime(2027, 3, 1, 10, tzinfo=UTC))
    with pytest.raises(Rejected, match="not in the calendar"):
        write_event(None, key(), event, ())
    assert remove_event(SERIES.encode(), key("-")) is None
    kept = remove_event(SERIES.encode(), key("-"), keep_empty=True)
    assert kept is not None and b"BEGIN:VTIMEZONE" in kept and b"VEVENT" not in kept


# --- the local kinds -------------------------------------------------------------------


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "cal"
    path.mkdir()
    (path / "weekly.ics").write_text(SERIES)
    return path


async def test_ics_dir_writes_occurrences_into_the_series_file(folder: Path) -> None:
    calendar = IcsDir("team", folder)
    listed = {r.key: r for r in (await calendar.list(WINDOW)).records}
    third = listed[key().text]
    written = await calendar.update(third, moved(third), frozenset({"start", "end"}))
    assert written.key == third.key and written.event.start == third.event.start + timedelta(
        hours=2
    )
    fourth = listed[key("20270322T080000Z").text]
    await calendar.delete(fourth)
    assert names(folder) == ["weekly.ics"]
    relisted = {r.key: r for r in (await calendar.list(WINDOW)).records}
    assert relisted[third.key].event == written.event
    assert fourth.key not in relisted and len(relisted) == 5


async def test_concurrent_writes_to_one_series_keep_each_other(folder: Path) -> None:
    calendar = IcsDir("team", folder)
    listed = sorted((await calendar.list(WINDOW)).records, key=lambda r: r.key)
    await asyncio.gather(
        *(
            calendar.update(r, replace(r.event, title=f"n{i}"), frozenset({"title"}))
            for i, r in enumerate(listed)
        )
    )
    titles = {r.event.title for r in (await calendar.list(WINDOW)).records}
    assert titles == {f"n{i}" for i in range(len(listed))}


async def test_ics_file_adds_edits_and_removes_events_in_the_one_file(tmp_path: Path) -> None:
    path = tmp_path / "team.ics"
    path.write_text(SERIES)
    calendar = IcsFile("team", path)
    listed = {r.key: r for r in (await calendar.list(WINDOW)).records}
    single = Event(datetime(2027, 4, 1, 9, tzinfo=UTC), datetime(2027, 4, 1, 10, tzinfo=UTC), "New")
    added = await calendar.create(key("-", "new@syncd").text, single)
    assert added.event.title == "New"
    third = listed[key().text]
    await calendar.update(third, moved(third, title="Moved"), frozenset({"title", "start"}))
    await calendar.delete(listed[key("20270322T080000Z").text])
    await calendar.delete(added)
    after = records(path.read_bytes())
    assert after[key().text].event.title == "Moved"
    assert key("20270322T080000Z").text not in after and key("-", "new@syncd").text not in after
    assert b"X-WR-CALNAME:Team" in path.read_bytes() and len(after) == 5


def test_a_moved_single_event_keeps_its_time_zone() -> None:
    single = SERIES.replace("RRULE:FREQ=WEEKLY;COUNT=6\n", "")
    [record] = records(single).values()
    data = write_event(single.encode(), key("-"), moved(record), {"start", "end"})
    [vevent] = components(data)
    assert vevent["DTSTART"].dt == datetime(2027, 3, 1, 11, tzinfo=BERLIN)
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert records(data)[key("-").text].event.start == record.event.start + timedelta(hours=2)


# --- regressions found by review -------------------------------------------------------


def test_a_floating_series_under_x_wr_timezone_is_written_in_its_wall_time() -> None:
    """Google exports: floating times plus X-WR-TIMEZONE. The override was written at
    the UTC clock time as floating, so the occurrence moved and changed its key."""
    floating = SERIES.replace(";TZID=Europe/Berlin", "").replace(
        "X-WR-CALNAME:Team", "X-WR-CALNAME:Team\nX-WR-TIMEZONE:Europe/Berlin"
    )
    third = records(floating)[key().text]  # 09:00 Berlin = 08:00Z
    data = write_event(floating.encode(), key(), moved(third), {"start", "end"})
    override = components(data)[1]
    assert override["RECURRENCE-ID"].dt == datetime(2027, 3, 15, 9)
    assert override["DTSTART"].dt == datetime(2027, 3, 15, 11)
    assert records(data)[key().text].event.start == third.event.start + timedelta(hours=2)
    excluded = remove_event(floating.encode(), key())
    assert excluded is not None
    assert [e.dt for e in components(excluded)[0]["EXDATE"].dts] == [datetime(2027, 3, 15, 9)]


RANGE = SERIES.replace(
    "END:VEVENT\nEND:VCALENDAR",
    "END:VEVENT\nBEGIN:VEVENT\nUID:weekly@example.test\nDTSTAMP:20270101T000000Z\n"
    "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20270315T090000\n"
    "DTSTART;TZID=Europe/Berlin:20270315T100000\nDTEND;TZID=Europe/Berlin:20270315T110000\n"
    "SUMMARY:Later standup\nEND:VEVENT\nEND:VCALENDAR",
)


def test_the_occurrence_that_starts_a_thisandfuture_range_is_refused_alone() -> None:
    """Editing it edited every later occurrence, and deleting it removed the range."""
    event = records(SERIES)[key().text].event
    with pytest.raises(Rejected, match="THISANDFUTURE"):
        write_event(RANGE.encode(), key(), event, {"title"})
    with pytest.raises(Rejected, match="THISANDFUTURE"):
        remove_event(RANGE.encode(), key())


def test_a_new_override_inside_a_range_starts_from_the_range_not_the_series() -> None:
    later = key("20270322T080000Z")
    fourth = records(SERIES)[later.text]
    data = write_event(RANGE.encode(), later, moved(fourth), {"start", "end"})
    assert str(components(data)[2]["SUMMARY"]) == "Later standup"


def test_an_object_the_writer_cannot_parse_is_refused_for_that_item() -> None:
    """Two VCALENDARs in one file: the reader takes it, the writer raised ValueError,
    which failed the whole run on every poll."""
    twice = (SERIES + SERIES.replace(UID, "other@example.test")).encode()
    event = records(SERIES)[key().text].event
    with pytest.raises(Rejected, match="does not parse whole"):
        write_event(twice, key(), event, {"title"})


def test_an_object_holding_only_an_override_is_edited_and_emptied() -> None:
    """An invitation to one instance (no master): writes raised Gone, which only marked
    the item missing, so the change looped forever."""
    only = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//x//EN\nBEGIN:VEVENT\nUID:inv@example.test\n"
        "DTSTAMP:20270101T000000Z\nRECURRENCE-ID:20270315T080000Z\n"
        "DTSTART:20270315T080000Z\nDTEND:20270315T090000Z\nSUMMARY:One instance\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    instance = key(uid="inv@example.test")
    [record] = records(only).values()
    data = write_event(only.encode(), instance, moved(record, title="Moved"), {"title"})
    assert records(data)[instance.text].event.title == "Moved"
    assert remove_event(data, instance) is None
    with pytest.raises(Rejected, match="only some occurrences"):
        write_event(only.encode(), key("20270322T080000Z", "inv@example.test"), record.event, ())


ALL_DAY = SERIES.replace(
    "DTSTART;TZID=Europe/Berlin:20270301T090000", "DTSTART;VALUE=DATE:20270301"
).replace("DTEND;TZID=Europe/Berlin:20270301T100000", "DTEND;VALUE=DATE:20270302")


def test_an_all_day_occurrence_moved_as_utc_midnights_stays_all_day() -> None:
    """Sales Ask keeps all-day events as UTC midnight to midnight: a move came back as
    a 24-hour timed block."""
    day = key("20270315")
    midnight = datetime(2027, 3, 16, tzinfo=UTC)
    event = Event(midnight, midnight + timedelta(days=1), "Offsite")
    data = write_event(ALL_DAY.encode(), day, event, {"start", "end", "title"})
    override = components(data)[1]
    assert (override["DTSTART"].dt, override["DTEND"].dt) == (date(2027, 3, 16), date(2027, 3, 17))


def test_a_date_time_recurrence_id_on_an_all_day_series_is_found() -> None:
    """An existing override written with a date-time RECURRENCE-ID was not recognised:
    an edit added a second override for the same day."""
    theirs = ALL_DAY.replace(
        "END:VEVENT\nEND:VCALENDAR",
        "END:VEVENT\nBEGIN:VEVENT\nUID:weekly@example.test\nDTSTAMP:20270101T000000Z\n"
        "RECURRENCE-ID:20270315T000000\nDTSTART;VALUE=DATE:20270315\n"
        "DTEND;VALUE=DATE:20270316\nSUMMARY:Theirs\nEND:VEVENT\nEND:VCALENDAR",
    )
    day = key("20270315")
    event = replace(records(theirs)[day.text].event, title="Ours")
    data = write_event(theirs.encode(), day, event, {"title"})
    assert [str(c["SUMMARY"]) for c in components(data) if "RECURRENCE-ID" in c] == ["Ours"]


async def test_creating_an_event_in_a_file_that_holds_others_keeps_them(tmp_path: Path) -> None:
    """An event outside the route's rules came back by `edit_beats_delete`: its file,
    which also held another event, was replaced by a bare new VEVENT."""
    folder = tmp_path / "cal"
    folder.mkdir()
    shared = SERIES.replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\nUID:other@example.test\nDTSTAMP:20270101T000000Z\n"
        "DTSTART:20270302T090000Z\nDTEND:20270302T100000Z\nSUMMARY:Other\nCLASS:PRIVATE\n"
        "END:VEVENT\nEND:VCALENDAR",
    )
    (folder / "shared.ics").write_text(shared)
    calendar = IcsDir("team", folder)
    listed = {r.key: r for r in (await calendar.list(WINDOW)).records}
    other = listed[key("-", "other@example.test").text]
    await calendar.create(other.key, replace(other.event, title="Back"))
    after = records((folder / "shared.ics").read_bytes())
    assert after[other.key].event.title == "Back" and after[other.key].event.private
    assert len([k for k in after if UID in k]) == 6  # the series is still there
