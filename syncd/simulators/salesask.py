"""Sales Ask simulator: the scheduled-tasks API on loopback, its unknowns as switches.

Implements vendors/salesask.md section 9 except the webhook emitter and recordings.
Where the vendor documents nothing, the default is salesask.md's guess and a field of
`SalesAskSim` switches to the other answer. Test control: the public methods, and
over HTTP `GET /_sim/tasks`, `GET /_sim/requests`, `POST /_sim/tasks/{event_id}/edit`,
`DELETE /_sim/tasks/{event_id}` and `POST /_sim/<method>` with the method's keyword
arguments as a JSON object (`set_rep`, `set_status`, `touch`, `fail_next`, ...).
Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from aiolimiter import AsyncLimiter

from syncd.simulators.serving import json_object, origin, start

Json = dict[str, Any]
DEFAULT_KEY = "sim-key"
DEFAULT_REPS: Mapping[str, bool] = {"rep@example.com": True, "gone@example.com": False}
CONTROLS = ("edit", "set_status", "touch", "remove", "set_rep", "fail_next", "stall_next")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
_DAY = re.compile(r"\d{4}-\d\d-\d\d")
_CUSTOMER = {"id": "customerId", "name": "customerName", "email": "customerEmail"}


class SimError(Exception):
    """A refused request, answered as `{"error": message}` (401: `auth_error`)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, dict(headers or {})


@dataclass
class Task:
    """One stored scheduled task, in internal form (`SalesAskSim.render` gives the API's)."""

    id: str
    event_id: str
    rep: str
    start: datetime
    created: datetime
    updated: datetime
    end: datetime | None = None
    title: str | None = None
    customer: dict[str, str] = field(default_factory=dict)
    status: str = "scheduled"


@dataclass
class Org:
    """One organisation: its reps (email -> active) and its tasks by `event_id`."""

    name: str
    reps: dict[str, bool] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)


@dataclass
class SalesAskSim:
    """The simulated API: organisations by API key, quirk and fault switches, a log."""

    orgs: dict[str, Org] = field(default_factory=dict)  # API key -> organisation
    accept_offsets: bool = False  # else a time not ending in Z is a 400
    rep_error_status: int = 400  # unknown or inactive user_email (or 404 / 422)
    create_status: int = 201  # POST that created; 200 makes it look like an update
    clear_omitted: bool = False  # POST over an existing task clears omitted optionals
    delete_status: int = 200  # 200 with a small JSON body, or 204
    array_key: str = "appointments"
    page_size: int = 100  # the longest page served, whatever `limit` asks
    firestore_timestamps: bool = False  # dates as {_seconds, _nanoseconds}
    auth_error: Json = field(default_factory=lambda: {"error": "Invalid or missing API key"})
    rate_limit: tuple[float, float] | None = None  # (requests, per seconds) per key
    delay: float = 0.0  # seconds every /v1 request waits before it is answered
    requests: list[Json] = field(default_factory=list)  # /v1: method, path, query, body
    writes: int = 0  # POST/PUT/DELETE requests received on /v1
    _faults: list[tuple[int | None, Mapping[str, str], float]] = field(default_factory=list)
    _limiters: dict[str, AsyncLimiter] = field(default_factory=dict)
    _last: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def add_org(self, name: str, api_key: str, reps: Mapping[str, bool]) -> Org:
        """Add an organisation reached with `api_key`; `reps` maps email -> active."""
        org = self.orgs[api_key] = Org(name, {e.lower(): a for e, a in reps.items()})
        return org

    def org(self, name: str | None = None) -> Org:
        """The organisation called `name`, or the first one."""
        found = [o for o in self.orgs.values() if name in (None, o.name)]
        if not found:
            raise SimError(404, f"no organisation {name!r}")
        return found[0]

    def set_rep(self, email: str, active: bool = True, org: str | None = None) -> None:
        """Add a rep, or (de)activate one."""
        self.org(org).reps[email.lower()] = active

    def fail_next(
        self, status: int, headers: Mapping[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` /v1 requests with `status` (and `headers`)."""
        self._faults += [(status, headers or {}, 0.0)] * times

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` /v1 requests for `seconds` (a slow answer, a timeout)."""
        self._faults += [(None, {}, seconds)] * times

    def task(self, event_id: str, org: str | None = None) -> Task:
        """The stored task, or SimError 404."""
        return _find(self.org(org), event_id)

    def edit(self, event_id: str, changes: Json, org: str | None = None) -> Json:
        """A vendor-side edit: PUT fields plus `status`; bumps updatedAt on real change."""
        task, status = self.task(event_id, org), changes.get("status")
        extra = {"status": status} if isinstance(status, str) else {}
        self._apply(task, self._changes(self.org(org), changes) | extra)
        return self.render(task)

    def set_status(self, event_id: str, status: str, org: str | None = None) -> Json:
        """Change a task's status from the vendor side."""
        return self.edit(event_id, {"status": status}, org)

    def touch(self, event_id: str, org: str | None = None) -> Json:
        """Advance a task's updatedAt and nothing else."""
        task = self.task(event_id, org)
        task.updated = self._stamp()
        return self.render(task)

    def remove(self, event_id: str, org: str | None = None) -> None:
        """A vendor-side delete."""
        del self.org(org).tasks[self.task(event_id, org).event_id]

    def snapshot(self) -> list[Json]:
        """Every task of every organisation with its org and rep (the API hides the rep)."""
        orgs = {id(o): o for o in self.orgs.values()}.values()
        return [
            {"org": o.name, "user_email": t.rep, **self.render(t)}
            for o in orgs
            for t in sorted(o.tasks.values(), key=_order)
        ]

    def render(self, task: Task) -> Json:
        """The API form of a task: camelCase, snake `event_id`, never the rep."""
        out: Json = {"id": task.id, "event_id": task.event_id, "startTime": self._ts(task.start)}
        if task.end is not None:
            out["endTime"] = self._ts(task.end)
        if task.title is not None:
            out["title"] = task.title
        out |= {_CUSTOMER[k]: v for k, v in task.customer.items()}
        scheduled = self._ts(task.start + timedelta(minutes=15))  # as in the seed; unexplained
        return out | {
            "scheduledAt": scheduled,
            "status": task.status,
            "metadata": {},
            "createdAt": self._ts(task.created),
            "updatedAt": self._ts(task.updated),
        }

    def app(self) -> web.Application:
        """The aiohttp application serving this simulator (`app[SIM]` is `self`)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._gate])
        app[SIM] = self
        base, one = "/v1/scheduled-tasks", "/{event_id:[^/]+}"  # any percent-encoded segment
        app.router.add_post(base, self._upsert)
        app.router.add_get(base, self._list)
        app.router.add_get(base + one, self._get)
        app.router.add_put(base + one, self._put)
        app.router.add_delete(base + one, self._delete)
        app.router.add_get("/_sim/tasks", self._sim_tasks)
        app.router.add_get("/_sim/requests", self._sim_requests)
        app.router.add_post("/_sim/tasks" + one + "/edit", self._sim_edit)
        app.router.add_delete("/_sim/tasks" + one, self._sim_delete)
        app.router.add_post("/_sim/{method}", self._sim_call)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # -- the API ---------------------------------------------------------------------------

    async def _upsert(self, request: web.Request) -> web.Response:
        org, body = self._org_of(request), request[BODY]
        for name in ("event_id", "user_email", "start_time"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise SimError(400, f"{name} is required and must be a string")
        changes, task = self._changes(org, body), org.tasks.get(body["event_id"])
        if task is None:  # a new task (also after a delete): a new id
            now, ident = self._stamp(), f"task_{secrets.token_hex(8)}"
            task = org.tasks[body["event_id"]] = Task(
                ident, body["event_id"], created=now, updated=now, **changes
            )
            return _reply(self.create_status, {"appointment": self.render(task)})
        cleared: Json = {"end": None, "title": None, "customer": {}} if self.clear_omitted else {}
        self._apply(task, cleared | changes, merge=False)
        return _reply(200, {"appointment": self.render(task)})

    async def _put(self, request: web.Request) -> web.Response:
        org = self._org_of(request)
        task = _find(org, request.match_info["event_id"])
        self._apply(task, self._changes(org, request[BODY]))
        return _reply(200, {"appointment": self.render(task)})

    async def _get(self, request: web.Request) -> web.Response:
        task = _find(self._org_of(request), request.match_info["event_id"])
        return _reply(200, {"appointment": self.render(task)})

    async def _delete(self, request: web.Request) -> web.Response:
        org, event_id = self._org_of(request), request.match_info["event_id"]
        del org.tasks[_find(org, event_id).event_id]  # hard delete
        if self.delete_status == 204:
            return web.Response(status=204)
        return _reply(self.delete_status, {"success": True, "event_id": event_id})

    async def _list(self, request: web.Request) -> web.Response:
        query, org = request.query, self._org_of(request)
        limit = _limit(query.get("limit", "25"))
        low, high = _bound(query.get("fromDate"), 0), _bound(query.get("toDate"), 1)
        rep = query.get("user_email", "").lower()
        rows = sorted(
            (t for t in org.tasks.values() if low <= t.start < high and rep in ("", t.rep)),
            key=_order,
        )
        if "startAfter" in query:
            after = _uncursor(query["startAfter"])
            rows = [t for t in rows if _order(t) > after]
        page = rows[: min(limit, self.page_size)]
        cursor = _cursor(page[-1]) if len(rows) > len(page) else None
        return _reply(200, {self.array_key: [self.render(t) for t in page], "nextCursor": cursor})

    # -- mechanics -------------------------------------------------------------------------

    def _changes(self, org: Org, body: Json) -> Json:
        """Validated changes from a POST/PUT body, named as `Task` attributes."""
        out: Json = {}
        if "user_email" in body:
            out["rep"] = self._rep(org, body["user_email"])
        if "start_time" in body:
            out["start"] = self._time(body["start_time"], "start_time")
        if "end_time" in body:
            end = body["end_time"]
            out["end"] = None if end is None else self._time(end, "end_time")
        if "title" in body:
            if body["title"] is not None and not isinstance(body["title"], str):
                raise SimError(400, "title must be a string")
            out["title"] = body["title"]
        if "customer" in body:
            out["customer"] = _customer(body["customer"])
        return out

    def _apply(self, task: Task, changes: Json, merge: bool = True) -> None:
        before = replace(task, customer=dict(task.customer))
        for name, value in changes.items():
            merged = {**task.customer, **value} if name == "customer" and merge else value
            setattr(task, name, merged)  # PUT merges the nested customer, POST replaces it
        if task != before:
            task.updated = self._stamp()

    def _rep(self, org: Org, email: object) -> str:
        if not isinstance(email, str) or not org.reps.get(email.lower()):
            raise SimError(self.rep_error_status, f"user_email {email} is not an active member")
        return email.lower()

    def _time(self, value: object, name: str) -> datetime:
        match = _TIME.fullmatch(value) if isinstance(value, str) else None
        if match is None or (match[1] != "Z" and not self.accept_offsets):
            raise SimError(400, f"{name} must be a UTC date-time like 2026-03-01T14:00:00.000Z")
        moment = datetime.fromisoformat(match[0]).astimezone(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def _ts(self, moment: datetime) -> Any:
        if self.firestore_timestamps:
            return {"_seconds": int(moment.timestamp()), "_nanoseconds": moment.microsecond * 1000}
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def _stamp(self) -> datetime:
        """Now, at millisecond precision, strictly after the previous stamp."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last

    def _org_of(self, request: web.Request) -> Org:
        org = self.orgs.get(request.headers.get("x-api-key", ""))
        if org is None:
            raise SimError(401, "unauthorized")
        return org

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware: admit /v1 requests, read bodies, render `SimError`."""
        try:
            if request.path.startswith("/v1/"):
                await self._admit(request)
            else:
                request[BODY] = await _body(request) if request.method == "POST" else {}
            return await handler(request)
        except SimError as exc:
            body = self.auth_error if exc.status == 401 else {"error": str(exc)}
            return web.json_response(body, status=exc.status, headers=exc.headers)

    async def _admit(self, request: web.Request) -> None:
        """Log, count writes, apply faults, authenticate and rate-limit one request."""
        self.writes += request.method in ("POST", "PUT", "DELETE")
        body = request[BODY] = await _body(request) if request.method in ("POST", "PUT") else {}
        entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
        self.requests.append(entry | {"body": body or None})
        status, headers, stall = self._faults.pop(0) if self._faults else (None, {}, 0.0)
        if self.delay or stall:
            with contextlib.suppress(TimeoutError):  # a shutdown releases stalled requests
                await asyncio.wait_for(self._release.wait(), self.delay + stall)
        if status is not None:
            raise SimError(status, "injected fault", headers)
        self._org_of(request)
        if self.rate_limit is not None:
            key = request.headers["x-api-key"]
            limiter = self._limiters.setdefault(key, AsyncLimiter(*self.rate_limit))
            if not limiter.has_capacity():
                wait = math.ceil(limiter.time_period / limiter.max_rate)
                raise SimError(429, "Too many requests", {"Retry-After": str(wait)})
            await limiter.acquire()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()

    async def _sim_tasks(self, request: web.Request) -> web.Response:
        return _reply(200, {"tasks": self.snapshot()})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return _reply(200, {"requests": self.requests, "writes": self.writes})

    async def _sim_edit(self, request: web.Request) -> web.Response:
        event_id, org = request.match_info["event_id"], request.query.get("org")
        return _reply(200, {"appointment": self.edit(event_id, request[BODY], org)})

    async def _sim_delete(self, request: web.Request) -> web.Response:
        self.remove(request.match_info["event_id"], request.query.get("org"))
        return _reply(200, {"success": True})

    async def _sim_call(self, request: web.Request) -> web.Response:
        if (method := request.match_info["method"]) not in CONTROLS:
            raise SimError(404, f"no control method {method!r}; try one of {CONTROLS}")
        try:
            return _reply(200, {"result": getattr(self, method)(**request[BODY])})
        except TypeError as exc:
            raise SimError(400, str(exc)) from None


BODY = web.RequestKey("salesask_body", dict)
SIM = web.AppKey("salesask_sim", SalesAskSim)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default() -> SalesAskSim:
    """One organisation, key `sim-key`, reps rep@example.com (active), gone@example.com."""
    sim = SalesAskSim()
    sim.add_org("demo", DEFAULT_KEY, DEFAULT_REPS)
    return sim


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sim: SalesAskSim | None = None,
    api_key: str = DEFAULT_KEY,
    reps: Mapping[str, bool] = DEFAULT_REPS,
) -> web.AppRunner:
    """Serve `sim` (else one org with `api_key` and `reps`) until `runner.cleanup()`.

    `runner.app[SIM]` is the simulator, `base_url(runner)` where it listens.
    """
    if sim is None:
        sim = SalesAskSim()
        sim.add_org("demo", api_key, reps)
    return await start(sim.app(), host, port)


def base_url(runner: web.AppRunner) -> str:
    """`http://host:port` of a runner started by `serve`."""
    return origin(runner)


def _reply(status: int, body: object) -> web.Response:
    return web.json_response(body, status=status)


async def _body(request: web.Request) -> Json:
    try:
        return json_object(await request.text())
    except ValueError as exc:
        raise SimError(400, str(exc)) from None


def _find(org: Org, event_id: str) -> Task:
    if (task := org.tasks.get(event_id)) is None:
        raise SimError(404, f"Scheduled task {event_id} not found")
    return task


def _order(task: Task) -> tuple[datetime, str]:
    return task.start, task.id


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise SimError(400, "limit must be an integer from 1 to 100")
    return int(text)


def _bound(text: str | None, upper: int) -> datetime:
    """A bound on startTime: a date is a whole UTC day, a date-time an instant; inclusive."""
    if text is None:
        return (datetime.max if upper else datetime.min).replace(tzinfo=UTC)
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=upper)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SimError(400, f"{text!r} is neither YYYY-MM-DD nor an ISO date-time") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(microseconds=upper)


def _cursor(task: Task) -> str:
    raw = json.dumps([task.start.isoformat(), task.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(text: str) -> tuple[datetime, str]:
    try:
        start, ident = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return datetime.fromisoformat(start), str(ident)
    except (ValueError, TypeError):
        raise SimError(400, "startAfter is not a cursor from this API") from None


def _customer(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SimError(400, "customer must be an object of strings (id, name, email)")
    return {k: v for k, v in value.items() if k in _CUSTOMER}
