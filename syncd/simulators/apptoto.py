"""Apptoto simulator: the events API on loopback, its unknowns as switches.

Implements vendors/apptoto.md section 9, points 1-14 and 16, except contacts, bearer
tokens, conversations and the webhook emitter. Where Apptoto documents nothing, the
default is that file's guess and a field of `ApptotoSim` switches to the other answer.
Auto messages are never sent, only logged in `messages`: what Apptoto would have sent.
A deleted event keeps its external_id: GET /v1/event answers it with `is_deleted: true`,
listings show it with `include_deleted=true`, and a PUT naming it updates it in place
(`deleted_put` switches to revive or refuse).
Test control: the public methods, and over HTTP `GET /_sim/events`, `GET /_sim/requests`,
`GET /_sim/messages` and `POST /_sim/<method>` with the method's keyword arguments as a
JSON object (`edit`, `remove`, `set_state`, `mark_messaged`, `fail_next`, ...).
Nothing on the sync path imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from aiolimiter import AsyncLimiter

from syncd.simulators.serving import json_object, origin, start

Json = dict[str, Any]
USERNAME, API_KEY, CALENDAR_ID = "sim-user", "sim-key", 1
CONTROLS = ("edit", "remove", "add_event", "set_state", "mark_messaged", "fail_next", "stall_next")
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
TEXT = ("title", "location", "content")
REQUIRED = ("title", "start_time", "end_time")
FIELDS: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys((*TEXT, "external_id", "time_zone"), str),
    "all_day": bool,
    "custom_data": dict,
    "show_as": (int, type(None)),
}


class SimError(Exception):
    """A refused request, answered as `{"error": message}` (or `body`, or HTML for 502)."""

    def __init__(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status, self.headers, self.body = status, dict(headers or {}), body


@dataclass
class Participant:
    """One participant; `messaged` participants stick when the list is replaced."""

    id: int
    name: str = ""
    email: str = ""
    phone: str = ""
    state: str = "initial"
    messaged: bool = False


@dataclass
class Appointment:
    """One stored event, its times as sent (the offset is echoed back)."""

    id: int
    calendar_id: int
    title: str
    start_time: datetime
    end_time: datetime
    external_id: str | None = None
    time_zone: str | None = None
    location: str = ""
    content: str = ""
    all_day: bool = False
    show_as: int | None = None
    custom_data: Json = field(default_factory=dict)
    participants: list[Participant] = field(default_factory=list)
    is_deleted: bool = False


@dataclass
class Account:
    """One Apptoto account: its calendars (id -> name), events and message settings."""

    username: str
    api_key: str
    calendars: dict[int, str] = field(default_factory=dict)
    events: dict[int, Appointment] = field(default_factory=dict)
    auto_messages: bool = False  # the account's Auto Messages setting
    sticky_participants: bool = True  # messaged participants are never removed [seed]


@dataclass
class ApptotoSim:
    """The simulated API: accounts by username, quirk and fault switches, logs."""

    accounts: dict[str, Account] = field(default_factory=dict)
    page_size: int = 200  # the longest page served, whatever `page_size` asks
    default_page_size: int = 30
    batch_limit: int = 25  # writes with more events answer 502 with an HTML body
    deleted_put: str = "update"  # on a deleted event: "update" (stays deleted) | revive | reject
    repeat_delete_status: int = 200  # deleting a deleted event: 200 again, or 404
    calendar_move: str = "ignore"  # another calendar on an existing event: "ignore" | "reject"
    honour_prevent_creation: bool = True  # `prevent_calendar_creation` refuses unknown names
    extract_participants: bool = False  # e-mails in the text become participants
    country_code: str = "1"  # for phone normalisation
    rate_limit: tuple[float, float] | None = None  # (requests, per seconds) per account
    retry_after: bool = False  # whether a 429 carries Retry-After (unknown in reality)
    requests: list[Json] = field(default_factory=list)  # /v1: method, path, query, body
    writes: int = 0  # PUT/POST/DELETE requests received on /v1
    messages: list[Json] = field(default_factory=list)  # auto messages that would be sent
    _faults: list[tuple[int | None, Mapping[str, str], Any, float]] = field(default_factory=list)
    _limiters: dict[str, AsyncLimiter] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def add_account(self, username: str, api_key: str, calendars: Mapping[int, str]) -> Account:
        """Add an account reached with `username` and `api_key`."""
        account = self.accounts[username] = Account(username, api_key, dict(calendars))
        return account

    def account(self, username: str | None = None) -> Account:
        """The account `username`, or the first one."""
        return self.accounts[username] if username else next(iter(self.accounts.values()))

    def fail_next(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        *,
        body: Any = None,
    ) -> None:
        """Answer the next `times` /v1 requests with `status` (`body`: the JSON to send)."""
        self._faults += [(status, headers or {}, body, 0.0)] * times

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next `times` /v1 requests for `seconds` (released at shutdown)."""
        self._faults += [(None, {}, None, seconds)] * times

    def event(self, external_id: str, username: str | None = None) -> Appointment:
        """The stored event with that external_id (deleted ones too), or SimError 404."""
        found = _find(self.account(username), {"external_id": external_id})
        if found is None:
            raise SimError(404, f"Event {external_id} not found")
        return found

    def snapshot(self) -> list[Json]:
        """Every event of every account, deleted ones included."""
        return [self.render(e) for a in self.accounts.values() for e in _ordered(a.events.values())]

    def edit(self, external_id: str, changes: Json, username: str | None = None) -> Json:
        """A vendor-side edit: PUT fields (participants replaced, messaged ones kept)."""
        account, event = self.account(username), self.event(external_id, username)
        self._apply(account, event, self._parse(account, changes, event))
        return self.render(event)

    def add_event(self, element: Json, username: str | None = None) -> Json:
        """An event made at Apptoto (no external_id needed): as a PUT element would."""
        account = self.account(username)
        return self.render(self._create(account, self._parse(account, element, None)))

    def remove(self, external_id: str, username: str | None = None) -> Json:
        """A vendor-side delete: soft, as the API's."""
        event = self.event(external_id, username)
        event.is_deleted = True
        return self.render(event)

    def set_state(
        self, external_id: str, email: str, state: str, username: str | None = None
    ) -> Json:
        """A participant's answer (confirmed, not_coming, ...)."""
        self._participant(external_id, email, username).state = state
        return self.render(self.event(external_id, username))

    def mark_messaged(self, external_id: str, email: str, username: str | None = None) -> Json:
        """Mark a participant as messaged: the participant sticks from now on."""
        self._participant(external_id, email, username).messaged = True
        return self.render(self.event(external_id, username))

    def render(self, event: Appointment) -> Json:
        """The API form of an event, its times with the offsets they were sent with."""
        out = {f.name: getattr(event, f.name) for f in fields(event)}
        return out | {
            "start_time": event.start_time.isoformat(),
            "end_time": event.end_time.isoformat(),
            "participants": [self._render_participant(p) for p in event.participants],
        }

    def app(self) -> web.Application:
        """The aiohttp application serving this simulator (`app[SIM]` is `self`)."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._gate])
        app[SIM] = self
        app.router.add_get("/v1/events", self._list)
        app.router.add_put("/v1/events", self._put)
        app.router.add_post("/v1/events", self._post)
        app.router.add_delete("/v1/events", self._delete)
        app.router.add_get("/v1/event", self._get)
        app.router.add_get("/_sim/{what:events|requests|messages}", self._sim_get)
        app.router.add_post("/_sim/{method}", self._sim_call)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # -- the API ---------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        account, query = request[ACCOUNT], request.query
        page, size = _int(query, "page", 1), _int(query, "page_size", self.default_page_size)
        low, high = _bound(query.get("begin")), _bound(query.get("end"))
        deleted = query.get("include_deleted", "").lower() in ("true", "1")
        rows = [
            e
            for e in _ordered(account.events.values())
            if (deleted or not e.is_deleted)
            and (low is None or e.start_time >= low)
            and (high is None or e.start_time <= high)
            and query.get("external_id", e.external_id) == e.external_id
            and query.get("id", str(e.id)) == str(e.id)
        ]
        rendered = [self.render(e) for e in rows]
        if email := query.get("email_address", "").lower():  # one copy per matching participant
            rendered = [
                r | {"participants": [p]}
                for r in rendered
                for p in r["participants"]
                if p["email"].lower() == email
            ]
        size = min(size, self.page_size)
        return _reply({"events": rendered[(page - 1) * size : page * size]})

    async def _get(self, request: web.Request) -> web.Response:
        event = _find(request[ACCOUNT], request.query)
        if event is None:
            raise SimError(404, "Event not found")
        return _reply(self.render(event))

    async def _put(self, request: web.Request) -> web.Response:
        account, elements = request[ACCOUNT], self._elements(request)
        parsed = [
            (found, self._parse(account, e, found))
            for e in elements
            for found in [_find(account, e)]
        ]
        done = []
        for found, changes in parsed:  # all validated first: a refused batch changes nothing
            found = found or _find(account, changes)  # made by an earlier element
            if found is None:
                done.append(self._create(account, changes))
                continue
            found.is_deleted = found.is_deleted and self.deleted_put != "revive"
            done.append(self._apply(account, found, changes))
        return _reply({"events": [self.render(e) for e in done]})

    async def _post(self, request: web.Request) -> web.Response:
        account, elements = request[ACCOUNT], self._elements(request)
        for element in elements:
            if _find(account, {"external_id": element.get("external_id")}) is not None:
                raise SimError(400, f"external_id {element['external_id']} is already taken")
        parsed = [self._parse(account, e, None) for e in elements]
        return _reply({"events": [self.render(self._create(account, c)) for c in parsed]})

    async def _delete(self, request: web.Request) -> web.Response:
        event = _find(request[ACCOUNT], request.query)
        if event is None or (event.is_deleted and self.repeat_delete_status == 404):
            raise SimError(404, "Event not found")
        event.is_deleted = True  # soft: pending messages stop, the external_id stays taken
        return _reply({"events": [self.render(event)]})

    # -- mechanics -------------------------------------------------------------------------

    def _elements(self, request: web.Request) -> list[Json]:
        elements = request[BODY].get("events")
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            raise SimError(400, "events must be an array of objects")
        if len(elements) > self.batch_limit:
            raise SimError(502, "Bad Gateway", body=BAD_GATEWAY)
        prevent = request[BODY].get("prevent_calendar_creation") is True
        return [e | {"_prevent": prevent} for e in elements]

    def _parse(self, account: Account, body: Json, found: Appointment | None) -> Json:
        """Validated changes from one element over `found` (None: a new event)."""
        new = found is None
        if found is not None and found.is_deleted and self.deleted_put == "reject":
            raise SimError(400, f"Event {found.external_id} has been deleted")
        out: Json = {"calendar_id": self._calendar(account, body, new)}
        if found is not None and out["calendar_id"] not in (None, found.calendar_id):
            if self.calendar_move == "reject":
                raise SimError(400, "moving an event to another calendar is not supported")
            out["calendar_id"] = None  # ignored: the event stays where it is
        if new and (missing := [n for n in REQUIRED if body.get(n) is None]):
            raise SimError(400, f"{missing[0]} is required for a new event")
        for name, value in body.items():
            if name in ("start_time", "end_time"):
                out[name] = _time(value, name)
            elif name == "participants":
                out[name] = _people(value)
            elif name in FIELDS and (value is not None or name == "show_as"):
                if not isinstance(value, FIELDS[name]) or not _valid(name, value):
                    raise SimError(400, f"{name} is not valid: {value!r}")
                out[name] = value
        return out

    def _calendar(self, account: Account, body: Json, new: bool) -> int | None:
        ident, name = body.get("calendar_id"), body.get("calendar")
        if ident is not None:
            if type(ident) is not int or ident not in account.calendars:
                raise SimError(400, f"calendar_id {ident} not found")
            return ident
        if isinstance(name, str) and name:
            found = [i for i, n in account.calendars.items() if n == name]
            if found:
                return found[0]
            if body.get("_prevent") and self.honour_prevent_creation:
                raise SimError(400, f"calendar {name} does not exist")
            ident = next(self._ids)  # an unknown name provisions a calendar [seed]
            account.calendars[ident] = name
            return ident
        if new:
            raise SimError(400, "calendar or calendar_id is required")
        return None

    def _create(self, account: Account, changes: Json) -> Appointment:
        if (calendar := changes.pop("calendar_id")) is None:
            raise SimError(400, "calendar or calendar_id is required")
        people = changes.pop("participants", None)
        if people is None and self.extract_participants:
            text = " ".join(str(changes.get(n, "")) for n in TEXT)
            people = [{"name": "", "email": m, "phone": ""} for m in _EMAIL.findall(text)]
        event = Appointment(next(self._ids), calendar, **changes)
        account.events[event.id] = event
        self._replace_people(account, event, people or [])
        self._auto_message(account, event)
        return event

    def _apply(self, account: Account, event: Appointment, changes: Json) -> Appointment:
        changes.pop("calendar_id")
        people = changes.pop("participants", None)
        for name, value in changes.items():
            setattr(event, name, value)
        if people is not None:
            self._replace_people(account, event, people)
        self._auto_message(account, event)
        return event

    def _replace_people(self, account: Account, event: Appointment, people: list[Json]) -> None:
        """Replace the list whole, keeping the identity of those sent again; messaged ones
        stay unless the account turned stickiness off [seed]."""
        old, kept = list(event.participants), []
        for person in people:
            same = [p for p in old if _same(p, person)]
            kept.append(same[0] if same else Participant(next(self._ids), **person))
            old = [p for p in old if p not in same[:1]]
        sticky = [p for p in old if p.messaged and account.sticky_participants]
        event.participants = sticky + kept

    def _auto_message(self, account: Account, event: Appointment) -> None:
        """Log what Apptoto would send: auto messages on, or `#auto` in the text [seed]."""
        text = " ".join((event.title, event.location, event.content)).lower()
        if event.is_deleted or not (account.auto_messages or "#auto" in text):
            return
        for person in event.participants:
            if not person.messaged and (person.email or person.phone):
                person.messaged = True
                channel = "sms" if person.phone else "email"
                to = self._normalized(person.phone) if person.phone else person.email
                ids = {"event_id": event.id, "external_id": event.external_id}
                self.messages.append(ids | {"channel": channel, "to": to})

    def _participant(self, external_id: str, email: str, username: str | None) -> Participant:
        for person in self.event(external_id, username).participants:
            if person.email.lower() == email.lower():
                return person
        raise SimError(404, f"no participant {email} on {external_id}")

    def _render_participant(self, person: Participant) -> Json:
        normalized = self._normalized(person.phone) if person.phone else ""
        keys = ("id", "name", "phone", "email", "state")
        return {k: getattr(person, k) for k in keys} | {"normalized_phone": normalized}

    def _normalized(self, phone: str) -> str:
        digits = re.sub(r"\D", "", phone)
        return f"+{digits}" if phone.strip().startswith("+") else f"+{self.country_code}{digits}"

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware: admit /v1 requests, read bodies, render `SimError`."""
        try:
            request[BODY] = await _body(request) if request.method in ("POST", "PUT") else {}
            if request.path.startswith("/v1/"):
                await self._admit(request)
            return await handler(request)
        except SimError as exc:
            if isinstance(exc.body, str):
                return web.Response(status=exc.status, text=exc.body, content_type="text/html")
            body = exc.body if exc.body is not None else {"error": str(exc)}
            return web.json_response(body, status=exc.status, headers=exc.headers)

    async def _admit(self, request: web.Request) -> None:
        """Log, count writes, apply faults, authenticate and rate-limit one request."""
        self.writes += request.method in ("POST", "PUT", "DELETE")
        entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
        self.requests.append(entry | {"body": request[BODY] or None})
        status, headers, body, stall = (
            self._faults.pop(0) if self._faults else (None, {}, None, 0.0)
        )
        if stall:
            with contextlib.suppress(TimeoutError):  # a shutdown releases stalled requests
                await asyncio.wait_for(self._release.wait(), stall)
        if status is not None:
            raise SimError(status, "injected fault", headers, body)
        request[ACCOUNT] = account = self._authenticate(request)
        if self.rate_limit is not None:
            limiter = self._limiters.setdefault(account.username, AsyncLimiter(*self.rate_limit))
            if not limiter.has_capacity():
                wait = math.ceil(limiter.time_period / limiter.max_rate)
                headers = {"Retry-After": str(wait)} if self.retry_after else {}
                raise SimError(429, "Rate limit exceeded", headers)
            await limiter.acquire()

    def _authenticate(self, request: web.Request) -> Account:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            username, _, key = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username = key = ""
        account = self.accounts.get(username)
        if scheme.lower() != "basic" or account is None or account.api_key != key:
            raise SimError(401, "Unauthorized")
        return account

    async def _on_shutdown(self, app: web.Application) -> None:
        self._release.set()

    async def _sim_get(self, request: web.Request) -> web.Response:
        what = request.match_info["what"]
        return _reply({what: self.snapshot() if what == "events" else getattr(self, what)})

    async def _sim_call(self, request: web.Request) -> web.Response:
        if (method := request.match_info["method"]) not in CONTROLS:
            raise SimError(404, f"no control method {method!r}; try one of {CONTROLS}")
        try:
            return _reply({"result": getattr(self, method)(**request[BODY])})
        except TypeError as exc:
            raise SimError(400, str(exc)) from None


BODY = web.RequestKey("apptoto_body", dict)
ACCOUNT = web.RequestKey("apptoto_account", Account)
SIM = web.AppKey("apptoto_sim", ApptotoSim)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default() -> ApptotoSim:
    """One account: username `sim-user`, API key `sim-key`, calendar 1 ("Default")."""
    sim = ApptotoSim()
    sim.add_account(USERNAME, API_KEY, {CALENDAR_ID: "Default"})
    return sim


async def serve(
    host: str = "127.0.0.1", port: int = 0, *, sim: ApptotoSim | None = None
) -> web.AppRunner:
    """Serve `sim` (else `default()`) until `runner.cleanup()`; `runner.app[SIM]` is it."""
    return await start((sim or default()).app(), host, port)


def base_url(runner: web.AppRunner) -> str:
    """`http://host:port` of a runner started by `serve`."""
    return origin(runner)


def _reply(body: object) -> web.Response:
    return web.json_response(body)


async def _body(request: web.Request) -> Json:
    try:
        return json_object(await request.text())
    except ValueError as exc:
        raise SimError(400, str(exc)) from None


def _find(account: Account, keys: Mapping[str, Any]) -> Appointment | None:
    """The event named by `id`, else by `external_id` (deleted ones too)."""
    ident, external = keys.get("id"), keys.get("external_id")
    if ident is not None and str(ident).isdigit():
        return account.events.get(int(ident))
    live = [e for e in account.events.values() if external and e.external_id == external]
    return live[0] if live else None


def _people(value: object) -> list[Json]:
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise SimError(400, "participants must be an array of objects")
    return [{k: str(p.get(k) or "") for k in ("name", "email", "phone")} for p in value]


def _valid(name: str, value: object) -> bool:
    if name == "show_as":
        return value is None or (type(value) is int and 0 <= value <= 4)
    if name == "time_zone":
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            return False
    return True


def _same(old: Participant, new: Json) -> bool:
    email, phone = new["email"].lower(), new["phone"]
    return bool((email and old.email.lower() == email) or (phone and old.phone == phone))


def _ordered(events: Any) -> list[Appointment]:
    return sorted(events, key=lambda e: (e.start_time, e.id))


def _time(value: object, name: str) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise SimError(400, f"{name} must be ISO 8601 with a time zone offset")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _bound(value: str | None) -> datetime | None:
    return None if value is None else _time(value, "begin/end")


def _int(query: Mapping[str, str], name: str, fallback: int) -> int:
    text = query.get(name, str(fallback))
    if not text.isdigit() or int(text) < 1:
        raise SimError(400, f"{name} must be a positive integer")
    return int(text)
