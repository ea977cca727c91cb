"""Apptoto events: the vendor adapter.

API: https://apidocs.apptoto.com (our seed 003, PUT /v1/events). What is known and how sure
we are is in shared/vendors/apptoto.md; the tags below are its provenance tags.

Quirk ledger:
- Upsert keyed by our own `external_id`: PUT /v1/events creates or updates [seed], so
  `server_ids` is False and Apptoto's `id` is `remote_id`. Nothing is ever POSTed: a
  resent POST duplicates [seed, inferred]. HTTP Basic, account username + API key
  [public docs: D-INTRO, M-KEYS], never in a URL.
- The calendar is named by `calendar_id` only: an unknown calendar *name* silently makes a
  new calendar [seed]. `prevent_calendar_creation: true` rides along [public code: UOSAN];
  whether it is honoured is [unknown]. Listings hold every calendar of the account: other
  calendars' events are skipped. Events never move calendars [seed].
- PUT patches scalar fields, but `participants` and `custom_data` are replaced whole
  [seed]: `update` sends the changed fields, participants whole whenever attendees change;
  custom_data is written only when an event is made under a fresh key (below), never after.
- Soft delete: DELETE /v1/events?external_id= sets `is_deleted` and keeps the event
  [public docs: D-DEL]. A deleted event is absent from listings and `Gone` for `get`.
  Whether a PUT revives one is [unknown], so a deleted external_id is never reused: a
  record re-created after a delete is `<key>~2`, `~3`, ...: the first that a lookup with
  deleted events (GET /v1/events?external_id=&include_deleted=true [public docs: D-LIST;
  names inferred]) finds free, or live with the same base key. Such a record carries the
  base key in custom_data `syncd_key`, read back as `Record.marker` (else the marker is
  the external_id: a `~N` is never parsed, since a UID may end so). A PUT answered with
  `is_deleted: true` (a reservation the lookup missed) moves on to the next key (create)
  or is `Gone` (update). Every external_id seen is remembered as live or deleted: a known
  one needs no lookup, and `upsert_many` (which looks nothing up) relies on it.
- Auto messages: a created event texts or e-mails its participants when the account's
  Auto Messages are on, or when `#auto` is in its text [seed]; participants already
  messaged cannot be removed [seed]; with no `participants`, Apptoto may extract them
  from the text [seed]. With `auto_messages=False` (the default) no contact channel ever
  leaves syncd: a create of a new event sends `participants: []` (that an empty list stops
  extraction is [inferred]), a create over a live event and updates send none (its own
  are kept), `#auto` in title, location or content is defused to `＃auto` (a fullwidth
  number sign), and attendees are not held. With `auto_messages=True` attendees with an
  e-mail go as participants (name, e-mail) and are held; their `state` is not mapped to a
  partstat (it stays Apptoto's). A messaged participant that sticks [seed] is a
  difference the runner records once.
- An event made in Apptoto itself may have no external_id [inferred]: its key is `#<id>`
  and it is read, updated and deleted by `id` [seed]. A transparent event is `show_as` 0.
- Times: ISO 8601 with the offset of the configured `time_zone` [seed]; read back in
  whatever offset Apptoto picks and compared as instants [inferred]. Seconds kept,
  sub-seconds dropped. `time_zone` is sent as its IANA name (accepted names [unknown]).
  All-day: `all_day: true`, local midnight to local midnight [inferred]; read back as
  local dates, an end that is not a midnight rounding up to the next day.
- `title` is required for a new event [seed]: a blank one is sent as "(no title)".
  No `status` and no cancelled state [public docs]: cancelling deletes.
- Listing: GET /v1/events, `begin`/`end` on the start [public docs: D-LIST; `end`
  inferred], `page` from 1, `page_size` 200 [public code], `include_deleted` [inferred].
  No total: pages run until an empty one [public code]; the order is [unknown]: events
  are de-duplicated by id. More than MAX_PAGES pages is `Malformed`.
- No updated_at and no change feed [public docs: absence]: the version is a hash of the
  fields read, and absence is confirmed with a get (`absence="get"`). Not found is 404
  [unknown, assumed]; error bodies [unknown] are never parsed for control flow.
- Batches: PUT takes a list [seed]; more than 20-25 got 502 [public code]: `upsert_many`
  sends 20 a request and matches answers by external_id (the order is [unknown]). A batch
  refused whole is refused for each item (partial failure [unknown]): send those one by one.
- About 100 requests a minute [public code comment]: DEFAULT_BUDGET.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from syncd.adapter import Caps
from syncd.errors import AdapterError, AuthFailed, Gone, Malformed, RateLimited, Rejected
from syncd.http import Budget, HttpClient
from syncd.model import Event, Listing, Moment, Person, Problem, Record, Window, as_utc
from syncd.paged import Packer

BASE_URL = "https://api.apptoto.com"  # [public docs: D-LIST]
DEFAULT_BUDGET = Budget(requests=100, per=60.0)  # [public code: UOSAN comment]
DEFAULT_POLL = timedelta(minutes=10)
EVENTS, EVENT = "/v1/events", "/v1/event"
PAGE_SIZE, MAX_PAGES, BATCH_SIZE, MAX_INCARNATIONS = 200, 10_000, 20, 100
UNTITLED = "(no title)"
BASE_FIELDS: frozenset[str] = frozenset({"start", "end", "title", "description", "location"})
MARKER_FIELD = "syncd_key"
VERSIONED = ("start_time", "end_time", "all_day", "title", "content", "location")
_AUTO = re.compile(r"#(?=auto)", re.I)
Payload = Mapping[str, Any]
Elements = list[dict[str, Any]]
Outcomes = list[Record | AdapterError]


def client_headers(username: str, api_key: str) -> dict[str, str]:
    """The headers every request carries: HTTP Basic with the username and API key."""
    return {
        "Authorization": aiohttp.encode_basic_auth(username, api_key),
        "Accept": "application/json",
    }


def defuse(text: str) -> str:
    """The text with every `#auto` (which opts an event into auto messages) made inert."""
    return _AUTO.sub("＃", text)


def parse_time(value: object, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date-time from Apptoto (naive: in `zone`); `Malformed` otherwise."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise Malformed(f"apptoto: {value!r} is not a date-time")
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def time_text(moment: Moment, zone: ZoneInfo) -> str:
    """A moment with the offset of `zone`, whole seconds; a date is its local midnight."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), zone)
    return as_utc(moment).astimezone(zone).replace(microsecond=0).isoformat()


def is_deleted(item: Payload) -> bool:
    """Whether Apptoto reports the event as (soft) deleted."""
    return item.get("is_deleted") is True


def key_of(item: Payload) -> str:
    """The record key: the external_id, or `#<id>` for an event born at Apptoto."""
    external = item.get("external_id")
    return str(external) if external not in (None, "") else f"#{item.get('id')}"


def marker_of(item: Payload) -> str:
    """syncd's base key: custom_data `syncd_key` on a re-created event, else the external_id."""
    custom = item.get("custom_data")
    marker = custom.get(MARKER_FIELD) if isinstance(custom, Mapping) else None
    external = item.get("external_id")
    return marker if isinstance(marker, str) and marker else str(external or "")


def ident_params(key: str) -> dict[str, str]:
    """The query naming one event: `id` for `#<id>` keys, else `external_id`."""
    return {"id": key[1:]} if key.startswith("#") else {"external_id": key}


def ident_body(key: str) -> dict[str, Any]:
    """The element fields naming one event in a PUT."""
    return (
        {"id": int(key[1:])} if key.startswith("#") and key[1:].isdigit() else {"external_id": key}
    )


def version_of(item: Payload) -> str:
    """A hash of the stored fields: Apptoto has no updated_at [public docs: absence]."""
    parts = [item.get(name) for name in (*VERSIONED, "participants", "custom_data")]
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def events_of(body: object) -> list[Any]:
    """The `events` array of an answer; `Malformed` when there is none."""
    events = body.get("events") if isinstance(body, Mapping) else None
    if not isinstance(events, list):
        raise Malformed(f"apptoto: an answer without an events array: {body!r:.120}")
    return events


def _text(item: Payload, name: str) -> str:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"apptoto: event {item.get('id')!r}: {name} is not text")
    return value or ""


def _next_suffix(key: str, base: str) -> int:
    rest = key[len(base) + 1 :] if key.startswith(f"{base}~") else ""
    return int(rest) + 1 if rest.isdigit() else 2


class Apptoto:
    """One Apptoto calendar of one account: events keyed by our `external_id`."""

    client_headers = staticmethod(client_headers)

    def __init__(
        self,
        http: HttpClient,
        *,
        calendar_id: int,
        time_zone: str = "UTC",
        auto_messages: bool = False,
    ) -> None:
        self.http, self.calendar_id = http, calendar_id
        self.time_zone, self.zone = time_zone, ZoneInfo(time_zone)
        self.auto_messages = auto_messages
        fields = BASE_FIELDS | {"attendees"} if auto_messages else BASE_FIELDS
        self.caps = Caps(
            partial_update=True,
            holds_cancelled=False,
            fields=fields,
            absence="get",
            bulk_from=BATCH_SIZE,  # PUT /v1/events takes a batch: several pending go together
        )
        self._deleted: dict[str, str] = {}  # external_id -> base key, of events seen deleted
        self._live: dict[str, str] = {}  # external_id -> base key, of events seen alive

    # -- translation (pure) ----------------------------------------------------------------

    def project(self, event: Event) -> Event:
        """The event as Apptoto reads it back: instants, defused text, held attendees."""
        return Event(
            start=self._moment(event.start),
            end=self._moment(event.end),
            title=self._safe(event.title) or UNTITLED,
            description=self._safe(event.description),
            location=self._safe(event.location),
            attendees=tuple(Person(p.email.lower(), p.name) for p in self._guests(event)),
        )

    def to_event(self, item: Payload) -> Event:
        """An Apptoto event as an `Event`; `Malformed` when it cannot be read."""
        start, end = (parse_time(item.get(k), self.zone) for k in ("start_time", "end_time"))
        first: Moment = start.astimezone(UTC).replace(microsecond=0)
        last: Moment = end.astimezone(UTC).replace(microsecond=0)
        if item.get("all_day") is True:
            first, last = self._day(start, False), self._day(end, True)
            last = max(last, first + timedelta(days=1))
        return Event(
            start=first,
            end=last,
            title=_text(item, "title"),
            description=_text(item, "content"),
            location=_text(item, "location"),
            attendees=self._attendees(item) if self.auto_messages else (),
        )

    def to_record(self, item: object) -> Record:
        """An Apptoto event as a `Record` keyed by its external_id."""
        if not isinstance(item, Mapping) or item.get("id") is None:
            raise Malformed(f"apptoto: not an event: {item!r:.120}")
        return Record(
            key_of(item),
            self.to_event(item),
            version_of(item),
            remote_id=str(item["id"]),
            marker=marker_of(item),
        )

    def fields_payload(self, event: Event, names: Iterable[str]) -> dict[str, Any]:
        """The PUT fields for the named `Event` fields (times travel together)."""
        names, out = frozenset(names) & self.caps.fields, dict[str, Any]()
        if names & {"start", "end"}:
            out["start_time"] = time_text(event.start, self.zone)
            out["end_time"] = time_text(event.end, self.zone)
            out["all_day"], out["time_zone"] = event.all_day, self.time_zone
        if "title" in names:
            out["title"] = self._safe(event.title) or UNTITLED
        if "description" in names:
            out["content"] = self._safe(event.description)
        if "location" in names:
            out["location"] = self._safe(event.location)
        if "attendees" in names:  # replaced whole [seed]: always the full list
            out["participants"] = [{"name": p.name, "email": p.email} for p in self._guests(event)]
        return out

    def to_payload(
        self, external_id: str, base: str, event: Event, live: bool = False
    ) -> dict[str, Any]:
        """The full element of a create: our calendar by id, no participant by default (an
        empty list against extraction, left out over a `live` event to keep its own)."""
        out = {"external_id": external_id, "calendar_id": self.calendar_id}
        out |= ({} if live else {"participants": []}) | self.fields_payload(event, self.caps.fields)
        if event.transparent:
            out["show_as"] = 0  # Free
        if external_id != base:
            out["custom_data"] = {MARKER_FIELD: base}
        return out

    def _moment(self, moment: Moment) -> Moment:
        return moment if not isinstance(moment, datetime) else as_utc(moment).replace(microsecond=0)

    def _day(self, moment: datetime, end: bool) -> date:
        local = moment.astimezone(self.zone)
        up = end and local.time() != time()
        return local.date() + timedelta(days=1) if up else local.date()

    def _safe(self, text: str) -> str:
        return text if self.auto_messages else defuse(text)

    def _guests(self, event: Event) -> tuple[Person, ...]:
        return tuple(p for p in event.attendees if p.email) if self.auto_messages else ()

    def _attendees(self, item: Payload) -> tuple[Person, ...]:
        people = item.get("participants") or []
        if not isinstance(people, list) or not all(isinstance(p, Mapping) for p in people):
            raise Malformed(f"apptoto: event {item.get('id')!r}: participants is not a list")
        return tuple(
            Person(str(p.get("email") or "").lower(), str(p.get("name") or "")) for p in people
        )

    # -- the adapter -----------------------------------------------------------------------

    async def list(self, window: Window) -> Listing:
        """Every live event of our calendar starting inside the window."""
        records = Packer()  # packed as read (`syncd.paged`)
        problems: list[Problem] = []
        async for item in self._items(window):
            if not isinstance(item, Mapping):
                problems.append(Problem("?", f"{self.http.label}: a listed event: {item!r:.80}"))
                continue
            if item.get("calendar_id", self.calendar_id) != self.calendar_id:
                continue
            if is_deleted(item):
                self._remember(item)
                continue
            try:
                record = self._read(item)
            except Malformed as exc:
                problems.append(Problem(key_of(item), str(exc)))
                continue
            if record.in_window(window):
                records.add(record)
        return Listing(records.done(), tuple(problems))

    async def get(self, key: str) -> Record:
        """One event by external_id; `Gone` when there is none or it was deleted."""
        response = await self.http.request("GET", EVENT, params=ident_params(key), key=key)
        if not isinstance(item := response.body, Mapping):
            raise Malformed(f"{self.http.label}: event {key} is not an object", key=key)
        if is_deleted(item):
            self._remember(item)
            raise Gone(f"{self.http.label}: event {key} was deleted", key=key)
        return self._read(item)

    async def create(self, key: str, event: Event) -> Record:
        """Upsert under `key`, or under the next free `key~N` when `key` was deleted."""
        for _ in range(MAX_INCARNATIONS):
            external_id, base, live = await self._free_key(key)
            element = self.to_payload(external_id, base, event, live)
            [item] = await self._put([element], key, create=True)
            if not is_deleted(item):
                return self._read(item)
            self._forget(external_id)
            self._deleted[external_id] = base
        raise Rejected(f"{self.http.label}: no free external_id for {key}", key=key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """PUT the changed fields (participants whole) over the event."""
        body = self.fields_payload(event, changed)
        if not body:
            return await self.get(record.key)
        element = {**ident_body(record.key), "calendar_id": self.calendar_id, **body}
        [item] = await self._put([element], record.key)
        if is_deleted(item):
            self._remember(item)
            raise Gone(f"{self.http.label}: event {record.key} was deleted", key=record.key)
        return self._read(item)

    async def delete(self, record: Record) -> None:
        """Soft-delete the event; one already gone is fine."""
        with contextlib.suppress(Gone):
            await self.http.request(
                "DELETE", EVENTS, params=ident_params(record.key), key=record.key
            )
        if not record.key.startswith("#"):
            self._forget(record.key)
            self._deleted[record.key] = record.marker or record.key

    async def upsert_many(self, items: Sequence[tuple[str, Event]]) -> Outcomes:
        """Upsert many events, BATCH_SIZE a request; one result per item, in order. A key
        known deleted goes through `create`; auth and rate refusals stop the sending."""
        out: dict[int, Record | AdapterError] = {}
        for n, (key, event) in enumerate(items):
            if key in self._deleted:
                out[n] = await self._create_one(key, event)
        fresh = [n for n in range(len(items)) if n not in out]
        stop: AdapterError | None = None
        for first in range(0, len(fresh), BATCH_SIZE):
            batch = [(n, *items[n]) for n in fresh[first : first + BATCH_SIZE]]
            try:
                if stop is None:
                    out |= await self._batch(batch)
                    continue
            except (AuthFailed, RateLimited) as exc:
                stop = exc
            except AdapterError as exc:
                out |= {n: _for_item(exc, key) for n, key, _ in batch}
                continue
            out |= {n: _for_item(stop, key) for n, key, _ in batch}
        return [out[n] for n in range(len(items))]

    # -- mechanics -------------------------------------------------------------------------

    async def _batch(
        self, batch: Sequence[tuple[int, str, Event]]
    ) -> dict[int, Record | AdapterError]:
        """One PUT of several events: each item's record, or its error."""
        elements = [
            self.to_payload(k, self._live.get(k, k), e, k in self._live) for _, k, e in batch
        ]
        answer = await self._put(elements, "", create=True)
        by_key = {key_of(item): item for item in answer if isinstance(item, Mapping)}
        out: dict[int, Record | AdapterError] = {}
        for n, key, event in batch:
            if (item := by_key.get(key)) is None:
                out[n] = Malformed(f"{self.http.label}: {key} is not in the answer", key=key)
            elif is_deleted(item):  # a reservation we did not know of: a fresh key
                self._remember(item)
                out[n] = await self._create_one(key, event)
            else:
                try:
                    out[n] = self._read(item)
                except AdapterError as exc:
                    out[n] = exc
        return out

    async def _create_one(self, key: str, event: Event) -> Record | AdapterError:
        try:
            return await self.create(key, event)
        except AdapterError as exc:
            return _for_item(exc, key)

    async def _put(self, elements: Elements, key: str, create: bool = False) -> Sequence[Any]:
        """PUT elements; the answer's events (exactly one per element for one element)."""
        body = {"events": elements, "prevent_calendar_creation": True}
        try:
            response = await self.http.request("PUT", EVENTS, json_body=body, key=key)
        except Gone as exc:
            if not create:
                raise
            raise Rejected(str(exc), key=key) from exc  # no id in the path: a 404 is a refusal
        events = events_of(response.body)
        if len(elements) == 1 and (len(events) != 1 or not isinstance(events[0], Mapping)):
            raise Malformed(f"{self.http.label}: PUT answered {len(events)} events for 1", key=key)
        return events

    async def _free_key(self, key: str) -> tuple[str, str, bool]:
        """(the external_id to write `key` under, the base key it stands for, whether an
        event holds that external_id now)."""
        state, base = await self._state(key)
        if state != "deleted":
            return key, base, state == "live"
        for n in range(_next_suffix(key, base), _next_suffix(key, base) + MAX_INCARNATIONS):
            candidate = f"{base}~{n}"
            state, marker = await self._state(candidate)
            if state == "free" or (state == "live" and marker == base):
                return candidate, base, state == "live"
        raise Rejected(f"{self.http.label}: {key} was deleted too many times", key=key)

    async def _state(self, external_id: str) -> tuple[str, str]:
        """("free" | "live" | "deleted", its base key), deleted events included."""
        if external_id in self._deleted:
            return "deleted", self._deleted[external_id]
        if external_id in self._live:
            return "live", self._live[external_id]
        params = {"external_id": external_id, "include_deleted": "true"}
        response = await self.http.request("GET", EVENTS, params=params, key=external_id)
        found = [e for e in events_of(response.body) if isinstance(e, Mapping)]
        found = [e for e in found if e.get("external_id") == external_id]
        live = [e for e in found if not is_deleted(e)]
        if live:
            self._remember(live[0])
            return "live", marker_of(live[0])
        if found:
            self._remember(found[0])
            return "deleted", marker_of(found[0])
        return "free", external_id

    def _read(self, item: Payload) -> Record:
        """A live event as a record, remembered as alive."""
        record = self.to_record(item)
        self._remember(item)
        return record

    def _remember(self, item: Payload) -> None:
        """Note whether an external_id is held by a live or a deleted event (a PUT over a
        known live key keeps its participants; a known deleted key gets a fresh one)."""
        external = item.get("external_id")
        if isinstance(external, str) and external:
            self._forget(external)
            seen = self._deleted if is_deleted(item) else self._live
            seen[external] = marker_of(item)

    def _forget(self, external_id: str) -> None:
        self._deleted.pop(external_id, None)
        self._live.pop(external_id, None)

    async def _items(self, window: Window) -> AsyncIterator[object]:
        """Every event of every page, deleted ones included, each id once."""
        params = {
            "begin": as_utc(window.start).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": as_utc(window.end).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "page_size": str(PAGE_SIZE),
            "include_deleted": "true",
        }
        seen: set[object] = set()
        for page in range(1, MAX_PAGES + 1):
            response = await self.http.request("GET", EVENTS, params={**params, "page": str(page)})
            events = events_of(response.body)
            if not events:
                return
            for item in events:
                ident = item.get("id") if isinstance(item, Mapping) else None
                if ident is None or ident not in seen:
                    seen.add(ident)
                    yield item
        raise Malformed(f"{self.http.label}: more than {MAX_PAGES} pages; listing abandoned")


def _for_item(exc: AdapterError, key: str) -> AdapterError:
    """The error, as this item's own (a batch's refusal is each of its items')."""
    mine = copy.copy(exc)
    mine.key = key
    return mine
