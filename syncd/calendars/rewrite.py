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
from syncd.ical import parse_for_rewrite, zone_named
from syncd.model import SINGLE, Event, OccurrenceKey, Window, rid_start

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
    `changed` fields; an occurrence gets an override with its times and the `changed`
    fields (an EXDATE of it is dropped: writing an occurrence restores it). `Gone` when
    the object holds no event with the key's UID; `Rejected` when the write cannot be
    made without changing more than the occurrence (see `_Series`). `zone` is the
    calendar's zone for floating times, unless the object names one (X-WR-TIMEZONE).
    """
    if data is None:
        if key.rid != SINGLE:
            raise Rejected(f"the series {key.uid} is not in the calendar", key=key.text)
        return bytes(new_calendar(key.uid, event).to_ical())
    calendar = _parse(data, key)
    series = _Series(calendar, key, _floating_zone(calendar, zone))
    if key.rid == SINGLE:
        series.write_single(event, frozenset(changed))
    else:
        series.write_occurrence(event, frozenset(changed))
    return bytes(calendar.to_ical())


def held_fields(event: Event) -> frozenset[str]:
    """The fields of a new event worth writing: times, status and what is not empty (a
    vendor that holds no description must not blank the series' one)."""
    return frozenset(name for name in FIELD_PROPERTIES if getattr(event, name)) | {"status"}


def add_event(data: bytes, key: OccurrenceKey, event: Event) -> bytes:
    """A calendar holding many events (one `.ics` file) with a new single event added."""
    calendar = _parse(data, key)
    if _components(calendar, key.uid):
        raise Rejected(f"the calendar already holds an event {key.uid}", key=key.text)
    calendar.add_component(new_vevent(key.uid, event))
    return bytes(calendar.to_ical())


def remove_event(
    data: bytes, key: OccurrenceKey, keep_empty: bool = False, zone: str = "UTC"
) -> bytes | None:
    """The object without `key`: a single event (with any overrides of its UID) removed,
    or an occurrence excluded by an EXDATE. None when no event is left in the object,
    unless `keep_empty` (a file that is the whole calendar stays, with no events)."""
    calendar = _parse(data, key)
    if key.rid == SINGLE:
        for component in _components(calendar, key.uid):
            calendar.subcomponents.remove(component)
    else:
        _Series(calendar, key, _floating_zone(calendar, zone)).exclude()
    if not keep_empty and not any(c.name == "VEVENT" for c in calendar.subcomponents):
        return None
    return bytes(calendar.to_ical())


def uids(data: bytes) -> set[str]:
    """The UIDs of the events an object holds (none when it cannot be read)."""
    try:
        calendar = parse_for_rewrite(data)
    except Exception:  # icalendar raises several types; unreadable is all that matters
        return set()
    return {str(c.get("uid")) for c in calendar.walk("VEVENT")}


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
    moments = [_utc(event.start), _utc(event.end), _utc(rid_start(occurrence.rid))]
    return Window(min(moments) - timedelta(days=2), max(moments) + timedelta(days=2))


def _utc(value: date) -> datetime:
    """Close enough to bound a window: floating times are read as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(), UTC)


# --- one UID's components ----------------------------------------------------------------


class _Series:
    """The components of one UID in a calendar object: its master (the event, or the
    series' rule-bearing component) and its overrides. An object may hold overrides
    only (an invitation to one instance): those can be edited and removed, not added to.

    Times are compared and written in the form of the master's DTSTART (RFC 5545
    3.8.4.4); without a master, in the form of the overrides' RECURRENCE-ID. Floating
    times are read in `zone`, as the reader does.
    """

    def __init__(self, calendar: icalendar.Calendar, key: OccurrenceKey, zone: tzinfo) -> None:
        self.calendar, self.key, self.zone = calendar, key, zone
        self.components = _components(calendar, key.uid)
        if not self.components:
            raise Gone(f"no event {key.uid} in the calendar", key=key.text)
        masters = [c for c in self.components if c.get("recurrence-id") is None]
        self.master: icalendar.cal.Component | None = masters[0] if masters else None
        model = self.master["dtstart"] if self.master else self.components[0]["recurrence-id"]
        self.form: date = _first(model).dt

    def write_single(self, event: Event, changed: frozenset[str]) -> None:
        """The changed fields into the event itself, its times in its own form."""
        vevent = self._master()
        if changed & {"start", "end"}:
            self._set_times(vevent, event)
        set_fields(vevent, event, changed - {"start", "end"})
        _bump(vevent)

    def write_occurrence(self, event: Event, changed: frozenset[str]) -> None:
        """The occurrence's override, made from the series when it has none."""
        original = self.rid_value()
        override = self._override()
        if override is None:
            master = self._master(f"only some occurrences of {self.key.uid} are here")
            self._drop_exdate(master, original)
            override = self._new_override(original)
        self._set_times(override, event)
        set_fields(override, event, changed - {"start", "end"})
        _bump(override, int(self.master.get("sequence", 0)) if self.master else 0)

    def exclude(self) -> None:
        """The occurrence gone: its override dropped, an EXDATE in the series."""
        override = self._override()
        if override is not None:
            self.calendar.subcomponents.remove(override)
        if self.master is None:
            return  # overrides only: removing this one is all there is
        original = self.rid_value()
        if _comparable(original) not in self._exdates(self.master):
            self.master.add("exdate", original)
        _touch(self.master)
        _bump(self.master)

    # --- identifying the occurrence -------------------------------------------------------

    def rid_value(self) -> date:
        """The key's rid (`20270301`, `…T090000Z`, `…T090000L`) as a RECURRENCE-ID or
        EXDATE value in the series' form."""
        start, form = rid_start(self.key.rid), self.form
        if isinstance(start, datetime):
            return self.as_form(start)
        return datetime.combine(start, form.timetz()) if isinstance(form, datetime) else start

    def as_form(self, value: date) -> date:
        """A time written in any form, in the series' form (so it can be compared)."""
        form = self.form
        if not isinstance(form, datetime):
            return value.date() if isinstance(value, datetime) else value
        if not isinstance(value, datetime):
            return datetime.combine(value, form.timetz())
        if form.tzinfo is None:
            return value.astimezone(self.zone).replace(tzinfo=None) if value.tzinfo else value
        return value.astimezone(form.tzinfo) if value.tzinfo else value.replace(tzinfo=form.tzinfo)

    def _override(self) -> icalendar.cal.Component | None:
        target = _comparable(self.rid_value())
        for component in self.components:
            rid = component.get("recurrence-id")
            if rid is not None and _comparable(self.as_form(rid.dt)) == target:
                if _starts_range(rid):
                    raise Rejected(
                        f"{self.key.uid}: this occurrence starts a THISANDFUTURE range; "
                        "writing it alone would change every later one",
                        key=self.key.text,
                    )
                return component
        return None

    def _master(self, why: str = "") -> icalendar.cal.Component:
        if self.master is None:
            raise Rejected(why or f"{self.key.uid} has no master component", key=self.key.text)
        return self.master

    # --- making and changing components ---------------------------------------------------

    def _new_override(self, original: date) -> icalendar.cal.Component:
        """An override made from the component that shapes this occurrence now (the
        series, or a THISANDFUTURE override before it): its properties, not its rules or
        times, and its subcomponents (alarms), with the occurrence's RECURRENCE-ID."""
        template = self._template(original)
        override = icalendar.Event()
        for name, value in template.items():
            if name.upper() not in _SERIES_ONLY:
                override[name] = copy.deepcopy(value)
        for sub in template.subcomponents:
            override.add_component(copy.deepcopy(sub))
        override.add("recurrence-id", original)
        self.calendar.add_component(override)
        return override

    def _template(self, original: date) -> icalendar.cal.Component:
        target = _comparable(original)
        ranges = [
            (_comparable(self.as_form(rid.dt)), c)
            for c in self.components
            if (rid := c.get("recurrence-id")) is not None and _starts_range(rid)
        ]
        before = [pair for pair in ranges if pair[0] <= target]
        return max(before, key=lambda pair: pair[0])[1] if before else self._master()

    def _set_times(self, component: icalendar.cal.Component, event: Event) -> None:
        """DTSTART/DTEND in the series' form: its zone, floating wall time, or dates
        (a vendor that keeps all-day events as UTC midnights gives back midnights)."""
        start, end = event.start, event.end
        if not isinstance(self.form, datetime) and _midnights(start, end):
            start, end = _day_of(start), _day_of(end)
        for prop, value in (("dtstart", start), ("dtend", end)):
            component.pop(prop, None)
            component.add(prop, self._like(value))
        component.pop("duration", None)

    def _like(self, value: date) -> date:
        if not isinstance(value, datetime) or not isinstance(self.form, datetime):
            return value  # a date stays a date; a timed occurrence of an all-day series stays timed
        if self.form.tzinfo is None:
            return value.astimezone(self.zone).replace(tzinfo=None)
        return value.astimezone(self.form.tzinfo)

    def _exdates(self, master: icalendar.cal.Component) -> set[Any]:
        return {
            _comparable(self.as_form(each.dt))
            for prop in _all(master.get("exdate", []))
            for each in prop.dts
        }

    def _drop_exdate(self, master: icalendar.cal.Component, original: date) -> None:
        """Forget an EXDATE of `original` (a restored occurrence), keeping the others."""
        target = _comparable(original)
        if target not in self._exdates(master):
            return
        kept = [
            each.dt
            for prop in _all(master.pop("exdate"))
            for each in prop.dts
            if _comparable(self.as_form(each.dt)) != target
        ]
        for value in kept:
            master.add("exdate", value)


def _starts_range(rid: Any) -> bool:
    return str(getattr(rid, "params", {}).get("RANGE", "")).upper() == "THISANDFUTURE"


def _midnights(start: date, end: date) -> bool:
    return all(isinstance(v, datetime) and v.astimezone(UTC).time() == time() for v in (start, end))


def _day_of(value: date) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _comparable(value: date) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _floating_zone(calendar: icalendar.Calendar, zone: str) -> tzinfo:
    """The zone floating times are read in: the object's X-WR-TIMEZONE when it names one
    (as the reader applies it), else the calendar's configured zone."""
    named = calendar.get("x-wr-timezone")
    found = zone_named(str(_first(named))) if named is not None else None
    return found or ZoneInfo(zone)


def _parse(data: bytes, key: OccurrenceKey) -> icalendar.Calendar:
    """The object parsed whole for editing; one the writer cannot read is refused for
    this item (quarantined), never a failure of the run."""
    try:
        return parse_for_rewrite(data)
    except Exception as exc:  # icalendar raises ValueError, KeyError, TypeError, ...
        raise Rejected(
            f"cannot rewrite {key.uid}: the object does not parse whole: {exc}", key=key.text
        ) from exc


# --- finding components ----------------------------------------------------------------


def _components(calendar: icalendar.Calendar, uid: str) -> list[icalendar.cal.Component]:
    return [
        c for c in calendar.subcomponents if c.name == "VEVENT" and str(c.get("uid", "")) == uid
    ]


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
