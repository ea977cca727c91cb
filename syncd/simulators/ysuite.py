"""YSUITE simulator: the tasks API (plus minimal contacts and deals) on loopback.

Implements vendors/ysuite.md section 9, points 1-10. Where YSUITE documents nothing, the
default is that file's guess and a field of `YSuiteSim` switches to the other answer.
Undocumented task updates and deletes are off by default (`supports_update`,
`supports_delete`): their routes then answer `missing_route_status`, 405 as Laravel does
for a URI that exists for GET (404 "API could not be found" by switch). Test control:
the public methods, and over HTTP `GET /_sim/tasks`, `GET /_sim/requests` and
`POST /_sim/<method>` with the method's keyword arguments as a JSON object.
Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiolimiter import AsyncLimiter

from syncd.simulators.serving import json_object, origin, start

Json = dict[str, Any]
ACCESS, SECRET = "sim-access", "sim-secret"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
SORTABLE = ("activity_id", "title", "start_datetime", "end_datetime", "status", "priority")
BRIEF = ("activity_id", "title", "activity_type", "status", "priority", "start_datetime")
BRIEF_KEYS = (*BRIEF, "end_datetime", "cstid")  # the keys of the seed's list example
NOT_FOUND = "Task not found."  # the real wording is [unknown]
CONTROLS = (
    *("edit", "set_status", "cancel", "no_show", "complete", "remove", "add_task"),
    *("revoke", "remove_addon", "fail_next", "stall_next"),
)


class SimError(Exception):
    """A refused request, answered as `{"success": false, "message", "errors"?}`."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Json | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.headers = status, dict(headers or {})
        self.body = body or {"success": False, "message": message} | (
            {"errors": dict(errors)} if errors else {}
        )


@dataclass
class Activity:
    """One stored activity, named as the API names its fields; tasks have type "Task"."""

    activity_id: int
    title: str
    start_datetime: str
    activity_type: str = "Task"
    end_datetime: str | None = None
    description: str | None = None
    status: int = 0
    priority: int = 2
    cstid: int | None = None
    deal_id: int | None = None
    assigned_user_id: int | None = None
    tags: list[int] = field(default_factory=list)

    def render(self, brief: bool = False) -> Json:
        """The API form; `brief`: only the keys of the seed's list example."""
        out = asdict(self)
        return {k: out[k] for k in BRIEF_KEYS} if brief else out


@dataclass
class Workspace:
    """One organisation: its secret, people, links and activities."""

    name: str
    secret: str
    organisation: bool = True  # False: every call is 400 "No organisation assigned to user"
    revoked: bool = False
    without_addon: set[str] = field(default_factory=set)  # "tasks", "contacts", "deals": 403
    users: dict[str, int] = field(default_factory=dict)  # email -> user id
    tags: set[int] = field(default_factory=set)
    contacts: dict[int, Json] = field(default_factory=dict)
    deals: dict[int, Json] = field(default_factory=dict)
    activities: dict[int, Activity] = field(default_factory=dict)


class Form:
    """Laravel-style validation of one body: every field's messages, then one 422."""

    def __init__(self, body: Json, partial: bool) -> None:
        self.body, self.partial = body, partial
        self.errors: dict[str, list[str]] = {}
        self.out: Json = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def given(self, name: str, required: bool = False) -> bool:
        if self.body.get(name) is not None:
            return True
        if required and not self.partial:
            self.fail(name, f"The {_label(name)} field is required.")
        return False

    def text(self, name: str, required: bool = False, limit: int = 65535) -> None:
        if self.given(name, required):
            value = self.body[name]
            if not isinstance(value, str):
                self.fail(name, f"The {_label(name)} must be a string.")
            elif len(value) > limit:
                self.fail(name, f"The {_label(name)} must not be greater than {limit} characters.")
            else:
                self.out[name] = value

    def moment(self, name: str, required: bool = False) -> None:
        if self.given(name, required):
            if naive(self.body[name]) is None:
                self.fail(name, f"The {_label(name)} does not match the format Y-m-d\\TH:i:s.")
            else:
                self.out[name] = self.body[name]

    def member(self, name: str, allowed: Collection[int], status: int = 422) -> None:
        if self.given(name):
            value = self.body[name]
            if type(value) is not int or value not in allowed:
                if status == 400:
                    raise SimError(400, f"{_label(name).capitalize()} {value} not found.")
                self.fail(name, f"The selected {_label(name)} is invalid.")
            else:
                self.out[name] = value

    def enum(self, name: str) -> None:
        if self.given(name):
            value = self.body[name]
            if type(value) is not int:
                self.fail(name, f"The {_label(name)} must be an integer.")
            elif not 0 <= value <= 4:
                self.fail(name, f"The {_label(name)} must be between 0 and 4.")
            else:
                self.out[name] = value

    def tags(self, allowed: Collection[int]) -> None:
        if self.given("tags"):
            value = self.body["tags"]
            if not isinstance(value, list):
                self.fail("tags", "The tags must be an array.")
                return
            for n, tag in enumerate(value):
                if type(tag) is not int or tag not in allowed:
                    self.fail(f"tags.{n}", f"The selected tags.{n} is invalid.")
            self.out["tags"] = value

    def done(self) -> Json:
        messages = [m for ms in self.errors.values() for m in ms]
        if messages:
            more = len(messages) - 1
            extra = f" (and {more} more error{'s' * (more > 1)})" if more else ""
            raise SimError(422, messages[0] + extra, self.errors)
        return self.out


@dataclass
class YSuiteSim:
    """The simulated API: workspaces by access key, quirk and fault switches, a log."""

    workspaces: dict[str, Workspace] = field(default_factory=dict)  # access key -> workspace
    supports_update: bool = False  # PUT /v1/tasks/{id} (undocumented)
    supports_delete: bool = False  # DELETE /v1/tasks/{id} (undocumented)
    missing_route_status: int = 405  # those routes when off: 405 (Laravel) or 404
    put_replaces: bool = False  # PUT resets omitted optional fields (else merges)
    link_error_status: int = 422  # unknown cstid / deal_id: 422 field error, or 400
    page_size: int = 100  # the longest page served, whatever pageSize asks
    over_page_size: str = "clamp"  # pageSize > 100: "clamp" or "422"
    sortable: tuple[str, ...] = SORTABLE
    unknown_sort_status: int | None = 422  # None: an unknown sortBy is ignored
    due_date_field: str = "start_datetime"  # what due_date_from / due_date_to test
    brief_list: bool = False  # list items carry only the seed example's keys
    server_timezone: str = "UTC"  # for times the simulator makes itself (aware edits)
    rate_limit: tuple[float, float] | None = None  # (requests, per seconds) per key
    stall_after_store: float = 0.0  # a create stores, then holds its answer this long
    insert_during_paging: int = 0  # unrelated tasks to add, one between page reads
    between_pages: Callable[[YSuiteSim], None] | None = None  # also run between page reads
    requests: list[Json] = field(default_factory=list)  # /v1: method, path, query, body
    writes: int = 0  # POST/PUT/DELETE requests received on /v1
    next_id: int = 1
    _faults: list[tuple[int | None, Mapping[str, str], Json | None, float]] = field(
        default_factory=list
    )
    _limiters: dict[str, AsyncLimiter] = field(default_factory=dict)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    # -- setup and vendor-side controls -----------------------------------------------------

    def add_workspace(self, name: str, access: str, secret: str, **fields: Any) -> Workspace:
        """Add a workspace reached with the key pair; `fields` as `Workspace` takes them."""
        self.workspaces[access] = Workspace(name, secret, **fields)
        return self.workspaces[access]

    def ws(self, name: str | None = None) -> Workspace:
        """The workspace called `name`, or the first one."""
        found = [w for w in self.workspaces.values() if name in (None, w.name)]
        if not found:
            raise SimError(400, f"no workspace {name!r}")
        return found[0]

    def task(self, activity_id: int, workspace: str | None = None) -> Activity:
        """The stored task, or SimError 400 (YSUITE's not found)."""
        found = self.ws(workspace).activities.get(int(activity_id))
        if found is None or found.activity_type != "Task":
            raise SimError(400, NOT_FOUND)
        return found

    def add_task(self, workspace: str | None = None, **fields: Any) -> Json:
        """A task made in the YSUITE UI (unrelated to syncd); aware times in server zone."""
        values = {"title": "Added in YSUITE", "start_datetime": "2027-03-10T09:00:00"} | fields
        return self.store(self.ws(workspace), self._zoned(values)).render()

    def store(self, ws: Workspace, values: Json, activity_type: str = "Task") -> Activity:
        """Insert an activity with the next id."""
        activity = Activity(self.next_id, activity_type=activity_type, **values)
        ws.activities[activity.activity_id] = activity
        self.next_id += 1
        return activity

    def edit(self, activity_id: int, changes: Json, workspace: str | None = None) -> Json:
        """A vendor-side edit of API fields, validated like a PUT."""
        ws = self.ws(workspace)
        task = self.task(activity_id, workspace)
        for name, value in self._form(ws, self._zoned(changes), partial=True).items():
            setattr(task, name, value)
        return task.render()

    def set_status(self, activity_id: int, status: int, workspace: str | None = None) -> Json:
        """0 open, 1 in progress, 2 completed, 3 cancelled, 4 no show."""
        return self.edit(activity_id, {"status": status}, workspace)

    def cancel(self, activity_id: int, workspace: str | None = None) -> Json:
        return self.set_status(activity_id, 3, workspace)

    def no_show(self, activity_id: int, workspace: str | None = None) -> Json:
        return self.set_status(activity_id, 4, workspace)

    def complete(self, activity_id: int, workspace: str | None = None) -> Json:
        return self.set_status(activity_id, 2, workspace)

    def remove(self, activity_id: int, workspace: str | None = None) -> None:
        """A vendor-side delete."""
        del self.ws(workspace).activities[self.task(activity_id, workspace).activity_id]

    def revoke(self, workspace: str | None = None) -> None:
        """Revoke the workspace's key: every call is then 401."""
        self.ws(workspace).revoked = True

    def remove_addon(self, endpoint: str, workspace: str | None = None) -> None:
        """Make `endpoint` ("tasks", "contacts", "deals") need an inactive add-on: 403."""
        self.ws(workspace).without_addon.add(endpoint)

    def fail_next(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        body: Json | None = None,
    ) -> None:
        """Answer the next `times` /v1 requests with `status` (`body`: the JSON to send)."""
        self._faults += [(status, headers or {}, body, 0.0)] * times

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` /v1 requests for `seconds` (a slow answer, a timeout)."""
        self._faults += [(None, {}, None, seconds)] * times

    def snapshot(self) -> list[Json]:
        """Every task of every workspace, with the workspace's name."""
        return [
            {"workspace": w.name, **a.render()}
            for w in self.workspaces.values()
            for a in sorted(w.activities.values(), key=lambda a: a.activity_id)
            if a.activity_type == "Task"
        ]

    def app(self) -> web.Application:
        """The aiohttp application serving this simulator (`app[SIM]` is `self`)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._gate])
        app[SIM] = self
        tasks, one = "/v1/tasks", "/v1/tasks/{id}"
        app.router.add_post(tasks, self._create)
        app.router.add_get(tasks, self._list)
        app.router.add_get(one, self._get)
        app.router.add_put(one, self._put)
        app.router.add_delete(one, self._delete)
        for kind in ("contacts", "deals"):
            app.router.add_get(f"/v1/{kind}", self._people_list)
            app.router.add_post(f"/v1/{kind}", self._people_create)
            app.router.add_get(f"/v1/{kind}/{{id}}", self._people_get)
        app.router.add_get("/_sim/tasks", self._sim_tasks)
        app.router.add_get("/_sim/requests", self._sim_requests)
        app.router.add_post("/_sim/{method}", self._sim_call)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # -- the API ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        ws = request[WS]
        task = self.store(ws, self._form(ws, request[BODY], partial=False))
        await self._hold(self.stall_after_store)
        data = {"activity_id": task.activity_id, "title": task.title, "activity_type": "Task"}
        return _ok(data, "Task activity created successfully.")

    async def _get(self, request: web.Request) -> web.Response:
        return _ok(self._one(request).render())

    async def _put(self, request: web.Request) -> web.Response:
        if not self.supports_update:
            raise self._missing(request)
        ws, task = request[WS], self._one(request)
        changes = self._form(ws, request[BODY], partial=not self.put_replaces)
        if self.put_replaces:  # omitted optionals go back to their defaults
            fresh = Activity(task.activity_id, task.title, task.start_datetime)
            changes = {k: v for k, v in asdict(fresh).items() if k != "activity_id"} | changes
        for name, value in changes.items():
            setattr(task, name, value)
        data = {"activity_id": task.activity_id, "title": task.title, "activity_type": "Task"}
        return _ok(data, "Task activity updated successfully.")

    async def _delete(self, request: web.Request) -> web.Response:
        if not self.supports_delete:
            raise self._missing(request)
        del request[WS].activities[self._one(request).activity_id]
        return _ok(None, "Task activity deleted successfully.")

    async def _list(self, request: web.Request) -> web.Response:
        ws, query = request[WS], request.query
        days = (_day(query, "due_date_from"), _day(query, "due_date_to"))
        rows = [a for a in ws.activities.values() if self._matches(a, query, *days)]
        rows.sort(key=self._order(query))
        if query.get("sortOrder", "asc").lower() == "desc":
            rows.reverse()
        body, size, index = self._page(rows, query)
        body["data"] = [a.render(self.brief_list) for a in body["data"]]
        if (index + 1) * size < len(rows):
            self._between_pages(ws, query)
        return _ok(body)

    async def _people_list(self, request: web.Request) -> web.Response:
        table, query = self._people(request), request.query
        search = query.get("search", "").lower()
        rows = [
            r
            for _, r in sorted(table.items())
            if search in json.dumps(list(r.values())).lower()
            and query.get("cstid", str(r.get("cstid"))) == str(r.get("cstid"))
        ]
        return _ok(self._page(rows, query)[0])

    async def _people_get(self, request: web.Request) -> web.Response:
        found = self._people(request).get(_int(request.match_info["id"], -1))
        if found is None:
            raise SimError(400, f"{request.path.split('/')[2][:-1].title()} not found.")
        return _ok(found)

    async def _people_create(self, request: web.Request) -> web.Response:
        table, body, ws = self._people(request), request[BODY], request[WS]
        form, contacts = Form(body, partial=False), table is ws.contacts
        form.text("cstname" if contacts else "deal_name", required=True, limit=100)
        if contacts:
            form.member("contact_type", (1, 2))
            form.text("cstemail")
        else:
            form.member("cstid", ws.contacts)
        key, ident = "cstid" if contacts else "deal_id", max(table, default=0) + 1
        table[ident] = row = {key: ident, **form.done()}
        return _ok(row, f"{'Contact' if contacts else 'Deal'} created successfully.")

    # -- mechanics -------------------------------------------------------------------------

    def _form(self, ws: Workspace, body: Json, partial: bool) -> Json:
        """A task body checked the way the docs (and Laravel) describe; changes by field."""
        body = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in body.items()}
        form = Form(body, partial)
        form.text("title", required=True, limit=150)
        form.moment("start_datetime", required=True)
        form.moment("end_datetime")
        form.text("description")
        if not partial and not form.given("cstid") and not form.given("deal_id"):
            form.fail("cstid", "The cstid field is required when deal id is not present.")
            form.fail("deal_id", "The deal id field is required when cstid is not present.")
        form.member("cstid", ws.contacts, self.link_error_status)
        form.member("deal_id", ws.deals, self.link_error_status)
        form.member("assigned_user_id", set(ws.users.values()))
        form.enum("priority")
        form.enum("status")
        form.tags(ws.tags)
        return form.done()

    def _zoned(self, values: Json) -> Json:
        zone = ZoneInfo(self.server_timezone)
        return {
            k: v.astimezone(zone).strftime(TIME_FORMAT)
            if isinstance(v, datetime) and v.tzinfo
            else v
            for k, v in values.items()
        }

    def _one(self, request: web.Request) -> Activity:
        ws, text = request[WS], request.match_info["id"]
        return self.task(_int(text, -1), ws.name)

    def _missing(self, request: web.Request) -> SimError:
        if self.missing_route_status == 404:
            return SimError(404, "API could not be found")
        return SimError(
            405,
            f"The {request.method} method is not supported for route {request.path[1:]}."
            " Supported methods: GET, HEAD.",
        )

    def _matches(self, task: Activity, query: Mapping[str, str], low: str, high: str) -> bool:
        if task.activity_type != "Task":
            return False
        for name in ("status", "priority", "assigned_user_id"):
            if name in query and getattr(task, name) != _int(query[name], None):
                return False
        day = (getattr(task, self.due_date_field) or "")[:10]
        if (low and not low <= day) or (high and not (day and day <= high)):
            return False
        return query.get("search", "").lower() in task.title.lower()

    def _order(self, query: Mapping[str, str]) -> Callable[[Activity], tuple[Any, ...]]:
        name = query.get("sortBy", "start_datetime")
        if name not in self.sortable:
            if self.unknown_sort_status is not None and "sortBy" in query:
                errors = {"sortBy": ["The selected sort by is invalid."]}
                raise SimError(self.unknown_sort_status, "The selected sort by is invalid.", errors)
            name = "start_datetime"
        return lambda a: (getattr(a, name) is None, getattr(a, name) or "", a.activity_id)

    def _page(self, rows: list[Any], query: Mapping[str, str]) -> tuple[Json, int, int]:
        size, index = _int(query.get("pageSize", "10"), 0), _int(query.get("pageIndex", "0"), -1)
        if size < 1 or index < 0 or (size > 100 and self.over_page_size == "422"):
            errors = {"pageSize": ["The page size must be between 1 and 100."]}
            raise SimError(422, "The page size must be between 1 and 100.", errors)
        size = min(size, 100, self.page_size)
        return (
            {
                "data": rows[index * size : (index + 1) * size],
                "current_page": index + 1,
                "total_records": len(rows),
                "total_pages": max(1, math.ceil(len(rows) / size)),
            },
            size,
            index,
        )

    def _between_pages(self, ws: Workspace, query: Mapping[str, str]) -> None:
        if self.insert_during_paging > 0:
            self.insert_during_paging -= 1
            start = f"{query.get('due_date_from') or '2027-01-01'}T00:00:00"
            self.store(ws, {"title": f"Unrelated {self.next_id}", "start_datetime": start})
        if self.between_pages is not None:
            self.between_pages(self)

    def _people(self, request: web.Request) -> dict[int, Json]:
        ws: Workspace = request[WS]
        return ws.contacts if request.path.split("/")[2] == "contacts" else ws.deals

    async def _hold(self, seconds: float) -> None:
        if seconds:
            with contextlib.suppress(TimeoutError):  # a shutdown releases stalled requests
                await asyncio.wait_for(self._release.wait(), seconds)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware: admit /v1 requests, read bodies, render `SimError`."""
        try:
            request[BODY] = await _body(request) if request.method in ("POST", "PUT") else {}
            if request.path.startswith("/v1/"):
                await self._admit(request)
            return await handler(request)
        except SimError as exc:
            return web.json_response(exc.body, status=exc.status, headers=exc.headers)

    async def _admit(self, request: web.Request) -> None:
        """Log, count writes, apply faults, authenticate and rate-limit one request."""
        self.writes += request.method in ("POST", "PUT", "DELETE")
        entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
        self.requests.append(entry | {"body": request[BODY] or None})
        status, headers, body, stall = self._faults.pop(0) if self._faults else (None, {}, None, 0)
        await self._hold(stall)
        if status is not None:
            raise SimError(status, "injected fault", headers=headers, body=body)
        ws = self.workspaces.get(request.headers.get("x-ysuite-access-key", ""))
        if ws is None or ws.revoked or request.headers.get("x-ysuite-secret-key") != ws.secret:
            raise SimError(401, "Invalid API credentials.")
        if not ws.organisation:
            raise SimError(400, "No organisation assigned to user")
        if request.path.split("/")[2] in ws.without_addon:
            raise SimError(403, "This feature requires an active subscription add-on.")
        request[WS] = ws
        if self.rate_limit is not None:
            limiter = self._limiters.setdefault(ws.name, AsyncLimiter(*self.rate_limit))
            if not limiter.has_capacity():
                wait = str(math.ceil(limiter.time_period / limiter.max_rate))
                raise SimError(429, "Too Many Requests", headers={"Retry-After": wait})
            await limiter.acquire()

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()

    async def _sim_tasks(self, request: web.Request) -> web.Response:
        return _ok(self.snapshot())

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return _ok({"requests": self.requests, "writes": self.writes})

    async def _sim_call(self, request: web.Request) -> web.Response:
        if (method := request.match_info["method"]) not in CONTROLS:
            raise SimError(404, f"no control method {method!r}; try one of {CONTROLS}")
        try:
            return _ok(getattr(self, method)(**request[BODY]))
        except TypeError as exc:
            raise SimError(400, str(exc)) from None


BODY = web.RequestKey("ysuite_body", dict)
WS = web.RequestKey("ysuite_workspace", Workspace)
SIM = web.AppKey("ysuite_sim", YSuiteSim)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default() -> YSuiteSim:
    """One workspace (`sim-access` / `sim-secret`): contact 10 customer@client.test, deal
    20, user 7 rep@example.com, tags 1 and 2, and two activities that are not tasks."""
    sim = YSuiteSim()
    contact = {"cstid": 10, "cstname": "Client Ltd", "cstemail": "customer@client.test"}
    ws = sim.add_workspace(
        "demo",
        ACCESS,
        SECRET,
        users={"rep@example.com": 7},
        tags={1, 2},
        contacts={10: contact | {"contact_type": 2, "cstcreated_on": "2026-05-15T08:30:00Z"}},
        deals={20: {"deal_id": 20, "deal_name": "Renewal", "cstid": 10}},
    )
    for kind in ("Call", "Meeting"):
        sim.store(ws, {"title": f"A {kind.lower()}", "start_datetime": "2027-03-10T09:00:00"}, kind)
    return sim


async def serve(
    host: str = "127.0.0.1", port: int = 0, *, sim: YSuiteSim | None = None
) -> web.AppRunner:
    """Serve `sim` (else `default()`) until `runner.cleanup()`; `runner.app[SIM]` is it."""
    return await start((sim or default()).app(), host, port)


def base_url(runner: web.AppRunner) -> str:
    """`http://host:port` of a runner started by `serve`."""
    return origin(runner)


def naive(value: object) -> datetime | None:
    """`YYYY-MM-DDTHH:MM:SS` exactly (no offset, no fraction) as a naive datetime."""
    try:
        return datetime.strptime(value, TIME_FORMAT) if isinstance(value, str) else None
    except ValueError:
        return None


def _ok(data: Any, message: str | None = None) -> web.Response:
    body = {"success": True} | ({"message": message} if message else {}) | {"data": data}
    return web.json_response(body)


def _int(text: str, fallback: int | None) -> Any:
    try:
        return int(text)
    except ValueError:
        return fallback


def _day(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "")
    try:
        return date.fromisoformat(value).isoformat() if value else ""
    except ValueError:
        message = f"The {name.replace('_', ' ')} is not a valid date."
        raise SimError(422, message, {name: [message]}) from None


async def _body(request: web.Request) -> Json:
    try:
        return json_object(await request.text())
    except ValueError as exc:
        raise SimError(400, str(exc)) from None


def _label(name: str) -> str:
    """A field as Laravel names it in messages: `start_datetime` -> `start datetime`."""
    return name.replace("_", " ")
