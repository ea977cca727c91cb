"""syncd.ical: parsing and expanding iCalendar bodies into occurrence records.

Every case reads a real .ics fixture from tests/fixtures/ics/ (dated in 2027) against a
fixed window, and asserts exact keys and UTC times.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from syncd import expand
from syncd.errors import Malformed
from syncd.ical import Expansion, Limits, read_calendar
from syncd.model import Person, Record, Window

FIXTURES = Path(__file__).parent / "fixtures" / "ics"
CAL = "team"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


YEAR_2027 = Window(at(2027, 1, 1), at(2028, 1, 1))
MARCH_2027 = Window(at(2027, 3, 1), at(2027, 4, 1))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read(
    name: str,
    window: Window = YEAR_2027,
    default_tz: str = "UTC",
    limits: Limits = Limits(),  # noqa: B008
) -> Expansion:
    return read_calendar(
        fixture(name), calendar=CAL, window=window, default_tz=default_tz, limits=limits
    )


def key(uid: str, rid: str = "-") -> str:
    return f"VEVENT:{uid}:{rid}"


def by_key(expansion: Expansion) -> dict[str, Record]:
    return {record.key: record for record in expansion.records}


def times(expansion: Expansion) -> dict[str, tuple[object, object]]:
    return {record.key: (record.event.start, record.event.end) for record in expansion.records}


def problems(expansion: Expansion) -> dict[str, str]:
    return {problem.key: problem.reason for problem in expansion.problems}


# --- time zones and DST -----------------------------------------------------------


def test_weekly_berlin_keeps_local_time_across_dst() -> None:
    found = read("dst_weekly_berlin.ics", Window(at(2027, 3, 15), at(2027, 4, 5)))
    uid = "weekly-berlin@syncd.test"
    assert times(found) == {
        key(uid, "20270318T080000Z"): (at(2027, 3, 18, 8), at(2027, 3, 18, 9)),
        key(uid, "20270325T080000Z"): (at(2027, 3, 25, 8), at(2027, 3, 25, 9)),
        key(uid, "20270401T070000Z"): (at(2027, 4, 1, 7), at(2027, 4, 1, 8)),
    }
    assert found.problems == ()


def test_times_are_utc_and_anchor_is_the_original_start() -> None:
    found = read("dst_weekly_berlin.ics", Window(at(2027, 3, 31), at(2027, 4, 2)))
    (record,) = found.records
    assert record.event.start.tzinfo is UTC  # type: ignore[union-attr]
    assert record.event.end.tzinfo is UTC  # type: ignore[union-attr]
    assert record.anchor == at(2027, 4, 1, 7)
    assert record.remote_id == ""
    assert record.version == ""  # the runner fingerprints what it compares


def test_event_fields() -> None:
    found = read("dst_weekly_berlin.ics", Window(at(2027, 3, 18), at(2027, 3, 19)))
    (record,) = found.records
    event = record.event
    assert event.title == "Weekly sync"
    assert event.description == "Line one\nLine two"
    assert event.location == "Room 1, Berlin"
    assert event.status == "tentative"
    assert event.organizer == "olga@example.com"
    assert event.attendees == (
        Person("bob@example.com", "Bob, B.", "ACCEPTED"),
        Person("carol@example.com", "", "NEEDS-ACTION"),
    )
    assert event.private is True
    assert event.transparent is True
    assert (event.owner, event.contact) == ("", None)
    assert type(event.title) is str


def test_google_utc_series_with_x_wr_timezone_keeps_local_time() -> None:
    found = read("google_utc_x_wr_timezone.ics", Window(at(2027, 3, 15), at(2027, 4, 5)))
    uid = "google-utc@google.com"
    assert times(found) == {
        key(uid, "20270318T080000Z"): (at(2027, 3, 18, 8), at(2027, 3, 18, 9)),
        key(uid, "20270325T080000Z"): (at(2027, 3, 25, 8), at(2027, 3, 25, 9)),
        key(uid, "20270401T070000Z"): (at(2027, 4, 1, 7), at(2027, 4, 1, 8)),
    }


def test_floating_times_are_anchored_in_default_tz() -> None:
    found = read("floating.ics", default_tz="America/New_York")
    daily = "floating-daily@syncd.test"
    assert times(found) == {
        key("floating-single@syncd.test"): (at(2027, 1, 15, 14), at(2027, 1, 15, 15)),
        # 09:00 New York wall time; US DST starts on 2027-03-14.
        key(daily, "20270312T090000L"): (at(2027, 3, 12, 14), at(2027, 3, 12, 14, 30)),
        key(daily, "20270313T090000L"): (at(2027, 3, 13, 14), at(2027, 3, 13, 14, 30)),
        key(daily, "20270314T090000L"): (at(2027, 3, 14, 13), at(2027, 3, 14, 13, 30)),
    }
    assert by_key(found)[key(daily, "20270314T090000L")].anchor == at(2027, 3, 14, 13)


def test_floating_times_are_anchored_in_x_wr_timezone() -> None:
    found = read("floating_x_wr_timezone.ics", default_tz="America/New_York")
    daily = "floating-daily@syncd.test"
    assert times(found) == {
        key("floating-single@syncd.test"): (at(2027, 1, 15, 8), at(2027, 1, 15, 9)),
        key(daily, "20270312T080000Z"): (at(2027, 3, 12, 8), at(2027, 3, 12, 8, 30)),
        key(daily, "20270313T080000Z"): (at(2027, 3, 13, 8), at(2027, 3, 13, 8, 30)),
        key(daily, "20270314T080000Z"): (at(2027, 3, 14, 8), at(2027, 3, 14, 8, 30)),
    }


def test_windows_tzid_and_windows_x_wr_timezone() -> None:
    found = read("windows_tzid.ics", default_tz="America/New_York")
    uid = "040000008200E00074C5B7101A82E00800000000windows"
    assert times(found) == {
        key(uid, "20270325T080000Z"): (at(2027, 3, 25, 8), at(2027, 3, 25, 9)),
        key(uid, "20270401T070000Z"): (at(2027, 4, 1, 7), at(2027, 4, 1, 8)),
        # Floating, anchored in X-WR-TIMEZONE "W. Europe Standard Time" = Europe/Berlin.
        key("outlook-floating"): (at(2027, 3, 25, 11), at(2027, 3, 25, 12)),
    }
    assert found.problems == ()


def test_windows_tzid_without_vtimezone() -> None:
    found = read("windows_tzid_no_vtimezone.ics")
    uid = "windows-eastern@syncd.test"
    assert times(found) == {
        key(uid, "20270310T140000Z"): (at(2027, 3, 10, 14), at(2027, 3, 10, 15)),
        key(uid, "20270317T130000Z"): (at(2027, 3, 17, 13), at(2027, 3, 17, 14)),
    }


def test_junk_x_wr_timezone_falls_back_to_default_tz() -> None:
    found = read("junk_x_wr_timezone.ics", default_tz="America/New_York")
    assert times(found) == {
        key("junk-floating@syncd.test"): (at(2027, 3, 25, 16), at(2027, 3, 25, 17)),
        key("junk-utc@syncd.test"): (at(2027, 3, 25, 12), at(2027, 3, 25, 13)),
    }


def test_unknown_tzid_is_quarantined_and_named() -> None:
    found = read("unknown_tzid.ics")
    assert times(found) == {
        key("earth@syncd.test"): (at(2027, 3, 25, 8), at(2027, 3, 25, 9)),
    }
    reasons = problems(found)
    assert set(reasons) == {key("mars@syncd.test"), key("mars-exdate@syncd.test")}
    assert "TZID=Mars/Olympus" in reasons[key("mars@syncd.test")]
    assert "TZID=Customized Time Zone" in reasons[key("mars-exdate@syncd.test")]


def test_custom_vtimezones_do_not_leak_between_feeds() -> None:
    first = read("custom_zone_plus3.ics")
    second = read("custom_zone_minus5.ics")
    assert times(first) == {key("custom-a@syncd.test"): (at(2027, 3, 1, 6), at(2027, 3, 1, 7))}
    assert times(second) == {key("custom-b@syncd.test"): (at(2027, 3, 1, 14), at(2027, 3, 1, 15))}


def test_custom_vtimezones_do_not_leak_between_threads() -> None:
    names = ["custom_zone_plus3.ics", "custom_zone_minus5.ics"] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, names))
    starts = {record.event.start for result in results for record in result.records}
    assert starts == {at(2027, 3, 1, 6), at(2027, 3, 1, 14)}
    assert all(len(result.records) == 1 for result in results)


def test_duration_hours_are_exact_across_dst_and_days_are_nominal() -> None:
    found = read("duration_dst.ics", MARCH_2027)
    shift = "night-shift@syncd.test"
    assert times(found) == {
        key(shift, "20270320T220000Z"): (at(2027, 3, 20, 22), at(2027, 3, 21, 2)),
        # 23:00 CET + PT4H = 04:00 CEST (4 real hours), not 03:00 by wall clock.
        key(shift, "20270327T220000Z"): (at(2027, 3, 27, 22), at(2027, 3, 28, 2)),
        # P1D is nominal: 12:00 CET to 12:00 CEST, 23 real hours.
        key("day-long@syncd.test"): (at(2027, 3, 27, 11), at(2027, 3, 28, 10)),
        key("day-and-hours@syncd.test"): (at(2027, 3, 27, 11), at(2027, 3, 28, 12)),
        key("no-end@syncd.test"): (at(2027, 3, 27, 12), at(2027, 3, 27, 12)),
    }


# --- recurrence ----------------------------------------------------------------------


def test_exdate_removes_occurrences() -> None:
    found = read("exdate.ics", MARCH_2027)
    uid = "exdate@syncd.test"
    assert sorted(by_key(found)) == [
        key(uid, "20270301T080000Z"),
        key(uid, "20270315T080000Z"),
        key(uid, "20270329T070000Z"),
    ]


def test_moved_overrides_keep_the_original_start_as_rid() -> None:
    window = Window(at(2027, 3, 1), at(2027, 3, 22))
    found = read("override_moved.ics", window)
    uid = "moved@syncd.test"
    assert times(found) == {
        key(uid, "20270301T080000Z"): (at(2027, 3, 1, 8), at(2027, 3, 1, 9)),
        # moved within the window
        key(uid, "20270308T080000Z"): (at(2027, 3, 10, 13), at(2027, 3, 10, 14)),
        # moved out of the window: still present through its rid (hard case 22)
        key(uid, "20270315T080000Z"): (at(2027, 5, 3, 8), at(2027, 5, 3, 9)),
        # moved into the window from outside (hard case 23)
        key(uid, "20270329T070000Z"): (at(2027, 3, 17, 11), at(2027, 3, 17, 12)),
    }
    records = by_key(found)
    assert records[key(uid, "20270308T080000Z")].anchor == at(2027, 3, 8, 8)
    assert records[key(uid, "20270308T080000Z")].event.title == "Planning (moved to Wednesday)"
    assert all(record.in_window(window) for record in found.records)


def test_cancelled_override_is_returned_as_cancelled() -> None:
    found = read("cancelled_override.ics")
    uid = "cancelled@syncd.test"
    statuses = {record.key: record.event.status for record in found.records}
    assert statuses == {
        key(uid, "20270301T150000Z"): "confirmed",
        key(uid, "20270302T150000Z"): "cancelled",
        key(uid, "20270303T150000Z"): "confirmed",
    }


def test_override_without_master_is_an_occurrence_of_its_uid() -> None:
    found = read("override_without_master.ics")
    uid = "invited-once@syncd.test"
    assert times(found) == {
        key(uid, "20270308T080000Z"): (at(2027, 3, 8, 8, 30), at(2027, 3, 8, 9, 30)),
    }


def test_this_and_future_rids_come_from_the_generated_start() -> None:
    # Library bug #222: the output RECURRENCE-ID of the 4th and 5th would be the 3rd.
    found = read("this_and_future.ics")
    uid = "thisandfuture@syncd.test"
    assert times(found) == {
        key(uid, "20270301T090000Z"): (at(2027, 3, 1, 9), at(2027, 3, 1, 10)),
        key(uid, "20270302T090000Z"): (at(2027, 3, 2, 9), at(2027, 3, 2, 10)),
        key(uid, "20270303T090000Z"): (at(2027, 3, 3, 11), at(2027, 3, 3, 12)),
        key(uid, "20270304T090000Z"): (at(2027, 3, 4, 11), at(2027, 3, 4, 12)),
        key(uid, "20270305T090000Z"): (at(2027, 3, 5, 11), at(2027, 3, 5, 12)),
    }


def test_recurrence_id_forms_match_the_series_start() -> None:
    # Hard case 27: a DATE or floating RECURRENCE-ID on a zoned series names the
    # instance of that day; the override replaces it instead of duplicating it.
    found = read("recurrence_id_forms.ics")
    assert times(found) == {
        key("date-rid@syncd.test", "20270301T080000Z"): (at(2027, 3, 1, 8), at(2027, 3, 1, 9)),
        key("date-rid@syncd.test", "20270302T080000Z"): (at(2027, 3, 2, 14), at(2027, 3, 2, 15)),
        key("date-rid@syncd.test", "20270303T080000Z"): (at(2027, 3, 3, 8), at(2027, 3, 3, 9)),
        key("floating-rid@syncd.test", "20270301T080000Z"): (
            at(2027, 3, 1, 8),
            at(2027, 3, 1, 9),
        ),
        key("floating-rid@syncd.test", "20270302T080000Z"): (
            at(2027, 3, 2, 14),
            at(2027, 3, 2, 15),
        ),
        key("rdate-period@syncd.test", "20270301T090000Z"): (at(2027, 3, 1, 9), at(2027, 3, 1, 10)),
        key("rdate-period@syncd.test", "20270305T090000Z"): (at(2027, 3, 5, 9), at(2027, 3, 5, 12)),
    }


def test_all_day_events_and_series() -> None:
    found = read("all_day.ics", Window(at(2027, 3, 1), at(2027, 5, 1)))
    assert times(found) == {
        key("holiday@syncd.test"): (date(2027, 4, 5), date(2027, 4, 6)),
        key("trip@syncd.test"): (date(2027, 4, 10), date(2027, 4, 13)),
        key("birthday@syncd.test", "20270402"): (date(2027, 4, 2), date(2027, 4, 3)),
        key("weekly-day@syncd.test", "20270326"): (date(2027, 3, 26), date(2027, 3, 27)),
        key("weekly-day@syncd.test", "20270409"): (date(2027, 4, 9), date(2027, 4, 10)),
        key("weekly-day@syncd.test", "20270416"): (date(2027, 4, 16), date(2027, 4, 17)),
    }
    records = by_key(found)
    assert records[key("birthday@syncd.test", "20270402")].anchor == date(2027, 4, 2)
    assert records[key("holiday@syncd.test")].event.all_day


def test_count_and_until() -> None:
    found = read("count_until.ics")
    keys = sorted(by_key(found))
    assert keys == [
        key("count@syncd.test", "20270301T100000Z"),
        key("count@syncd.test", "20270302T100000Z"),
        key("count@syncd.test", "20270303T100000Z"),
        key("rscale@syncd.test", "20270301T100000Z"),
        key("rscale@syncd.test", "20270302T100000Z"),
        # DATE UNTIL on a datetime series includes that day (hard case 14)
        key("until-date@syncd.test", "20270301T140000Z"),
        key("until-date@syncd.test", "20270302T140000Z"),
        key("until-date@syncd.test", "20270303T140000Z"),
        # a floating UNTIL is New York time, not UTC (hard case 14)
        key("until-floating@syncd.test", "20270301T140000Z"),
        key("until-floating@syncd.test", "20270302T140000Z"),
        key("until-floating@syncd.test", "20270303T140000Z"),
        # 14:00Z is 09:00 New York: inclusive
        key("until-utc@syncd.test", "20270301T140000Z"),
        key("until-utc@syncd.test", "20270302T140000Z"),
        key("until-utc@syncd.test", "20270303T140000Z"),
    ]
    assert "RSCALE=CHINESE" in problems(found)[key("rscale-chinese@syncd.test")]


def test_moving_a_series_start_changes_its_rids() -> None:
    before = read("dtstart_moved_before.ics")
    after = read("dtstart_moved_after.ics")
    uid = "edited@syncd.test"
    assert sorted(by_key(before)) == [
        key(uid, "20270301T080000Z"),
        key(uid, "20270308T080000Z"),
        key(uid, "20270315T080000Z"),
    ]
    assert times(after) == {
        key(uid, "20270302T100000Z"): (at(2027, 3, 2, 10), at(2027, 3, 2, 11)),
        key(uid, "20270309T100000Z"): (at(2027, 3, 9, 10), at(2027, 3, 9, 11)),
        key(uid, "20270316T100000Z"): (at(2027, 3, 16, 10), at(2027, 3, 16, 11)),
    }


def test_single_event_outside_the_window_is_still_returned() -> None:
    found = read("single_outside_window.ics")
    assert times(found) == {
        key("far-future@syncd.test"): (at(2030, 1, 1, 9), at(2030, 1, 1, 10)),
    }
    (record,) = found.records
    assert record.anchor is None
    assert not record.in_window(YEAR_2027)


def test_reversed_component_order_gives_the_same_records() -> None:
    for name in ("override_moved.ics", "this_and_future.ics", "dst_weekly_berlin.ics"):
        calendar = Calendar.from_ical(fixture(name))
        calendar.subcomponents.reverse()
        reversed_body = calendar.to_ical()
        assert reversed_body != fixture(name)
        found = read_calendar(reversed_body, calendar=CAL, window=YEAR_2027)
        assert found == read(name), name


def test_concatenated_calendars_keep_their_own_x_wr_timezone() -> None:
    found = read("concatenated.ics", default_tz="America/New_York")
    assert times(found) == {
        key("first-calendar@syncd.test"): (at(2027, 3, 1, 8), at(2027, 3, 1, 9)),
        key("second-calendar@syncd.test"): (at(2027, 3, 1, 14), at(2027, 3, 1, 15)),
    }


def test_missing_uid_gets_a_stable_synthetic_uid() -> None:
    first = read("missing_uid.ics")
    again = read("missing_uid.ics")
    edited = read("missing_uid_edited.ics")
    keys = sorted(by_key(first))
    assert len(keys) == 2
    assert keys[0].startswith("VEVENT:syncd-nouid-")
    assert keys[0].endswith(":20270301T080000Z")
    assert keys == sorted(by_key(again)) == sorted(by_key(edited))
    assert first.records[0].event.description == "First version"
    assert edited.records[0].event.description == "Edited description"


# --- limits -------------------------------------------------------------------------


def test_per_series_cap_and_sub_hourly_infinite_rule_are_quarantined() -> None:
    found = read("limits.ics", limits=Limits(per_series=100))
    reasons = problems(found)
    assert set(reasons) == {key("daily-forever@syncd.test"), key("every-minute@syncd.test")}
    assert "sub-hourly infinite rule" in reasons[key("every-minute@syncd.test")]
    assert "per_series" in reasons[key("daily-forever@syncd.test")]
    uids = {record.key.split(":")[1] for record in found.records}
    assert uids == {"every-minute-bounded@syncd.test", "weekly@syncd.test"}
    assert len(found.records) == 14


def test_per_calendar_cap_stops_and_reports_the_rest() -> None:
    found = read("limits.ics", limits=Limits(per_calendar=370))
    assert len(found.records) == 365 + 4
    reasons = problems(found)
    assert "per_calendar" in reasons[key("weekly@syncd.test")]
    assert key("daily-forever@syncd.test") not in reasons


# --- broken input -----------------------------------------------------------------


def test_broken_vevents_are_quarantined_while_the_others_sync() -> None:
    found = read("broken_vevent.ics")
    assert times(found) == {key("good@syncd.test"): (at(2027, 3, 1, 9), at(2027, 3, 1, 10))}
    reasons = problems(found)
    assert set(reasons) == {
        key("broken-dtstart@syncd.test"),
        key("no-dtstart@syncd.test"),
        key("broken-rrule@syncd.test"),
        key("broken-dtend@syncd.test"),
        key("two-dtstarts@syncd.test"),
    }
    assert reasons[key("no-dtstart@syncd.test")] == "no DTSTART"
    assert reasons[key("broken-rrule@syncd.test")].startswith("unreadable RRULE")


def test_a_series_the_library_cannot_build_is_quarantined() -> None:
    found = read("bad_series.ics")
    assert sorted(by_key(found)) == [
        key("fine@syncd.test", "20270301T090000Z"),
        key("fine@syncd.test", "20270302T090000Z"),
    ]
    assert problems(found)[key("negative-count@syncd.test")].startswith("bad series")


def test_a_series_whose_expansion_raises_is_quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    between = expand._Series.between

    def failing(self: Any, start: datetime, stop: datetime) -> Any:
        if self.uid == "exdate@syncd.test":
            raise TypeError("can't compare offset-naive and offset-aware datetimes")
        return between(self, start, stop)

    monkeypatch.setattr(expand._Series, "between", failing)
    found = read_calendar(
        fixture("exdate.ics") + fixture("cancelled_override.ics"), calendar=CAL, window=YEAR_2027
    )
    assert len(found.records) == 3
    assert problems(found) == {
        key("exdate@syncd.test"): "expansion failed: TypeError: "
        "can't compare offset-naive and offset-aware datetimes"
    }


def test_bad_valarm_is_rescued_by_the_block_fallback() -> None:
    with pytest.raises(ValueError):
        Calendar.from_ical(fixture("bad_valarm.ics"))  # the whole parse fails
    found = read("bad_valarm.ics")
    assert times(found) == {
        key("alarm-bad@syncd.test"): (at(2027, 3, 1, 8), at(2027, 3, 1, 9)),
        key("alarm-good@syncd.test"): (at(2027, 3, 2, 9), at(2027, 3, 2, 10)),
    }
    assert found.problems == ()


def test_bad_vtimezone_block_is_lost_alone() -> None:
    with pytest.raises(ValueError):
        Calendar.from_ical(fixture("bad_vtimezone.ics"))
    found = read("bad_vtimezone.ics")
    assert times(found) == {
        key("icloud-weekly@syncd.test", "20270305T170000Z"): (
            at(2027, 3, 5, 17),
            at(2027, 3, 5, 17, 30),
        ),
        key("icloud-weekly@syncd.test", "20270312T170000Z"): (
            at(2027, 3, 12, 17),
            at(2027, 3, 12, 17, 30),
        ),
        key("icloud-single@syncd.test"): (at(2027, 3, 6, 17), at(2027, 3, 6, 18)),
    }
    reasons = problems(found)
    assert list(reasons) == ["VTIMEZONE:America/Los_Angeles:-"]
    assert "+5328" in reasons["VTIMEZONE:America/Los_Angeles:-"]
    single = by_key(found)[key("icloud-single@syncd.test")]
    assert single.event.description == "BEGIN:VALARM in a description is text"


def test_bad_vevent_block_is_lost_alone() -> None:
    # A broken component nested in a VEVENT aborts the whole parse; the fallback then
    # tries VEVENT blocks one by one. The Problem names the VEVENT's UID, not the VTODO's.
    found = read("bad_vevent_block.ics")
    assert times(found) == {
        key("neighbour@syncd.test"): (at(2027, 3, 2, 9), at(2027, 3, 2, 10)),
    }
    assert list(problems(found)) == [key("nested-broken@syncd.test")]


def test_unreadable_vevent_without_uid_fails_the_listing() -> None:
    # No Problem could protect its keys, so dropping it would read as a deletion.
    with pytest.raises(Malformed, match="without a UID"):
        read("bad_vevent_block_no_uid.ics")


@pytest.mark.parametrize("name", ["unbalanced.ics", "mismatched_end.ics"])
def test_corrupt_structure_raises_malformed(name: str) -> None:
    with pytest.raises(Malformed):
        read(name)


def test_bad_calendar_property_keeps_x_wr_timezone() -> None:
    found = read("bad_calendar_property.ics", default_tz="America/New_York")
    assert times(found) == {
        key("after-bad-header@syncd.test"): (at(2027, 3, 1, 8), at(2027, 3, 1, 9)),
    }
    assert list(problems(found)) == ["VCALENDAR:calendar:-"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b" \r\n\t\r\n", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b"<!DOCTYPE html>\n<html><body>Please log in</body></html>\n", "HTML"),
        (b"<html><body>BEGIN:VCALENDAR</body></html>", "HTML"),
        (b"BEGIN:VEVENT\nUID:x\nDTSTART:20270301T090000Z\nEND:VEVENT\n", "BEGIN:VCALENDAR"),
        (b'{"error": "not found"}', "BEGIN:VCALENDAR"),
    ],
)
def test_malformed_bodies_raise(body: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        read_calendar(body, calendar=CAL, window=YEAR_2027)


def test_truncated_body_raises_malformed() -> None:
    body = fixture("dst_weekly_berlin.ics")
    with pytest.raises(Malformed, match="truncated"):
        read_calendar(body[: len(body) // 2], calendar=CAL, window=YEAR_2027)
    with pytest.raises(Malformed, match="truncated"):
        read_calendar(body.replace(b"END:VCALENDAR", b""), calendar=CAL, window=YEAR_2027)


def test_bom_crlf_and_lower_case_are_accepted() -> None:
    body = b"\xef\xbb\xbf" + fixture("cancelled_override.ics").replace(b"\n", b"\r\n")
    found = read_calendar(body, calendar=CAL, window=YEAR_2027)
    assert len(found.records) == 3
    lower = fixture("floating.ics").replace(b"BEGIN:VCALENDAR", b"begin:vcalendar")
    lower = lower.replace(b"END:VCALENDAR", b"end:vcalendar")
    assert len(read_calendar(lower, calendar=CAL, window=YEAR_2027).records) == 4


def test_str_bodies_are_refused() -> None:
    with pytest.raises(TypeError):
        read_calendar(fixture("floating.ics").decode(), calendar=CAL, window=YEAR_2027)  # type: ignore[arg-type]


def test_unknown_default_tz_is_an_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        read("floating.ics", default_tz="Mars/Olympus")


def test_windows_default_tz_is_mapped() -> None:
    found = read("floating.ics", default_tz="W. Europe Standard Time")
    single = by_key(found)[key("floating-single@syncd.test")]
    assert single.event.start == at(2027, 1, 15, 8)


def test_window_edges_are_half_open() -> None:
    found = read("cancelled_override.ics", Window(at(2027, 3, 2, 15), at(2027, 3, 3, 15)))
    assert sorted(by_key(found)) == [key("cancelled@syncd.test", "20270302T150000Z")]
    assert timedelta(0) < found.records[0].event.end - found.records[0].event.start  # type: ignore[operator]


def test_last_modified_becomes_the_records_modification_time() -> None:
    body = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:m\r\n"
        b"DTSTAMP:20270101T000000Z\r\nDTSTART:20270301T090000Z\r\n"
        b"LAST-MODIFIED:20270215T120000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (record,) = read_calendar(body, calendar="cal", window=YEAR_2027).records
    assert record.modified == at(2027, 2, 15, 12)


def test_the_rep_on_every_event_is_held_once_not_once_an_event() -> None:
    """A big calendar has the rep (and often a team address) on every event: the
    expansion shares one Person and one address string between them."""
    events = "".join(
        "BEGIN:VEVENT\r\n"
        f"UID:e{n}\r\nDTSTART:2027031{n}T090000Z\r\nSUMMARY:Call {n}\r\n"
        "ORGANIZER:mailto:Rep@Example.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:rep@example.com\r\n"
        f"ATTENDEE;CN=Customer {n}:mailto:c{n}@client.test\r\n"
        "END:VEVENT\r\n"
        for n in range(3)
    )
    data = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{events}END:VCALENDAR\r\n".encode()
    records = read_calendar(data, calendar=CAL, window=MARCH_2027).records
    reps = [record.event.attendees[0] for record in records]
    assert reps[0] == Person("rep@example.com", "", "ACCEPTED")
    assert all(rep is reps[0] for rep in reps)
    assert all(record.event.organizer is reps[0].email for record in records)
    customers = {record.event.attendees[1].email for record in records}
    assert customers == {"c0@client.test", "c1@client.test", "c2@client.test"}


def test_a_customers_address_is_not_left_in_the_interpreters_interned_table() -> None:
    """Regression: every attendee address went through `sys.intern`, whose table grows
    with each distinct customer and never shrinks (0.9 MiB more after a 10,000-customer
    feed, for the daemon's life). An address made equal afterwards must not come back as
    the record's own object, which `sys.intern` would hand out had it been interned."""
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:one\r\n"
        "DTSTART:20270310T090000Z\r\nORGANIZER:mailto:boss-7q2@client.test\r\n"
        "ATTENDEE;CN=Customer:mailto:Buyer-7q2@Client.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (record,) = read_calendar(body.encode(), calendar=CAL, window=MARCH_2027).records
    (customer,) = record.event.attendees
    assert customer.email == "buyer-7q2@client.test"
    assert sys.intern("".join(["buyer-7q2", "@client.test"])) is not customer.email
    assert sys.intern("".join(["boss-7q2", "@client.test"])) is not record.event.organizer
