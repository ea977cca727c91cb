"""Salesloft simulator: calendar events, users, bulk jobs and the cost-based rate limit.

Implements vendors/salesloft.md section 10, items 1-14, 18 and 19; meetings, meeting
settings, webhooks and OAuth (items 15-17) are left out. Where Salesloft documents
nothing the default is salesloft.md's guess and a field of `SalesloftSim` switches to the
other answer. Test control: the public methods, and over HTTP `GET /_sim/events`,
`GET /_sim/requests` and `POST /_sim/<method>` with the method's keyword arguments as a
JSON object (`edit`, `cancel`, `remove`, `consume`, `step`, `fail_next`, `stall_next`).
Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from syncd.simulators.serving import json_object, origin, start

Json = dict[str, Any]
DEFAULT_KEY = "sim-key"
EVENTS = "/v2/calendar/events"
JOB_TYPE = "calendar/events/upsert"
JOB_DATA_MAX = 5_000
LIMITED = {"error": "API rate limit exceeded"}  # [public code: airbyte PR #11460]
CONTROLS = ("edit", "cancel", "remove", "consume", "step", "fail_next", "stall_next")
STATUSES = ("confirmed", "tentative", "cancelled")
TRANSPARENCY = ("opaque", "transparent")
RSVP = ("needsAction", "accepted", "tentative", "declined")
TEXTS = ("title", "description", "location", "organizer")
DEEP_PAGES = ((150, 3), (250, 8), (500, 10))  # page <= bound: cost; beyond: 30 [D-RATE]
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)")


class SimError(Exception):
    """A refused request: `body` is answered as JSON with `status` and `headers`."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None):
        super().__init__(body)
        self.status, self.body, self.headers = status, body, dict(headers or {})


def invalid(errors: Mapping[str, str]) -> SimError:
    """A validation refusal: 422 `{"errors": {field: [message]}}` (an assumption)."""
    return SimError(422, {"errors": {name: [text] for name, text in errors.items()}})


@dataclass
class User:
    id: int
    guid: str
    email: str
    name: str = ""


@dataclass
class CalEvent:
    """One stored event: its key, its fields in `values`, and its two clocks."""

    calendar_id: str
    id: str
    i_cal_uid: str
    user_guid: str
    created: datetime
    updated: datetime  # the server's write time: what `updated_at` shows
    provider: datetime | None = None  # the newest `updated_at` sent: what the guard compares
    values: Json = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)


@dataclass
class Job:
    id: int
    type: str
    name: str | None
    created: datetime
    state: str = "open"
    entries: list[Json] = field(default_factory=list)  # id, status, error, record, resource
    processed: int = 0
    errors: int = 0
    wait: int = 0  # ticks left before it starts
    stamps: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Team:
    name: str
    tenant_id: int
    users: dict[str, User] = field(default_factory=dict)  # guid -> user
    events: dict[tuple[str, str, str], CalEvent] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    queue: collections.deque[Job] = field(default_factory=collections.deque)
    spent: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    slot: int = -1  # the fixed window `spent` belongs to


@dataclass
class SalesloftSim:
    """The simulated API: teams by token, quirk and fault switches, a request log."""

    teams: dict[str, Team] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (team, user guid)
    budget: int = 600  # cost per `window` seconds, per team [D-RATE]
    window: float = 60.0
    sliding: bool = False  # else fixed windows aligned on multiples of `window`
    costs: dict[str, int] = field(default_factory=dict)  # "GET /v2/bulk_jobs/{id}" -> cost
    retry_after: int | None = None  # a Retry-After on 429 (none documented)
    refused: int = 0  # calls answered 429 by the budget
    clock: Callable[[], float] = time.monotonic
    page_size: int = 100  # the longest page served, whatever `per_page` asks
    clamp_per_page: bool = False  # else per_page outside 1..100 is 422
    strict_sort: bool = True  # else an unknown sort_by is ignored
    unknown_calendar_status: int = 422  # a calendar_id of nobody in the team (or 404)
    stale_on_equal: bool = False  # an equal updated_at is stale too
    soft_delete_attendees: bool = True  # removed attendees stay, with deleted_at
    naive_created_at: bool = True  # the seed's zone-less created_at
    bulk_tick: float = 0.02  # seconds between execution ticks; 0: only `step()` advances
    bulk_per_tick: int = 100
    bulk_start_ticks: int = 0  # ticks a ready job waits before it starts
    requests: list[Json] = field(default_factory=list)
    writes: int = 0  # POST/PUT requests received on /v2
    _faults: list[tuple[int | None, Mapping[str, str], Any, float]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _ticker: asyncio.Task[None] | None = None

    def add_team(self, name: str, token: str, users: Iterable[User], tenant_id: int = 1) -> Team:
        """A team reached with `token`, acting as its first user."""
        team = self.teams[name] = Team(name, tenant_id, {u.guid: u for u in users})
        self.tokens[token] = (name, next(iter(team.users)))
        return team

    def team(self, name: str | None = None) -> Team:
        return self.teams[name] if name else next(iter(self.teams.values()))

    def fail_next(
        self, status: int, headers: Mapping[str, str] | None = None, times: int = 1,
        *, body: Any = None,
    ) -> None:  # fmt: skip
        """Answer the next `times` /v2 calls with `status` (429: the rate-limit body)."""
        self._faults += [(status, headers or {}, body, 0.0)] * times

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` /v2 calls for `seconds` (released at shutdown)."""
        self._faults += [(None, {}, None, seconds)] * times

    def consume(self, cost: int, team: str | None = None) -> int:
        """Another integration of the team spends `cost`; the budget left."""
        spent = self._spent(self.team(team))
        spent.append((self.clock(), cost))
        return self.budget - sum(c for _, c in spent)

    def event(self, event_id: str, team: str | None = None) -> CalEvent:
        """The stored event with this `id` (ids are unique in the tests), or 404."""
        found = [e for e in self.team(team).events.values() if e.id == event_id]
        if not found:
            raise SimError(404, {"error": f"no calendar event {event_id}"})
        return found[0]

    def edit(self, event_id: str, changes: Json, team: str | None = None) -> Json:
        """A vendor-side edit, upsert fields by name, without the stale guard."""
        ev = self.event(event_id, team)
        self._apply(ev, self._checked(changes, partial=True), changes.get("updated_at"))
        return self.render(ev)

    def cancel(self, event_id: str, team: str | None = None) -> Json:
        """A vendor-side cancellation."""
        stamp = _text(self._stamp())
        return self.edit(event_id, {"status": "cancelled", "canceled_at": stamp}, team)

    def remove(self, event_id: str, team: str | None = None) -> None:
        """The event vanishes (the API cannot do this: a disconnected calendar can)."""
        ev = self.event(event_id, team)
        del self.team(team).events[(ev.calendar_id, ev.id, ev.i_cal_uid)]

    def events(self, team: str | None = None) -> list[Json]:
        return [self.render(e) for e in sorted(self.team(team).events.values(), key=_order)]

    def render(self, ev: CalEvent) -> Json:
        """The API form of an event (seed response shape)."""
        v, team = ev.values, self._team_of(ev)
        created = ev.created.strftime("%Y-%m-%dT%H:%M:%S") if self.naive_created_at else None
        busy = v["status"] != "cancelled" and v["transparency"] != "transparent"
        return {
            **{name: v[name] for name in ("all_day", "recurring", "recurrence", *TEXTS)},
            **{name: v[name] for name in ("status", "transparency")},
            "attendees": [dict(a) for a in v["attendees"]],
            "body_html": None,
            "busy": busy,
            "calendar_id": ev.calendar_id,
            "canceled_at": _text(v["canceled_at"], micro=True),
            "conference_data": {},
            "created_at": created or _text(ev.created, micro=True),
            "creator": None,
            "start_time": _text(v["start_time"]),
            "end_time": _text(v["end_time"]),
            "extended_properties": {"changed_attributes": list(ev.changed)},
            "html_link": None,
            "i_cal_uid": ev.i_cal_uid,
            "id": ev.id,
            "provider": "external",
            "tenant_id": team.tenant_id if team else None,
            "updated_at": _text(ev.updated, micro=True),
            "user_guid": ev.user_guid,
        }

    def step(self) -> None:
        """One execution tick: each team's first ready job runs `bulk_per_tick` records."""
        for team in self.teams.values():
            if not team.queue:
                continue
            job = team.queue[0]
            if job.wait > 0:
                job.wait -= 1
                continue
            job.stamps.setdefault("started_at", self._stamp())
            for entry in job.entries[job.processed : job.processed + self.bulk_per_tick]:
                self._run(team, job, entry)
            if job.processed >= len(job.entries):
                job.state, job.stamps["finished_at"] = "done", self._stamp()
                team.queue.popleft()

    def app(self) -> web.Application:
        """The aiohttp application serving this simulator (`app[SIM]` is `self`)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._gate], client_max_size=64 * 2**20)
        app[SIM] = self
        routes = [
            ("POST", EVENTS + "/upsert", self._upsert_call),
            ("GET", EVENTS, self._list_events),
            ("GET", "/v2/me.json", self._me),
            ("GET", "/v2/users.json", self._users),
            ("GET", "/v2/users", self._users),
            ("GET", "/v2/users/{id}.json", self._user),
            ("POST", "/v2/bulk_jobs", self._job_create),
            ("GET", "/v2/bulk_jobs", self._job_list),
            ("GET", "/v2/bulk_jobs/{id}", self._job_get),
            ("PUT", "/v2/bulk_jobs/{id}", self._job_update),
            ("POST", "/v2/bulk_jobs/{id}/job_data", self._job_data_add),
            ("GET", "/v2/bulk_jobs/{id}/job_data", self._job_data),
            ("GET", "/v2/bulk_jobs/{id}/results", self._job_results),
            ("GET", "/_sim/events", self._sim_events),
            ("GET", "/_sim/requests", self._sim_requests),
            ("POST", "/_sim/{method}", self._sim_call),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # -- calendar events -------------------------------------------------------------------

    def upsert(self, team: Team, body: object) -> tuple[Json, str]:
        """The upsert (single or bulk record): the event as stored, and the upsert type."""
        if not isinstance(body, dict):
            raise invalid({"data": "must be an object"})
        values = self._checked(body, partial=False)
        calendar, guid = self._calendar(team, body.get("calendar_id"))
        by_id = body.get("upsert_key") == ["id"]
        ev = self._find(team, guid, body["id"]) if by_id else None
        key = (calendar, body["id"], body["i_cal_uid"])
        ev = ev or team.events.get(key)
        if ev is None:
            now = self._stamp()
            ev = team.events[key] = CalEvent(
                calendar, body["id"], body["i_cal_uid"], guid, now, now
            )
            ev.values = _blank()
            self._apply(ev, values, body.get("updated_at"))
            return self.render(ev), "create"
        if self._stale(ev, body.get("updated_at")):
            return self.render(ev), "update"
        if by_id and ev.i_cal_uid != body["i_cal_uid"]:  # the id-only key follows a new UID
            team.events[key] = team.events.pop((ev.calendar_id, ev.id, ev.i_cal_uid))
            ev.i_cal_uid = body["i_cal_uid"]
        self._apply(ev, values, body.get("updated_at"))
        return self.render(ev), "update"

    async def _upsert_call(self, request: web.Request) -> web.Response:
        data, kind = self.upsert(request[TEAM], request[BODY])
        return _reply({"data": data, "upsert_type": kind}, 201)

    async def _list_events(self, request: web.Request) -> web.Response:
        team, q = request[TEAM], request.query
        if q.get("sort_by", "start_time") != "start_time" and self.strict_sort:
            raise invalid({"sort_by": "must be start_time"})
        direction = q.get("sort_direction", "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise invalid({"sort_direction": "must be ASC or DESC"})
        low, high = (_time(q[n], n) if n in q else None for n in ("start_time", "end_time"))
        rows = [
            e
            for e in team.events.values()
            if (low is None or e.values["end_time"] >= low)
            and (high is None or e.values["start_time"] < high)
            and q.get("calendar_id", e.calendar_id) == e.calendar_id
            and self._guest(team, e, q.get("user_guid"))
        ]
        rows.sort(key=_order, reverse=direction == "DESC")
        return self._paged(rows, q, {"sort_by": "start_time"}, self.render)

    def _checked(self, body: Json, *, partial: bool) -> Json:
        """Validated upsert fields as stored values; 422 with every problem at once."""
        problems: dict[str, str] = {}
        values: Json = {}
        required = () if partial else ("calendar_id", "id", "i_cal_uid")
        for name in required:
            if not isinstance(body.get(name), str) or not body[name]:
                problems[name] = "is required"
        for name in ("start_time", "end_time", "canceled_at", "updated_at"):
            if name not in body:
                if not partial and name in ("start_time", "end_time"):
                    problems[name] = "is required"
                continue
            try:
                values[name] = _time(body[name], name, nullable=name == "canceled_at")
            except SimError:
                problems[name] = "must be an ISO 8601 date-time with an offset"
        for name, check in _CHECKS.items():
            if name in body:
                if check(body[name]):
                    values[name] = body[name]
                else:
                    problems[name] = "has an invalid value"
        if isinstance(values.get("attendees"), list):
            values["attendees"] = [_attendee(a) for a in values["attendees"]]
        if problems:
            raise invalid(problems)
        values.pop("updated_at", None)
        return values

    def _apply(self, ev: CalEvent, values: Json, stamp: object) -> None:
        """Patch the named values; bump the write time on a real change."""
        before = {n: _live(v) if n == "attendees" else v for n, v in ev.values.items()}
        for name, value in values.items():
            if name == "attendees":
                value = self._merge(ev.values["attendees"], value)
            ev.values[name] = value
        after = {n: _live(v) if n == "attendees" else v for n, v in ev.values.items()}
        ev.changed = sorted(n for n in after if after[n] != before.get(n))
        if isinstance(stamp, str):
            ev.provider = _time(stamp, "updated_at")
        if ev.changed:
            ev.updated = self._stamp()

    def _merge(self, old: list[Json], new: list[Json]) -> list[Json]:
        """Attendees replaced as a list; removed ones kept with `deleted_at` (assumption)."""
        before = {a["email"].lower(): a for a in old}
        out = []
        for person in new:
            prev = before.pop(person["email"].lower(), None)
            was = prev["status"] if prev and not prev["deleted_at"] else "needsAction"
            out.append({**person, "deleted_at": None, "status_changed": person["status"] != was})
        if self.soft_delete_attendees:
            gone = _text(self._stamp(), micro=True)
            out += [{**a, "deleted_at": a["deleted_at"] or gone} for a in before.values()]
        return out

    def _stale(self, ev: CalEvent, stamp: object) -> bool:
        if not isinstance(stamp, str) or ev.provider is None:
            return False
        sent = _time(stamp, "updated_at")
        return sent < ev.provider or (self.stale_on_equal and sent == ev.provider)

    def _calendar(self, team: Team, calendar_id: object) -> tuple[str, str]:
        guid = str(calendar_id).removeprefix("external_")
        if calendar_id != f"external_{guid}" or guid not in team.users:
            body = {"errors": {"calendar_id": ["is not an external calendar of this team"]}}
            raise SimError(self.unknown_calendar_status, body)
        return str(calendar_id), guid

    def _find(self, team: Team, guid: str, event_id: str) -> CalEvent | None:
        return next(
            (e for e in team.events.values() if (e.user_guid, e.id) == (guid, event_id)), None
        )

    def _guest(self, team: Team, ev: CalEvent, guid: str | None) -> bool:
        """The user's own calendar, or an event the user is a guest of."""
        if guid is None or ev.user_guid == guid:
            return True
        user = team.users.get(guid)
        return user is not None and user.email.lower() in _live(ev.values["attendees"])

    def _team_of(self, ev: CalEvent) -> Team | None:
        return next((t for t in self.teams.values() if ev.user_guid in t.users), None)

    # -- users -----------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return _reply({"data": _user(request[USER], request[TEAM])})

    async def _users(self, request: web.Request) -> web.Response:
        team, q = request[TEAM], request.query
        guids = set(q.getall("guid", []) + q.getall("guid[]", []))
        search = q.get("search", "").lower()
        rows = [
            _user(u, team)
            for u in team.users.values()
            if (not guids or u.guid in guids) and search in f"{u.email} {u.name}".lower()
        ]
        return self._paged(rows, q, {"sort_by": "id"}, dict)

    async def _user(self, request: web.Request) -> web.Response:
        team = request[TEAM]
        for user in team.users.values():
            if str(user.id) == request.match_info["id"]:
                return _reply({"data": _user(user, team)})
        raise SimError(404, {"error": "Not Found"})

    # -- bulk jobs -------------------------------------------------------------------------

    async def _job_create(self, request: web.Request) -> web.Response:
        body = request[BODY]
        if body.get("type") != JOB_TYPE:
            raise invalid({"type": f"must be a known bulk job type ({JOB_TYPE})"})
        job = Job(next(self._ids), JOB_TYPE, body.get("name"), self._stamp())
        request[TEAM].jobs[job.id] = job
        return _reply({"data": self._job_json(job)})

    async def _job_list(self, request: web.Request) -> web.Response:
        q = request.query
        states = {s for v in q.getall("state", []) + q.getall("state[]", []) for s in v.split(",")}
        jobs = [j for j in request[TEAM].jobs.values() if not states or j.state in states]
        return self._cursor([self._job_json(j) for j in jobs], q)

    async def _job_get(self, request: web.Request) -> web.Response:
        return _reply({"data": self._job_json(self._job(request))})

    async def _job_update(self, request: web.Request) -> web.Response:
        job, body = self._job(request), request[BODY]
        if job.state != "open":
            raise invalid({"state": "the job is no longer open"})
        job.name = body.get("name", job.name)
        if body.get("ready_to_execute") is True:
            job.state, job.wait = "executing", self.bulk_start_ticks
            job.stamps["marked_ready_at"] = self._stamp()
            request[TEAM].queue.append(job)
        return _reply({"data": self._job_json(job)})

    async def _job_data_add(self, request: web.Request) -> web.Response:
        job, data = self._job(request), request[BODY].get("data")
        if job.state != "open":
            raise invalid({"state": "job data can only be added while the job is open"})
        if not isinstance(data, list) or len(data) > JOB_DATA_MAX:
            raise invalid({"data": f"must be an array of at most {JOB_DATA_MAX} records"})
        for record in data:
            entry = {"id": next(self._ids), "status": "pending", "error": None, "resource": None}
            job.entries.append(entry | {"record": record})
        return _reply({"data": {"records": len(data)}})

    async def _job_data(self, request: web.Request) -> web.Response:
        rows = [{k: e[k] for k in ("id", "status", "record")} for e in self._job(request).entries]
        return self._cursor(rows, request.query)

    async def _job_results(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return self._cursor(job.entries if job.state == "done" else [], request.query)

    def _run(self, team: Team, job: Job, entry: Json) -> None:
        try:
            entry["resource"] = self.upsert(team, entry["record"])[0]
            entry["status"] = "success"
        except SimError as exc:
            entry["status"], entry["error"] = "error", json.dumps(exc.body)
            job.errors += 1
        job.processed += 1

    def _job(self, request: web.Request) -> Job:
        job = request[TEAM].jobs.get(
            int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
        )
        if job is None:
            raise SimError(404, {"error": "Not Found"})
        return job

    def _job_json(self, job: Job) -> Json:
        stamps = {
            name: _text(job.stamps.get(name), micro=True)
            for name in ("marked_ready_at", "started_at", "finished_at")
        }
        return {
            "id": job.id,
            "name": job.name,
            "type": job.type,
            "state": job.state,
            "ready_to_execute": job.state != "open",
            "scopes": [],
            "total": len(job.entries) if job.state != "open" else 0,
            "processed": job.processed,
            "errors": job.errors,
            "created_at": _text(job.created, micro=True),
            "updated_at": _text(max([job.created, *job.stamps.values()]), micro=True),
            **stamps,
        }

    # -- envelopes -------------------------------------------------------------------------

    def _per_page(self, q: Mapping[str, str], default: int) -> int:
        text = q.get("per_page", str(default))
        number = int(text) if text.isdigit() else 0
        if not 1 <= number <= 100:
            if not self.clamp_per_page:
                raise invalid({"per_page": "must be from 1 to 100"})
            number = min(max(number, 1), 100)
        return min(number, self.page_size)

    def _paged(
        self, rows: list[Any], q: Mapping[str, str], sorting: Json, render: Callable[[Any], Json]
    ) -> web.Response:
        """A numbered page: `metadata.paging.next_page` is null on the last one."""
        size, text = self._per_page(q, 25), q.get("page", "1")
        page = int(text) if text.isdigit() and int(text) > 0 else 1
        data = [render(row) for row in rows[(page - 1) * size : page * size]]
        paging: Json = {
            "per_page": size,
            "current_page": page,
            "next_page": page + 1 if len(rows) > page * size else None,
            "prev_page": page - 1 if page > 1 else None,
        }
        if q.get("include_paging_counts") == "true":
            paging |= {"total_pages": -(-len(rows) // size), "total_count": len(rows)}
        sorting = sorting | {"sort_direction": q.get("sort_direction", "DESC").upper()}
        return _reply({"metadata": {"paging": paging, "sorting": sorting}, "data": data})

    def _cursor(self, rows: list[Json], q: Mapping[str, str]) -> web.Response:
        """A cursor page: ids after `id[gt]`, optionally of one `status`."""
        size, after = self._per_page(q, 25), q.get("id[gt]", "0")
        low = int(after) if after.isdigit() else 0
        status = q.get("status")
        data = [r for r in rows if r["id"] > low and status in (None, r.get("status"))][:size]
        return _reply({"metadata": {"paging": {"per_page": size}}, "data": data})

    # -- mechanics -------------------------------------------------------------------------

    def _stamp(self) -> datetime:
        """Now, strictly after the previous stamp."""
        self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        return self._last

    def _spent(self, team: Team) -> collections.deque[tuple[float, int]]:
        """The team's spending in the current window (fixed or sliding)."""
        now = self.clock()
        if self.sliding:
            while team.spent and team.spent[0][0] <= now - self.window:
                team.spent.popleft()
        elif (slot := int(now // self.window)) != team.slot:
            team.slot, team.spent = slot, collections.deque()
        return team.spent

    def _cost(self, request: web.Request) -> int:
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource else request.path
        page = request.query.get("page", "1")
        if page.isdigit() and int(page) > 100:
            return next((c for bound, c in DEEP_PAGES if int(page) <= bound), 30)
        return self.costs.get(f"{request.method} {canonical}", 1)

    def _charge(self, request: web.Request, team: Team) -> None:
        """Spend the call's cost from the team's budget, or refuse it with 429."""
        cost, spent = self._cost(request), self._spent(team)
        left = self.budget - sum(c for _, c in spent)
        if cost > left:
            self.refused += 1
            request[RATE] |= {"x-ratelimit-remaining-minute": str(max(left, 0))}
            extra = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
            raise SimError(429, LIMITED, extra)
        spent.append((self.clock(), cost))
        request[RATE] |= {"x-ratelimit-remaining-minute": str(left - cost)}

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware: admit /v2 calls, read bodies, render `SimError`, add headers."""
        request[RATE] = {}
        try:
            if request.match_info.http_exception is not None:
                raise SimError(404, {"error": "Not Found"})
            if request.path.startswith("/v2/"):
                await self._admit(request)
            else:
                request[BODY] = await _body(request)
            response = await handler(request)
        except SimError as exc:
            response = web.json_response(exc.body, status=exc.status, headers=exc.headers)
        response.headers.update(request[RATE])
        return response

    async def _admit(self, request: web.Request) -> None:
        """Log, count writes, apply faults, authenticate, rate-limit, read the body."""
        self.writes += request.method in ("POST", "PUT")
        entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
        self.requests.append(entry | {"body": None})
        who = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        request[RATE]["x-ratelimit-endpoint-cost"] = str(self._cost(request))
        status, headers, body, stall = self._faults.pop(0) if self._faults else (None, {}, None, 0)
        if stall:
            with contextlib.suppress(TimeoutError):  # a shutdown releases stalled requests
                await asyncio.wait_for(self._release.wait(), stall)
        if status is not None:
            default = LIMITED if status == 429 else {"error": "injected fault"}
            raise SimError(status, default if body is None else body, headers)
        if who is None:
            raise SimError(401, {"error": "Unauthorized"})
        team = request[TEAM] = self.teams[who[0]]
        request[USER] = team.users[who[1]]
        self._charge(request, team)
        request[BODY] = self.requests[-1]["body"] = await _body(request)

    async def _on_startup(self, app: web.Application) -> None:
        if self.bulk_tick > 0:
            self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.bulk_tick)
            self.step()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _sim_events(self, request: web.Request) -> web.Response:
        return _reply({"events": self.events(request.query.get("team"))})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return _reply({"requests": self.requests, "writes": self.writes, "refused": self.refused})

    async def _sim_call(self, request: web.Request) -> web.Response:
        if (method := request.match_info["method"]) not in CONTROLS:
            raise SimError(404, {"error": f"no control {method!r}; try one of {CONTROLS}"})
        try:
            return _reply({"result": getattr(self, method)(**request[BODY])})
        except TypeError as exc:
            raise SimError(400, {"error": str(exc)}) from None


BODY = web.RequestKey("salesloft_body", dict)
RATE = web.RequestKey("salesloft_rate", dict)
TEAM = web.RequestKey("salesloft_team", Team)
USER = web.RequestKey("salesloft_user", User)
SIM = web.AppKey("salesloft_sim", SalesloftSim)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_person(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("email"), str)
        and _is_text(value.get("name"))
        and value.get("status", "needsAction") in RSVP
        and isinstance(value.get("organizer", False), bool)
    )


_CHECKS: dict[str, Callable[[object], bool]] = {
    **dict.fromkeys(TEXTS, _is_text),
    "all_day": lambda v: isinstance(v, bool),
    "recurring": lambda v: isinstance(v, bool),
    "recurrence": lambda v: v is None or (isinstance(v, list) and all(map(_is_text, v))),
    "status": lambda v: v is None or v in STATUSES,
    "transparency": lambda v: v is None or v in TRANSPARENCY,
    "attendees": lambda v: isinstance(v, list) and all(map(_is_person, v)),
}


def _blank() -> Json:
    return dict.fromkeys((*TEXTS, "status", "transparency", "recurrence", "canceled_at")) | {
        "all_day": False,
        "recurring": False,
        "attendees": [],
    }


def _attendee(value: Json) -> Json:
    keep = {"name": value.get("name"), "email": value["email"]}
    return keep | {
        "organizer": value.get("organizer", False),
        "status": value.get("status", "needsAction"),
    }


def _live(attendees: list[Json]) -> dict[str, tuple[Any, ...]]:
    """Attendees that are not deleted, by lowercase email: what a change compares."""
    return {
        a["email"].lower(): (a["name"], a["status"], a["organizer"])
        for a in attendees
        if not a.get("deleted_at")
    }


def _user(user: User, team: Team) -> Json:
    return {"id": user.id, "guid": user.guid, "email": user.email, "name": user.name,
            "active": True, "team": {"id": team.tenant_id}}  # fmt: skip


def _time(value: object, name: str, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise invalid({name: "must be an ISO 8601 date-time with an offset"})
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _text(moment: datetime | None, *, micro: bool = False) -> str | None:
    """UTC `Z` form; `micro`: with six fractional digits (server timestamps)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if micro else "") + "Z")


def _order(ev: CalEvent) -> tuple[datetime, str]:
    return ev.values["start_time"], ev.id


def _reply(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _body(request: web.Request) -> Json:
    if request.method not in ("POST", "PUT"):
        return {}
    try:
        return json_object(await request.text())
    except ValueError as exc:
        raise SimError(400, {"error": str(exc)}) from None


def default() -> SalesloftSim:
    """One team (tenant 1), token `sim-key` acting as rep@example.com, guid `u-1`."""
    sim = SalesloftSim()
    sim.add_team("demo", DEFAULT_KEY, [User(1, "u-1", "rep@example.com", "Rep Example")])
    return sim


async def serve(
    host: str = "127.0.0.1", port: int = 0, *, sim: SalesloftSim | None = None
) -> web.AppRunner:
    """Serve `sim` (else `default()`) until `runner.cleanup()`; `runner.app[SIM]` is it."""
    return await start((sim or default()).app(), host, port)


def base_url(runner: web.AppRunner) -> str:
    """`http://host:port` of a runner started by `serve`."""
    return origin(runner)
