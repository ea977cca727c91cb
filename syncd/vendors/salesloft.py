"""Salesloft external calendar: the vendor adapter.

API: https://developers.salesloft.com (our seed 004: "Maintaining Calendars
synchronization"). What is known and how sure we are is in shared/vendors/salesloft.md;
the tags below are its provenance tags.

Quirk ledger:
- One adapter is one user's External Calendar `external_<user_guid>` [seed]: the
  `calendar_id` option, else built from `user_guid`, else the guid of the user whose
  email is `rep_email`, looked up once on first use with `GET /v2/users.json?search=`
  [public docs: SPEC-NEW UsersApi.md]; no such user is `Rejected`.
- Upsert keyed by our `id` plus `i_cal_uid` in the calendar [seed]: creates are
  idempotent (`server_ids` False). The key is `<calendar>:<UID>[:<rid>]` (DESIGN.md
  section 2), so `i_cal_uid` is its middle: the key minus its first part and a trailing
  rid (`20270301T090000Z`, `20270301`, `...L`); a hashed key (`<calendar>:h:...`) has
  lost the UID and is sent whole. The UID the vendor holds is `Record.remote_id` and
  updates send it back, so an update never forks a second event. `recurring` is true
  when the key has a rid: each occurrence is its own event sharing the series UID
  [public docs: D-INIT, SPEC]; a series edit is one upsert per occurrence (the runner's).
- 201 for creates and updates, `{"data": event, "upsert_type"}` [seed]. Omitted fields
  stay [seed]: `create` sends the whole state (status and `canceled_at` too, so it
  revives a cancelled event); `update` sends the identity, the required times and
  `all_day`, and the changed fields (an organizer change resends the attendees); when
  that patch answers `upsert_type: "create"` (the event vanished since it was listed)
  the whole state follows. Cancelling a vanished event leaves a cancelled stub.
- `updated_at` is the stale guard [seed]: the calendar's LAST-MODIFIED
  (`Event.modified`), else now. An older one leaves the event as it is and the answer
  is the vendor's version [inferred/unknown]; `update` returns it, so the runner records
  the difference once instead of retrying. An equal one is applied [inferred/unknown].
- No DELETE and no GET by id [public docs: SPEC]: `delete` upserts `status: "cancelled"`
  and `canceled_at` [public docs: D-UPSERT]; cancelled events stay listed [inferred] and
  read as status "cancelled". `get` scans the whole calendar; the runner never calls it,
  as absence is confirmed by a second listing (`absence="relist"`).
- Times go out as UTC `Z` in whole seconds [public docs: SPEC]; answers are UTC, server
  stamps with microseconds, `created_at` zone-less [seed] (a missing zone is UTC).
  All-day: UTC midnights and `all_day: true` [inferred/unknown]; read back, all-day
  times round to the nearest midnight, so local midnights keep their dates.
- Attendees `{name, email, status, organizer}`, status needsAction/accepted/tentative/
  declined [seed]; other PARTSTATs go as needsAction. Attendees with `deleted_at` were
  removed [inferred] and are skipped. The organizer is the top-level `organizer`
  [public docs: SPEC], else the attendee flagged organizer.
- Listing: `start_time` bounds the end, `end_time` the start [public docs: SPEC];
  `calendar_id` + `user_guid`, ASC by start, 100 a page, pages until `next_page` is null,
  or a short page when `paging` is missing [public code: airbyte PR #11460]. Other
  calendars' items are dropped, ids de-duplicated, and fewer events seen than
  `total_count` makes the listing incomplete. Pages past 100 cost more [public docs:
  D-RATE]: the cost goes to the funnel, which reads the cost headers. A 429 has no
  Retry-After [public docs: D-RATE]: the funnel's `RateLimited` carries no delay.
- Bulk: `upsert_many` is one `calendar/events/upsert` job: create, job_data in chunks
  of 5,000, ready, poll, results by `id[gt]` cursor [public docs: D-BULKFLOW, SPEC]. The
  team's queue runs one job at a time [seed]: a lock per account holds the whole job.
  Polling every `poll_interval` seconds (1) is the one wait this adapter does. A record's
  error is `Rejected`; a failed job is every item's error (the next run redoes them).
- No validation shape is documented [inferred/unknown]: 400/422 are `Rejected`, and so
  is a 404 on the upsert (no path id to miss: an unknown calendar).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from syncd.adapter import Caps
from syncd.errors import AdapterError, Gone, Malformed, Rejected, Unavailable
from syncd.http import HttpClient
from syncd.model import STATUSES, Event, Listing, Moment, Person, Problem, Record, Window, as_utc
from syncd.paged import packed

BASE_URL = "https://api.salesloft.com"  # [public docs: SPEC]
EVENTS = "/v2/calendar/events"
UPSERT = EVENTS + "/upsert"
USERS = "/v2/users.json"
JOBS = "/v2/bulk_jobs"
JOB_TYPE = "calendar/events/upsert"
PER_PAGE = 100
JOB_DATA_MAX = 5_000
MAX_PAGES = 5_000
MAX_POLLS = 3_600
BULK_FROM = 500
FIELDS: frozenset[str] = frozenset(
    {"start", "end", "title", "description", "location", "status", "organizer", "attendees"}
)
RSVP = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
PARTSTAT = {v: k for k, v in RSVP.items()} | {"needsAction": "NEEDS-ACTION"}
TEXTS = {"title": "title", "description": "description", "location": "location"}
_RID = re.compile(r"\d{8}(?:T\d{6}[ZL])?")
_HASHED = re.compile(r"h:[a-z2-7]{26}")
_TEAM_LOCKS: dict[tuple[int, str, str], asyncio.Lock] = {}
Payload = Mapping[str, Any]
Results = list[Record | AdapterError]
Problems = list[Problem]


def client_headers(api_key: str) -> dict[str, str]:
    """The headers every request carries: the key or OAuth token as a Bearer [seed]."""
    return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}


def split_key(key: str) -> tuple[str, bool]:
    """(the `i_cal_uid` for a vendor key, whether it names one occurrence of a series)."""
    rest = key.partition(":")[2]
    if not rest or _HASHED.fullmatch(rest):
        return key, False
    uid, _, rid = rest.rpartition(":")
    return (uid, True) if uid and _RID.fullmatch(rid) else (rest, False)


def page_cost(page: int) -> int:
    """What list page `page` costs [public docs: D-RATE]."""
    if page <= 100:
        return 1
    return next((cost for last, cost in ((150, 3), (250, 8), (500, 10)) if page <= last), 30)


def time_text(moment: Moment) -> str:
    """`2027-03-01T09:00:00Z` (a date: its UTC midnight)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_text(moment: datetime | None) -> str:
    """A stale-guard or cancel time with microseconds; now when None."""
    return as_utc(moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime:
    """A time from an answer: ISO 8601, a missing zone read as UTC [seed]."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if not isinstance(value, str):
            raise TypeError
    except (TypeError, ValueError):
        raise Malformed(f"salesloft: {value!r} is not a date-time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _day(moment: Moment) -> date:
    """The nearest midnight's date: an all-day bound in any zone."""
    return (
        moment
        if not isinstance(moment, datetime)
        else (as_utc(moment) + timedelta(hours=12)).date()
    )


def _rsvp(partstat: str) -> str:
    return RSVP.get(partstat.upper(), "needsAction")


def project(event: Event) -> Event:
    """The event as Salesloft reads it back (see the ledger)."""
    start, end = (
        _day(m) if event.all_day else as_utc(m).replace(microsecond=0)
        for m in (event.start, event.end)
    )
    return Event(
        start=start,
        end=end,
        title=event.title,
        description=event.description,
        location=event.location,
        status=event.status if event.status in STATUSES else "confirmed",
        organizer=event.organizer,
        attendees=tuple(
            Person(p.email, p.name, PARTSTAT[_rsvp(p.partstat)]) for p in event.attendees
        ),
        transparent=event.transparent,
    )


def _text(item: Payload, name: str) -> str:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"salesloft: event {item.get('id')!r}: {name} is not text")
    return value or ""


def _attendees(item: Payload) -> list[Payload]:
    people = item.get("attendees") or []
    if not isinstance(people, list) or not all(isinstance(p, Mapping) for p in people):
        raise Malformed(f"salesloft: event {item.get('id')!r}: attendees are not a list")
    return [p for p in people if not p.get("deleted_at") and isinstance(p.get("email"), str)]


def to_event(item: Payload) -> Event:
    """An event from an answer as an `Event`; `Malformed` when it cannot be read."""
    start, end = parse_time(item.get("start_time")), parse_time(item.get("end_time"))
    people = _attendees(item)
    flagged = [p["email"] for p in people if p.get("organizer") is True]
    status = "cancelled" if item.get("canceled_at") else item.get("status")
    return Event(
        start=_day(start) if item.get("all_day") is True else start.replace(microsecond=0),
        end=_day(end) if item.get("all_day") is True else end.replace(microsecond=0),
        title=_text(item, "title"),
        description=_text(item, "description"),
        location=_text(item, "location"),
        status=status if status in STATUSES else "confirmed",
        organizer=_text(item, "organizer") or (flagged[0] if flagged else ""),
        attendees=tuple(
            Person(
                p["email"], p.get("name") or "", PARTSTAT.get(p.get("status", ""), "NEEDS-ACTION")
            )
            for p in people
        ),
        transparent=item.get("transparency") == "transparent",
    )


def to_record(item: object) -> Record:
    """An event from an answer as a `Record` keyed by its `id`, its UID as `remote_id`."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
        raise Malformed(f"salesloft: not a calendar event: {item!r:.120}")
    updated = item.get("updated_at")
    modified = None if updated is None else parse_time(updated)
    version = "" if modified is None else modified.isoformat()
    uid = item.get("i_cal_uid")
    return Record(item["id"], to_event(item), version, str(uid or ""), modified=modified)


def fields_payload(event: Event, names: frozenset[str]) -> dict[str, Any]:
    """The upsert fields for the named `Event` fields, plus the required times."""
    out: dict[str, Any] = {
        "start_time": time_text(event.start),
        "end_time": time_text(event.end),
        "all_day": event.all_day,
    }
    out |= {TEXTS[n]: getattr(event, n) or None for n in names & TEXTS.keys()}
    if "organizer" in names:
        out["organizer"] = event.organizer or None
    if names & {"attendees", "organizer"}:
        organizer = event.organizer.strip().lower()
        out["attendees"] = [
            {
                "name": p.name or None,
                "email": p.email,
                "status": _rsvp(p.partstat),
                "organizer": bool(organizer) and p.email.strip().lower() == organizer,
            }
            for p in event.attendees
        ]
    if "status" in names:
        cancelled = event.status == "cancelled"
        out["status"] = event.status if event.status in STATUSES else "confirmed"
        out["canceled_at"] = stamp_text(event.modified) if cancelled else None
    return out


def to_payload(calendar_id: str, key: str, event: Event, uid: str = "") -> dict[str, Any]:
    """The whole desired state under `key` (the create and the bulk record)."""
    body = identity(calendar_id, key, uid, event.modified)
    transparency = "transparent" if event.transparent else "opaque"
    return body | fields_payload(event, FIELDS) | {"transparency": transparency}


def identity(calendar_id: str, key: str, uid: str, modified: datetime | None) -> dict[str, Any]:
    """The upsert key and stale guard of every write."""
    derived, recurring = split_key(key)
    return {
        "calendar_id": calendar_id,
        "id": key,
        "i_cal_uid": uid or derived,
        "recurring": recurring,
        "updated_at": stamp_text(modified),
    }


def data_of(body: object) -> Any:
    """The `data` of an answer."""
    if not isinstance(body, Mapping) or "data" not in body:
        raise Malformed(f"salesloft: an answer without data: {body!r:.120}")
    return body["data"]


def team_lock(http: HttpClient) -> asyncio.Lock:
    """One bulk job at a time per account (the routes of one vendor share its funnel)."""
    key = (id(asyncio.get_running_loop()), http.base_url, http.label)
    return _TEAM_LOCKS.setdefault(key, asyncio.Lock())


class Salesloft:
    """One user's Salesloft External Calendar: events keyed by our own `id`."""

    client_headers = staticmethod(client_headers)
    poll_interval = 1.0  # seconds between bulk job polls: the one wait the adapter does

    def __init__(
        self,
        http: HttpClient,
        *,
        calendar_id: str = "",
        user_guid: str = "",
        rep_email: str = "",
        bulk_from: int = BULK_FROM,
    ) -> None:
        if not (calendar_id or user_guid or rep_email):
            raise ValueError("salesloft: set calendar_id, user_guid or rep_email")
        self.http, self.rep_email = http, rep_email
        external = calendar_id.startswith("external_")
        self.user_guid = user_guid or (calendar_id.removeprefix("external_") if external else "")
        self.calendar_id = calendar_id or (f"external_{user_guid}" if user_guid else "")
        self.caps = Caps(
            partial_update=True, holds_cancelled=True, fields=FIELDS, absence="relist",
            bulk_from=bulk_from,
        )  # fmt: skip
        self._resolving = asyncio.Lock()

    def project(self, event: Event) -> Event:
        """The event as Salesloft would read it back."""
        return project(event)

    async def list(self, window: Window) -> Listing:
        """Every event inside the window; unreadable ones become problems."""
        calendar = await self.calendar()
        params = {"start_time": time_text(window.start), "end_time": time_text(window.end)}
        records, problems, complete = await self._scan(calendar, params)
        inside = packed(r for r in records.values() if r.in_window(window))
        return Listing(inside, tuple(problems), complete)

    async def get(self, key: str) -> Record:
        """One event by `id`: a scan of the whole calendar (no GET by id exists)."""
        calendar = await self.calendar()
        async for item, _ in self._pages(calendar, {}):
            if isinstance(item, Mapping) and item.get("id") == key:
                return to_record(item)
        raise Gone(f"{self.http.label}: no event {key} in {calendar}", key=key)

    async def create(self, key: str, event: Event) -> Record:
        """Upsert the whole desired state under `key`."""
        return await self._upsert(to_payload(await self.calendar(), key, event), key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Upsert the changed fields; the vendor's version when its guard kept a newer one."""
        names = changed & FIELDS
        if not names:
            return record
        body = identity(await self.calendar(), record.key, record.remote_id, event.modified)
        written, kind = await self._send(body | fields_payload(event, names), record.key)
        if kind == "create":  # gone at the vendor since it was listed: the patch made a stub
            return await self.create(record.key, event)
        return written

    async def delete(self, record: Record) -> None:
        """Cancel the event (there is no delete); nothing to cancel is fine."""
        body = identity(await self.calendar(), record.key, record.remote_id, None)
        body |= fields_payload(record.event, frozenset()) | {
            "status": "cancelled",
            "canceled_at": body["updated_at"],
        }
        try:
            await self._upsert(body, record.key)
        except Rejected as exc:
            if not isinstance(exc.__cause__, Gone):
                raise

    async def upsert_many(self, items: Sequence[tuple[str, Event]]) -> Results:
        """Upsert every (key, event) through one bulk job; one result per item, in order."""
        if not items:
            return []
        try:
            calendar = await self.calendar()
            payloads = [to_payload(calendar, key, event) for key, event in items]
            async with team_lock(self.http):
                results = await self._bulk(payloads)
        except AdapterError as exc:
            return [exc] * len(items)
        return [self._result(results.get(key), key) for key, _ in items]

    async def calendar(self) -> str:
        """The calendar id, looked up by the rep's email the first time it is needed."""
        async with self._resolving:
            if not self.calendar_id:
                self.user_guid = await self._guid_of(self.rep_email)
                self.calendar_id = f"external_{self.user_guid}"
        return self.calendar_id

    # -- mechanics -------------------------------------------------------------------------

    async def _upsert(self, body: dict[str, Any], key: str) -> Record:
        return (await self._send(body, key))[0]

    async def _send(self, body: dict[str, Any], key: str) -> tuple[Record, object]:
        """One upsert: the event as stored, and the `upsert_type`."""
        try:
            response = await self.http.request("POST", UPSERT, json_body=body, key=key)
        except Gone as exc:  # no path id to miss: the calendar is unknown
            raise Rejected(str(exc), key=key) from exc
        kind = response.body.get("upsert_type") if isinstance(response.body, Mapping) else None
        return to_record(data_of(response.body)), kind

    async def _guid_of(self, email: str) -> str:
        params = {"search": email, "per_page": str(PER_PAGE)}
        response = await self.http.request("GET", USERS, params=params)
        users = data_of(response.body)
        for user in users if isinstance(users, list) else []:
            guid = user.get("guid") if isinstance(user, Mapping) else None
            if isinstance(guid, str) and guid and str(user.get("email")).lower() == email.lower():
                return guid
        raise Rejected(f"{self.http.label}: no Salesloft user has the email {email}")

    async def _scan(
        self, calendar: str, bounds: dict[str, str]
    ) -> tuple[dict[str, Record], Problems, bool]:
        """Records by id, problems, and whether as many events were seen as announced."""
        records: dict[str, Record] = {}
        problems: Problems = []
        seen: set[str] = set()
        total: int | None = None
        async for item, count in self._pages(calendar, bounds):
            total = count if total is None else total
            ident = item.get("id") if isinstance(item, Mapping) else None
            seen.add(str(ident) if ident else f"?{len(seen)}")
            if isinstance(item, Mapping) and item.get("calendar_id", calendar) != calendar:
                continue
            try:
                record = to_record(item)
            except Malformed as exc:
                problems.append(Problem(str(ident or "?"), str(exc)))
                continue
            records[record.key] = record
        return records, problems, total is None or len(seen) >= total

    async def _pages(
        self, calendar: str, bounds: dict[str, str]
    ) -> AsyncIterator[tuple[Any, int | None]]:
        """Every item of the calendar's list pages, with the announced total count."""
        params = bounds | {"user_guid": self.user_guid} if self.user_guid else dict(bounds)
        params |= {
            "calendar_id": calendar,
            "per_page": str(PER_PAGE),
            "sort_by": "start_time",
            "sort_direction": "ASC",
            "include_paging_counts": "true",
        }
        for page in range(1, MAX_PAGES + 1):
            query = params | {"page": str(page)}
            response = await self.http.request("GET", EVENTS, params=query, cost=page_cost(page))
            items, more, total = page_of(response.body)
            for item in items:
                yield item, total
            if not more:
                return
        raise Malformed(f"{self.http.label}: more than {MAX_PAGES} list pages; listing abandoned")

    async def _bulk(self, payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Run one bulk job over the payloads; its results by event id."""
        job = data_of(await self._call("POST", JOBS, {"type": JOB_TYPE, "name": "syncd"}))
        if not isinstance(job, Mapping) or not isinstance(job.get("id"), int):
            raise Malformed(f"{self.http.label}: a bulk job without an id: {job!r:.120}")
        path = f"{JOBS}/{job['id']}"
        for first in range(0, len(payloads), JOB_DATA_MAX):
            await self._call(
                "POST", f"{path}/job_data", {"data": payloads[first : first + JOB_DATA_MAX]}
            )
        await self._call("PUT", path, {"ready_to_execute": True})
        for _ in range(MAX_POLLS):
            state = data_of(await self._call("GET", path))
            if isinstance(state, Mapping) and state.get("state") == "done":
                return await self._results(path, len(payloads))
            await asyncio.sleep(self.poll_interval)
        raise Unavailable(f"{self.http.label}: bulk job {path} not done after {MAX_POLLS} polls")

    async def _results(self, path: str, expected: int) -> dict[str, Any]:
        """The job's results by event id, read by `id[gt]` cursor."""
        results: dict[str, Any] = {}
        after, seen = 0, 0
        while seen < expected:
            params = {"per_page": str(PER_PAGE), "id[gt]": str(after)}
            page = data_of(await self._call("GET", f"{path}/results", params=params))
            rows = [r for r in page if isinstance(r, Mapping)] if isinstance(page, list) else []
            ids = [r["id"] for r in rows if isinstance(r.get("id"), int)]
            if not ids:
                break
            for row in rows:
                record = row.get("record")
                if isinstance(record, Mapping):
                    results[str(record.get("id"))] = row
            after, seen = max(ids), seen + len(rows)
        return results

    def _result(self, result: Any, key: str) -> Record | AdapterError:
        if not isinstance(result, Mapping):
            return Unavailable(f"{self.http.label}: the bulk job has no result for {key}", key=key)
        if result.get("status") != "success":
            return Rejected(
                f"{self.http.label}: bulk upsert refused: {result.get('error')}", key=key
            )
        try:
            return to_record(result.get("resource"))
        except Malformed as exc:
            return exc

    async def _call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        response = await self.http.request(method, path, params=params, json_body=body)
        return response.body


def page_of(body: object) -> tuple[list[Any], bool, int | None]:
    """Items of one list page, whether another follows, and the announced total."""
    items = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(body, Mapping) or not isinstance(items, list):
        raise Malformed(f"salesloft: a list page without a data array: {body!r:.120}")
    metadata = body.get("metadata")
    paging = metadata.get("paging") if isinstance(metadata, Mapping) else None
    if not isinstance(paging, Mapping):  # some endpoints omit paging: a short page is the last
        return items, len(items) >= PER_PAGE, None
    total = paging.get("total_count")
    return (
        items,
        isinstance(paging.get("next_page"), int),
        total if isinstance(total, int) else None,
    )
