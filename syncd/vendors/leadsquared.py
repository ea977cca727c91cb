"""LeadSquared appointments (Tasks API v2): the vendor adapter.

API: https://apidocs.leadsquared.com (our seed 001, "Create an Appointment"). What is known
and how sure we are is in shared/vendors/leadsquared.md; the tags below are its provenance.

Quirk ledger:
- Ids are generated server-side (`UserTaskId`) and no call is idempotent [3rd-party:
  api-evangelist conventions]: `server_ids`, and every create carries syncd's key as the
  last line of `Description` (`model.with_marker`), read back as `Record.marker`.
- Keys travel in `x-LSQ-AccessKey`/`x-LSQ-SecretKey` headers, never in the query the
  docs' examples use [public docs: authentication]: URLs reach logs.
- Times go out as UTC `YYYY-MM-DD HH:MM:SS` [seed] and come back with `.000` [public docs];
  sub-seconds are dropped both ways. There is no all-day flag [inferred]: an all-day event
  becomes UTC midnight to midnight, as at Sales Ask.
- Failures are `{"Status":"Error","ExceptionType":"MX…","ExceptionMessage":…}` on HTTP 500
  or 200 alike [3rd-party: extraction runbook, integrator code], so every body is read
  (`check`, run by the request funnel before the status is mapped). An MX exception is
  `Rejected`: retrying repeats it [3rd-party: extraction runbook].
  `MXAPIRateLimitExceededException` is `RateLimited` on 429, 500 or 200, with no
  Retry-After [3rd-party: LSQ Backfill notes, api-evangelist conventions].
- 404 means "the API could not be found", never a missing task [seed]: it is `AuthFailed`
  (the base URL is wrong; stop the route), never `Gone`.
- A missing task: `Retrieve.GetById` answers `[]` [3rd-party: Panora; inferred]: `Gone`,
  and `absence="get"`. Update of an unknown id is [unknown] (MX exception or AffectedRows
  0): AffectedRows 0, or an MX exception for a task GetById no longer finds, is `Gone`.
- Update is partial [public docs: update-task; 3rd-party: integrators]: only the changed
  fields go. `EndDate` is not among Update's documented fields [unknown], yet moving
  `DueDate` alone would leave the old end: both go whenever either changes, the result is
  read back, and an end the vendor kept is `Rejected` (quarantined, not retried each run).
- Create answers only `Id` [seed], Update only `AffectedRows` [public docs]: both are read
  back with GetById for the version (`ModifiedOn`, the only change marker [public docs]).
  A create whose read-back fails returns what was sent: repeating it would duplicate.
- Delete is bulk and asynchronous (`DeleteTasks`) [public docs]: one id per call; already
  gone is fine; the task may be listed a little longer, which `absence="get"` covers.
- No cancelled state [unknown]: `holds_cancelled` is False (cancelling deletes).
  `StatusCode` 0 (pending or overdue) and 1 (completed) [public docs: retrieve-tasks] both
  read as "confirmed": outcomes belong to the vendor's users; syncd never completes a task.
- Listing is `RetrieveAppointments/ByUserEmailAddress` for `owners` (appointments only)
  [public docs]. Its date-only bounds have [unknown] zone and inclusivity: one extra day on
  each side, and only tasks whose `DueDate` is inside the window are kept. At most 100 days
  lie between the bounds [public docs]: longer windows are split into spans of 99 that
  share their boundary day, de-duplicated by `UserTaskId` [3rd-party: Handover runbook saw
  11x duplicates]. Paging is 1-based `PageIndex`/`PageSize` until `RecordCount`, taken as
  the total [public docs; 3rd-party: extraction runbook]; a listing that runs dry before
  it is `Malformed`, so nothing is deleted on a partial one.
- `EndDate` is missing from the docs' listing example [public docs] but in Panora's model
  [3rd-party]: a task without one reads as ending at its start.
- Fields held: start, end, title, description. `OwnerEmailAddress` = `event.owner` [seed]
  routes the task; it is not compared (the rep rule owns it), and an event without one is
  `Rejected` before any request. An inactive owner is an MX exception [unknown, inferred].
  Location is not in Update [public docs] and RelatedEntity links a lead, not a person:
  neither is mapped. `Name` is mandatory [public docs: task types]: "(no title)" is sent.
- Side effects: `NotifyBy` "1000" and no `Reminder` unless the route asks [seed]: a first
  sync must not email every owner.
- Rate limits are per account and plan, 2 to 25 calls per 5 s [public docs: rate-limits,
  two versions disagree]: the budget is the runner's (settings: 25 per 5 s).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from syncd.adapter import Caps
from syncd.errors import AdapterError, AuthFailed, Gone, Malformed, RateLimited, Rejected
from syncd.http import HttpClient, Response, parse_retry_after
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
from syncd.paged import packed

CREATE, UPDATE, DELETE = "/Task.svc/Create", "/Task.svc/Update", "/Task.svc/DeleteTasks"
GET_ONE = "/Task.svc/Retrieve.GetById"
LIST = "/Task.svc/RetrieveAppointments/ByUserEmailAddress"
FIELDS: frozenset[str] = frozenset({"start", "end", "title", "description", "outcome"})
RATE_LIMITED = "MXAPIRateLimitExceededException"
COMPLETED = 1  # StatusCode of a completed task [public docs: retrieve-tasks]
SPAN = timedelta(days=99)  # "not more than 100 days" apart, however the days are counted
PAGE_SIZE, MAX_PAGES = 100, 1000
UNTITLED = "(no title)"


def client_headers(access_key: str, secret_key: str) -> dict[str, str]:
    """The headers every request carries: the API user's key pair [public docs]."""
    return {"x-LSQ-AccessKey": access_key, "x-LSQ-SecretKey": secret_key}


def check(response: Response, where: str, key: str = "") -> None:
    """Raise for an MX exception in the body, whatever the status, and for a 404."""
    body, status = response.body, response.status
    kind, text = mx_exception(body)
    message = f"{where}: HTTP {status}: {kind or 'Error'}: {text[:200]}"
    if kind == RATE_LIMITED:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited(message, retry_after=retry_after, key=key)
    if status == 404:
        raise AuthFailed(f"{where}: HTTP 404: no such API; is base_url the regional host + /v2?")
    failed = isinstance(body, Mapping) and body.get("Status") == "Error"
    if (status < 300 and failed) or (status >= 500 and kind.startswith("MX")):
        raise Rejected(message, key=key)


def mx_exception(body: object) -> tuple[str, str]:
    """(ExceptionType, ExceptionMessage) of an error body, blanks when there is none."""
    if not isinstance(body, Mapping):
        return "", ""
    kind, text = body.get("ExceptionType"), body.get("ExceptionMessage")
    return (kind if isinstance(kind, str) else ""), (text if isinstance(text, str) else "")


def time_text(moment: Moment) -> str:
    """`2020-11-11 10:30:00`: UTC, whole seconds, the one documented form [seed]."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: object) -> datetime:
    """A date-time from a response: `2022-07-25 10:30:00.000`, read as UTC."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value.strip())
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise Malformed(f"leadsquared: {value!r} is not a date-time")


def _instant(moment: Moment) -> datetime:
    return as_utc(moment).replace(microsecond=0)


def project(event: Event) -> Event:
    """The event as LeadSquared reads it back: times, title and description only."""
    return Event(
        start=_instant(event.start),
        end=_instant(event.end),
        title=event.title or UNTITLED,
        description=split_marker(with_marker(event.description, "-"))[0],
        outcome=event.outcome,
    )


def to_record(payload: object) -> Record:
    """A task from a response as a `Record` keyed by its `UserTaskId`."""
    if not isinstance(payload, Mapping):
        raise Malformed(f"leadsquared: a task is not an object: {payload!r:.80}")
    ident, title, text = (payload.get(k) for k in ("UserTaskId", "Name", "Description"))
    if not isinstance(ident, str) or not ident:
        raise Malformed(f"leadsquared: a task without a UserTaskId: {payload!r:.80}")
    if not isinstance(title or "", str) or not isinstance(text or "", str):
        raise Malformed(f"leadsquared: task {ident} has non-text fields")
    start, end = _instant(parse_time(payload.get("DueDate"))), payload.get("EndDate")
    description, marker = split_marker(text or "")
    event = Event(start, _instant(parse_time(end)) if end else start, title or "", description)
    if payload.get("StatusCode") == COMPLETED:
        event = replace(event, outcome="completed")
    modified = payload.get("ModifiedOn")
    return Record(
        key=ident,
        event=event,
        version=str(modified or ""),
        remote_id=ident,
        modified=parse_time(modified) if modified else None,
        marker=marker,
    )


def update_payload(record: Record, event: Event, changed: frozenset[str]) -> dict[str, Any]:
    """The Update fields for the changed `Event` fields (EndDate goes with DueDate)."""
    out: dict[str, Any] = {}
    if changed & {"start", "end"}:
        out |= {"DueDate": time_text(event.start), "EndDate": time_text(event.end)}
    if "title" in changed:
        out["Name"] = event.title or UNTITLED
    if "description" in changed:
        marked = with_marker(event.description, record.marker) if record.marker else None
        out["Description"] = marked or event.description
    return out


def page_of(body: object) -> tuple[int, list[Any]]:
    """(RecordCount, List) of one appointments page."""
    if isinstance(body, Mapping):
        total, items = body.get("RecordCount"), body.get("List")
        if isinstance(total, int) and isinstance(items, list):
            return total, items
    raise Malformed(f"leadsquared: not an appointments page: {body!r:.120}")


def spans(window: Window) -> list[tuple[date, date]]:
    """The date bounds covering the window with a day to spare, at most SPAN apart."""
    first = (as_utc(window.start) - timedelta(days=1)).date()
    last = (as_utc(window.end) + timedelta(days=1)).date()
    out = [(first, min(first + SPAN, last))]
    while out[-1][1] < last:
        out.append((out[-1][1], min(out[-1][1] + SPAN, last)))
    return out


class LeadSquared:
    """One LeadSquared account: appointment tasks of `owners`, keyed by `UserTaskId`."""

    caps = Caps(
        server_ids=True, partial_update=True, holds_cancelled=False, fields=FIELDS, absence="get"
    )
    client_headers = staticmethod(client_headers)

    def __init__(
        self,
        http: HttpClient,
        *,
        owners: Sequence[str],
        task_type: str = "Meeting",
        related_entity: int = 0,
        related_entity_id: str = "",
        notify_by_email: bool = False,
        reminder_minutes: int | None = None,
    ) -> None:
        if not owners:
            raise ValueError("leadsquared: name at least one owner whose appointments to list")
        if related_entity not in (0, 1, 5) or (related_entity and not related_entity_id):
            raise ValueError("leadsquared: related_entity is 0, or 1 or 5 with an id")
        self.http = http
        self.owners = tuple(owners)
        self.options: dict[str, Any] = {
            "RelatedEntity": related_entity,
            "RelatedEntityId": related_entity_id if related_entity else "",
            "NotifyBy": "1100" if notify_by_email else "1000",
            "TaskType": {"Name": task_type},
        }
        if reminder_minutes is not None:
            self.options["Reminder"] = reminder_minutes

    async def _request(self, method: str, path: str, *, key: str = "", **options: Any) -> Response:
        """Every call goes through the shared funnel with LeadSquared's body check."""
        return await self.http.request(
            method, path, key=key, check=functools.partial(check, key=key), **options
        )

    def project(self, event: Event) -> Event:
        """The event as LeadSquared would read it back."""
        return project(event)

    def create_payload(self, key: str, event: Event) -> dict[str, Any]:
        """The Create body: the event, its owner, syncd's marker and the route's options."""
        return {
            "Name": event.title or UNTITLED,
            "Description": with_marker(event.description, key),
            "DueDate": time_text(event.start),
            "EndDate": time_text(event.end),
            "OwnerEmailAddress": event.owner,
            **self.options,
        }

    async def list(self, window: Window) -> Listing:
        """Every appointment of the owners starting inside the window, once each."""
        records: dict[str, Record] = {}
        problems: dict[str, Problem] = {}
        for first, last in spans(window):
            async for item in self._pages(first, last):
                try:
                    record = to_record(item)
                except Malformed as exc:
                    ident = item.get("UserTaskId") if isinstance(item, Mapping) else None
                    problems[str(ident or "?")] = Problem(str(ident or "?"), str(exc))
                    continue
                if record.in_window(window):
                    records.setdefault(record.key, record)
        ordered = sorted(records.values(), key=lambda r: (as_utc(r.event.start), r.key))
        return Listing(packed(ordered), tuple(problems.values()))

    async def get(self, key: str) -> Record:
        """One task by `UserTaskId`; `Gone` when GetById answers `[]`."""
        response = await self._request("GET", GET_ONE, params={"id": key}, key=key)
        if not isinstance(response.body, list):
            raise Malformed(f"{self.http.label}: GetById did not answer an array", key=key)
        if not response.body:
            raise Gone(f"{self.http.label}: task {key} does not exist", key=key)
        return to_record(response.body[0])

    async def create(self, key: str, event: Event) -> Record:
        """Create the appointment carrying `key`; return it as read back."""
        if not event.owner:
            raise Rejected(f"{self.http.label}: the event has no owner to assign", key=key)
        if event.owner.lower() not in {owner.lower() for owner in self.owners}:
            # Listing reads only these owners' appointments: a task for anyone else could
            # never be seen again, and would be created anew on every run or `reset`.
            raise Rejected(
                f"{self.http.label}: owner {event.owner} is not among the route's owners "
                "(options.owners), whose appointments syncd lists",
                key=key,
            )
        body = self.create_payload(key, event)
        response = await self._request("POST", CREATE, json_body=body, key=key)
        message = response.body.get("Message") if isinstance(response.body, Mapping) else None
        ident = message.get("Id") if isinstance(message, Mapping) else None
        if not isinstance(ident, str) or not ident:
            raise Malformed(f"{self.http.label}: Create answered no Id", key=key)
        try:
            return await self.get(ident)
        except AdapterError:  # it exists: what was sent stands until the next listing
            return Record(ident, project(event), remote_id=ident, marker=key)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Update only the changed fields, then read the task back."""
        body = update_payload(record, event, changed & FIELDS)
        if not body:
            return await self.get(record.key)
        try:
            response = await self._request(
                "POST", UPDATE, json_body={"UserTaskId": record.key, **body}, key=record.key
            )
        except Rejected:
            await self.get(record.key)  # `Gone` when the task is no more
            raise
        message = response.body.get("Message") if isinstance(response.body, Mapping) else None
        if isinstance(message, Mapping) and message.get("AffectedRows") == 0:
            raise Gone(f"{self.http.label}: task {record.key} does not exist", key=record.key)
        updated = await self.get(record.key)
        if "EndDate" in body and updated.event.end != _instant(event.end):
            raise Rejected(f"{self.http.label}: Update kept the old EndDate", key=record.key)
        return updated

    async def delete(self, record: Record) -> None:
        """Delete the task (one id to DeleteTasks); one already gone is fine."""
        body = {"TaskIds": [record.key]}
        try:  # DeletedTasksCount 0 means already gone: fine either way
            await self._request("POST", DELETE, json_body=body, key=record.key)
        except Rejected:
            try:
                await self.get(record.key)
            except Gone:
                return
            raise

    async def _pages(self, first: date, last: date) -> AsyncIterator[Any]:
        """Every appointment the pages of one span hold, until RecordCount is reached."""
        query = {"FromDate": first.isoformat(), "ToDate": last.isoformat()}
        body, seen = {**query, "Users": list(self.owners)}, 0
        for index in range(1, MAX_PAGES + 1):
            paging = {"Paging": {"PageIndex": index, "PageSize": PAGE_SIZE}}
            response = await self._request("POST", LIST, json_body=body | paging)
            total, items = page_of(response.body)
            for item in items:
                yield item
            seen += len(items)
            if seen >= total:
                return
            if not items:
                raise Malformed(f"{self.http.label}: the listing ended at {seen} of {total}")
        raise Malformed(f"{self.http.label}: more than {MAX_PAGES} pages of appointments")
