"""Read one iCalendar body into occurrence records: pre-flight, parse, sanitise, expand.

`read_calendar` is pure CPU work; the caller runs it in a thread. It applies
ICALENDAR.md sections 1 to 3 and 7: bytes only, a pre-flight that turns HTML, empty
and truncated bodies into `Malformed`, a per-block fallback when one non-VEVENT block
breaks the whole parse, and a per-VEVENT quarantine (broken or missing DTSTART,
unknown TZID, unsupported or unbounded rules) so one bad event never hides the others.
Expansion and keys live in `syncd.expand`.

The custom-VTIMEZONE cache of icalendar is process-wide, first definition wins
(ICALENDAR.md 1a, hard case 9). Every parse resets it with `tzp.use_zoneinfo()`
under `PARSE_LOCK`, so one feed's `Customized Time Zone` never leaks into another's.
Parsed values hold their tzinfo objects, so expansion runs outside the lock.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

import x_wr_timezone
from icalendar import Calendar, Component
from icalendar.timezone import tzp
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from syncd.errors import Malformed
from syncd.expand import Limits, describe, expand, problem
from syncd.model import OccurrenceKey, Problem, Record, Window

__all__ = ["Expansion", "Limits", "read_calendar"]

DEFAULT_LIMITS = Limits()
PARSE_LOCK = threading.Lock()
"""Held around every parse here; any other `from_ical` in the process should hold it
too, or its custom VTIMEZONEs can land in the cache in the middle of a feed's parse."""
_LINES = re.compile(r"\r\n|\n|\r")
_TIME_PROPERTIES = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE"}
)
_SINGLETONS = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")
_RESCUED = ("VEVENT", "VTIMEZONE")  # the only blocks the fallback keeps
_HEADER_KEPT = ("X-WR-TIMEZONE", "CALSCALE")


@dataclass(frozen=True)
class Expansion:
    """What one calendar body holds inside a window: records and quarantined items."""

    records: tuple[Record, ...]
    problems: tuple[Problem, ...]


def read_calendar(
    data: bytes,
    *,
    calendar: str,
    window: Window,
    default_tz: str = "UTC",
    limits: Limits = DEFAULT_LIMITS,
) -> Expansion:
    """Parse one iCalendar body and expand it inside the window.

    Pure CPU work (the caller runs it in a thread). Raises `Malformed` when the body is
    not a whole calendar; quarantined components come back as `problems`.
    """
    _preflight(data)
    zone = zone_named(default_tz)
    if zone is None:
        raise ValueError(f"default_tz {default_tz!r} is not a known time zone")
    calendars, problems = _parse(data, calendar)
    merged = Calendar()
    for each in calendars:
        merged.subcomponents.extend(_prepare(each, calendar, zone, problems))
    records, more = expand(merged, name=calendar, window=window, zone=zone, limits=limits)
    problems.extend(more)
    return Expansion(
        tuple(sorted(records, key=lambda record: record.key)),
        tuple(sorted(problems, key=lambda item: (item.key, item.reason))),
    )


# --- pre-flight and parsing ---------------------------------------------------------


def _preflight(data: bytes) -> None:
    """Refuse what is plainly not a whole calendar (ICALENDAR.md 1c, hard case 37)."""
    if not isinstance(data, bytes):
        raise TypeError("calendar bodies must be bytes: icalendar reads a one-line str as a path")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x00")
    if not head:
        raise Malformed("calendar body is empty")
    if head[:1] == b"<":
        raise Malformed("calendar body is an HTML/XML page, not iCalendar")
    if not head[:15].upper() == b"BEGIN:VCALENDAR":
        raise Malformed(f"calendar body does not start with BEGIN:VCALENDAR: {head[:40]!r}")
    if not data[-64:].rstrip(b" \t\r\n\x00").upper().endswith(b"END:VCALENDAR"):
        raise Malformed("calendar body is truncated: it does not end with END:VCALENDAR")


def _from_ical(data: bytes) -> list[Calendar]:
    return Calendar.from_ical(data, multiple=True)


def parse_for_rewrite(data: bytes) -> Calendar:
    """One calendar parsed whole, for editing and writing back: under `PARSE_LOCK` with a
    clean time-zone cache, like every other parse."""
    with PARSE_LOCK:
        tzp.use_zoneinfo()
        return Calendar.from_ical(data)


def _calendars(components: list[Calendar]) -> list[Calendar]:
    found = [each for each in components if each.name == "VCALENDAR"]
    if not found:
        raise Malformed("calendar body holds no VCALENDAR")
    return found


def _parse(data: bytes, calendar: str) -> tuple[list[Calendar], list[Problem]]:
    """The body's VCALENDARs, rescued block by block if the whole will not parse."""
    with PARSE_LOCK:
        tzp.use_zoneinfo()  # empty the process-wide custom-VTIMEZONE cache (1a)
        try:
            parsed = _from_ical(data)
        except Exception as error:
            return _rescue(data, calendar, error)
    return _calendars(parsed), []


@dataclass
class _Block:
    """One top-level component of a VCALENDAR, as raw lines, VALARMs removed."""

    name: str
    lines: list[str]


@dataclass
class _Raw:
    """One VCALENDAR as raw text: its own properties and its component blocks."""

    header: list[str] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def _marker(line: str) -> tuple[str, str]:
    """("BEGIN" or "END", component name) for a component boundary, else ("", "")."""
    head, _, rest = line.partition(":")
    name = head.upper()  # folded continuation lines start with a blank, never match
    return (name, rest.strip().upper()) if name in ("BEGIN", "END") else ("", "")


def _place(raws: list[_Raw], path: list[str], line: str, marker: str) -> None:
    """File one line under its VCALENDAR, as a calendar property or into a block."""
    depth = len(path)
    if depth == 1 and marker == "BEGIN":
        raws.append(_Raw())
    elif depth == 1 and not marker and raws:
        raws[-1].header.append(line)
    elif depth == 2 and marker == "BEGIN" and raws:
        raws[-1].blocks.append(_Block(path[1], [line]))
    elif depth >= 2 and "VALARM" not in path[2:] and raws and raws[-1].blocks:
        raws[-1].blocks[-1].lines.append(line)


def _split(text: str) -> list[_Raw]:
    """The VCALENDARs of a body as VEVENT and VTIMEZONE blocks, VALARMs dropped (1c).

    A body whose BEGIN/END lines do not nest is corrupt as a whole: `Malformed`.
    """
    raws: list[_Raw] = []
    path: list[str] = []
    for line in _LINES.split(text):
        marker, name = _marker(line)
        if marker == "BEGIN":
            path.append(name)
        _place(raws, path, line, marker)
        if marker == "END":
            _close(path, name)
    if path:
        raise Malformed(f"calendar body is truncated: BEGIN:{path[-1]} is never closed")
    for raw in raws:
        raw.blocks = [block for block in raw.blocks if block.name in _RESCUED]
    return raws


def _close(path: list[str], name: str) -> None:
    if not path or path[-1] != name:
        opened = f"BEGIN:{path[-1]}" if path else "nothing"
        raise Malformed(f"calendar body is corrupt: END:{name} closes {opened}")
    path.pop()


def _wrap(header: list[str], blocks: list[_Block]) -> bytes:
    lines = [line for block in blocks for line in block.lines]
    return "\r\n".join(["BEGIN:VCALENDAR", *header, *lines, "END:VCALENDAR", ""]).encode()


def _parse_error(body: bytes) -> str | None:
    try:
        _from_ical(body)
    except Exception as error:
        return describe(error)
    return None


def _block_key(block: _Block, calendar: str) -> str | None:
    """`VEVENT:<uid>:-` or `VTIMEZONE:<tzid>:-` from the raw lines; None without a UID."""
    wanted = "UID" if block.name == "VEVENT" else "TZID"
    depth = 0
    for line in block.lines:
        marker = _marker(line)[0]
        depth += (marker == "BEGIN") - (marker == "END")
        if depth == 1 and _name(line) == wanted:  # not the UID of a nested component
            uid = line.partition(":")[2].strip()
            return OccurrenceKey(calendar, uid, component=block.name).text
    if block.name == "VEVENT":
        return None
    return OccurrenceKey(calendar, "unknown", component=block.name).text


def _keep(block: _Block, calendar: str, problems: list[Problem]) -> bool:
    error = _parse_error(_wrap([], [block]))
    if error is None:
        return True
    key = _block_key(block, calendar)
    if key is None:
        # Without a UID no Problem can protect the event's keys: dropping it silently
        # would read as a deletion, so the listing fails instead (hard case 37).
        raise Malformed(f"unreadable VEVENT without a UID: {error}")
    problems.append(Problem(key, f"unreadable {block.name} dropped: {error}"))
    return False


def _prune(
    raws: list[_Raw], calendar: str, problems: list[Problem], names: tuple[str, ...]
) -> None:
    """Drop the blocks named `names` that do not parse on their own, each with a Problem."""
    for raw in raws:
        raw.blocks = [
            block
            for block in raw.blocks
            if block.name not in names or _keep(block, calendar, problems)
        ]


def _prune_headers(raws: list[_Raw], calendar: str, problems: list[Problem]) -> None:
    """Calendar properties that break the parse are dropped, except the two that
    change how events expand (X-WR-TIMEZONE is an X- property, so never the culprit)."""
    for raw in raws:
        error = _parse_error(_wrap(raw.header, []))
        if error is not None:
            raw.header = [line for line in raw.header if _name(line) in _HEADER_KEPT]
            key = OccurrenceKey(calendar, "calendar", component="VCALENDAR").text
            problems.append(Problem(key, f"unreadable calendar properties dropped: {error}"))


def _name(line: str) -> str:
    return line.partition(":")[0].split(";")[0].strip().upper()


def _joined(raws: list[_Raw]) -> list[Calendar] | None:
    tzp.use_zoneinfo()
    try:
        return _from_ical(b"".join(_wrap(raw.header, raw.blocks) for raw in raws))
    except Exception:
        return None


def _rescue(data: bytes, calendar: str, error: Exception) -> tuple[list[Calendar], list[Problem]]:
    """Parse block by block so one bad block is lost, not the feed (ICALENDAR.md 1c).

    VALARMs go first (a bad TRIGGER aborts everything, and a sync does not need them),
    then VTIMEZONEs and calendar properties that fail alone; VEVENTs are tried one by
    one only if that was not enough, since that doubles the parse time.
    """
    raws = _split(data.decode("utf-8", errors="replace").lstrip("\ufeff"))
    problems: list[Problem] = []
    _prune_headers(raws, calendar, problems)
    _prune(raws, calendar, problems, ("VTIMEZONE",))
    parsed = _joined(raws)
    if parsed is None:
        _prune(raws, calendar, problems, ("VEVENT",))
        parsed = _joined(raws)
    if parsed is None:
        raise Malformed(f"calendar does not parse, not even block by block: {describe(error)}")
    return _calendars(parsed), problems


# --- sanitising, per VCALENDAR -----------------------------------------------------


def zone_named(name: str) -> tzinfo | None:
    """An IANA zone for a name, or for a Windows name through icalendar's CLDR table."""
    for candidate in (name.strip(), WINDOWS_TO_OLSON.get(name.strip())):
        if not candidate:
            continue
        try:
            return zoneinfo.ZoneInfo(candidate)
        except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
            continue
    return None


def _prepare(
    cal: Component, calendar: str, zone: tzinfo, problems: list[Problem]
) -> list[Component]:
    """The VEVENTs of one VCALENDAR that can be expanded; the others become Problems."""
    scale = str(cal.get("CALSCALE", "GREGORIAN")).strip().upper()
    if scale != "GREGORIAN":
        raise Malformed(f"calendar uses CALSCALE:{scale}; only GREGORIAN is supported")
    admitted = [event for event in cal.walk("VEVENT") if _admit(event, calendar, problems)]
    standard = _to_standard(admitted, cal.get("X-WR-TIMEZONE"))
    return [event for event in standard if _rules_ok(event, calendar, zone, problems)]


def _to_standard(events: list[Component], x_wr: Any) -> list[Component]:
    """Apply X-WR-TIMEZONE (UTC -> local, floating -> zoned) when it names a zone.

    Windows names are mapped first and junk is dropped (hard case 6); floating times
    of a calendar without a usable X-WR-TIMEZONE are anchored in default_tz later.
    """
    zone = None if x_wr is None else zone_named(str(_first(x_wr)))
    if zone is None or not events:
        return events
    holder = Calendar()
    holder.subcomponents.extend(events)
    return list(x_wr_timezone.to_standard(holder, timezone=zone).subcomponents)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _admit(event: Component, calendar: str, problems: list[Problem]) -> bool:
    uid = _ensure_uid(event)
    reason = _defect(event)
    if reason is not None:
        problems.append(problem(calendar, uid, reason))
    return reason is None


def _raw_line(event: Component, name: str) -> str:
    return "\n".join(event.content_line(name, each) for each in _all(event.get(name)))


def _ensure_uid(event: Component) -> str:
    """The UID, or a stable synthetic one written into the event (hard case 32)."""
    uid = _first(event.get("UID"))
    if uid is not None and str(uid).strip():
        if isinstance(event.get("UID"), list):
            event["UID"] = uid  # two UID lines: the first one names the series
        return str(uid)
    raw = "\n".join(_raw_line(event, name) for name in ("DTSTART", "RRULE", "SUMMARY"))
    uid = f"syncd-nouid-{hashlib.sha256(raw.encode()).hexdigest()[:24]}"
    event["UID"] = uid
    return str(uid)


def _defect(event: Component) -> str | None:
    """Why a VEVENT cannot be expanded, or None (hard cases 8, 31; ICALENDAR.md 1c)."""
    for name, message in event.errors:
        if name in _TIME_PROPERTIES:
            return f"unreadable {name}: {message}"
    for name in _SINGLETONS:
        if isinstance(event.get(name), list):
            return f"several {name} properties"
    if "DTSTART" not in event:
        return "no DTSTART"
    return _unknown_tzid(event)


def _all(value: Any) -> list[Any]:
    """A property's values: icalendar gives a list only when the property repeats."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _time_values(event: Component) -> Iterator[tuple[str, str, Any]]:
    """(property, TZID parameter, value) of every date-time the expansion reads."""
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        for prop in _all(event.get(name)):
            yield name, prop.params.get("TZID", ""), prop.dt
    for name in ("RDATE", "EXDATE"):
        for dates in _all(event.get(name)):
            # An unresolved TZID stays on the list only, not on its values.
            tzid = dates.params.get("TZID", "")
            yield from ((name, tzid, each.dt) for each in dates.dts)


def _unknown_tzid(event: Component) -> str | None:
    # icalendar leaves a value naive, silently, when its TZID resolves to nothing (1a).
    for name, tzid, moment in _time_values(event):
        if tzid and isinstance(moment, datetime) and moment.tzinfo is None:
            return f"{name} has TZID={tzid}, which is no known time zone and no VTIMEZONE here"
    return None


def _rule_defect(rule: Any) -> str | None:
    scale = str(_first(rule.get("RSCALE", "GREGORIAN"))).upper()
    skip = str(_first(rule.get("SKIP", "OMIT"))).upper()
    if scale != "GREGORIAN" or skip != "OMIT":
        return f"unsupported RRULE RSCALE={scale};SKIP={skip} (RFC 7529, hard case 19)"
    frequency = str(_first(rule.get("FREQ", ""))).upper()
    if frequency in ("SECONDLY", "MINUTELY") and "COUNT" not in rule and "UNTIL" not in rule:
        return f"sub-hourly infinite rule: FREQ={frequency} without COUNT or UNTIL"
    return None


def _until(until: date, start: datetime, zone: tzinfo) -> datetime:
    """UNTIL in the form of DTSTART (hard case 14): a DATE means the whole local day,
    a floating UNTIL on a zoned series is local time, a UTC one on a floating series too."""
    if not isinstance(until, datetime):
        until = datetime.combine(until, time(23, 59, 59))
    if start.tzinfo is None:
        return until if until.tzinfo is None else until.astimezone(zone).replace(tzinfo=None)
    return (until if until.tzinfo else until.replace(tzinfo=start.tzinfo)).astimezone(UTC)


def _rules_ok(event: Component, calendar: str, zone: tzinfo, problems: list[Problem]) -> bool:
    """Normalise each RRULE in place, or quarantine the event if one is refused."""
    start = _first(event.get("DTSTART")).dt
    for rule in _all(event.get("RRULE")):
        reason = _rule_defect(rule)
        if reason is not None:
            problems.append(problem(calendar, str(event["UID"]), reason))
            return False
        rule.pop("RSCALE", None)  # RSCALE=GREGORIAN;SKIP=OMIT is plain RFC 5545
        rule.pop("SKIP", None)
        if "UNTIL" in rule and isinstance(start, datetime):
            rule["UNTIL"] = [_until(_first(rule["UNTIL"]), start, zone)]
    return True
