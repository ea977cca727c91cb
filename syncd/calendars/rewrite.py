"""Writing events into iCalendar objects without flattening series (pure: bytes in, bytes out).

Every writable calendar kind (a vdir file, one `.ics` file, a CalDAV resource) edits
its objects through these functions:

- a single event's fields are written into its VEVENT;
- one occurrence of a series gets a RECURRENCE-ID override (RFC 5545 3.8.4.4), made
  from the series' own component when it has none, so the rest of the series stays;
- deleting an occurrence adds an EXDATE to the series and drops its override; a
  cancelled occurrence is an override with STATUS:CANCELLED;
- every other property and component (VALARMs, X- properties, VTIMEZONEs) is kept as
  it was; what is written gets SEQUENCE bumped and LAST-MODIFIED/DTSTAMP set.

RECURRENCE-ID and EXDATE values take the form of the series' DTSTART (RFC 5545
3.8.4.4: "the same value type as DTSTART"; a date, a floating time or a time in the
DTSTART's zone), so clients that compare them literally still match them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from syncd.errors import Gone, Rejected
from syncd.ical import parse_for_rewrite
from syncd.model import SINGLE, Event, OccurrenceKey, Window

PRODID = "-//syncd//syncd//EN"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FIELD_PROPERTIES = {
    "start": "dtstart",
    "end": "dtend",
    "title": "summary",
    "description": "description",
    "location": "location",
    "status": "status",
    "outcome": "x-syncd-outcome",
}
"""The model fields syncd writes into a VEVENT, and their properties. Organizer and
attendees are left as the calendar has them."""

_SERIES_ONLY = frozenset(
    {"RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", "DTSTART", "DTEND", "DURATION"}
)
"""Properties of a series' component that an override made from it must not copy."""


def write_event(
    data: bytes | None, key: OccurrenceKey, event: Event, changed: Iterable[str], zone: str = "UTC"
) -> bytes:
    """The calendar object `data` with `event` written for `key`.

    `data` None makes a new object holding one single event. A single event gets the
    `changed` fields; an occurrence gets an override holding the whole event (an EXDATE
    of it is dropped: writing an occurrence restores it). `Gone` when the object holds
    no event with the key's UID; `Rejected` for an occurrence of a series not there.
    """
    if data is None:
        if key.rid != SINGLE:
            raise Rejected(f"the series {key.uid} is not in the calendar", key=key.text)
        return bytes(new_calendar(key.uid, event).to_ical())
    calendar = parse_for_rewrite(data)
    if key.rid == SINGLE:
        _write_single(calendar, key, event, frozenset(changed), ZoneInfo(zone))
    else:
        _write_override(calendar, key, event, frozenset(changed), ZoneInfo(zone))
    return bytes(calendar.to_ical())


def held_fields(event: Event) -> frozenset[str]:
    """The fields of a new event worth writing: times, status and what is not empty (a
    vendor that holds no description must not blank the series' one)."""
    return frozenset(name for name in FIELD_PROPERTIES if getattr(event, name)) | {"status"}


def add_event(data: bytes, key: OccurrenceKey, event: Event) -> bytes:
    """A calendar holding many events (one `.ics` file) with a new single event added."""
    calendar = parse_for_rewrite(data)
    if _components(calendar, key.uid):
        raise Rejected(f"the calendar already holds an event {key.uid}", key=key.text)
    calendar.add_component(new_vevent(key.uid, event))
    return bytes(calendar.to_ical())


def remove_event(data: bytes, key: OccurrenceKey, keep_empty: bool = False) -> bytes | None:
    """The object without `key`: a single event (with any overrides of its UID) removed,
    or an occurrence excluded by an EXDATE. None when no event is left in the object,
    unless `keep_empty` (a file that is the whole calendar stays, with no events)."""
    calendar = parse_for_rewrite(data)
    if key.rid == SINGLE:
        for component in _components(calendar, key.uid):
            calendar.subcomponents.remove(component)
    else:
        _exclude(calendar, key)
    if not keep_empty and not any(c.name == "VEVENT" for c in calendar.subcomponents):
        return None
    return bytes(calendar.to_ical())


def uids(data: bytes) -> set[str]:
    """The UIDs of the events an object holds."""
    return {str(c.get("uid")) for c in parse_for_rewrite(data).walk("VEVENT")}


def new_calendar(uid: str, event: Event) -> icalendar.Calendar:
    """A VCALENDAR with one VEVENT for a new event."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add_component(new_vevent(uid, event))
    return calendar


def new_vevent(uid: str, event: Event) -> icalendar.Event:
    """A VEVENT for a new single event."""
    vevent = icalendar.Event()
    vevent.add("uid", uid)
    vevent.add("sequence", 0)
    set_fields(vevent, event, FIELD_PROPERTIES)
    return vevent


def set_fields(vevent: icalendar.cal.Component, event: Event, changed: Iterable[str]) -> None:
    """Write the changed fields into a VEVENT, leaving every other property as it is."""
    for name in changed:
        prop = FIELD_PROPERTIES.get(name)
        if prop is None:
            continue
        if prop == "dtend":
            vevent.pop("duration", None)  # DTEND and DURATION must not both be present
        value = getattr(event, name)
        vevent.pop(prop, None)
        if value:
            vevent.add(prop, value.upper() if prop == "status" else value)
    _touch(vevent)


def read_back_window(occurrence: OccurrenceKey, event: Event) -> Window:
    """A window holding an occurrence's original and actual start, to read it back."""
    if occurrence.rid == SINGLE:
        return Window(_EPOCH, _EPOCH)  # single events are listed whatever the window
    moments = [_utc(event.start), _utc(event.end), _utc(rid_moment(occurrence.rid))]
    return Window(min(moments) - timedelta(days=2), max(moments) + timedelta(days=2))


def rid_moment(rid: str) -> date:
    """A rid's original start, close enough to bound a window (floating read as UTC)."""
    if "T" not in rid:
        return datetime.strptime(rid, "%Y%m%d").date()
    return datetime.strptime(rid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _utc(value: date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(), UTC)


# --- singles ---------------------------------------------------------------------------


def _write_single(
    calendar: icalendar.Calendar,
    key: OccurrenceKey,
    event: Event,
    changed: frozenset[str],
    zone: tzinfo,
) -> None:
    vevent = _series(calendar, key)
    if changed & {"start", "end"}:
        _set_times(vevent, event, vevent, zone)  # moved, but kept in its own zone
    set_fields(vevent, event, changed - {"start", "end"})
    _bump(vevent)


# --- occurrences -----------------------------------------------------------------------


def _write_override(
    calendar: icalendar.Calendar,
    key: OccurrenceKey,
    event: Event,
    changed: frozenset[str],
    zone: tzinfo,
) -> None:
    series = _series(calendar, key)
    original = rid_value(key.rid, series)
    _drop_exdate(series, original)
    override = _override(calendar, key, series) or _new_override(calendar, series, original)
    _set_times(override, event, series, zone)
    set_fields(override, event, changed - {"start", "end"})
    _bump(override, int(series.get("sequence", 0)))


def _exclude(calendar: icalendar.Calendar, key: OccurrenceKey) -> None:
    series = _series(calendar, key)
    override = _override(calendar, key, series)
    if override is not None:
        calendar.subcomponents.remove(override)
    original = rid_value(key.rid, series)
    if original not in _exdates(series):
        series.add("exdate", original)
    _touch(series)
    _bump(series)


def _new_override(
    calendar: icalendar.Calendar, series: icalendar.cal.Component, original: date
) -> icalendar.cal.Component:
    """An override made from the series' component: its properties (not its rules or
    times) and its subcomponents (alarms), with the occurrence's RECURRENCE-ID."""
    override = icalendar.Event()
    for name, value in series.items():
        if name.upper() not in _SERIES_ONLY:
            override[name] = copy.deepcopy(value)
    for sub in series.subcomponents:
        override.add_component(copy.deepcopy(sub))
    override.add("recurrence-id", original)
    calendar.add_component(override)
    return override


def _set_times(
    override: icalendar.cal.Component,
    event: Event,
    series: icalendar.cal.Component,
    zone: tzinfo,
) -> None:
    """DTSTART/DTEND in the form of the series' (or the event's own) DTSTART: its zone,
    floating wall time, or dates."""
    start_value = _first(series.get("dtstart")).dt
    for prop, value in (("dtstart", event.start), ("dtend", event.end)):
        override.pop(prop, None)
        override.add(prop, _like(value, start_value, zone))
    override.pop("duration", None)


def _like(value: date, model: date, zone: tzinfo) -> date:
    """`value` (a date, or an aware time) in the form of `model`."""
    if not isinstance(value, datetime):
        return value
    if not isinstance(model, datetime):
        return value  # a timed occurrence of an all-day series: keep it timed
    if model.tzinfo is None:
        return value.astimezone(zone).replace(tzinfo=None)
    return value.astimezone(model.tzinfo)


def rid_value(rid: str, series: icalendar.cal.Component) -> date:
    """A rid (`20270301`, `20270301T090000Z`, `20270301T090000L`) as a RECURRENCE-ID or
    EXDATE value of the series: the form of its DTSTART."""
    start = _first(series.get("dtstart")).dt
    if "T" not in rid:
        day = datetime.strptime(rid, "%Y%m%d").date()
        return datetime.combine(day, start.timetz()) if isinstance(start, datetime) else day
    moment = datetime.strptime(rid[:15], "%Y%m%dT%H%M%S")
    if rid.endswith("L") or not isinstance(start, datetime) or start.tzinfo is None:
        return moment
    return moment.replace(tzinfo=UTC).astimezone(start.tzinfo)


def _override(
    calendar: icalendar.Calendar, key: OccurrenceKey, series: icalendar.cal.Component
) -> icalendar.cal.Component | None:
    target = _comparable(rid_value(key.rid, series))
    for component in _components(calendar, key.uid):
        rid = component.get("recurrence-id")
        if rid is not None and _comparable(_as_series(rid.dt, series)) == target:
            return component
    return None


def _as_series(value: date, series: icalendar.cal.Component) -> date:
    """A RECURRENCE-ID as written, in the series' form (a date for a timed series takes
    the series' time; a floating one its zone)."""
    start = _first(series.get("dtstart")).dt
    if isinstance(start, datetime) and not isinstance(value, datetime):
        return datetime.combine(value, start.timetz())
    if isinstance(start, datetime) and isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=start.tzinfo)
    return value


def _comparable(value: date) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _exdates(series: icalendar.cal.Component) -> set[Any]:
    values = series.get("exdate")
    found: set[Any] = set()
    for prop in values if isinstance(values, list) else [values] if values else []:
        found.update(_comparable(_as_series(each.dt, series)) for each in prop.dts)
    return found


def _drop_exdate(series: icalendar.cal.Component, original: date) -> None:
    """Forget an EXDATE of `original` (a restored occurrence), keeping the others."""
    target = _comparable(original)
    if target not in _exdates(series):
        return
    kept = [
        each.dt
        for prop in _all(series.pop("exdate"))
        for each in prop.dts
        if _comparable(_as_series(each.dt, series)) != target
    ]
    for value in kept:
        series.add("exdate", value)


# --- finding components ----------------------------------------------------------------


def _components(calendar: icalendar.Calendar, uid: str) -> list[icalendar.cal.Component]:
    return [
        c for c in calendar.subcomponents if c.name == "VEVENT" and str(c.get("uid", "")) == uid
    ]


def _series(calendar: icalendar.Calendar, key: OccurrenceKey) -> icalendar.cal.Component:
    """The component without RECURRENCE-ID of the key's UID: the event or its series."""
    for component in _components(calendar, key.uid):
        if component.get("recurrence-id") is None:
            return component
    raise Gone(f"no event {key.uid} in the calendar", key=key.text)


def _bump(component: icalendar.cal.Component, floor: int = 0) -> None:
    sequence = max(int(component.get("sequence", 0)), floor) + 1
    component.pop("sequence", None)
    component.add("sequence", sequence)


def _touch(component: icalendar.cal.Component) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for prop in ("last-modified", "dtstamp"):
        component.pop(prop, None)
        component.add(prop, now)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _all(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
