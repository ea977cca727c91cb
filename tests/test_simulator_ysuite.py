"""The YSUITE simulator's own behaviour (vendors/ysuite.md section 9), over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from syncd.simulators import SIMULATORS
from syncd.simulators import ysuite as simulator
from syncd.simulators.ysuite import YSuiteSim

Client = TestClient[Any, Any]
KEYS = {"x-ysuite-access-key": "sim-access", "x-ysuite-secret-key": "sim-secret"}
BASE = "/v1/tasks"


def task(**fields: Any) -> dict[str, Any]:
    """A valid POST body, with overrides (None drops a field)."""
    body = {
        "title": "Follow up with Sarah",
        "start_datetime": "2027-03-10T10:00:00",
        "end_datetime": "2027-03-10T11:00:00",
        "cstid": 10,
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


@pytest.fixture
def sim() -> YSuiteSim:
    return simulator.default()


@pytest.fixture
async def client(sim: YSuiteSim, aiohttp_client: Callable[[Any], Awaitable[Client]]) -> Client:
    return await aiohttp_client(sim.app())


async def call(
    client: Client,
    method: str,
    path: str,
    body: Any = None,
    headers: Any = KEYS,
    **params: str,
) -> tuple[int, Any]:
    """One request with the key pair: status and decoded JSON."""
    async with client.request(method, path, json=body, params=params, headers=headers) as r:
        return r.status, await r.json()


async def post(client: Client, **fields: Any) -> int:
    status, body = await call(client, "POST", BASE, task(**fields))
    assert status == 200, body
    ident: int = body["data"]["activity_id"]
    return ident


async def titles(client: Client, **params: str) -> list[str]:
    status, body = await call(client, "GET", BASE, **params)
    assert status == 200, body
    return [t["title"] for t in body["data"]["data"]]


def test_the_registry_names_this_module() -> None:
    assert SIMULATORS["ysuite"] == simulator.__name__


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-ysuite-access-key": "sim-access"}, KEYS | {"x-ysuite-secret-key": "wrong"}],
    ids=["none", "no-secret", "wrong-secret"],
)
async def test_missing_or_wrong_keys_are_401(client: Client, headers: dict[str, str]) -> None:
    assert await call(client, "GET", BASE, headers=headers) == (
        401,
        {"success": False, "message": "Invalid API credentials."},
    )


async def test_revoked_key_no_organisation_and_missing_add_on(
    client: Client, sim: YSuiteSim
) -> None:
    sim.remove_addon("deals")
    assert (await call(client, "GET", "/v1/deals"))[0] == 403
    assert (await call(client, "GET", "/v1/contacts"))[0] == 200
    sim.ws().organisation = False
    status, body = await call(client, "GET", BASE)
    assert (status, body["message"]) == (400, "No organisation assigned to user")
    sim.revoke()
    assert (await call(client, "GET", BASE))[0] == 401


# -- create ----------------------------------------------------------------------------------


async def test_create_answers_the_documented_shape_with_defaults(
    client: Client, sim: YSuiteSim
) -> None:
    status, body = await call(client, "POST", BASE, task(activity_type="Call"))
    assert status == 200 and body["message"] == "Task activity created successfully."
    assert body["data"] == {
        "activity_id": 3,  # after the two non-task activities
        "title": "Follow up with Sarah",
        "activity_type": "Task",
    }
    stored = sim.task(3)
    assert (stored.priority, stored.status, stored.activity_type) == (2, 0, "Task")


async def test_strings_are_trimmed_and_blank_ones_become_null(
    client: Client, sim: YSuiteSim
) -> None:
    ident = await post(client, title="  Padded  ", description="   ")
    assert (sim.task(ident).title, sim.task(ident).description) == ("Padded", None)


async def test_validation_errors_are_laravel_422s(client: Client) -> None:
    status, body = await call(client, "POST", BASE, {"title": "  "})
    assert status == 422 and body["success"] is False
    assert body["message"] == "The title field is required. (and 3 more errors)"
    assert body["errors"] == {
        "title": ["The title field is required."],
        "start_datetime": ["The start datetime field is required."],
        "cstid": ["The cstid field is required when deal id is not present."],
        "deal_id": ["The deal id field is required when cstid is not present."],
    }


@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"title": "x" * 151}, "title", "The title must not be greater than 150 characters."),
        (
            {"start_datetime": "2027-03-10T10:00:00Z"},
            "start_datetime",
            "The start datetime does not match the format Y-m-d\\TH:i:s.",
        ),
        ({"end_datetime": "2027-03-10 11:00"}, "end_datetime", None),
        ({"priority": 5}, "priority", "The priority must be between 0 and 4."),
        ({"status": "open"}, "status", "The status must be an integer."),
        ({"cstid": 99}, "cstid", "The selected cstid is invalid."),
        ({"deal_id": 98}, "deal_id", "The selected deal id is invalid."),
        ({"assigned_user_id": 8}, "assigned_user_id", None),
        ({"tags": [1, 9]}, "tags.1", "The selected tags.1 is invalid."),
        ({"description": 5}, "description", "The description must be a string."),
    ],
)
async def test_each_rule(
    client: Client, fields: dict[str, Any], name: str, message: str | None
) -> None:
    status, body = await call(client, "POST", BASE, task(**fields))
    assert status == 422 and list(body["errors"]) == [name]
    assert message is None or (body["errors"][name] == [message] and body["message"] == message)


async def test_unknown_links_can_be_400s(client: Client, sim: YSuiteSim) -> None:
    sim.link_error_status = 400
    assert await call(client, "POST", BASE, task(cstid=99)) == (
        400,
        {"success": False, "message": "Cstid 99 not found."},
    )


async def test_a_deal_alone_is_link_enough(client: Client, sim: YSuiteSim) -> None:
    ident = await post(client, cstid=None, deal_id=20, assigned_user_id=7, tags=[2])
    stored = sim.task(ident)
    assert (stored.cstid, stored.deal_id, stored.assigned_user_id, stored.tags) == (
        None,
        20,
        7,
        [2],
    )


async def test_stall_after_store_stores_before_it_answers(
    client: Client, sim: YSuiteSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored, store = asyncio.Event(), sim.store

    def noting(*args: Any, **kwargs: Any) -> simulator.Activity:
        stored.set()
        return store(*args, **kwargs)

    monkeypatch.setattr(sim, "store", noting)
    sim.stall_after_store = 60.0
    pending = asyncio.ensure_future(call(client, "POST", BASE, task()))
    await stored.wait()
    assert not pending.done() and sim.snapshot()[0]["title"] == "Follow up with Sarah"
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending


# -- get, put, delete ------------------------------------------------------------------------


async def test_get_answers_the_whole_task_and_400_for_anything_else(
    client: Client, sim: YSuiteSim
) -> None:
    ident = await post(client, description="Notes")
    status, body = await call(client, "GET", f"{BASE}/{ident}")
    assert status == 200 and body["data"] == sim.task(ident).render()
    assert set(body["data"]) >= {"description", "deal_id", "assigned_user_id", "tags"}
    for other in ("1", "999", "abc"):  # a call (not a task), unknown, not a number
        assert await call(client, "GET", f"{BASE}/{other}") == (
            400,
            {"success": False, "message": "Task not found."},
        )


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_undocumented_routes_are_405_or_404_when_off(
    client: Client, sim: YSuiteSim, method: str
) -> None:
    ident = await post(client)
    status, body = await call(client, method, f"{BASE}/{ident}", task())
    assert status == 405 and f"The {method} method is not supported" in body["message"]
    sim.missing_route_status = 404
    assert await call(client, method, f"{BASE}/{ident}", task()) == (
        404,
        {"success": False, "message": "API could not be found"},
    )


async def test_put_merges_or_replaces_by_switch(client: Client, sim: YSuiteSim) -> None:
    sim.supports_update = True
    ident = await post(client, priority=4, description="Keep")
    status, body = await call(client, "PUT", f"{BASE}/{ident}", {"title": "Merged"})
    assert status == 200 and body["message"] == "Task activity updated successfully."
    assert (sim.task(ident).title, sim.task(ident).priority) == ("Merged", 4)
    sim.put_replaces = True
    assert (await call(client, "PUT", f"{BASE}/{ident}", {"title": "x"}))[0] == 422
    assert (await call(client, "PUT", f"{BASE}/{ident}", task(title="Replaced")))[0] == 200
    stored = sim.task(ident)
    assert (stored.title, stored.priority, stored.description) == ("Replaced", 2, None)
    assert (await call(client, "PUT", f"{BASE}/999", task()))[0] == 400


async def test_delete_is_200_and_then_400(client: Client, sim: YSuiteSim) -> None:
    sim.supports_delete = True
    ident = await post(client)
    status, body = await call(client, "DELETE", f"{BASE}/{ident}")
    assert status == 200 and body["success"] is True
    assert (await call(client, "DELETE", f"{BASE}/{ident}"))[0] == 400
    assert (await call(client, "DELETE", f"{BASE}/1"))[0] == 400  # not a task: kept
    assert 1 in sim.ws().activities


# -- listing ---------------------------------------------------------------------------------


async def test_list_pages_are_zero_based_in_and_one_based_out(client: Client) -> None:
    for n in range(12):
        await post(client, title=f"t{n:02}")
    _, body = await call(client, "GET", BASE, pageIndex="1")
    page = body["data"]
    assert (page["current_page"], page["total_records"], page["total_pages"]) == (2, 12, 2)
    assert [t["title"] for t in page["data"]] == ["t10", "t11"]  # default pageSize 10
    assert await titles(client, pageIndex="5") == []
    assert all(t["activity_type"] == "Task" for t in page["data"])


async def test_empty_list_has_one_page(client: Client) -> None:
    _, body = await call(client, "GET", BASE)
    assert body["data"] == {"data": [], "current_page": 1, "total_records": 0, "total_pages": 1}


async def test_page_size_is_clamped_or_refused(client: Client, sim: YSuiteSim) -> None:
    for n in range(3):
        await post(client, title=f"t{n}")
    sim.page_size = 2
    assert len(await titles(client, pageSize="100")) == 2
    sim.page_size = 100
    assert len(await titles(client, pageSize="500")) == 3
    sim.over_page_size = "422"
    assert (await call(client, "GET", BASE, pageSize="500"))[0] == 422
    assert (await call(client, "GET", BASE, pageSize="0"))[0] == 422


async def test_filters(client: Client, sim: YSuiteSim) -> None:
    await post(client, title="Alpha call", start_datetime="2027-03-09T23:59:59", end_datetime=None)
    await post(client, title="Beta", start_datetime="2027-03-10T00:00:00", status=2, priority=4)
    await post(client, title="alphabet", start_datetime="2027-03-11T23:59:59", assigned_user_id=7)
    await post(client, title="Late", start_datetime="2027-03-12T00:00:00")
    days = {"due_date_from": "2027-03-10", "due_date_to": "2027-03-11"}
    assert await titles(client, **days) == ["Beta", "alphabet"]
    assert await titles(client, search="ALPHA") == ["Alpha call", "alphabet"]
    assert await titles(client, status="2") == await titles(client, priority="4") == ["Beta"]
    assert await titles(client, assigned_user_id="7") == ["alphabet"]
    sim.due_date_field = "end_datetime"  # the first one has no end: never matches
    assert await titles(client, due_date_to="2027-03-10") == ["Beta", "alphabet", "Late"]
    assert (await call(client, "GET", BASE, due_date_from="March"))[0] == 422


async def test_sorting(client: Client, sim: YSuiteSim) -> None:
    for title, hour in (("b", 12), ("a", 10), ("c", 11)):
        await post(client, title=title, start_datetime=f"2027-03-10T{hour}:00:00")
    assert await titles(client) == ["a", "c", "b"]  # start_datetime by default
    assert await titles(client, sortBy="title", sortOrder="desc") == ["c", "b", "a"]
    assert await titles(client, sortBy="activity_id") == ["b", "a", "c"]
    status, body = await call(client, "GET", BASE, sortBy="nope")
    assert status == 422 and "sortBy" in body["errors"]
    sim.unknown_sort_status = None
    assert await titles(client, sortBy="nope") == ["a", "c", "b"]


async def test_brief_list_shows_only_the_seed_example_keys(client: Client, sim: YSuiteSim) -> None:
    await post(client, description="hidden")
    sim.brief_list = True
    _, body = await call(client, "GET", BASE)
    assert set(body["data"]["data"][0]) == set(simulator.BRIEF_KEYS)


async def test_insert_during_paging_adds_tasks_between_page_reads_only(
    client: Client, sim: YSuiteSim
) -> None:
    for n in range(3):
        await post(client, title=f"t{n}")
    sim.insert_during_paging = 5
    totals = []
    for index in ("0", "1", "2", "3"):
        _, body = await call(client, "GET", BASE, pageSize="2", pageIndex=index)
        totals.append(body["data"]["total_records"])
    assert totals == [3, 4, 4, 4]  # page 1 became the last page: nothing added after it
    assert [t["title"] for t in sim.snapshot()][3:] == ["Unrelated 6"]
    assert sim.insert_during_paging == 4


# -- contacts and deals ----------------------------------------------------------------------


async def test_contacts_search_get_and_create(client: Client) -> None:
    _, body = await call(client, "GET", "/v1/contacts", search="CUSTOMER@client.test")
    [found] = body["data"]["data"]
    assert (found["cstid"], found["cstemail"]) == (10, "customer@client.test")
    assert (await call(client, "GET", "/v1/contacts", search="nobody@"))[1]["data"]["data"] == []
    assert (await call(client, "GET", "/v1/contacts/10"))[1]["data"]["cstname"] == "Client Ltd"
    assert (await call(client, "GET", "/v1/contacts/11"))[0] == 400
    status, body = await call(client, "POST", "/v1/contacts", {"contact_type": 3})
    assert status == 422 and set(body["errors"]) == {"cstname", "contact_type"}
    new = {"cstname": "Sarah", "contact_type": 1, "cstemail": "s@x.test"}
    status, body = await call(client, "POST", "/v1/contacts", new)
    assert status == 200 and body["data"] == {"cstid": 11, **new}


async def test_deals_list_by_contact_and_create(client: Client) -> None:
    _, body = await call(client, "GET", "/v1/deals", cstid="10")
    assert [d["deal_id"] for d in body["data"]["data"]] == [20]
    assert (await call(client, "GET", "/v1/deals", cstid="11"))[1]["data"]["data"] == []
    status, body = await call(client, "POST", "/v1/deals", {"deal_name": "New", "cstid": 10})
    assert status == 200 and body["data"]["deal_id"] == 21
    assert (await call(client, "GET", "/v1/deals/21"))[0] == 200
    assert (await call(client, "POST", "/v1/deals", {"cstid": 99}))[0] == 422


# -- faults, limits, controls ----------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(client: Client, sim: YSuiteSim) -> None:
    sim.rate_limit = (2, 60)
    statuses = [(await call(client, "GET", BASE))[0] for _ in range(3)]
    async with client.get(BASE, headers=KEYS) as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        assert await response.json() == {"success": False, "message": "Too Many Requests"}
    assert statuses == [200, 200, 429]


async def test_fail_next_with_headers_body_and_times(client: Client, sim: YSuiteSim) -> None:
    sim.fail_next(503, {"Retry-After": "3"}, times=2)
    async with client.get(BASE, headers=KEYS) as response:
        assert (response.status, response.headers["Retry-After"]) == (503, "3")
    assert [(await call(client, "GET", BASE))[0] for _ in range(2)] == [503, 200]
    sim.fail_next(200, body={"success": False, "message": "odd"})
    assert await call(client, "GET", BASE) == (200, {"success": False, "message": "odd"})


async def test_vendor_side_controls(client: Client, sim: YSuiteSim) -> None:
    ident = await post(client)
    assert sim.cancel(ident)["status"] == 3
    assert sim.no_show(ident)["status"] == 4
    assert sim.complete(ident)["status"] == 2
    sim.server_timezone = "Europe/Berlin"
    moved = sim.edit(ident, {"start_datetime": datetime(2027, 3, 10, 8, tzinfo=UTC)})
    assert moved["start_datetime"] == "2027-03-10T09:00:00"
    with pytest.raises(simulator.SimError):
        sim.edit(ident, {"priority": 9})
    added = sim.add_task(title="Walk-in", start_datetime=datetime(2027, 7, 1, 8, tzinfo=UTC))
    assert added["start_datetime"] == "2027-07-01T10:00:00" and added["cstid"] is None
    sim.remove(ident)
    assert [t["title"] for t in sim.snapshot()] == ["Walk-in"]


async def test_control_endpoints_and_the_request_log(client: Client, sim: YSuiteSim) -> None:
    ident = await post(client)
    await call(client, "GET", BASE, pageSize="5")
    assert (await call(client, "POST", "/_sim/cancel", {"activity_id": ident}))[0] == 200
    _, body = await call(client, "GET", "/_sim/tasks")
    assert [(t["workspace"], t["status"]) for t in body["data"]] == [("demo", 3)]
    await call(client, "POST", "/_sim/fail_next", {"status": 502})
    assert (await call(client, "GET", BASE))[0] == 502
    assert (await call(client, "POST", "/_sim/store", {}))[0] == 404
    assert (await call(client, "POST", "/_sim/cancel", {"nope": 1}))[0] == 400
    assert (await call(client, "POST", "/_sim/remove", {"activity_id": ident}))[0] == 200
    _, body = await call(client, "GET", "/_sim/requests")
    assert body["data"]["writes"] == sim.writes == 1
    assert [(r["method"], r["query"]) for r in sim.requests] == [
        ("POST", {}),
        ("GET", {"pageSize": "5"}),
        ("GET", {}),
    ]
    assert sim.requests[0]["body"] == task()


async def test_each_key_pair_sees_its_own_workspace(client: Client, sim: YSuiteSim) -> None:
    sim.add_workspace("other", "other-access", "other-secret")
    await post(client)
    other = {"x-ysuite-access-key": "other-access", "x-ysuite-secret-key": "other-secret"}
    _, body = await call(client, "GET", BASE, headers=other)
    assert body["data"]["data"] == []
    assert (await call(client, "POST", BASE, task(), headers=other))[0] == 422  # no contact 10


async def test_serve_listens_on_loopback(session: aiohttp.ClientSession) -> None:
    runner = await simulator.serve()
    try:
        sim = runner.app[simulator.SIM]
        async with session.get(f"{simulator.base_url(runner)}{BASE}", headers=KEYS) as r:
            assert r.status == 200 and sim.requests[0]["path"] == BASE
    finally:
        await runner.cleanup()
