"""Sales Ask scheduled tasks: the vendor adapter.

API: https://docs.salesask.com/guides/scheduled-tasks (our seed 000). What is known and
how sure we are is in shared/vendors/salesask.md; the tags below are its provenance tags.

Quirk ledger:
- Upsert keyed by our own `event_id`: POST creates or updates [seed], so creates are
  idempotent and `server_ids` is False. Sales Ask's own `id` is kept as `remote_id`.
- Whether a POST over an existing task clears omitted optional fields is [unknown]:
  `create` always sends the full desired state; `update` sends a partial PUT [seed].
- PUT of an unknown `event_id` is [unknown] (404 likely): `update` falls back to POST.
- The `event_id` goes into URL paths; its charset is [unknown], so it is always
  percent-encoded, `/` included [3rd-party: hq-dashboard encodes it too].
- Responses are camelCase wrapped in `{"appointment": ...}`, except `event_id`, which
  stays snake_case [seed]. A bare object is accepted too [inferred].
- Times must be UTC `2026-03-01T14:00:00.000Z` [seed]; offsets may be refused
  [unknown], so nothing else is sent. Sub-second parts are dropped both ways.
- Dates come back as ISO strings [seed], but the Firestore backend rendered recording
  dates as `{_seconds, _nanoseconds}` [3rd-party: hq-dashboard PROJECT-LOG 2026-08-08];
  epoch numbers are accepted as well [inferred].
- The rep (`user_email`) is write-only: resolved to a rep id that is never returned
  [seed]. `owner` is therefore not in `caps.fields`; an event without one is rejected
  before any request. The rep must be an active member [seed]: the refusal's status is
  [unknown]; 400/422 map to `Rejected`, and so does a 404 on POST (no path id to miss).
- No description, location or cancelled state exist [seed]: `caps.fields` is start,
  end, title, contact; a cancelled event is deleted by the runner. `status`,
  `scheduledAt`, `metadata` and `customerId` are not mapped [seed, meaning unknown].
- The list's array key is [unknown]: `appointments`, `data`, `items`, `tasks` are tried.
  Paging is `nextCursor` -> `startAfter` [seed]; it stops on a falsy cursor or
  `hasMore: false` [3rd-party: hq-dashboard pec-salesask-sync.cjs]; a cursor seen
  twice is `Malformed` instead of a loop. `limit` is 1-100 [seed]: we ask 100.
- `fromDate`/`toDate` are dates in the docs [seed]; the field they filter on and their
  inclusivity are [unknown], so the query covers one extra UTC day on each side and
  the adapter keeps the records whose start is inside the window.
- No change feed and no listing of deleted tasks [inferred]: absence is confirmed by a
  GET that answers 404 (`absence="get"`). DELETE answering 404 means already gone
  [3rd-party: hq-dashboard]. The version is `updatedAt` [seed].
- No published rate limit [unknown]: the budget is the runner's (DESIGN.md section 3).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from syncd.adapter import Caps
from syncd.errors import Gone, Malformed, Rejected
from syncd.http import Budget, HttpClient
from syncd.model import (
    Event,
    Listing,
    Moment,
    Person,
    Problem,
    Record,
    Window,
    as_utc,
    shared_person,
)
from syncd.paged import Packer

BASE_URL = "https://integrations.salesask.com"  # [seed]; no regional or sandbox hosts known
DEFAULT_BUDGET = Budget(requests=5, per=1.0)  # none published [unknown]: DESIGN.md section 3
DEFAULT_POLL = timedelta(minutes=10)
PATH = "/v1/scheduled-tasks"
PAGE_LIMIT = 100
ARRAY_KEYS = ("appointments", "data", "items", "tasks")
FIELDS: frozenset[str] = frozenset({"start", "end", "title", "contact"})
Payload = Mapping[str, Any]


def client_headers(api_key: str) -> dict[str, str]:
    """The headers every request carries: the organisation's API key [seed]."""
    return {"x-api-key": api_key, "Accept": "application/json"}


def task_path(key: str) -> str:
    """The URL path of one task, its `event_id` percent-encoded."""
    return f"{PATH}/{quote(key, safe='')}"


def parse_time(value: object) -> datetime:
    """A date from a response: ISO string, epoch seconds or ms, or Firestore timestamp."""
    try:
        if isinstance(value, Mapping):
            seconds = value.get("_seconds", value.get("seconds"))
            nanos = value.get("_nanoseconds", value.get("nanoseconds", 0))
            return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000 if abs(value) > 1e11 else value, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    raise Malformed(f"salesask: {value!r} is not a date")


def time_text(moment: Moment) -> str:
    """`2026-03-01T14:00:00.000Z`, the one form the docs show [seed]."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _instant(moment: Moment) -> datetime:
    moment = as_utc(moment)  # the same object when it is UTC already
    return moment.replace(microsecond=0) if moment.microsecond else moment


def _contact(email: str, name: str) -> Person | None:
    # one object for a customer on many tasks: a 10,000-task listing is rebuilt every
    # poll, and its duplicate contacts and titles were a quarter of its memory
    return shared_person(email, name) if email or name else None


def project(event: Event) -> Event:
    """The event as Sales Ask reads it back: start, end, title and contact only."""
    contact = event.contact
    if contact is not None and (contact.partstat or not (contact.email or contact.name)):
        contact = _contact(contact.email, contact.name)  # else the very same: no copy
    return Event(
        start=_instant(event.start),
        end=_instant(event.end),
        title=event.title,
        contact=contact,
    )


def to_event(payload: Payload) -> Event:
    """A task from a response as an `Event`; `Malformed` when it cannot be read."""
    start = _instant(parse_time(payload.get("startTime")))
    end = payload.get("endTime")
    title, email, name = (payload.get(k) or "" for k in ("title", "customerEmail", "customerName"))
    if not all(isinstance(text, str) for text in (title, email, name)):
        raise Malformed(f"salesask: task {payload.get('event_id')!r} has non-text fields")
    return Event(
        start=start,
        end=start if end is None else _instant(parse_time(end)),
        title=title,
        contact=_contact(email, name),
    )


def version_of(payload: Payload) -> str:
    """The task's version: its `updatedAt`, as an ISO string whatever form it came in."""
    value = payload.get("updatedAt")
    return "" if value is None else parse_time(value).isoformat()


def to_record(payload: object, key: str = "") -> Record:
    """A task from a response as a `Record` keyed by its `event_id`."""
    if not isinstance(payload, Mapping):
        raise Malformed(f"salesask: a task is not an object: {payload!r:.80}")
    key = payload.get("event_id") or key
    if not isinstance(key, str) or not key:
        raise Malformed(f"salesask: task {payload.get('id')!r} has no event_id")
    return Record(
        key=key,
        event=to_event(payload),
        version=version_of(payload),
        remote_id=str(payload.get("id") or ""),
        modified=_updated_at(payload),
    )


def _updated_at(payload: Payload) -> datetime | None:
    value = payload.get("updatedAt")
    return None if value is None else parse_time(value)


def fields_payload(event: Event, names: Iterable[str]) -> dict[str, Any]:
    """The request fields for the named `Event` fields (a cleared contact sends blanks)."""
    names, out = frozenset(names), dict[str, Any]()
    if "start" in names:
        out["start_time"] = time_text(event.start)
    if "end" in names:
        out["end_time"] = time_text(event.end)
    if "title" in names:
        out["title"] = event.title
    if "contact" in names:
        contact = event.contact or Person(email="")
        out["customer"] = {"name": contact.name, "email": contact.email}
    return out


def to_payload(key: str, event: Event) -> dict[str, Any]:
    """The full desired state for the upsert POST; the customer only when there is one."""
    names = FIELDS if event.contact else FIELDS - {"contact"}
    return {"event_id": key, "user_email": event.owner, **fields_payload(event, names)}


def appointment_of(body: object) -> Payload:
    """The task inside a single-task response: `{"appointment": {...}}` or bare."""
    inner = body.get("appointment", body) if isinstance(body, Mapping) else None
    if not isinstance(inner, Mapping) or "startTime" not in inner:
        raise Malformed(f"salesask: not an appointment: {body!r:.120}")
    return inner


def page_of(body: object) -> tuple[list[Any], str | None]:
    """The tasks of one list page and the cursor of the next (None on the last)."""
    if isinstance(body, Mapping):
        for name in ARRAY_KEYS:
            if isinstance(items := body.get(name), list):
                cursor = body.get("nextCursor") or body.get("startAfter")
                more = body.get("hasMore", True) is not False and cursor
                return items, str(cursor) if more else None
    raise Malformed(f"salesask: a list page without a task array: {body!r:.120}")


def list_params(window: Window) -> dict[str, str]:
    """The query of a listing: UTC dates covering the window with a day to spare."""
    first = (as_utc(window.start) - timedelta(days=1)).date()
    last = (as_utc(window.end) + timedelta(days=1)).date()
    return {"fromDate": first.isoformat(), "toDate": last.isoformat(), "limit": str(PAGE_LIMIT)}


class SalesAsk:
    """One Sales Ask organisation: scheduled tasks keyed by our `event_id`."""

    caps = Caps(partial_update=True, holds_cancelled=False, fields=FIELDS, absence="get")
    client_headers = staticmethod(client_headers)

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def project(self, event: Event) -> Event:
        """The event as Sales Ask would read it back."""
        return project(event)

    async def list(self, window: Window) -> Listing:
        """Every task starting inside the window, packed as it is read (`paged`);
        unreadable ones become problems."""
        records = Packer()
        problems: list[Problem] = []
        async for item in self._items(window):
            try:
                record = to_record(item)
            except Malformed as exc:
                key = item.get("event_id") if isinstance(item, Mapping) else None
                problems.append(Problem(str(key or "?"), str(exc)))
                continue
            if record.in_window(window):
                records.add(record)
        return Listing(records.done(), tuple(problems))

    async def get(self, key: str) -> Record:
        """One task by `event_id`; `Gone` when Sales Ask has none."""
        response = await self.http.request("GET", task_path(key), key=key)
        return to_record(appointment_of(response.body), key)

    async def create(self, key: str, event: Event) -> Record:
        """Upsert the full desired state under `key`."""
        if not event.owner:
            raise Rejected("salesask: the event has no rep (user_email) to assign", key=key)
        try:
            response = await self.http.request(
                "POST", PATH, json_body=to_payload(key, event), key=key
            )
        except Gone as exc:  # no path id to miss: the rep was not found
            raise Rejected(str(exc), key=key) from exc
        return to_record(appointment_of(response.body), key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """PUT only the changed fields; POST the whole event when the task is gone."""
        body = fields_payload(event, changed & FIELDS)
        if not body:
            return await self.get(record.key)
        try:
            response = await self.http.request(
                "PUT", task_path(record.key), json_body=body, key=record.key
            )
        except Gone:
            return await self.create(record.key, event)
        return to_record(appointment_of(response.body), record.key)

    async def delete(self, record: Record) -> None:
        """Delete the task; one already gone is fine."""
        with contextlib.suppress(Gone):
            await self.http.request("DELETE", task_path(record.key), key=record.key)

    async def _items(self, window: Window) -> AsyncIterator[Any]:
        """Every task the listing pages hold, following cursors until the last page."""
        params, seen = list_params(window), set[str]()
        while True:
            response = await self.http.request("GET", PATH, params=params)
            items, cursor = page_of(response.body)
            for item in items:
                yield item
            if cursor is None:
                return
            if cursor in seen:
                raise Malformed(f"{self.http.label}: the list cursor repeats; listing abandoned")
            seen.add(cursor)
            params = {**params, "startAfter": cursor}
