"""YSUITE tasks: the vendor adapter.

API: https://www.ysuiteapp.com/api-docs (our seed 002). What is known and how sure we are
is in shared/vendors/ysuite.md; the tags below are its provenance tags.

Quirk ledger:
- Server-generated integer `activity_id` is the only id [seed]: `server_ids`; the record
  key is `str(activity_id)`, and syncd's key rides as a marker line at the end of the
  description (`model.with_marker`), read back as `Record.marker`.
- Envelope `{"success", "message", "data"}` on every answer [public docs: errors]; a 200
  with `success: false` is refused like a 400. Paged lists hold `data.data`,
  `current_page` (one-based) for the zero-based `pageIndex` we send, `total_records`,
  `total_pages`; we page until `pageIndex + 1 >= total_pages` [public docs: pagination]
  and a `current_page` other than `pageIndex + 1` is `Malformed` (the off-by-one trap).
- Offset paging over live data [inferred]: ids are de-duplicated; a scan whose pages
  disagree on `total_records` is repeated (at most `MAX_SCANS`); a scan that never
  settles returns the union, marked incomplete, so nothing is deleted on its strength.
  `sortBy=activity_id` ascending keeps the order stable on ties; its whitelist is
  [unknown]: a refusal fails the listing loudly instead of silently.
- Not found is HTTP 400, never 404 [public docs: errors]; its text is [unknown], so a 400
  or `success: false` matching "not found" / "no query results" / "does not exist" on a
  GET or DELETE of one task is `Gone`; any other 400 is `Rejected`, and "No organisation
  assigned to user" is `AuthFailed` [public docs: errors]. A 404 therefore means a missing
  endpoint (undocumented PUT/DELETE): `Rejected`, never `Gone`.
- 422 carries Laravel field errors [public docs: errors]; `Rejected` with the envelope's
  `message`, which in Laravel 9+ quotes the first field message [inferred]. Strings are
  trimmed and "" becomes null (Laravel's default middleware) [inferred]: `project` trims.
- Task times are naive `YYYY-MM-DDTHH:MM:SS` [seed]; their zone is [unknown] and is the
  configured `account_timezone`, both ways, through zoneinfo. A wall time repeated at a
  fall-back change is read with fold=0 (the first, daylight instant): an event in the
  second hour comes back one hour early, `project` predicts it, and the runner records
  the difference once instead of looping. A wall time in a spring-forward gap (only a
  vendor-side edit can make one) reads with the offset before the change. All-day events
  become local midnights; seconds are kept, sub-seconds dropped.
- `title` is required, at most 150 characters [seed]: cut to 150, "(no title)" if blank.
- `status` 0-4 [seed]: we send 0 (open) or 3 (cancelled). Read: 3 is "cancelled", the rest
  "confirmed": 2 completed and 4 no-show are outcomes that belong to the vendor, and an
  update keeps them (and 1 in progress) unless the event is cancelled.
- `due_date_from` / `due_date_to` are inclusive dates on an [unknown] field: local dates
  covering the window are asked for and tasks whose start is outside are dropped.
- Whether list items carry `description` is [unknown] (the seed's example has none): an
  item without the key is read whole with GET before it is translated.
- Update and delete are undocumented [unknown]: `PUT`/`DELETE /v1/tasks/{id}` only when
  `supports_update` / `supports_delete`; replace vs merge is [unknown], so an update GETs
  the task and PUTs every writable field (priority, links, assignee and tags carried over).
  The create answer holds only the id [seed]: the stored task is read back with GET.
- Every task needs `cstid` or `deal_id` [seed]: configured ids, or with `contact_lookup`
  the contact whose `cstemail` is the event contact's (`GET /v1/contacts?search=`; the
  lowest `cstid` on ties); no match is `Rejected`. No users endpoint [unknown]:
  `assigned_user_id` comes from the configured `users` map (rep email -> id).
- No version field, no updated-at [seed]: the version is a hash of the stored fields.
  No webhooks or change feed [unknown]: absence is confirmed with GET (`absence="get"`).
- No published rate limit [unknown]: the budget is the runner's (DESIGN.md section 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from syncd.adapter import Caps
from syncd.errors import AdapterError, AuthFailed, Gone, Malformed, Rejected
from syncd.http import Budget, HttpClient
from syncd.model import (
    Event,
    Listing,
    Moment,
    Problem,
    Record,
    Window,
    as_utc,
    split_marker,
    with_marker,
)
from syncd.paged import Packer

BASE_URL = "https://api.ysuite.org"  # [public docs: authentication]
DEFAULT_BUDGET = Budget(requests=5, per=1.0)  # none published [unknown]: DESIGN.md section 3
DEFAULT_POLL = timedelta(minutes=10)
PATH = "/v1/tasks"
CONTACTS = "/v1/contacts"
PAGE_SIZE = 100  # the documented maximum
MAX_SCANS = 3
MAX_PAGES = 10_000
TITLE_MAX = 150
UNTITLED = "(no title)"
FIELDS: frozenset[str] = frozenset({"start", "end", "title", "description", "status", "outcome"})
OPEN, CANCELLED = 0, 3
STATUS_NAMES = {0: "confirmed", 1: "confirmed", 2: "confirmed", 3: "cancelled", 4: "confirmed"}
OUTCOME_NAMES = {2: "completed", 4: "no_show"}  # read back into the calendar, never sent
CARRIED = ("priority", "cstid", "deal_id", "assigned_user_id")
VERSIONED = (*CARRIED, "title", "start_datetime", "end_datetime", "description", "status")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
NO_USERS: Mapping[str, int] = MappingProxyType({})
_NOT_FOUND = re.compile(r"not found|no query results|does(?: not|n't) exist", re.I)
_NO_ORGANISATION = re.compile(r"no organi[sz]ation", re.I)
Payload = Mapping[str, Any]


def client_headers(access_key: str, secret_key: str) -> dict[str, str]:
    """The headers every request carries: the workspace's key pair [public docs]."""
    return {
        "x-ysuite-access-key": access_key,
        "x-ysuite-secret-key": secret_key,
        "Accept": "application/json",
    }


def local_text(moment: Moment, zone: ZoneInfo) -> str:
    """A moment as YSUITE's naive wall time in `zone`; a date is its local midnight."""
    if not isinstance(moment, datetime):
        return f"{moment.isoformat()}T00:00:00"
    return as_utc(moment).astimezone(zone).strftime(TIME_FORMAT)


def parse_local(value: object, zone: ZoneInfo) -> datetime:
    """A naive YSUITE wall time in `zone` as a UTC instant (fold=0 when ambiguous)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise Malformed(f"ysuite: {value!r} is not a date-time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone, fold=0)
    return moment.astimezone(UTC).replace(microsecond=0)


def title_text(title: str) -> str:
    """The title as YSUITE stores it: trimmed, cut to 150 characters, never blank."""
    return title.strip()[:TITLE_MAX].strip() or UNTITLED


def status_code(status: str, current: object = None) -> int:
    """The `status` to send: 3 for cancelled, else the vendor's own state unless it was 3."""
    if status == "cancelled":
        return CANCELLED
    if isinstance(current, int) and not isinstance(current, bool) and current in STATUS_NAMES:
        return current if current != CANCELLED else OPEN
    return OPEN


def _text(item: Payload, name: str) -> str:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"ysuite: task {item.get('activity_id')!r}: {name} is not text")
    return value or ""


def to_event(item: Payload, zone: ZoneInfo) -> Event:
    """A task as an `Event` (its marker line left out); `Malformed` when unreadable."""
    start = parse_local(item.get("start_datetime"), zone)
    end = item.get("end_datetime")
    status = item.get("status", OPEN)
    if type(status) is not int or status not in STATUS_NAMES:
        raise Malformed(f"ysuite: task {item.get('activity_id')!r}: status {status!r}")
    return Event(
        start=start,
        end=start if end is None else parse_local(end, zone),
        title=title_text(_text(item, "title")),
        description=split_marker(_text(item, "description"))[0].strip(),
        status=STATUS_NAMES[status],
        outcome=OUTCOME_NAMES.get(status, ""),
    )


def version_of(item: Payload) -> str:
    """A hash of the stored fields: YSUITE has no updated-at [seed]."""
    text = json.dumps([item.get(name) for name in VERSIONED], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def activity_id(item: object) -> str:
    """The task's `activity_id` as a key, or "" when it has none."""
    value = item.get("activity_id") if isinstance(item, Mapping) else None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def to_record(item: object, zone: ZoneInfo) -> Record:
    """A task as a `Record` keyed by its `activity_id`, carrying its marker."""
    if not isinstance(item, Mapping) or not (key := activity_id(item)):
        raise Malformed(f"ysuite: not a task: {item!r:.120}")
    marker = split_marker(_text(item, "description"))[1]
    return Record(key, to_event(item, zone), version_of(item), remote_id=key, marker=marker)


def page_of(data: object, index: int) -> tuple[list[Any], int, int]:
    """Items, `total_records` and `total_pages` of list page `index` (zero-based)."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(items, list):
        raise Malformed(f"ysuite: a list page without a data array: {data!r:.120}")
    total, pages, current = (data.get(k) for k in ("total_records", "total_pages", "current_page"))
    if not isinstance(total, int) or not isinstance(pages, int):
        raise Malformed(f"ysuite: a list page without totals: {data!r:.120}")
    if current is not None and current != index + 1:
        raise Malformed(f"ysuite: pageIndex {index} answered current_page {current!r}")
    return items, total, pages


def list_params(window: Window, zone: ZoneInfo) -> dict[str, str]:
    """The listing query: inclusive local dates covering the window, 100 a page."""
    first, last = (as_utc(m).astimezone(zone).date() for m in (window.start, window.end))
    return {
        "pageSize": str(PAGE_SIZE),
        "due_date_from": first.isoformat(),
        "due_date_to": last.isoformat(),
        "sortBy": "activity_id",
        "sortOrder": "asc",
    }


def refine(exc: Rejected, lookup: bool) -> AdapterError:
    """A refusal read closer: no organisation is `AuthFailed`, not found `Gone` (lookups)."""
    text = str(exc)
    if _NO_ORGANISATION.search(text):
        return AuthFailed(text, key=exc.key)
    return Gone(text, key=exc.key) if lookup and _NOT_FOUND.search(text) else exc


def _carried(current: Payload) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k in CARRIED if type(v := current.get(k)) is int}
    tags = current.get("tags")
    if isinstance(tags, list) and all(isinstance(t, int) for t in tags):
        out["tags"] = tags
    return out


class YSuite:
    """One YSUITE workspace: tasks keyed by `activity_id`, times in `account_timezone`."""

    client_headers = staticmethod(client_headers)

    def __init__(
        self,
        http: HttpClient,
        *,
        account_timezone: str,
        supports_update: bool = False,
        supports_delete: bool = False,
        cstid: int | None = None,
        deal_id: int | None = None,
        contact_lookup: bool = False,
        users: Mapping[str, int] = NO_USERS,
    ) -> None:
        self.http, self.zone = http, ZoneInfo(account_timezone)
        self.supports_update, self.supports_delete = supports_update, supports_delete
        self.cstid, self.deal_id, self.contact_lookup = cstid, deal_id, contact_lookup
        self.users = {email.strip().lower(): ident for email, ident in users.items()}
        self.caps = Caps(
            updatable=supports_update,
            deletable=supports_delete,
            server_ids=True,
            holds_cancelled=True,
            fields=FIELDS,
            absence="get",
        )
        self._contacts: dict[str, int] = {}

    def project(self, event: Event) -> Event:
        """The event as YSUITE reads it back: local wall times, trimmed text, two states."""
        start, end = (
            parse_local(local_text(m, self.zone), self.zone) for m in (event.start, event.end)
        )
        return Event(
            start=start,
            end=end,
            title=title_text(event.title),
            description=event.description.strip(),
            status=STATUS_NAMES[status_code(event.status)],
            outcome=event.outcome,  # the vendor's own: written back, never sent
        )

    async def list(self, window: Window) -> Listing:
        """Every task starting inside the window; unreadable ones become problems."""
        items, complete = await self._scans(window)
        records = Packer()  # packed as read (`syncd.paged`)
        problems: list[Problem] = []
        for key, item in items.items():
            try:
                record = await self._read(item, window)
            except Malformed as exc:
                problems.append(Problem(key or "?", str(exc)))
                continue
            if record is not None:
                records.add(record)
        return Listing(records.done(), tuple(problems), complete)

    async def get(self, key: str) -> Record:
        """One task by `activity_id`; `Gone` when YSUITE has none."""
        return to_record(await self._task(key), self.zone)

    async def create(self, key: str, event: Event) -> Record:
        """POST the task with syncd's key as its marker, then read the stored task."""
        body = {**await self._links(event, key), **self._fields(event, key)}
        data = await self._call("POST", PATH, key=key, body=body)
        if not (ident := activity_id(data)):
            raise Malformed(f"{self.http.label}: the create answer has no activity_id", key=key)
        try:
            return await self.get(ident)
        except AdapterError:  # stored all the same: an error here would invite a second POST
            return Record(ident, self.project(event), remote_id=ident, marker=key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """PUT every writable field over the stored task (its outcome and links kept)."""
        if not self.supports_update:
            raise Rejected(
                f"{self.http.label}: task updates are off (supports_update)", key=record.key
            )
        current = await self._task(record.key)
        if not changed & FIELDS:
            return to_record(current, self.zone)
        # syncd's own key first: the one the task carries may be stale (a re-keyed series)
        marker = record.marker or split_marker(_text(current, "description"))[1]
        body = {**_carried(current), **self._fields(event, marker, current.get("status"))}
        if "cstid" not in body and "deal_id" not in body:
            body |= await self._links(event, record.key)
        await self._call("PUT", f"{PATH}/{record.key}", key=record.key, body=body)
        return await self.get(record.key)

    async def delete(self, record: Record) -> None:
        """DELETE the task; one already gone is fine."""
        if not self.supports_delete:
            raise Rejected(
                f"{self.http.label}: task deletes are off (supports_delete)", key=record.key
            )
        if record.key.isascii() and record.key.isdigit():
            with contextlib.suppress(Gone):
                await self._call("DELETE", f"{PATH}/{record.key}", key=record.key, lookup=True)

    # -- mechanics -------------------------------------------------------------------------

    def _fields(self, event: Event, marker: str, current: object = None) -> dict[str, Any]:
        """The task fields syncd manages; `marker` is syncd's key for the description."""
        description = event.description.strip()
        body: dict[str, Any] = {
            "title": title_text(event.title),
            "start_datetime": local_text(event.start, self.zone),
            "end_datetime": local_text(event.end, self.zone),
            "description": with_marker(description, marker) if marker else description,
            "status": status_code(event.status, current),
        }
        if (user := self.users.get(event.owner.strip().lower())) is not None:
            body["assigned_user_id"] = user
        return body

    async def _links(self, event: Event, key: str) -> dict[str, int]:
        """`cstid` / `deal_id` for a new task: configured, or the contact found by email."""
        links = {} if self.deal_id is None else {"deal_id": self.deal_id}
        cstid = self.cstid
        if self.contact_lookup and event.contact and event.contact.email.strip():
            cstid = await self._contact(event.contact.email.strip().lower(), key)
        if cstid is not None:
            links["cstid"] = cstid
        if not links:
            raise Rejected(
                f"{self.http.label}: a YSUITE task needs a contact or a deal: the event has"
                " no contact to look up and neither cstid nor deal_id is configured",
                key=key,
            )
        return links

    async def _contact(self, email: str, key: str) -> int:
        if email not in self._contacts:
            params = {"search": email, "pageSize": str(PAGE_SIZE), "pageIndex": "0"}
            items = page_of(await self._call("GET", CONTACTS, key=key, params=params), 0)[0]
            found = sorted(
                c["cstid"]
                for c in items
                if isinstance(c, Mapping)
                and isinstance(c.get("cstid"), int)
                and str(c.get("cstemail") or "").strip().lower() == email
            )
            if not found:
                raise Rejected(
                    f"{self.http.label}: no YSUITE contact has the email {email}: add the"
                    " contact in YSUITE (or configure cstid / deal_id without contact_lookup)",
                    key=key,
                )
            self._contacts[email] = found[0]
        return self._contacts[email]

    async def _task(self, key: str) -> Payload:
        """The stored task `key` (GET); `Gone` when there is none."""
        if not (key.isascii() and key.isdigit()):
            raise Gone(f"{self.http.label}: {key!r} is not a YSUITE activity id", key=key)
        data = await self._call("GET", f"{PATH}/{key}", key=key, lookup=True)
        if not isinstance(data, Mapping):
            raise Malformed(f"{self.http.label}: task {key} is not an object: {data!r:.80}")
        if data.get("activity_type", "Task") != "Task":
            raise Gone(f"{self.http.label}: activity {key} is not a task", key=key)
        return data

    async def _read(self, item: object, window: Window) -> Record | None:
        """A listed task inside the window as a record (read whole when the item is brief)."""
        if not isinstance(item, Mapping):
            raise Malformed(f"{self.http.label}: a list item is not an object: {item!r:.80}")
        if item.get("activity_type", "Task") != "Task":
            return None
        record = to_record(item, self.zone)
        if not record.in_window(window):
            return None
        if "description" in item:
            return record
        try:
            return to_record(await self._task(record.key), self.zone)
        except Gone:  # deleted since the page was read
            return None

    async def _scans(self, window: Window) -> tuple[dict[str, Any], bool]:
        """Scan until one scan's pages agree on `total_records`; else the union, incomplete."""
        union: dict[str, Any] = {}
        for _ in range(MAX_SCANS):
            items, settled = await self._scan(list_params(window, self.zone))
            if settled:
                return items, True
            union |= items
        return union, False

    async def _scan(self, params: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """One pass over the pages: items by `activity_id`, and whether the total held."""
        items: dict[str, Any] = {}
        totals: set[int] = set()
        for index in range(MAX_PAGES):
            data = await self._call("GET", PATH, params={**params, "pageIndex": str(index)})
            page, total, pages = page_of(data, index)
            totals.add(total)
            for n, item in enumerate(page):
                items[activity_id(item) or f"?{index}.{n}"] = item
            if index + 1 >= pages:
                return items, len(totals) == 1
        raise Malformed(f"{self.http.label}: more than {MAX_PAGES} list pages; listing abandoned")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        key: str = "",
        params: Mapping[str, str] | None = None,
        body: Any = None,
        lookup: bool = False,
    ) -> Any:
        """One request; the `data` of its envelope. `lookup`: a 400 not-found is `Gone`."""
        where = f"{self.http.label}: {method} {path}"
        try:
            response = await self.http.request(method, path, params=params, json_body=body, key=key)
        except Gone as exc:  # YSUITE answers missing records with 400: the endpoint is missing
            raise Rejected(f"{exc} (no such endpoint at this YSUITE)", key=key) from exc
        except Rejected as exc:
            refined = refine(exc, lookup)
            if refined is exc:
                raise
            raise refined from exc
        envelope = response.body
        if not isinstance(envelope, Mapping):
            raise Malformed(f"{where}: the answer is not a JSON object", key=key)
        if envelope.get("success") is False:
            raise refine(
                Rejected(f"{where}: {envelope.get('message') or 'success: false'}", key=key), lookup
            )
        return envelope.get("data")
