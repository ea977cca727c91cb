"""The Sales Ask simulator's own behaviour (vendors/salesask.md section 9), over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from syncd.simulators import SIMULATORS
from syncd.simulators import salesask as simulator
from syncd.simulators.salesask import SalesAskSim

Client = TestClient[Any, Any]
KEY = {"x-api-key": "sim-key"}
BASE = "/v1/scheduled-tasks"


def task(event_id: str = "CRM-1", **fields: Any) -> dict[str, Any]:
    """A valid POST body, with overrides."""
    body = {
        "event_id": event_id,
        "user_email": "rep@example.com",
        "start_time": "2027-03-10T14:00:00.000Z",
        "end_time": "2027-03-10T15:00:00.000Z",
        "title": "Discovery call",
        "customer": {"id": "c1", "name": "John Doe", "email": "john@example.com"},
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


@pytest.fixture
def sim() -> SalesAskSim:
    return simulator.default()


@pytest.fixture
async def client(sim: SalesAskSim, aiohttp_client: Callable[[Any], Awaitable[Client]]) -> Client:
    return await aiohttp_client(sim.app())


async def call(
    client: Client, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    """One request with the API key: status and decoded JSON (None when empty)."""
    async with client.request(method, path, json=body, params=params, headers=KEY) as response:
        text = await response.text()
        return response.status, (await response.json() if text else None)


async def post(client: Client, **fields: Any) -> dict[str, Any]:
    status, body = await call(client, "POST", BASE, task(**fields))
    assert status in (200, 201), body
    appointment: dict[str, Any] = body["appointment"]
    return appointment


def test_the_registry_names_this_module() -> None:
    assert SIMULATORS["salesask"] == simulator.__name__


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
async def test_missing_or_unknown_key_is_401_json(client: Client, headers: dict[str, str]) -> None:
    async with client.get(BASE, headers=headers) as response:
        assert response.status == 401
        assert "error" in await response.json()


@pytest.mark.parametrize("missing", ["event_id", "user_email", "start_time"])
async def test_post_without_a_required_field_is_400(client: Client, missing: str) -> None:
    status, body = await call(
        client, "POST", BASE, {k: v for k, v in task().items() if k != missing}
    )
    assert status == 400 and missing in body["error"]


async def test_post_with_an_offset_is_400_unless_switched(client: Client, sim: SalesAskSim) -> None:
    offset = task(start_time="2027-03-10T15:00:00+01:00")
    assert (await call(client, "POST", BASE, offset))[0] == 400
    sim.accept_offsets = True
    status, body = await call(client, "POST", BASE, offset)
    assert status == 201 and body["appointment"]["startTime"] == "2027-03-10T14:00:00.000Z"


@pytest.mark.parametrize("email", ["gone@example.com", "stranger@example.com"])
async def test_inactive_or_unknown_rep_is_refused(
    client: Client, sim: SalesAskSim, email: str
) -> None:
    assert (await call(client, "POST", BASE, task(user_email=email)))[0] == 400
    sim.rep_error_status = 422
    assert (await call(client, "POST", BASE, task(user_email=email)))[0] == 422


async def test_post_creates_then_updates_in_place(client: Client) -> None:
    status, created = await call(client, "POST", BASE, task())
    assert status == 201 and created["appointment"]["id"].startswith("task_")
    status, again = await call(client, "POST", BASE, task(title="Renamed"))
    first, second = created["appointment"], again["appointment"]
    assert status == 200 and (second["id"], second["createdAt"]) == (
        first["id"],
        first["createdAt"],
    )
    assert second["updatedAt"] > first["updatedAt"] and second["title"] == "Renamed"


async def test_response_is_camel_case_and_never_names_the_rep(client: Client) -> None:
    made = await post(client)
    assert made["event_id"] == "CRM-1" and made["status"] == "scheduled"
    assert (made["endTime"], made["title"]) == ("2027-03-10T15:00:00.000Z", "Discovery call")
    assert (made["customerId"], made["customerName"]) == ("c1", "John Doe")
    assert not [k for k in made if "rep" in k.lower() or k in ("user_email", "userEmail")]


async def test_a_post_that_changes_nothing_keeps_updated_at(client: Client) -> None:
    first, second = await post(client), await post(client)
    assert second["updatedAt"] == first["updatedAt"]


async def test_omitted_optionals_are_kept_or_cleared_by_switch(
    client: Client, sim: SalesAskSim
) -> None:
    await post(client)
    kept = await post(client, title=None, end_time=None, customer=None)
    assert kept["title"] == "Discovery call" and "endTime" in kept
    sim.clear_omitted = True
    cleared = await post(client, title=None, end_time=None, customer=None)
    assert not {"title", "endTime", "customerName"} & set(cleared)


async def test_put_merges_fields_and_the_nested_customer(client: Client) -> None:
    await post(client)
    status, body = await call(client, "PUT", f"{BASE}/CRM-1", {"customer": {"name": "Jane"}})
    made = body["appointment"]
    assert status == 200 and made["customerName"] == "Jane"
    assert made["customerEmail"] == "john@example.com"
    assert made["title"] == "Discovery call"


async def test_put_get_delete_of_an_unknown_task_are_404(client: Client) -> None:
    for method, body in (("PUT", {"title": "x"}), ("GET", None), ("DELETE", None)):
        assert (await call(client, method, f"{BASE}/nope", body))[0] == 404


async def test_delete_is_hard_and_a_later_post_gets_a_new_id(
    client: Client, sim: SalesAskSim
) -> None:
    first = await post(client)
    status, body = await call(client, "DELETE", f"{BASE}/CRM-1")
    assert status == 200 and body["success"]
    assert (await call(client, "GET", f"{BASE}/CRM-1"))[0] == 404
    assert (await post(client))["id"] != first["id"]
    sim.delete_status = 204
    assert await call(client, "DELETE", f"{BASE}/CRM-1") == (204, None)


async def test_event_ids_with_reserved_characters_route(client: Client, sim: SalesAskSim) -> None:
    await post(client, event_id="a/b c:d@e{f}")
    status, body = await call(client, "GET", f"{BASE}/a%2Fb%20c%3Ad%40e%7Bf%7D")
    assert status == 200 and body["appointment"]["event_id"] == "a/b c:d@e{f}"


async def list_ids(client: Client, **params: str) -> list[str]:
    status, body = await call(client, "GET", BASE, **params)
    assert status == 200, body
    return [a["event_id"] for a in body["appointments"]]


async def test_listing_pages_in_start_then_id_order(client: Client, sim: SalesAskSim) -> None:
    for n, hour in enumerate([16, 14, 15, 14, 16]):
        await post(client, event_id=f"e{n}", start_time=f"2027-03-10T{hour}:00:00.000Z")
    tasks = sorted(sim.org().tasks.values(), key=lambda t: (t.start, t.id))
    seen, cursor = [], None
    while True:
        _, body = await call(
            client, "GET", BASE, limit="2", **({"startAfter": cursor} if cursor else {})
        )
        seen += [a["event_id"] for a in body["appointments"]]
        if not (cursor := body["nextCursor"]):
            break
    assert seen == [t.event_id for t in tasks]


async def test_listing_defaults_to_25_and_page_size_caps_it(
    client: Client, sim: SalesAskSim
) -> None:
    for n in range(30):
        await post(client, event_id=f"e{n:02}")
    assert len(await list_ids(client)) == 25
    sim.page_size = 3
    assert len(await list_ids(client, limit="100")) == 3


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
async def test_limit_out_of_range_is_400(client: Client, limit: str) -> None:
    assert (await call(client, "GET", BASE, limit=limit))[0] == 400


async def test_a_foreign_cursor_is_400(client: Client) -> None:
    assert (await call(client, "GET", BASE, startAfter="not-a-cursor"))[0] == 400


async def test_dates_filter_start_time_by_inclusive_utc_days(client: Client) -> None:
    days = ["2027-03-09T23:59:59.999", "2027-03-10T00:00:00.000", "2027-03-11T23:59:59.999"]
    for n, start in enumerate([*days, "2027-03-12T00:00:00.000"]):
        await post(client, event_id=f"e{n}", start_time=f"{start}Z", end_time=None)
    assert await list_ids(client, fromDate="2027-03-10", toDate="2027-03-11") == ["e1", "e2"]
    iso = {"fromDate": "2027-03-10T00:00:00Z", "toDate": "2027-03-11T23:59:59.999Z"}
    assert await list_ids(client, **iso) == ["e1", "e2"]
    assert (await call(client, "GET", BASE, fromDate="March"))[0] == 400


async def test_listing_filters_by_rep(client: Client, sim: SalesAskSim) -> None:
    sim.set_rep("other@example.com")
    await post(client, event_id="mine")
    await post(client, event_id="theirs", user_email="other@example.com")
    assert await list_ids(client, user_email="OTHER@example.com") == ["theirs"]


async def test_array_key_is_a_switch(client: Client, sim: SalesAskSim) -> None:
    sim.array_key = "data"
    await post(client)
    _, body = await call(client, "GET", BASE)
    assert [a["event_id"] for a in body["data"]] == ["CRM-1"] and body["nextCursor"] is None


async def test_firestore_mode_renders_timestamp_objects(client: Client, sim: SalesAskSim) -> None:
    sim.firestore_timestamps = True
    made = await post(client)
    start = datetime(2027, 3, 10, 14, tzinfo=UTC).timestamp()
    assert made["startTime"] == {"_seconds": start, "_nanoseconds": 0}
    assert set(made["updatedAt"]) == {"_seconds", "_nanoseconds"}


async def test_rate_limit_answers_429_with_retry_after(client: Client, sim: SalesAskSim) -> None:
    sim.rate_limit = (2, 60)
    statuses = [(await call(client, "GET", BASE))[0] for _ in range(3)]
    async with client.get(BASE, headers=KEY) as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert statuses == [200, 200, 429]


async def test_fail_next_answers_the_next_requests_then_stops(
    client: Client, sim: SalesAskSim
) -> None:
    sim.fail_next(503, {"Retry-After": "3"}, times=2)
    async with client.get(BASE, headers=KEY) as response:
        assert (response.status, response.headers["Retry-After"]) == (503, "3")
    assert [(await call(client, "GET", BASE))[0] for _ in range(2)] == [503, 200]


async def test_write_counter_and_log_cover_v1_only(client: Client, sim: SalesAskSim) -> None:
    await post(client)
    await call(client, "GET", BASE)
    await call(client, "PUT", f"{BASE}/CRM-1", {"title": "x"})
    await call(client, "DELETE", f"{BASE}/CRM-1")
    await call(client, "GET", "/_sim/tasks")
    assert sim.writes == 3
    assert [r["method"] for r in sim.requests] == ["POST", "GET", "PUT", "DELETE"]
    assert sim.requests[2]["body"] == {"title": "x"}


async def test_vendor_side_edit_status_and_touch_bump_updated_at(
    client: Client, sim: SalesAskSim
) -> None:
    made = await post(client)
    edited = sim.edit("CRM-1", {"title": "Edited at the vendor"})
    status = sim.set_status("CRM-1", "completed")
    touched = sim.touch("CRM-1")
    stamps = [made["updatedAt"], edited["updatedAt"], status["updatedAt"], touched["updatedAt"]]
    assert stamps == sorted(set(stamps))
    assert (touched["title"], touched["status"]) == ("Edited at the vendor", "completed")


async def test_control_endpoints(client: Client, sim: SalesAskSim) -> None:
    await post(client)
    status, body = await call(client, "POST", "/_sim/tasks/CRM-1/edit", {"status": "matched"})
    assert status == 200 and body["appointment"]["status"] == "matched"
    status, body = await call(client, "GET", "/_sim/tasks")
    assert [(t["event_id"], t["user_email"]) for t in body["tasks"]] == [
        ("CRM-1", "rep@example.com")
    ]
    await call(client, "POST", "/_sim/set_rep", {"email": "rep@example.com", "active": False})
    assert (await call(client, "POST", BASE, task(event_id="CRM-2")))[0] == 400
    await call(client, "POST", "/_sim/fail_next", {"status": 502})
    assert (await call(client, "GET", BASE))[0] == 502
    assert (await call(client, "DELETE", "/_sim/tasks/CRM-1"))[0] == 200
    assert sim.org().tasks == {}
    status, body = await call(client, "GET", "/_sim/requests")
    assert body["writes"] == sim.writes == 2
    assert (await call(client, "POST", "/_sim/app", {}))[0] == 404
    assert (await call(client, "POST", "/_sim/touch", {"nope": 1}))[0] == 400


async def test_each_api_key_sees_its_own_organisation(sim: SalesAskSim, client: Client) -> None:
    sim.add_org("other", "other-key", {"x@other.example": True})
    await post(client)
    async with client.get(BASE, headers={"x-api-key": "other-key"}) as response:
        assert (await response.json())["appointments"] == []


async def test_serve_listens_on_loopback(session: aiohttp.ClientSession) -> None:
    runner = await simulator.serve(api_key="k", reps={"a@example.com": True})
    try:
        sim = runner.app[simulator.SIM]
        async with session.get(
            f"{simulator.base_url(runner)}{BASE}", headers={"x-api-key": "k"}
        ) as r:
            assert r.status == 200 and sim.requests[0]["path"] == BASE
    finally:
        await runner.cleanup()
