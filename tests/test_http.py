"""The HTTP funnel's own mechanics: the sliding-window budget, Retry-After, messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiohttp import web

from syncd.errors import Unavailable
from syncd.http import (
    Budget,
    HttpClient,
    SlidingWindow,
    env_proxy,
    parse_retry_after,
    vendor_message,
)
from tests.builders import serving


async def test_the_budget_counts_a_call_until_one_window_after_its_answer():
    window = SlidingWindow(Budget(requests=5, per=0.05))
    loop = asyncio.get_running_loop()
    calls: list[tuple[float, float]] = []

    async def one() -> None:
        async with window.slot():
            started = loop.time()
            await asyncio.sleep(0.002)  # the call's round trip
        calls.append((started, loop.time()))

    await asyncio.gather(*(one() for _ in range(23)))

    # However late a call reached the server (at the latest, when it was answered),
    # no window of `per` seconds holds more than 5 of them.
    for begin, _ in calls:
        inside = [c for c in calls if begin <= c[0] and c[0] < begin + 0.05]
        assert len(inside) <= 5
    answers = sorted(end for _, end in calls)
    starts = sorted(start for start, _ in calls)
    assert all(starts[i + 5] >= answers[i] + 0.05 for i in range(len(calls) - 5))


def test_retry_after_takes_seconds_and_http_dates():
    now = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 01 Mar 2027 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 01 Mar 2027 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_vendor_messages_come_from_the_usual_places_and_never_from_html():
    assert vendor_message({"error": "bad key"}) == ": bad key"
    assert vendor_message({"ExceptionMessage": "owner inactive"}) == ": owner inactive"
    assert vendor_message({"Message": {"error": "nested"}}) == ": nested"
    assert vendor_message("<html>login</html>") == ""
    assert vendor_message(None) == ""


async def test_a_cost_budget_counts_what_each_call_cost_and_what_others_spent():
    window = SlidingWindow(Budget(requests=10, per=0.05))
    loop = asyncio.get_running_loop()
    calls: list[tuple[float, float]] = []

    async def one(cost: float) -> None:
        async with window.slot(cost):
            started = loop.time()
        calls.append((started, cost))

    await asyncio.gather(*(one(3) for _ in range(7)))
    for begin, _ in calls:
        assert sum(c for t, c in calls if begin <= t < begin + 0.05) <= 10

    # The server says only 2 are left although we spent nothing lately: the team's
    # other integrations spent the rest, so the next call of cost 3 has to wait.
    await asyncio.sleep(0.06)
    async with window.slot(1) as spent:
        spent.observe({"x-ratelimit-endpoint-cost": "1", "x-ratelimit-remaining-minute": "2"})
    assert window._used(loop.time()) == 10 - 2  # ours (1) and the team's (7): 2 left


async def test_a_cancelled_waiter_does_not_leak_the_window_or_its_lock():
    window = SlidingWindow(Budget(requests=2, per=0.05))

    async def one() -> None:
        async with window.slot():
            await asyncio.sleep(0.001)

    waiters = [asyncio.create_task(one()) for _ in range(12)]
    await asyncio.sleep(0.01)
    for task in waiters[3::2]:
        task.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
    assert window.in_flight == 0 and not window.changed.locked()
    async with window.slot():  # still usable
        pass


async def test_a_proxy_named_by_the_environment_carries_the_requests(monkeypatch, session):
    """The shared session no longer trusts the environment as a whole (aiohttp then read
    ~/.netrc in a thread on every request: more than half of a first sync's time), so
    HTTP_PROXY/NO_PROXY are read once per side instead: a forward proxy on loopback
    receives the request for the vendor's host."""
    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"ok": True})

    async with serving(forward) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "localhost")
        client = HttpClient(session, "http://crm.example.test/v1", "crm")
        answer = await client.request("GET", "/tasks")
    assert answer.body == {"ok": True}
    assert seen == ["http://crm.example.test/v1/tasks"]
    assert env_proxy("http://localhost:8080/x") is None  # NO_PROXY is honoured


async def test_bodies_are_read_in_their_declared_charset_else_as_utf8(session):
    """The funnel decodes a body once, in the charset its Content-Type names; no charset,
    or one Python does not know, reads as UTF-8 with bad bytes replaced; extra headers
    of one request add to the side's own."""
    answers = {
        "/latin": ("text/plain; charset=latin-1", "Müller".encode("latin-1")),
        "/json": ("application/json", '{"name": "Müller"}'.encode()),
        "/odd": ("text/plain; charset=x-no-such-charset", "Müller".encode()),
        "/bad": ("text/plain", b"M\xfcller"),
    }
    seen: list[tuple[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.headers["X-Key"], request.headers.get("Depth", "")))
        content_type, body = answers[request.path]
        return web.Response(body=body, headers={"Content-Type": content_type})

    async with serving(answer) as base_url:
        client = HttpClient(session, base_url, "crm", {"X-Key": "k"})
        bodies = [(await client.request("GET", path)).body for path in answers]
        await client.request("GET", "/json", headers={"Depth": "1"})
    assert bodies == ["Müller", {"name": "Müller"}, "Müller", "M\ufffdller"]
    assert seen == [("k", "")] * 4 + [("k", "1")]


async def test_a_timeout_shortened_after_the_client_was_made_is_honoured(session):
    """Request options built once per side had frozen the timeout given at creation: a
    client shortened afterwards (as the adapter contract tests do) waited the full 30 s
    for a stalled answer, and got it, instead of giving up."""
    release = asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"late": True})

    async with serving(stalled) as base_url:
        client = HttpClient(session, base_url, "crm")
        client.timeout = 0.2
        asyncio.get_running_loop().call_later(3.0, release.set)  # answered at last
        try:
            with pytest.raises(Unavailable, match=r"no answer within 0\.2s"):
                await client.request("GET", "/slow")
        finally:
            release.set()
