"""Shared HTTP mechanics: one request funnel per side, mapping failures onto `errors`.

Every vendor and feed request goes through `HttpClient.request`: it waits for the
side's rate budget and concurrency slot, applies the timeout, and turns transport
failures and HTTP statuses into the error vocabulary. Messages name the side and the
path only, never the query string or headers, so a secret never reaches a log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from syncd import errors

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "syncd"


@dataclass(frozen=True)
class Budget:
    """A rate budget: at most `requests` per `per` seconds."""

    requests: float
    per: float


@dataclass
class Spent:
    """What one call cost, as the answer tells (Salesloft's cost headers)."""

    cost: float
    remaining: float | None = None  # the budget the server says is left in its window

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the vendor's cost and remaining-budget headers, when it sends them."""
        cost = _number(headers.get("x-ratelimit-endpoint-cost"))
        self.cost = cost if cost is not None else self.cost
        self.remaining = _number(headers.get("x-ratelimit-remaining-minute"))


class SlidingWindow:
    """At most `budget.requests` (calls, or cost units) in any `budget.per` seconds, as
    the server counts them.

    Vendors count calls in a sliding window ("25 in 5 seconds"); a leaky bucket
    (aiolimiter) lets a burst and its refill exceed such a window. The server counts a
    call when it arrives, which is somewhere between when we sent it and when its answer
    came back; so a call holds its place from when it leaves until one window after its
    answer. No pause of ours (a slow connect, a garbage collection) can then squeeze
    more into the server's window than it allows. Vendors that budget by cost (Salesloft:
    600 per minute per team) say what each call cost and what is left: the cost is
    counted as told, and budget spent by others on the same team is counted too.
    """

    MARGIN = 0.01  # of the window, for clocks that tick differently

    def __init__(self, budget: Budget) -> None:
        self.size = max(1.0, budget.requests)
        self.span = budget.per * (1 + self.MARGIN)
        self.answered: collections.deque[tuple[float, float]] = collections.deque()
        self.in_flight = 0.0
        self.changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self, cost: float = 1.0) -> AsyncIterator[Spent]:
        """Hold a place worth `cost` in the window for one call; tell it what was spent."""
        await self._take(cost)
        spent = Spent(cost)
        try:
            yield spent
        finally:
            await self._give_back(cost, spent)

    def _used(self, now: float) -> float:
        while self.answered and self.answered[0][0] + self.span <= now:
            self.answered.popleft()
        return self.in_flight + sum(cost for _, cost in self.answered)

    async def _take(self, cost: float) -> None:
        loop = asyncio.get_running_loop()
        async with self.changed:
            while True:
                used = self._used(loop.time())
                if used + cost <= self.size or used == 0:  # one call dearer than all still goes
                    self.in_flight += cost
                    return
                # Never wait unbounded: a wake-up lost to a cancelled notifier costs a
                # re-check, not a hang. `asyncio.timeout` (unlike `wait_for` on 3.11) lets a
                # cancellation through with the condition's lock held as it should be.
                wait = self.answered[0][0] + self.span - loop.time() if self.answered else 1.0
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(wait, 0.0)):
                        await self.changed.wait()

    async def _give_back(self, cost: float, spent: Spent) -> None:
        # The books first, with no await in between: a cancellation below cannot leak
        # the place this call held.
        now = asyncio.get_running_loop().time()
        self.in_flight -= cost
        self.answered.append((now, spent.cost))
        if spent.remaining is not None:
            others = self.size - self._used(now) - spent.remaining
            if others > 0:  # the team spent this elsewhere in the window
                self.answered.append((now, others))
        async with self.changed:
            self.changed.notify_all()


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Response:
    """A finished response: status, headers and the decoded body."""

    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass
class HttpClient:
    """The single funnel for one side's requests over the shared session."""

    session: aiohttp.ClientSession
    base_url: str
    label: str  # names the side in messages: the vendor or calendar id
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # carry keys
    timeout: float = DEFAULT_TIMEOUT
    budget: Budget | None = None
    concurrency: int = 4
    requests_sent: int = 0
    _limiter: SlidingWindow | None = field(init=False, default=None)
    _slots: asyncio.Semaphore = field(init=False)
    _fixed: dict[str, Any] = field(init=False, repr=False)  # headers, proxy: every request

    def __post_init__(self) -> None:
        headers = {"User-Agent": USER_AGENT, **self.headers}
        self._fixed = {"headers": headers, "proxy": env_proxy(self.base_url)}
        if self.budget is not None:
            self._limiter = SlidingWindow(self.budget)
        self._slots = asyncio.Semaphore(self.concurrency)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        key: str = "",
        check: Callable[[Response, str], None] | None = None,
        cost: float = 1.0,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> Response:
        """Send one request; return the response or raise an `AdapterError`. `check` sees
        every response first, error statuses included: vendors that put their errors in
        the body (LeadSquared's exceptions in a 200 or a 500) map them there. `cost` is
        what the call is expected to cost where a vendor budgets by cost. `headers` add to
        the side's own for this request (WebDAV's Depth, If-Match); `data` is a raw body."""
        where = f"{self.label}: {method} {path}"
        outgoing = {**self._fixed, "params": params, "json": json_body, "data": data}
        outgoing["timeout"] = aiohttp.ClientTimeout(total=self.timeout)  # may be changed
        if headers:
            outgoing["headers"] = {**self._fixed["headers"], **headers}
        async with self._slots:
            if self._limiter is None:
                response = await self._send(method, path, outgoing, where, key)
            else:
                async with self._limiter.slot(cost) as spent:
                    response = await self._send(method, path, outgoing, where, key)
                    spent.observe(response.headers)
        if check is not None:
            check(response, where)
        raise_for_status(response, where, key)
        return response

    async def _send(
        self, method: str, path: str, outgoing: dict[str, Any], where: str, key: str
    ) -> Response:
        url = self.base_url.rstrip("/") + path
        self.requests_sent += 1
        try:
            async with self.session.request(method, url, **outgoing) as raw:
                text = _decoded(await raw.read(), raw.charset)
                return Response(raw.status, dict(raw.headers), decode_body(text))
        except TimeoutError as exc:
            raise errors.Unavailable(
                f"{where}: no answer within {self.timeout:g}s", key=key
            ) from exc
        except aiohttp.ClientError as exc:
            raise errors.Unavailable(f"{where}: {type(exc).__name__}", key=key) from exc


def new_session() -> aiohttp.ClientSession:
    """The one session of a process. Not `trust_env`: that makes aiohttp read ~/.netrc in
    a worker thread on every request (more than half of a first sync's time); proxies
    from the environment are honoured by `env_proxy` instead, once per side."""
    return aiohttp.ClientSession()


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, as
    curl and aiohttp's `trust_env` read them), or None."""
    parts = urlsplit(url)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # in CPython, not in typeshed
    if not parts.hostname or bypass(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _decoded(data: bytes, charset: str | None) -> str:
    """The body as text in its declared charset, else UTF-8 (what JSON is, RFC 8259),
    unreadable bytes replaced. (aiohttp's `text()` would look the charset up again.)"""
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def decode_body(text: str) -> Any:
    """JSON when the body is JSON, else the text itself."""
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text


def raise_for_status(response: Response, where: str, key: str = "") -> None:
    """Map a non-2xx response onto the error vocabulary."""
    status = response.status
    if status < 400:
        return
    message = f"{where}: HTTP {status}{vendor_message(response.body)}"
    if status == 429 or (status == 503 and "Retry-After" in response.headers):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise errors.RateLimited(message, retry_after=retry_after, key=key)
    if status >= 500:
        raise errors.Unavailable(message, key=key)
    raise _CLIENT_ERRORS.get(status, errors.Rejected)(message, key=key)


_CLIENT_ERRORS: dict[int, type[errors.AdapterError]] = {
    401: errors.AuthFailed,
    403: errors.AuthFailed,
    404: errors.Gone,
    410: errors.Gone,
    409: errors.VersionMismatch,
    412: errors.VersionMismatch,
}


def vendor_message(body: Any) -> str:
    """The vendor's own words from an error body, shortened: `: <message>`, with the field
    errors of a validation answer (`{"errors": {"title": ["..."]}}`) after it."""
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = "; ".join(
            f"{name}: {' '.join(map(str, problems if isinstance(problems, list) else [problems]))}"
            for name, problems in body["errors"].items()
        )
        return f"{_first_message(body)} ({fields[:300]})"
    return _first_message(body)


def _first_message(body: Any) -> str:
    if isinstance(body, dict):
        for name in ("error", "message", "Message", "ExceptionMessage", "detail"):
            value = body.get(name)
            if isinstance(value, str) and value:
                return f": {value[:200]}"
            if isinstance(value, dict):
                return _first_message(value)
    if isinstance(body, str) and body.strip() and not body.lstrip().startswith("<"):
        return f": {body.strip()[:200]}"
    return ""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
