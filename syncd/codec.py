"""Records and problems as compact JSON and back, for the state store's block cache.

A calendar's expansion is kept per UID group across restarts (`calendars/reuse.py`), so
a restarted daemon or a one-shot `syncd sync` re-parses only what changed. Pure: no I/O;
the state store holds the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from syncd.model import (
    Event,
    Moment,
    Person,
    Problem,
    Record,
    as_utc,
    moment_text,
    parse_moment,
    shared_address,
    shared_person,
)


def dumps(records: Iterable[Record], problems: Iterable[Problem]) -> str:
    """One group's records and problems as JSON text."""
    data = [[_record(r) for r in records], [[p.key, p.reason] for p in problems]]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> tuple[tuple[Record, ...], tuple[Problem, ...]]:
    """Read back `dumps`."""
    records, problems = json.loads(text)
    return tuple(_read_record(r) for r in records), tuple(Problem(k, why) for k, why in problems)


def record_text(record: Record) -> str:
    """One record as a line of JSON (a line break in a value is escaped)."""
    return json.dumps(_record(record), separators=(",", ":"), ensure_ascii=False)


def read_record_text(text: str) -> Record:
    """Read back `record_text`."""
    return _read_record(json.loads(text))


def _record(record: Record) -> list[Any]:
    return [
        record.key,
        _event(record.event),
        record.version,
        record.remote_id,
        _moment(record.anchor),
        _moment(record.modified),
        record.marker,
    ]


def _read_record(data: list[Any]) -> Record:
    key, event, version, remote_id, anchor, modified, marker = data
    return Record(
        key,
        _read_event(event),
        version,
        remote_id,
        _read_moment(anchor),
        _read_time(modified),
        marker,
    )


def _event(event: Event) -> list[Any]:
    return [
        _exact(event.start),
        _exact(event.end),
        event.title,
        event.description,
        event.location,
        event.status,
        event.organizer,
        [_person(p) for p in event.attendees],
        event.owner,
        _person(event.contact) if event.contact else None,
        event.private,
        event.transparent,
        _moment(event.modified),
        event.outcome,
    ]


def _read_event(data: list[Any]) -> Event:
    start, end, title, description, location, status, organizer, people, *rest = data
    owner, contact, private, transparent, modified, outcome = rest
    return Event(
        parse_moment(start),
        parse_moment(end),
        title,
        description,
        location,
        status,
        shared_address(organizer),
        tuple(shared_person(*p) for p in people),
        owner,
        shared_person(*contact) if contact else None,
        private,
        transparent,
        _read_time(modified),
        outcome,
    )


def _person(person: Person) -> list[str]:
    return [person.email, person.name, person.partstat]


def _moment(value: Moment | None) -> str | None:
    return None if value is None else _exact(value)


def _exact(moment: Moment) -> str:
    """`moment_text`, with the fraction of a second where there is one (a vendor's
    updatedAt has milliseconds, and `conflict: newest` compares them)."""
    if isinstance(moment, datetime) and moment.microsecond:
        return as_utc(moment).isoformat()
    return moment_text(moment)


def _read_moment(text: str | None) -> Moment | None:
    return None if text is None else parse_moment(text)


def _read_time(text: str | None) -> datetime | None:
    """A modification time: always written from a datetime."""
    return None if text is None else as_utc(parse_moment(text))
