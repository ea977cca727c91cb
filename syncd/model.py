"""The core model: events, occurrence keys, windows, records and fingerprints.

Pure data and pure functions only: nothing here does I/O or imports a third-party
package. Every other layer speaks in these types.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Moment = datetime | date
"""An aware datetime (normalised to UTC by the calendars), or a date for all-day."""

EVENT_FIELDS: frozenset[str] = frozenset(
    {
        "start",
        "end",
        "title",
        "description",
        "location",
        "status",
        "organizer",
        "attendees",
        "owner",
        "contact",
        "outcome",
    }
)
"""The fields a fingerprint may cover; `private` and `transparent` only steer filters."""

STATUSES = ("confirmed", "tentative", "cancelled")
OUTCOMES = ("completed", "no_show")
"""What a vendor records about a meeting that took place (or did not): it flows back
into the calendar as `X-SYNCD-OUTCOME` and never from the calendar to a vendor."""


@dataclass(frozen=True, slots=True)
class Person:
    """Somebody on an event: an attendee, a customer, an organiser."""

    email: str
    name: str = ""
    partstat: str = ""  # RFC 5545 PARTSTAT (ACCEPTED, DECLINED, ...); "" when unknown


@functools.lru_cache(maxsize=256)
def shared_person(email: str, name: str = "", partstat: str = "") -> Person:
    """One object for an attendee who is on many events (the rep, a team address): a big
    calendar holds them once, not once an event. The cache is small because what repeats
    is few people; a feed of distinct customers churns it, and at 1,024 entries it held
    1 MiB of them for good."""
    return Person(shared_address(email), name, partstat)


@functools.lru_cache(maxsize=256)
def shared_address(address: str) -> str:
    """The first of equal addresses seen lately, for one that repeats on many events (the
    rep's, as organizer or attendee). Not `sys.intern`: the interpreter's table of
    interned strings grows with every distinct customer and never shrinks (a parse of
    10,000 customers' events left it 0.9 MiB larger for good)."""
    return address


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence's content, as both sides of a route see it."""

    start: Moment
    end: Moment
    title: str = ""
    description: str = ""
    location: str = ""
    status: str = "confirmed"
    organizer: str = ""
    attendees: tuple[Person, ...] = ()
    owner: str = ""  # the rep who owns the record at the vendor (the route's `rep` rule)
    contact: Person | None = None  # the external party (the vendor's "customer")
    private: bool = False  # CLASS:PRIVATE or CONFIDENTIAL
    transparent: bool = False  # TRANSP:TRANSPARENT (shown as free)
    modified: datetime | None = None  # LAST-MODIFIED: sent where a vendor guards stale writes
    outcome: str = ""  # one of OUTCOMES, or "" (see OUTCOMES)

    @property
    def all_day(self) -> bool:
        """True when the event spans whole days (a DATE start)."""
        return not isinstance(self.start, datetime)


Rid = str
"""`-` for a non-recurring event, else the original start: `20270301T090000Z`,
`20270301` (all-day) or `20270301T090000L` (floating wall time)."""

SINGLE: Rid = "-"


def rid_start(rid: Rid) -> date:
    """The original start a rid names: a date, an aware UTC time (`…Z`) or a naive wall
    time (`…L`, floating). `ValueError` for `-`, a single event's."""
    if "T" not in rid:
        return datetime.strptime(rid, "%Y%m%d").date()
    moment = datetime.strptime(rid[:15], "%Y%m%dT%H%M%S")
    return moment.replace(tzinfo=UTC) if rid.endswith("Z") else moment


@dataclass(frozen=True, order=True, slots=True)
class OccurrenceKey:
    """Identity of one occurrence inside one calendar (DESIGN.md section 2)."""

    calendar: str
    uid: str
    rid: Rid = SINGLE
    component: str = "VEVENT"

    @property
    def text(self) -> str:
        """The key as stored: `VEVENT:<uid>:<rid>` (uid may hold colons; the ends do not)."""
        return f"{self.component}:{self.uid}:{self.rid}"

    @classmethod
    def parse(cls, calendar: str, text: str) -> OccurrenceKey:
        """Read back a key written by `text`."""
        component, rest = text.split(":", 1)
        uid, rid = rest.rsplit(":", 1)
        return cls(calendar, uid, rid, component)


def calendar_uid(cal_key: str) -> str:
    """The UID of an occurrence key (`VEVENT:<uid>:<rid>`; the uid may hold colons),
    without building an `OccurrenceKey`."""
    return cal_key.partition(":")[2].rpartition(":")[0]


_URL_SAFE = re.compile(r"[A-Za-z0-9._~:@-]+")
VENDOR_KEY_MAX = 128


def vendor_key(key: OccurrenceKey) -> str:
    """The key syncd chooses for a vendor record (DESIGN.md section 2).

    `<calendar>:<uid>` for a single event, `<calendar>:<uid>:<rid>` for an occurrence.
    A form longer than 128 characters, or one with characters that are not safe in a
    URL path segment (`/`, `?`, `#`, `%`, spaces, ...), becomes
    `<calendar>:h:<26 base32 characters of SHA-256 of the long form>`: vendors put this
    key into URL paths, and some (Firestore-backed ones) cannot hold a `/` in an id.
    """
    long = f"{key.calendar}:{key.uid}"
    if key.rid != SINGLE:
        long = f"{long}:{key.rid}"
    if len(long) <= VENDOR_KEY_MAX and _URL_SAFE.fullmatch(long):
        return long
    digest = base64.b32encode(hashlib.sha256(long.encode()).digest()).decode()
    return f"{key.calendar}:h:{digest[:26].lower()}"


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open span `[start, end)` a route syncs; aware UTC datetimes."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, now: datetime, past: timedelta, future: timedelta) -> Window:
        """The window `[now - past, now + future)`."""
        return cls(now - past, now + future)

    def holds(self, moment: Moment) -> bool:
        """Whether a moment lies inside; a date counts from its UTC midnight."""
        return self.start <= as_utc(moment) < self.end


def as_utc(moment: Moment) -> datetime:
    """A moment as an aware UTC datetime (a date becomes its UTC midnight)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: anchor floating times first")
        return moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Record:
    """One item as a side lists it: its key there, its content and its version."""

    key: str  # calendars: OccurrenceKey.text; vendors: the vendor key
    event: Event
    version: str = ""  # ETag, updatedAt or content hash: whatever the side offers
    remote_id: str = ""  # the vendor's own id where it has one
    anchor: Moment | None = None  # original start (rid) of an occurrence, for the window
    modified: datetime | None = None  # LAST-MODIFIED / updatedAt, for `conflict: newest`
    marker: str = ""  # the syncd key a server-id vendor's record carries (see `with_marker`)

    def in_window(self, window: Window) -> bool:
        """Inside when the original start or the actual start is inside."""
        return window.holds(self.event.start) or (
            self.anchor is not None and window.holds(self.anchor)
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """An item a side could not read or a write it refused: quarantined, with why."""

    key: str
    reason: str


Absence = Literal["authoritative", "get", "relist"]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one listing of a side returned: records, problems, and whether it is whole."""

    records: Sequence[Record]  # a tuple, or a calendar's packed groups (`syncd.packed`)
    problems: tuple[Problem, ...] = ()
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Link:
    """The state row that ties one occurrence to one vendor record."""

    cal_key: str
    vendor_key: str
    cal_fp: str
    vendor_fp: str
    anchor: Moment | None = None  # last synced original start (or start), for the window
    missing: Literal["calendar", "vendor", ""] = ""  # not shown by the last complete listing
    accepted: bool = False  # the sides differ on purpose: the vendor cannot hold it all
    remote_id: str = ""


def event_snapshot(event: Event) -> dict[str, object]:
    """The event as plain JSON-ready data, for conflict snapshots and `plan --json`."""
    return {
        "start": moment_text(event.start),
        "end": moment_text(event.end),
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "status": event.status,
        "organizer": event.organizer,
        "attendees": [_person(p) for p in event.attendees],
        "owner": event.owner,
        "contact": _person(event.contact) if event.contact else None,
        "outcome": event.outcome,
    }


def parse_moment(text: str) -> Moment:
    """Read back `moment_text`: a date for `YYYY-MM-DD`, else an aware datetime."""
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


MARKER_PREFIX = "syncd-key: "
"""How a record at a vendor that generates its own ids carries syncd's key: a last line of
its description. Listing the window and reading markers back is how a create that was
sent but never recorded (a crash in between) is adopted instead of repeated."""


def with_marker(description: str, key: str) -> str:
    """The description with syncd's marker line for `key` appended."""
    return f"{description}\n\n{MARKER_PREFIX}{key}" if description else f"{MARKER_PREFIX}{key}"


_MARKER = re.compile(r"(?:\n\n)?syncd-key:[ \t]*([A-Za-z0-9._~:@-]+)")


def split_marker(description: str) -> tuple[str, str]:
    """(the description without syncd's marker, the key it carried or ""). The last
    marker anywhere counts, not only a last line: people add notes below it, and
    vendors turn line breaks into markup; a key has only URL-safe characters."""
    found = list(_MARKER.finditer(description))
    if not found:
        return description, ""
    last = found[-1]
    body = (description[: last.start()] + description[last.end() :]).strip()
    return body, last.group(1)


def fingerprint(event: Event, fields: Iterable[str]) -> str:
    """A hash of the event's normalised fields: the same content gives the same value."""
    data = {name: normalised(name, getattr(event, name)) for name in sorted(fields)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def normalised(name: str, value: object) -> object:
    """The comparable form of one field's value."""
    if isinstance(value, (datetime, date)):
        return moment_text(value)
    if isinstance(value, str):
        return _text(value, email=name in ("organizer", "owner"))
    if isinstance(value, Person):
        return _person(value)
    if isinstance(value, tuple):
        return sorted((_person(p) for p in value), key=lambda p: p[0])
    return value


def moment_text(moment: Moment) -> str:
    """`2027-03-01T09:00:00Z` for a datetime (UTC, whole seconds), `2027-03-01` for a date."""
    if isinstance(moment, datetime):
        return as_utc(moment).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def _text(value: str, *, email: bool = False) -> str:
    if "\n" in value or "\r" in value:
        lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        text = "\n".join(line.rstrip() for line in lines).strip()
    else:
        text = value.strip()  # one line: the same, without splitting (most values)
    return text.lower() if email else text


def _person(person: Person) -> list[str]:
    return [person.email.strip().lower(), _text(person.name), person.partstat.upper()]


def changed_fields(old: Event, new: Event, fields: Iterable[str]) -> frozenset[str]:
    """The fields whose normalised values differ between two events."""
    return frozenset(
        name
        for name in fields
        if normalised(name, getattr(old, name)) != normalised(name, getattr(new, name))
    )
