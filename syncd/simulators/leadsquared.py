"""LeadSquared simulator: the Tasks API v2 on loopback, its unknowns as switches.

Implements vendors/leadsquared.md section 9, points 2-6, 8, 9, 11 (`ByUserId`,
`ByUserEmailAddress`), 13 (by email), 14, 15 and 17. Left out: regional hosts (1),
`MarkComplete` (7; `complete()` is the vendor-side control), `Task.svc/Retrieve` (10),
the lead-scoped shape (12), `ByUserSearchCriteria`, `Users.Get`, webhooks (16), the delete
status webhook and the daily cap. Test control: the public methods, and over HTTP
`GET /_sim/tasks`, `GET /_sim/requests` and `POST /_sim/<method>` with the method's keyword
arguments as a JSON object. Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from syncd.simulators.serving import json_object, origin, start

Json = dict[str, Any]
DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY = "sim-access", "sim-secret"
DEFAULT_USERS: Mapping[str, bool] = {"rep@example.com": True, "gone@example.com": False}
API_USER = "admin@example.com"  # the keys' owner: deactivating it disables them
RATE_LIMITED, INVALID = "MXAPIRateLimitExceededException", "MXInvalidInputException"
MISSING = "MXMandatoryAttributeMissingException"
WRITES = ("/Task.svc/Create", "/Task.svc/Update", "/Task.svc/DeleteTasks")
CONTROLS = "edit complete remove set_user set_rate_limit fail_next stall_next stall_after_store"
NEVER = "0001-01-01 00:00:00.000"  # CompletedOn of a task not completed
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
Fault = tuple[int | None, Mapping[str, str], Any, float]


class SimError(Exception):
    """A refused request: `body` as JSON (text when a str); status None = the MX status."""

    def __init__(self, status: int | None, body: Any, headers: Mapping[str, str] | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, dict(headers or {})


def mx(kind: str, message: str) -> SimError:
    """An MX exception, answered with the simulator's `mx_status`."""
    return SimError(None, {"Status": "Error", "ExceptionType": kind, "ExceptionMessage": message})


@dataclass
class User:
    id: str
    email: str
    active: bool = True
    time_zone: str = "UTC"

    @property
    def name(self) -> str:
        return self.email.split("@")[0].title()


@dataclass
class TaskType:
    id: str
    name: str
    category: int = 0  # 0 appointment, 1 to-do
    duration: timedelta = timedelta(minutes=30)  # when a create has no EndDate
    mandatory: tuple[str, ...] = ()  # custom fields (mx_Custom_N) a create must carry


@dataclass
class Task:
    id: str
    name: str
    type: TaskType
    owner: User
    due: datetime
    end: datetime
    created: datetime
    modified: datetime
    created_by: User
    modified_by: User
    description: str = ""
    related: tuple[int, str] = (0, "")
    reminder: int = 0
    notify_by: str = "1000"
    status: int = 0  # 0 pending or overdue, 1 completed
    completed: datetime | None = None
    custom: Json = field(default_factory=dict)


@dataclass
class Account:
    """One tenant: users by email, task types by name, lead ids, tasks by UserTaskId."""

    name: str
    secret_key: str
    api_user: str
    users: dict[str, User] = field(default_factory=dict)
    types: dict[str, TaskType] = field(default_factory=dict)
    leads: set[str] = field(default_factory=set)
    tasks: dict[str, Task] = field(default_factory=dict)
    calls: collections.deque[float] = field(default_factory=collections.deque)
    bulk_calls: collections.deque[float] = field(default_factory=collections.deque)


@dataclass
class LeadSquaredSim:
    """The simulated API: accounts by access key, quirk and fault switches, a log."""

    accounts: dict[str, Account] = field(default_factory=dict)
    mx_status: int = 500  # HTTP status of MX exceptions; 200 was also seen [3rd-party]
    unknown_update: Literal["error", "zero"] = "error"  # or AffectedRows 0
    update_sets_end: bool = True  # whether Update honours EndDate [unknown]
    delete_delay: float = 0.0  # seconds before DeleteTasks really deletes (it is async)
    page_size: int = 1000  # the longest page served, whatever PageSize asks
    max_days: int = 100  # between FromDate and ToDate
    rate_limit: tuple[int, float] | None = None  # N calls per W seconds, per account
    bulk_limit: tuple[int, float] | None = None  # DeleteTasks' own window
    rate_limit_status: int = 429  # or 200 / 500, as seen in the wild
    refused: int = 0  # calls refused by a rate limit
    requests: list[Json] = field(default_factory=list)  # /v2: method, path, query, auth, body
    writes: int = 0  # Create, Update and DeleteTasks calls received
    _faults: list[Fault] = field(default_factory=list)
    _after_store: list[float] = field(default_factory=list)
    _last: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    _auto: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def add_account(
        self, name: str, access_key: str, secret_key: str, users: Mapping[str, bool]
    ) -> Account:
        """A tenant reached with these keys (owned by API_USER), one type "Meeting"."""
        account = self.accounts[access_key] = Account(name, secret_key, API_USER)
        for email, active in {API_USER: True, **users}.items():
            account.users[email.lower()] = User(str(uuid.uuid4()), email, active)
        self.add_task_type("Meeting", account=name)
        return account

    def account(self, name: str | None = None) -> Account:
        """The account called `name`, or the first one."""
        found = [a for a in self.accounts.values() if name in (None, a.name)]
        if not found:
            raise SimError(404, f"no account {name!r}")
        return found[0]

    def add_task_type(
        self, name: str, category: int = 0, minutes: int = 30, mandatory: tuple[str, ...] = (),
        account: str | None = None,
    ) -> TaskType:  # fmt: skip
        kind = TaskType(str(uuid.uuid4()), name, category, timedelta(minutes=minutes), mandatory)
        self.account(account).types[name] = kind
        return kind

    def set_user(self, email: str, active: bool = True, account: str | None = None) -> None:
        """Add a user, or (de)activate one."""
        users = self.account(account).users
        user = users.setdefault(email.lower(), User(str(uuid.uuid4()), email))
        user.active = active

    def set_rate_limit(self, requests: int, per: float = 5.0, status: int = 429) -> None:
        """Change the plan: `requests` calls per `per` seconds, refused with `status`."""
        self.rate_limit, self.rate_limit_status = (requests, per), status

    def fail_next(
        self, status: int, headers: Mapping[str, str] | None = None, times: int = 1,
        *, body: Any = None,
    ) -> None:  # fmt: skip
        """Answer the next `times` /v2 calls with `status`; 429 carries the MX rate-limit
        body, other statuses an empty text body, unless `body` (JSON) is given."""
        self._faults += [(status, headers or {}, body, 0.0)] * times

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` /v2 calls for `seconds` (0: let them through)."""
        self._faults += [(None, {}, None, seconds)] * times

    def stall_after_store(self, seconds: float, times: int = 1) -> None:
        """The next `times` creates store the task, then hold their answer for `seconds`."""
        self._after_store += [seconds] * times

    def task(self, ident: str, account: str | None = None) -> Task:
        if (task := self.account(account).tasks.get(ident)) is None:
            raise SimError(404, f"no task {ident}")
        return task

    def edit(self, ident: str, changes: Json, account: str | None = None) -> Json:
        """A vendor-side edit with Update's field names; bumps ModifiedOn."""
        task = self.task(ident, account)
        self._apply(self.account(account), task, changes, task.owner, sets_end=True)
        return self.render(task)

    def complete(self, ident: str, account: str | None = None) -> Json:
        """Mark a task completed in the UI: StatusCode 1, CompletedOn now."""
        task = self.task(ident, account)
        task.status, task.completed = 1, self._stamp()
        task.modified, task.modified_by = task.completed, task.owner
        return self.render(task)

    def remove(self, ident: str, account: str | None = None) -> None:
        """A vendor-side delete."""
        del self.account(account).tasks[self.task(ident, account).id]

    def snapshot(self) -> list[Json]:
        """Every task of every account, in API form."""
        tasks = [t for a in self.accounts.values() for t in a.tasks.values()]
        return [self.render(t) for t in sorted(tasks, key=_order)]

    def render(self, task: Task) -> Json:
        """A task as the retrieval endpoints return it (.000 times, WCF type dates)."""
        kind, owner, creator, editor = task.type, task.owner, task.created_by, task.modified_by
        return {
            "UserTaskId": task.id, "Name": task.name, "Description": task.description,
            "Category": kind.category, "RelatedEntity": task.related[0],
            "RelatedEntityId": task.related[1], "RelatedEntityIdName": "",
            "DueDate": _ts(task.due), "EndDate": _ts(task.end), "Reminder": task.reminder,
            "ReminderBeforeDays": 0, "NotifyBy": task.notify_by, "StatusCode": task.status,
            "OwnerId": owner.id, "OwnerName": owner.name, "OwnerEmailAddress": owner.email,
            "CreatedBy": creator.id, "CreatedByName": creator.name,
            "CreatedOn": _ts(task.created), "ModifiedBy": editor.id,
            "ModifiedByName": editor.name, "ModifiedOn": _ts(task.modified),
            "CompletedOn": _ts(task.completed) if task.completed else NEVER,
            "Location": "", "CustomFields": dict(task.custom), "PercentCompleted": 0,
            "TaskType": {
                "Id": kind.id, "Name": kind.name, "Category": kind.category,
                "Color": "#3c8dbc", "FormLayout": "{}", "CreatedOn": "/Date(1502992091000+0000)/",
            },
        }  # fmt: skip

    def app(self) -> web.Application:
        """The aiohttp application serving this simulator (`app[SIM]` is `self`)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._gate])
        app[SIM] = self
        app.router.add_post("/v2/Task.svc/Create", self._create)
        app.router.add_post("/v2/Task.svc/Update", self._update)
        app.router.add_post("/v2/Task.svc/DeleteTasks", self._delete)
        app.router.add_get("/v2/Task.svc/Retrieve.GetById", self._get)
        app.router.add_post("/v2/Task.svc/RetrieveAppointments/{by}", self._appointments)
        app.router.add_get("/v2/UserManagement.svc/User/Retrieve/ByEmailAddress", self._user)
        app.router.add_get("/_sim/tasks", self._sim_tasks)
        app.router.add_get("/_sim/requests", self._sim_requests)
        app.router.add_post("/_sim/{method}", self._sim_call)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # -- the API ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        account, body = request[ACCOUNT], request[BODY]
        kind = account.types.get(_text(_object(body, "TaskType").get("Name"), "TaskType.Name"))
        if not isinstance(body.get("Name"), str) or not body["Name"].strip():
            raise mx(MISSING, "Name is a mandatory field")
        if not (body.get("OwnerId") or body.get("OwnerEmailAddress")):
            raise mx(MISSING, "OwnerId or OwnerEmailAddress is mandatory")
        if kind is None:
            raise mx(INVALID, "TaskType does not exist")
        if missing := [n for n in kind.mandatory if not _object(body, "CustomFields").get(n)]:
            raise mx(MISSING, f"Mandatory fields missing: {', '.join(missing)}")
        api, now = account.users[account.api_user], self._stamp()
        due = now.replace(microsecond=0)  # no DueDate: now; no EndDate: the type's duration
        task = Task(str(uuid.uuid4()), "", kind, api, due, due, now, now, api, api)
        self._apply(account, task, {"RelatedEntity": 0} | body, api)
        if "EndDate" not in body:
            task.end = task.due + kind.duration
        task.created = task.modified
        account.tasks[task.id] = task
        if self._after_store:
            await self._hold(self._after_store.pop(0))
        return _ok({"Status": "Success", "Message": {"Id": task.id}})

    async def _update(self, request: web.Request) -> web.Response:
        account, body = request[ACCOUNT], request[BODY]
        task = account.tasks.get(_text(body.get("UserTaskId"), "UserTaskId"))
        if task is None and self.unknown_update == "zero":
            return _ok({"Status": "Success", "Message": {"AffectedRows": 0, "AutoId": 0}})
        if task is None:
            raise mx(INVALID, "Task does not exist")
        self._apply(account, task, body, account.users[account.api_user], self.update_sets_end)
        self._auto += 1
        return _ok({"Status": "Success", "Message": {"AffectedRows": 1, "AutoId": self._auto}})

    async def _delete(self, request: web.Request) -> web.Response:
        account, ids = request[ACCOUNT], request[BODY].get("TaskIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise mx(INVALID, "TaskIds must be a list of task ids")
        if len(ids) > 5000:
            raise mx(INVALID, "At most 5000 TaskIds can be deleted at once")
        found = [i for i in dict.fromkeys(ids) if i in account.tasks]

        def drop() -> None:
            for ident in found:
                account.tasks.pop(ident, None)

        if self.delete_delay:
            asyncio.get_running_loop().call_later(self.delete_delay, drop)
        else:
            drop()
        failed = len(ids) - len(found)
        return _ok(
            {
                "Status": "Success", "Operation": "Bulk Delete Tasks", "TasksCount": len(ids),
                "DeletedTasksCount": len(found),
                "FailureReason": f"{failed} task(s) not found" if failed else "",
            }
        )  # fmt: skip

    async def _get(self, request: web.Request) -> web.Response:
        task = request[ACCOUNT].tasks.get(request.query.get("id", ""))
        return _ok([self.render(task)] if task else [])

    async def _appointments(self, request: web.Request) -> web.Response:
        account, body, by = request[ACCOUNT], request[BODY], request.match_info["by"]
        if by not in ("ByUserId", "ByUserEmailAddress"):
            raise SimError(404, "The API could not be found.")
        low, high = _day(body.get("FromDate"), "FromDate"), _day(body.get("ToDate"), "ToDate")
        if high < low or (high - low).days > self.max_days:
            raise mx(INVALID, f"FromDate to ToDate cannot be more than {self.max_days} days")
        users = body.get("Users")
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise mx(INVALID, "Users must be a list")
        wanted, paging = {u.lower() for u in users}, body.get("Paging") or {}
        index, size = paging.get("PageIndex", 1), paging.get("PageSize", 100)
        if not all(isinstance(n, int) and n >= 1 for n in (index, size)):
            raise mx(INVALID, "PageIndex and PageSize must be positive integers")
        rows = sorted(
            (t for t in account.tasks.values() if t.type.category == 0
             and (t.owner.id if by == "ByUserId" else t.owner.email).lower() in wanted
             and low <= t.due.date() <= high),
            key=_order,
        )  # fmt: skip
        size = min(size, self.page_size)
        page = rows[(index - 1) * size : index * size]
        return _ok({"RecordCount": len(rows), "List": [self.render(t) for t in page]})

    async def _user(self, request: web.Request) -> web.Response:
        email = request.query.get("emailAddress", "").lower()
        user = request[ACCOUNT].users.get(email)
        if user is None or not user.active:
            return _ok([])
        return _ok([{"UserId": user.id, "EmailAddress": user.email, "TimeZone": user.time_zone,
                     "Role": "Sales_User", "StatusCode": 0}])  # fmt: skip

    # -- mechanics -------------------------------------------------------------------------

    def _apply(
        self, account: Account, task: Task, body: Json, by: User, sets_end: bool = True
    ) -> None:
        """Validate the Create/Update fields present in `body`, then write them at once."""
        names = [n for n in PARSERS if n in body and (sets_end or n != "EndDate")]
        out = {PARSERS[n][0]: PARSERS[n][1](account, body, n) for n in names}
        if "end" in out and out["end"] < out.get("due", task.due):
            raise mx(INVALID, "EndDate cannot be before DueDate")
        for attr, value in out.items():
            setattr(task, attr, value)
        task.modified, task.modified_by = self._stamp(), by

    def _stamp(self) -> datetime:
        """Now, at millisecond precision, strictly after the previous stamp."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last

    async def _hold(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):  # a shutdown releases stalled requests
            await asyncio.wait_for(self._release.wait(), seconds)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware: admit /v2 calls, read bodies, render `SimError`."""
        try:
            if request.path.startswith("/v2/"):
                await self._admit(request)
            else:
                request[BODY] = await _json(request) if request.method == "POST" else {}
            return await handler(request)
        except SimError as exc:
            status = self.mx_status if exc.status is None else exc.status
            if isinstance(exc.body, str):
                return web.Response(status=status, text=exc.body, headers=exc.headers)
            return web.json_response(exc.body, status=status, headers=exc.headers)

    async def _admit(self, request: web.Request) -> None:
        """Log, count writes, apply faults, route, authenticate, rate-limit, read JSON."""
        arrived = asyncio.get_running_loop().time()
        query, headers = request.query, request.headers
        self.writes += request.path.removeprefix("/v2") in WRITES
        auth = "query" if "accessKey" in query else ""
        auth = "header" if "x-LSQ-AccessKey" in headers else auth
        entry = {"method": request.method, "path": request.path, "query": dict(query)}
        self.requests.append(entry | {"auth": auth, "body": None})
        status, fault_headers, body, stall = (
            self._faults.pop(0) if self._faults else (None, {}, None, 0.0)
        )
        if stall:
            await self._hold(stall)
        if status is not None:
            default = _limited(25, 5) if status == 429 else ""
            raise SimError(status, default if body is None else body, fault_headers)
        if request.match_info.http_exception is not None:
            raise SimError(404, "The API could not be found. Please check the API signature.")
        key = headers.get("x-LSQ-AccessKey", query.get("accessKey", ""))
        secret = headers.get("x-LSQ-SecretKey", query.get("secretKey", ""))
        account = self.accounts.get(key)
        if (
            account is None
            or secret != account.secret_key
            or not account.users[account.api_user].active
        ):
            raise SimError(401, "", {"Content-Type": "text/plain"})
        self._throttle(account, request.path, arrived)
        request[ACCOUNT] = account
        request[BODY] = await _json(request) if request.method == "POST" else {}
        self.requests[-1]["body"] = request[BODY] or None

    def _throttle(self, account: Account, path: str, now: float) -> None:
        """Refuse a call when the account's sliding window is full; count it otherwise."""
        bulk = self.bulk_limit if path.endswith("DeleteTasks") else None
        windows = [(self.rate_limit, account.calls), (bulk, account.bulk_calls)]
        for limit, calls in windows:
            if limit is None:
                continue
            while calls and calls[0] <= now - limit[1]:
                calls.popleft()
            if len(calls) >= limit[0]:
                self.refused += 1
                raise SimError(self.rate_limit_status, _limited(*limit))
        for limit, calls in windows:
            if limit is not None:
                calls.append(now)

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()

    async def _sim_tasks(self, request: web.Request) -> web.Response:
        return _ok({"tasks": self.snapshot()})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return _ok({"requests": self.requests, "writes": self.writes, "refused": self.refused})

    async def _sim_call(self, request: web.Request) -> web.Response:
        if (method := request.match_info["method"]) not in CONTROLS.split():
            raise SimError(404, {"error": f"no control {method!r}; try one of {CONTROLS}"})
        try:
            return _ok({"result": getattr(self, method)(**request[BODY])})
        except TypeError as exc:
            raise SimError(400, {"error": str(exc)}) from None


BODY = web.RequestKey("leadsquared_body", dict)
ACCOUNT = web.RequestKey("leadsquared_account", Account)
SIM = web.AppKey("leadsquared_sim", LeadSquaredSim)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default() -> LeadSquaredSim:
    """One account, keys sim-access/sim-secret, rep@example.com active, gone@ inactive."""
    sim = LeadSquaredSim()
    sim.add_account("demo", DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_USERS)
    return sim


async def serve(
    host: str = "127.0.0.1", port: int = 0, *, sim: LeadSquaredSim | None = None
) -> web.AppRunner:
    """Serve `sim` (else `default()`) until `runner.cleanup()`; `runner.app[SIM]` is it."""
    return await start((sim or default()).app(), host, port)


def base_url(runner: web.AppRunner) -> str:
    """`http://host:port/v2` of a runner started by `serve`."""
    return origin(runner) + "/v2"


def _ok(body: object) -> web.Response:
    return web.json_response(body, status=200)


async def _json(request: web.Request) -> Json:
    if request.content_type != "application/json":
        raise SimError(400, "Content-Type must be application/json")
    try:
        return json_object(await request.text())
    except ValueError as exc:
        raise SimError(400, str(exc)) from None


def _limited(requests: int, per: float) -> Json:
    message = f"API calls exceeded the limit of {requests} in {per:g} second(s)"
    return {"Status": "Error", "ExceptionType": RATE_LIMITED, "ExceptionMessage": message}


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _order(task: Task) -> tuple[datetime, str]:
    return task.due, task.id


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise mx(INVALID, f"{name} must be a string")
    return value


def _field(check: Callable[[Any], bool], fix: Callable[[Any], Any] = lambda v: v) -> Parse:
    """A parser of one simple field: `check` its value, store `fix(value)`."""

    def parse(account: Account, body: Json, name: str) -> Any:
        if not check(body[name]):
            raise mx(INVALID, f"{name} has an invalid value: {body[name]!r}")
        return fix(body[name])

    return parse


def _time(value: object, name: str) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise mx(INVALID, f"{name} must be a UTC date-time like 2020-11-11 10:30:00")
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _day(value: object, name: str) -> date:
    try:
        return date.fromisoformat(_text(value, name))
    except ValueError:
        raise mx(INVALID, f"{name} must be a date like 2018-09-25") from None


def _object(body: Json, name: str) -> Json:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise mx(INVALID, f"{name} must be an object")
    return value


def _owner(account: Account, body: Json, name: str = "") -> User:
    wanted = body.get("OwnerId") or body.get("OwnerEmailAddress")
    key = wanted.lower() if isinstance(wanted, str) else None
    found = [u for u in account.users.values() if key in (u.id, u.email.lower())]
    if not found or not found[0].active:
        raise mx(INVALID, f"Owner {wanted} is not an active user")
    return found[0]


def _related(account: Account, body: Json, name: str = "") -> tuple[int, str]:
    text, ident = str(body.get("RelatedEntity")), body.get("RelatedEntityId") or ""
    entity = int(text) if text in ("0", "1", "5") else None
    if entity is None or not isinstance(ident, str):
        raise mx(INVALID, "RelatedEntity must be 0, 1 or 5")
    if (entity and not ident) or (entity == 1 and ident not in account.leads):
        raise mx(INVALID, f"RelatedEntityId {ident!r} is not a known lead or opportunity")
    return entity, ident if entity else ""


Parse = Callable[[Account, Json, str], Any]
PARSERS: dict[str, tuple[str, Parse]] = {  # request field -> Task attribute, parser
    "Name": ("name", _field(lambda v: isinstance(v, str) and bool(v.strip()))),
    "Description": ("description", _field(lambda v: isinstance(v, str | None), lambda v: v or "")),
    "DueDate": ("due", lambda _, body, name: _time(body[name], name)),
    "EndDate": ("end", lambda _, body, name: _time(body[name], name)),
    "OwnerId": ("owner", _owner),
    "OwnerEmailAddress": ("owner", _owner),
    "RelatedEntity": ("related", _related),
    "Reminder": ("reminder", _field(lambda v: isinstance(v, int) and v >= 0)),
    "NotifyBy": ("notify_by", _field(lambda v: v in ("1000", "1100"))),
    "CustomFields": ("custom", lambda _, body, name: dict(_object(body, name))),
}
