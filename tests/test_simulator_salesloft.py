"""The Salesloft simulator's own behaviour (vendors/salesloft.md section 10), over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from syncd.simulators import SIMULATORS
from syncd.simulators import salesloft as simulator
from syncd.simulators.salesloft import SalesloftSim, User

Client = TestClient[Any, Any]
AUTH = {"Authorization": "Bearer sim-key"}
UPSERT = "/v2/calendar/events/upsert"
EVENTS = "/v2/calendar/events"
JOBS = "/v2/bulk_jobs"


def event(ident: str = "ev-1", **fields: Any) -> dict[str, Any]:
    """A valid upsert body, with overrides (None drops a field)."""
    body = {
        "calendar_id": "external_u-1",
        "id": ident,
        "i_cal_uid": f"{ident}@example.com",
        "start_time": "2027-03-10T07:00:00-07:00",
        "end_time": "2027-03-10T15:00:00Z",
        "title": "Discovery call",
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


class Clock:
    """A hand-moved clock for the rate windows."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim() -> SalesloftSim:
    sim = simulator.default()
    sim.bulk_tick = 0  # jobs advance only on `step()`
    return sim


@pytest.fixture
async def client(sim: SalesloftSim, aiohttp_client: Callable[[Any], Awaitable[Client]]) -> Client:
    return await aiohttp_client(sim.app())


async def call(
    client: Client, method: str, path: str, body: Any = None, *, headers: Any = None, **params: str
) -> tuple[int, Any, Any]:
    """One request with the token: status, decoded JSON and the headers."""
    async with client.request(
        method, path, json=body, params=params, headers=AUTH if headers is None else headers
    ) as response:
        return response.status, await response.json(), response.headers


async def upsert(client: Client, ident: str = "ev-1", **fields: Any) -> dict[str, Any]:
    status, body, _ = await call(client, "POST", UPSERT, event(ident, **fields))
    assert status == 201, body
    data: dict[str, Any] = body["data"]
    return data


async def listed(client: Client, **params: str) -> list[str]:
    status, body, _ = await call(client, "GET", EVENTS, **params)
    assert status == 200, body
    return [item["id"] for item in body["data"]]


def test_registered() -> None:
    assert SIMULATORS["salesloft"] == simulator.__name__


# -- auth and envelopes ----------------------------------------------------------------------


async def test_a_bad_token_is_401_and_still_says_the_cost(client: Client) -> None:
    status, body, headers = await call(client, "GET", EVENTS, headers={"Authorization": "x"})
    assert (status, body) == (401, {"error": "Unauthorized"})
    assert headers["x-ratelimit-endpoint-cost"] == "1"


async def test_an_unknown_path_is_404(client: Client) -> None:
    assert (await call(client, "GET", "/v2/nothing"))[0] == 404


# -- upsert ----------------------------------------------------------------------------------


async def test_upsert_creates_then_patches(client: Client, sim: SalesloftSim) -> None:
    status, body, _ = await call(client, "POST", UPSERT, event(description="Agenda"))
    assert (status, body["upsert_type"]) == (201, "create")
    created = body["data"]
    assert (created["start_time"], created["end_time"]) == (
        "2027-03-10T14:00:00Z",
        "2027-03-10T15:00:00Z",
    )  # normalised to UTC
    assert created["created_at"].count(":") == 2 and not created["created_at"].endswith("Z")
    status, body, _ = await call(client, "POST", UPSERT, event(title="Moved"))
    assert (status, body["upsert_type"]) == (201, "update")
    data = body["data"]
    assert data["description"] == "Agenda"  # omitted: unchanged
    assert data["extended_properties"]["changed_attributes"] == ["title"]
    assert data["updated_at"] > created["updated_at"] and data["updated_at"].endswith("Z")
    assert len(sim.team().events) == 1


async def test_an_upsert_without_change_keeps_the_write_time(client: Client) -> None:
    first = await upsert(client)
    assert (await upsert(client))["updated_at"] == first["updated_at"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": None}, "id"),
        ({"i_cal_uid": ""}, "i_cal_uid"),
        ({"start_time": None}, "start_time"),
        ({"end_time": "tomorrow"}, "end_time"),
        ({"start_time": "2027-03-10T14:00:00"}, "start_time"),  # no offset
        ({"status": "maybe"}, "status"),
        ({"transparency": "busy"}, "transparency"),
        ({"attendees": [{"email": "a@x", "status": "yes"}]}, "attendees"),
        ({"title": 5}, "title"),
    ],
)
async def test_invalid_upserts_are_422_with_field_errors(
    client: Client, fields: dict[str, Any], field: str
) -> None:
    status, body, _ = await call(client, "POST", UPSERT, event(**fields))
    assert status == 422 and field in body["errors"]


@pytest.mark.parametrize("status", [422, 404])
async def test_a_calendar_of_nobody_is_refused(
    client: Client, sim: SalesloftSim, status: int
) -> None:
    sim.unknown_calendar_status = status
    answer, body, _ = await call(client, "POST", UPSERT, event(calendar_id="external_u-9"))
    assert answer == status and "calendar_id" in body["errors"]


async def test_the_stale_guard_compares_the_sent_updated_at(
    client: Client, sim: SalesloftSim
) -> None:
    await upsert(client, updated_at="2027-02-02T00:00:00Z")
    kept = await upsert(client, title="Old", updated_at="2027-02-01T00:00:00+00:00")
    assert kept["title"] == "Discovery call"
    assert (await upsert(client, title="Same", updated_at="2027-02-02T00:00:00Z"))[
        "title"
    ] == "Same"
    sim.stale_on_equal = True
    assert (await upsert(client, title="X", updated_at="2027-02-02T00:00:00Z"))["title"] == "Same"
    assert (await upsert(client, title="New", updated_at="2027-02-03T00:00:00Z"))["title"] == "New"


async def test_removed_attendees_stay_deleted_and_rsvp_changes_are_flagged(
    client: Client,
) -> None:
    jim = {"name": "Jim", "email": "jim@x.com", "status": "accepted", "organizer": True}
    pam = {"name": "Pam", "email": "pam@x.com", "status": "needsAction"}
    first = (await upsert(client, attendees=[jim, pam]))["attendees"]
    assert [a["status_changed"] for a in first] == [True, False]
    second = await upsert(client, attendees=[jim | {"status": "declined"}])
    by_email = {a["email"]: a for a in second["attendees"]}
    assert by_email["jim@x.com"]["status_changed"] and by_email["jim@x.com"]["deleted_at"] is None
    assert by_email["pam@x.com"]["deleted_at"] is not None
    assert second["extended_properties"]["changed_attributes"] == ["attendees"]


async def test_cancelled_events_are_not_busy_and_stay_listed(client: Client) -> None:
    data = await upsert(client, status="cancelled", canceled_at="2027-03-01T00:00:00Z")
    assert data["busy"] is False and data["canceled_at"] == "2027-03-01T00:00:00.000000Z"
    assert await listed(client) == ["ev-1"]


async def test_the_id_only_key_follows_a_changed_uid(client: Client, sim: SalesloftSim) -> None:
    await upsert(client)
    data = await upsert(client, i_cal_uid="new@example.com", upsert_key=["id"])
    assert data["i_cal_uid"] == "new@example.com" and len(sim.team().events) == 1
    await upsert(client, i_cal_uid="third@example.com")  # the default key: a second event
    assert len(sim.team().events) == 2


# -- listing ---------------------------------------------------------------------------------


async def test_the_window_bounds_the_end_inclusively_and_the_start_exclusively(
    client: Client,
) -> None:
    await upsert(client, "a", start_time="2027-03-10T09:00:00Z", end_time="2027-03-10T10:00:00Z")
    await upsert(client, "b", start_time="2027-03-10T10:00:00Z", end_time="2027-03-10T11:00:00Z")
    window = {"start_time": "2027-03-10T10:00:00Z", "end_time": "2027-03-10T10:00:00Z"}
    assert await listed(client, **window) == ["a"]
    assert await listed(client, **window | {"end_time": "2027-03-10T10:00:01Z"}) == ["b", "a"]


async def test_default_order_is_descending_and_pages_follow(
    client: Client, sim: SalesloftSim
) -> None:
    for n in range(5):
        await upsert(client, f"e{n}", start_time=f"2027-03-1{n}T09:00:00Z")
    assert await listed(client) == ["e4", "e3", "e2", "e1", "e0"]
    _, body, _ = await call(
        client, "GET", EVENTS, sort_direction="ASC", per_page="2", page="3",
        include_paging_counts="true",
    )  # fmt: skip
    assert [e["id"] for e in body["data"]] == ["e4"]
    paging = body["metadata"]["paging"]
    assert (paging["current_page"], paging["next_page"], paging["prev_page"]) == (3, None, 2)
    assert (paging["total_count"], paging["total_pages"]) == (5, 3)
    sim.page_size = 1
    body = (await call(client, "GET", EVENTS, per_page="100"))[1]
    assert len(body["data"]) == 1 and body["metadata"]["paging"]["next_page"] == 2


@pytest.mark.parametrize(
    "params", [{"per_page": "0"}, {"per_page": "101"}, {"sort_by": "updated_at"},
               {"sort_direction": "UP"}, {"start_time": "soon"}]
)  # fmt: skip
async def test_bad_list_parameters_are_422(client: Client, params: dict[str, str]) -> None:
    assert (await call(client, "GET", EVENTS, **params))[0] == 422


async def test_lenient_switches_clamp_and_ignore(client: Client, sim: SalesloftSim) -> None:
    sim.clamp_per_page, sim.strict_sort = True, False
    assert (await call(client, "GET", EVENTS, per_page="500", sort_by="updated_at"))[0] == 200


async def test_calendar_and_user_filters(client: Client, sim: SalesloftSim) -> None:
    sim.team().users["u-2"] = User(2, "u-2", "pam@example.com", "Pam")
    await upsert(client, "mine")
    guest = {"email": "PAM@example.com", "status": "accepted"}
    await upsert(client, "theirs", calendar_id="external_u-2")
    await upsert(client, "invited", attendees=[guest])
    assert sorted(await listed(client, calendar_id="external_u-2")) == ["theirs"]
    assert sorted(await listed(client, user_guid="u-2")) == ["invited", "theirs"]


# -- rate limits -----------------------------------------------------------------------------


async def test_every_answer_says_its_cost_and_what_is_left(client: Client) -> None:
    lefts = []
    for _ in range(3):
        status, _, headers = await call(client, "GET", EVENTS)
        assert status == 200 and headers["x-ratelimit-endpoint-cost"] == "1"
        lefts.append(headers["x-ratelimit-remaining-minute"])
    status, _, headers = await call(client, "POST", UPSERT, event(id=None))
    assert status == 422 and headers["x-ratelimit-remaining-minute"] == "596"
    assert lefts == ["599", "598", "597"]


@pytest.mark.parametrize(("page", "cost"), [("100", 1), ("101", 3), ("151", 8), ("251", 10),
                                            ("501", 30)])  # fmt: skip
async def test_deep_pages_cost_more(client: Client, page: str, cost: int) -> None:
    headers = (await call(client, "GET", EVENTS, page=page))[2]
    assert headers["x-ratelimit-endpoint-cost"] == str(cost)
    assert headers["x-ratelimit-remaining-minute"] == str(600 - cost)


async def test_endpoint_costs_can_be_overridden(client: Client, sim: SalesloftSim) -> None:
    sim.costs["GET /v2/bulk_jobs/{id}"] = 5
    await call(client, "POST", JOBS, {"type": "calendar/events/upsert"})
    headers = (await call(client, "GET", f"{JOBS}/1"))[2]
    assert (headers["x-ratelimit-endpoint-cost"], headers["x-ratelimit-remaining-minute"]) == (
        "5",
        "594",
    )


async def test_over_budget_is_429_without_retry_after_until_the_window_turns(
    client: Client, sim: SalesloftSim
) -> None:
    sim.clock = clock = Clock()
    sim.budget, sim.window = 3, 10.0
    assert [(await call(client, "GET", EVENTS))[0] for _ in range(4)] == [200, 200, 200, 429]
    status, body, headers = await call(client, "GET", EVENTS, page="101")
    assert (status, body) == (429, {"error": "API rate limit exceeded"})
    assert "Retry-After" not in headers and headers["x-ratelimit-remaining-minute"] == "0"
    assert sim.refused == 2
    clock.now += 10.0  # the next fixed window
    assert (await call(client, "GET", EVENTS))[0] == 200


async def test_a_sliding_window_and_a_retry_after_toggle(client: Client, sim: SalesloftSim) -> None:
    sim.clock = clock = Clock()
    sim.budget, sim.window, sim.sliding, sim.retry_after = 2, 10.0, True, 7
    await call(client, "GET", EVENTS)
    clock.now += 6
    await call(client, "GET", EVENTS)
    status, _, headers = await call(client, "GET", EVENTS)
    assert status == 429 and headers["Retry-After"] == "7"
    clock.now += 4.5  # the first call has left the window, the second has not
    assert [(await call(client, "GET", EVENTS))[0] for _ in range(2)] == [200, 429]


async def test_another_integration_spends_the_team_budget(
    client: Client, sim: SalesloftSim
) -> None:
    sim.window = 3600.0
    assert sim.consume(599) == 1
    assert (await call(client, "GET", EVENTS))[0] == 200
    assert (await call(client, "GET", EVENTS))[0] == 429


# -- bulk jobs -------------------------------------------------------------------------------


async def open_job(client: Client, records: list[Any]) -> int:
    status, body, _ = await call(client, "POST", JOBS, {"type": "calendar/events/upsert"})
    assert status == 200 and body["data"]["state"] == "open"
    job: int = body["data"]["id"]
    status, body, _ = await call(client, "POST", f"{JOBS}/{job}/job_data", {"data": records})
    assert (status, body) == (200, {"data": {"records": len(records)}})
    return job


async def job_state(client: Client, job: int) -> dict[str, Any]:
    data: dict[str, Any] = (await call(client, "GET", f"{JOBS}/{job}"))[1]["data"]
    return data


async def test_the_bulk_lifecycle(client: Client, sim: SalesloftSim) -> None:
    sim.bulk_per_tick = 2
    records = [event(f"b{n}") for n in range(3)] + [event("bad", start_time="soon")]
    job = await open_job(client, records)
    status, body, _ = await call(client, "PUT", f"{JOBS}/{job}", {"ready_to_execute": True})
    assert (status, body["data"]["state"], body["data"]["total"]) == (200, "executing", 4)
    assert body["data"]["marked_ready_at"] and body["data"]["started_at"] is None
    assert (await call(client, "GET", f"{JOBS}/{job}/results"))[1]["data"] == []
    sim.step()
    state = await job_state(client, job)
    assert (state["state"], state["processed"]) == ("executing", 2)
    assert (await call(client, "GET", f"{JOBS}/{job}/results"))[1]["data"] == []  # not done
    sim.step()
    state = await job_state(client, job)
    assert (state["state"], state["processed"], state["errors"]) == ("done", 4, 1)
    assert state["finished_at"] >= state["started_at"]
    first = (await call(client, "GET", f"{JOBS}/{job}/results", per_page="3"))[1]["data"]
    rest = await call(client, "GET", f"{JOBS}/{job}/results", **{"id[gt]": str(first[-1]["id"])})
    assert [r["status"] for r in first + rest[1]["data"]] == ["success"] * 3 + ["error"]
    assert first[0]["resource"]["id"] == "b0" and first[0]["record"]["id"] == "b0"
    errors = (await call(client, "GET", f"{JOBS}/{job}/results", status="error"))[1]["data"]
    assert [r["record"]["id"] for r in errors] == ["bad"] and "start_time" in errors[0]["error"]
    assert sorted(e.id for e in sim.team().events.values()) == ["b0", "b1", "b2"]


async def test_an_open_only_job_refuses_changes_after_ready(client: Client) -> None:
    job = await open_job(client, [event()])
    await call(client, "PUT", f"{JOBS}/{job}", {"ready_to_execute": True})
    assert (await call(client, "PUT", f"{JOBS}/{job}", {"name": "x"}))[0] == 422
    assert (await call(client, "POST", f"{JOBS}/{job}/job_data", {"data": [event()]}))[0] == 422


async def test_job_data_over_5000_and_unknown_types_are_422(client: Client) -> None:
    job = await open_job(client, [])
    too_many = {"data": [event()] * 5_001}
    assert (await call(client, "POST", f"{JOBS}/{job}/job_data", too_many))[0] == 422
    assert (await call(client, "POST", JOBS, {"type": "person/upsert"}))[0] == 422
    assert (await call(client, "GET", f"{JOBS}/999"))[0] == 404


async def test_one_job_at_a_time_per_team_in_order(client: Client, sim: SalesloftSim) -> None:
    sim.bulk_start_ticks = 1
    first = await open_job(client, [event("a", title="first")])
    second = await open_job(client, [event("a", title="second")])
    for job in (first, second):
        await call(client, "PUT", f"{JOBS}/{job}", {"ready_to_execute": True})
    sim.step()  # the first job's start delay
    assert (await job_state(client, first))["started_at"] is None
    sim.step()
    assert (await job_state(client, first))["state"] == "done"
    assert (await job_state(client, second))["processed"] == 0
    sim.step()
    sim.step()
    assert (await job_state(client, second))["state"] == "done"
    assert sim.event("a").values["title"] == "second"
    open_jobs = (await call(client, "GET", JOBS, state="done"))[1]["data"]
    assert [j["id"] for j in open_jobs] == [first, second]
    listed_data = (await call(client, "GET", f"{JOBS}/{first}/job_data"))[1]["data"]
    assert [d["status"] for d in listed_data] == ["success"]


async def test_bulk_records_meet_the_stale_guard(client: Client, sim: SalesloftSim) -> None:
    await upsert(client, updated_at="2027-02-02T00:00:00Z")
    job = await open_job(client, [event(title="Old", updated_at="2027-02-01T00:00:00Z")])
    await call(client, "PUT", f"{JOBS}/{job}", {"ready_to_execute": True})
    sim.step()
    [result] = (await call(client, "GET", f"{JOBS}/{job}/results"))[1]["data"]
    assert result["status"] == "success" and result["resource"]["title"] == "Discovery call"


async def test_the_ticker_runs_jobs_by_itself(
    aiohttp_client: Callable[[Any], Awaitable[Client]],
) -> None:
    sim = simulator.default()
    sim.bulk_tick = 0.001
    client = await aiohttp_client(sim.app())
    job = await open_job(client, [event()])
    await call(client, "PUT", f"{JOBS}/{job}", {"ready_to_execute": True})
    for _ in range(1000):
        if sim.team().jobs[job].state == "done":
            break
        await asyncio.sleep(0.005)
    assert (await job_state(client, job))["state"] == "done"


# -- users, faults, controls -----------------------------------------------------------------


async def test_users_me_and_search(client: Client, sim: SalesloftSim) -> None:
    sim.team().users["u-2"] = User(2, "u-2", "pam@example.com", "Pam")
    me = (await call(client, "GET", "/v2/me.json"))[1]["data"]
    assert (me["guid"], me["email"]) == ("u-1", "rep@example.com")
    found = (await call(client, "GET", "/v2/users.json", search="PAM@example"))[1]["data"]
    assert [u["guid"] for u in found] == ["u-2"]
    assert len((await call(client, "GET", "/v2/users", guid="u-1"))[1]["data"]) == 1
    assert (await call(client, "GET", "/v2/users/2.json"))[1]["data"]["guid"] == "u-2"
    assert (await call(client, "GET", "/v2/users/9.json"))[0] == 404


async def test_faults_and_the_request_log(client: Client, sim: SalesloftSim) -> None:
    sim.fail_next(503, {"X-Why": "test"}, times=2, body={"error": "down"})
    sim.fail_next(429)
    for _ in range(2):
        status, body, headers = await call(client, "POST", UPSERT, event())
        assert (status, body, headers["X-Why"]) == (503, {"error": "down"}, "test")
    assert (await call(client, "GET", EVENTS))[1:2] == ({"error": "API rate limit exceeded"},)
    assert sim.writes == 2 and [r["method"] for r in sim.requests] == ["POST", "POST", "GET"]
    assert sim.team().events == {} and sim.refused == 0


async def test_vendor_side_controls_over_http(client: Client, sim: SalesloftSim) -> None:
    await upsert(client)
    status, body, _ = await call(
        client, "POST", "/_sim/edit", {"event_id": "ev-1", "changes": {"title": "Edited"}}
    )
    assert status == 200 and body["result"]["title"] == "Edited"
    assert (await call(client, "POST", "/_sim/cancel", {"event_id": "ev-1"}))[1]["result"][
        "status"
    ] == "cancelled"
    events = (await call(client, "GET", "/_sim/events"))[1]["events"]
    assert [e["canceled_at"] is not None for e in events] == [True]
    await call(client, "POST", "/_sim/remove", {"event_id": "ev-1"})
    assert await listed(client) == []
    assert (await call(client, "POST", "/_sim/nothing", {}))[0] == 404
    assert (await call(client, "POST", "/_sim/edit", {"nope": 1}))[0] == 400
    log = (await call(client, "GET", "/_sim/requests"))[1]
    assert log["writes"] == 1 and log["refused"] == 0
