"""The LeadSquared simulator's own behaviour (vendors/leadsquared.md section 9), over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from syncd.simulators import SIMULATORS
from syncd.simulators import leadsquared as simulator
from syncd.simulators.leadsquared import LeadSquaredSim

Client = TestClient[Any, Any]
KEYS = {"x-LSQ-AccessKey": "sim-access", "x-LSQ-SecretKey": "sim-secret"}
TASK = "/v2/Task.svc"
BY_EMAIL = f"{TASK}/RetrieveAppointments/ByUserEmailAddress"


def appointment(**fields: Any) -> dict[str, Any]:
    """A valid Create body (the seed's example, notifications off), with overrides."""
    body = {
        "Name": "Meeting: Subject",
        "Description": "Describing the task",
        "RelatedEntity": 0,
        "RelatedEntityId": "",
        "DueDate": "2027-03-10 10:30:00",
        "EndDate": "2027-03-10 10:45:00",
        "NotifyBy": "1000",
        "OwnerEmailAddress": "rep@example.com",
        "TaskType": {"Name": "Meeting"},
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


@pytest.fixture
def sim() -> LeadSquaredSim:
    return simulator.default()


@pytest.fixture
async def client(sim: LeadSquaredSim, aiohttp_client: Callable[[Any], Awaitable[Client]]) -> Client:
    return await aiohttp_client(sim.app())


async def call(
    client: Client, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    """One request with the keys in headers: status and decoded JSON (None when empty)."""
    async with client.request(method, path, json=body, params=params, headers=KEYS) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text


async def create(client: Client, **fields: Any) -> str:
    status, body = await call(client, "POST", f"{TASK}/Create", appointment(**fields))
    assert (status, body["Status"]) == (200, "Success"), body
    ident: str = body["Message"]["Id"]
    return ident


async def get(client: Client, ident: str) -> list[Any]:
    status, body = await call(client, "GET", f"{TASK}/Retrieve.GetById", id=ident)
    assert status == 200
    result: list[Any] = body
    return result


async def listing(client: Client, frm: str, to: str, index: int = 1, size: int = 100) -> Any:
    paging = {"PageIndex": index, "PageSize": size}
    body = {"FromDate": frm, "ToDate": to, "Users": ["REP@example.com"], "Paging": paging}
    return await call(client, "POST", BY_EMAIL, body)


def test_the_registry_names_this_module() -> None:
    assert SIMULATORS["leadsquared"] == simulator.__name__


@pytest.mark.parametrize(
    "headers",
    [{}, {**KEYS, "x-LSQ-SecretKey": "wrong"}, {**KEYS, "x-LSQ-AccessKey": "wrong"}],
    ids=["none", "wrong-secret", "wrong-access"],
)
async def test_missing_or_wrong_keys_are_401_with_an_empty_text_body(
    client: Client, headers: dict[str, str]
) -> None:
    async with client.get(f"{TASK}/Retrieve.GetById", headers=headers) as response:
        assert (response.status, response.content_type) == (401, "text/plain")
        assert await response.text() == ""


async def test_keys_in_the_query_work_and_are_logged_as_such(
    client: Client, sim: LeadSquaredSim
) -> None:
    query = {"accessKey": "sim-access", "secretKey": "sim-secret", "id": "x"}
    async with client.get(f"{TASK}/Retrieve.GetById", params=query) as response:
        assert response.status == 200 and await response.json() == []
    assert sim.requests[0]["auth"] == "query" and "secretKey" in sim.requests[0]["query"]


async def test_deactivating_the_keys_user_disables_the_keys(
    client: Client, sim: LeadSquaredSim
) -> None:
    sim.set_user(simulator.API_USER, active=False)
    assert (await call(client, "GET", f"{TASK}/Retrieve.GetById", id="x"))[0] == 401


async def test_unknown_paths_and_verbs_are_404_bad_bodies_400(client: Client) -> None:
    assert (await call(client, "GET", f"{TASK}/Nope"))[0] == 404
    assert (await call(client, "PUT", f"{TASK}/Create", appointment()))[0] == 404
    assert (await call(client, "POST", f"{TASK}/RetrieveAppointments/ByMood", {}))[0] == 404
    for data, kind in (("{not json", "application/json"), ("{}", "text/plain")):
        headers = {**KEYS, "Content-Type": kind}
        async with client.post(f"{TASK}/Create", data=data, headers=headers) as response:
            assert response.status == 400


async def test_create_answers_the_documented_envelope_and_stores_the_task(
    client: Client,
) -> None:
    ident = await create(client)
    [task] = await get(client, ident)
    assert task["UserTaskId"] == ident and task["OwnerEmailAddress"] == "rep@example.com"
    assert (task["DueDate"], task["EndDate"]) == (
        "2027-03-10 10:30:00.000",
        "2027-03-10 10:45:00.000",
    )
    assert task["CompletedOn"] == "0001-01-01 00:00:00.000" and task["StatusCode"] == 0
    assert task["TaskType"]["CreatedOn"].startswith("/Date(") and task["Category"] == 0
    assert await get(client, "no-such-task") == []


async def test_creates_are_not_idempotent(client: Client) -> None:
    assert await create(client) != await create(client)


async def test_missing_dates_default_to_now_and_the_type_duration(
    client: Client, sim: LeadSquaredSim
) -> None:
    task = sim.task(await create(client, DueDate=None, EndDate=None))
    assert (task.end - task.due).total_seconds() == 30 * 60 and task.due.microsecond == 0


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"Name": ""}, "MXMandatoryAttributeMissingException"),
        ({"OwnerEmailAddress": None}, "MXMandatoryAttributeMissingException"),
        ({"TaskType": {"Name": "Lunch"}}, "MXInvalidInputException"),
        ({"OwnerEmailAddress": "gone@example.com"}, "MXInvalidInputException"),
        ({"OwnerEmailAddress": "stranger@example.com"}, "MXInvalidInputException"),
        ({"DueDate": "2027-03-10T10:30:00Z"}, "MXInvalidInputException"),
        ({"EndDate": "2027-03-10 09:00:00"}, "MXInvalidInputException"),
        ({"RelatedEntity": 1, "RelatedEntityId": "no-such-lead"}, "MXInvalidInputException"),
        ({"RelatedEntity": 5}, "MXInvalidInputException"),
        ({"RelatedEntity": 3}, "MXInvalidInputException"),
        ({"NotifyBy": "1111"}, "MXInvalidInputException"),
        ({"Reminder": -5}, "MXInvalidInputException"),
    ],
    ids=lambda value: str(value)[:40],
)
async def test_invalid_creates_are_mx_exceptions(
    client: Client, sim: LeadSquaredSim, fields: dict[str, Any], kind: str
) -> None:
    status, body = await call(client, "POST", f"{TASK}/Create", appointment(**fields))
    assert (status, body["Status"], body["ExceptionType"]) == (500, "Error", kind)
    assert sim.account().tasks == {}


async def test_the_mx_status_is_a_switch(client: Client, sim: LeadSquaredSim) -> None:
    sim.mx_status = 200
    body = appointment(OwnerEmailAddress="gone@example.com")
    status, answer = await call(client, "POST", f"{TASK}/Create", body)
    assert status == 200 and answer["ExceptionMessage"].endswith("is not an active user")


async def test_mandatory_custom_fields_and_known_leads(client: Client, sim: LeadSquaredSim) -> None:
    sim.add_task_type("Demo", mandatory=("mx_Custom_1",))
    sim.account().leads.add("lead-1")
    fields: dict[str, Any] = {"TaskType": {"Name": "Demo"}, "RelatedEntity": "1"}
    status, body = await call(client, "POST", f"{TASK}/Create", appointment(**fields))
    assert status == 500 and "mx_Custom_1" in body["ExceptionMessage"]
    fields |= {"CustomFields": {"mx_Custom_1": "x"}, "RelatedEntityId": "lead-1"}
    assert sim.task(await create(client, **fields)).related == (1, "lead-1")


async def test_update_merges_only_the_fields_sent_and_bumps_modified_on(client: Client) -> None:
    ident = await create(client)
    [before] = await get(client, ident)
    status, body = await call(
        client, "POST", f"{TASK}/Update", {"UserTaskId": ident, "Name": "New"}
    )
    assert status == 200 and body["Message"]["AffectedRows"] == 1
    [after] = await get(client, ident)
    assert after["Name"] == "New" and after["Description"] == before["Description"]
    assert after["ModifiedOn"] > before["ModifiedOn"] and after["CreatedOn"] == before["CreatedOn"]


async def test_update_of_an_unknown_task_by_switch(client: Client, sim: LeadSquaredSim) -> None:
    body = {"UserTaskId": "nope", "Name": "x"}
    status, answer = await call(client, "POST", f"{TASK}/Update", body)
    assert status == 500 and answer["ExceptionType"] == "MXInvalidInputException"
    sim.unknown_update = "zero"
    status, answer = await call(client, "POST", f"{TASK}/Update", body)
    assert status == 200 and answer["Message"]["AffectedRows"] == 0


async def test_update_may_ignore_end_date(client: Client, sim: LeadSquaredSim) -> None:
    ident = await create(client)
    sim.update_sets_end = False
    body = {"UserTaskId": ident, "DueDate": "2027-03-10 11:00:00", "EndDate": "2027-03-10 12:00:00"}
    await call(client, "POST", f"{TASK}/Update", body)
    [task] = await get(client, ident)
    assert (task["DueDate"], task["EndDate"]) == (
        "2027-03-10 11:00:00.000",
        "2027-03-10 10:45:00.000",
    )


async def test_delete_tasks_counts_and_hard_deletes(client: Client, sim: LeadSquaredSim) -> None:
    ident = await create(client)
    body = {"TaskIds": [ident, "nope"]}
    status, answer = await call(client, "POST", f"{TASK}/DeleteTasks", body)
    assert status == 200 and (answer["TasksCount"], answer["DeletedTasksCount"]) == (2, 1)
    assert answer["FailureReason"] and await get(client, ident) == []
    status, answer = await call(client, "POST", f"{TASK}/DeleteTasks", {"TaskIds": ["x"] * 5001})
    assert status == 500 and answer["Status"] == "Error"


async def test_delete_tasks_is_asynchronous_with_a_delay(
    client: Client, sim: LeadSquaredSim
) -> None:
    sim.delete_delay = 0.05
    ident = await create(client)
    await call(client, "POST", f"{TASK}/DeleteTasks", {"TaskIds": [ident]})
    assert len(await get(client, ident)) == 1
    for _ in range(100):
        if not sim.account().tasks:
            break
        await asyncio.sleep(0.01)
    assert await get(client, ident) == []


async def test_appointments_page_by_index_with_the_total_count(
    client: Client, sim: LeadSquaredSim
) -> None:
    made = [await create(client, DueDate=f"2027-03-1{n} 10:00:00", EndDate=None) for n in range(5)]
    sim.page_size = 2
    pages = [await listing(client, "2027-03-10", "2027-03-14", index=n) for n in (1, 2, 3, 4)]
    assert [body["RecordCount"] for _, body in pages] == [5] * 4
    assert [t["UserTaskId"] for _, body in pages for t in body["List"]] == made
    assert pages[3][1]["List"] == []


async def test_appointments_are_whole_inclusive_days_of_appointments_only(
    client: Client, sim: LeadSquaredSim
) -> None:
    sim.add_task_type("Call back", category=1)
    dues = [
        "2027-03-09 23:59:59",
        "2027-03-10 00:00:00",
        "2027-03-11 23:59:59",
        "2027-03-12 00:00:00",
    ]
    made = [await create(client, DueDate=due, EndDate=None) for due in dues]
    await create(
        client, DueDate="2027-03-10 12:00:00", EndDate=None, TaskType={"Name": "Call back"}
    )
    _, body = await listing(client, "2027-03-10", "2027-03-11")
    assert [t["UserTaskId"] for t in body["List"]] == made[1:3] and body["RecordCount"] == 2


async def test_appointments_by_user_id(client: Client, sim: LeadSquaredSim) -> None:
    await create(client)
    rep = sim.account().users["rep@example.com"]
    paging = {"PageIndex": 1, "PageSize": 10}
    body = {"FromDate": "2027-03-10", "ToDate": "2027-03-10", "Users": [rep.id], "Paging": paging}
    status, answer = await call(client, "POST", f"{TASK}/RetrieveAppointments/ByUserId", body)
    assert status == 200 and answer["RecordCount"] == 1


@pytest.mark.parametrize(
    ("frm", "to"), [("2027-01-01", "2027-04-12"), ("2027-03-10", "2027-03-09"), ("March", "May")]
)
async def test_bad_windows_are_refused(client: Client, frm: str, to: str) -> None:
    status, body = await listing(client, frm, to)
    assert status == 500 and body["ExceptionType"] == "MXInvalidInputException"


async def test_a_100_day_window_is_accepted(client: Client) -> None:
    assert (await listing(client, "2027-01-01", "2027-04-11"))[0] == 200


async def test_user_by_email_hides_inactive_and_unknown_users(client: Client) -> None:
    path = "/v2/UserManagement.svc/User/Retrieve/ByEmailAddress"
    _, found = await call(client, "GET", path, emailAddress="REP@example.com")
    assert [u["EmailAddress"] for u in found] == ["rep@example.com"]
    for email in ("gone@example.com", "stranger@example.com"):
        assert await call(client, "GET", path, emailAddress=email) == (200, [])


@pytest.mark.parametrize("status", [429, 200])
async def test_sliding_window_refuses_with_the_mx_body_and_counts(
    client: Client, sim: LeadSquaredSim, status: int
) -> None:
    sim.set_rate_limit(3, 0.2, status=status)
    answers = [await call(client, "GET", f"{TASK}/Retrieve.GetById", id="x") for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 200, status] and sim.refused == 1
    assert answers[3][1] == {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": "API calls exceeded the limit of 3 in 0.2 second(s)",
    }
    await asyncio.sleep(0.25)  # the window slides: the first calls have left it
    assert (await call(client, "GET", f"{TASK}/Retrieve.GetById", id="x"))[0] == 200


async def test_the_bulk_window_applies_to_delete_tasks_only(
    client: Client, sim: LeadSquaredSim
) -> None:
    sim.bulk_limit = (1, 60.0)
    body = {"TaskIds": ["x"]}
    statuses = [(await call(client, "POST", f"{TASK}/DeleteTasks", body))[0] for _ in range(2)]
    assert statuses == [200, 429] and (await create(client)) and sim.refused == 1


async def test_stall_after_store_stores_the_task_before_answering(
    client: Client, sim: LeadSquaredSim
) -> None:
    sim.stall_after_store(30)
    pending = asyncio.create_task(call(client, "POST", f"{TASK}/Create", appointment()))
    for _ in range(500):
        if sim.account().tasks:
            break
        await asyncio.sleep(0.01)
    assert len(sim.account().tasks) == 1 and not pending.done()
    pending.cancel()


async def test_fail_next_and_stall_next(client: Client, sim: LeadSquaredSim) -> None:
    sim.fail_next(500, times=2, body={"Status": "Error", "ExceptionType": "MXX"})
    sim.stall_next(0)
    sim.fail_next(429, {"Retry-After": "3"})
    path = f"{TASK}/Retrieve.GetById"
    answers = [await call(client, "GET", path, id="x") for _ in range(5)]
    assert [a[0] for a in answers] == [500, 500, 200, 429, 200]
    assert answers[0][1]["ExceptionType"] == "MXX"
    assert answers[3][1]["ExceptionType"] == "MXAPIRateLimitExceededException"
    sim.fail_next(503)
    async with client.get(path, headers=KEYS) as response:
        assert response.status == 503 and await response.text() == ""


async def test_write_counter_and_request_log(client: Client, sim: LeadSquaredSim) -> None:
    ident = await create(client)
    await call(client, "POST", f"{TASK}/Update", {"UserTaskId": ident, "Name": "x"})
    await get(client, ident)
    await call(client, "POST", f"{TASK}/DeleteTasks", {"TaskIds": [ident]})
    await call(client, "GET", "/_sim/tasks")
    assert sim.writes == 3
    assert [r["path"].rsplit("/", 1)[1] for r in sim.requests] == [
        "Create", "Update", "Retrieve.GetById", "DeleteTasks",
    ]  # fmt: skip
    assert sim.requests[1]["body"] == {"UserTaskId": ident, "Name": "x"}
    assert {r["auth"] for r in sim.requests} == {"header"}


async def test_vendor_side_edit_complete_and_remove(client: Client, sim: LeadSquaredSim) -> None:
    ident = await create(client)
    first = sim.render(sim.task(ident))
    edited = sim.edit(ident, {"Name": "Edited in the UI", "EndDate": "2027-03-10 11:30:00"})
    done = sim.complete(ident)
    stamps = [first["ModifiedOn"], edited["ModifiedOn"], done["ModifiedOn"]]
    assert stamps == sorted(set(stamps)) and done["EndDate"] == "2027-03-10 11:30:00.000"
    assert (done["StatusCode"], done["CompletedOn"]) == (1, done["ModifiedOn"])
    sim.remove(ident)
    assert await get(client, ident) == []


async def test_control_endpoints(client: Client, sim: LeadSquaredSim) -> None:
    ident = await create(client)
    status, body = await call(
        client, "POST", "/_sim/edit", {"ident": ident, "changes": {"Name": "N"}}
    )
    assert status == 200 and body["result"]["Name"] == "N"
    await call(client, "POST", "/_sim/complete", {"ident": ident})
    status, body = await call(client, "GET", "/_sim/tasks")
    assert [(t["Name"], t["StatusCode"]) for t in body["tasks"]] == [("N", 1)]
    await call(client, "POST", "/_sim/set_user", {"email": "rep@example.com", "active": False})
    assert (await call(client, "POST", f"{TASK}/Create", appointment()))[0] == 500
    await call(client, "POST", "/_sim/set_rate_limit", {"requests": 1, "per": 60})
    await call(client, "POST", "/_sim/stall_after_store", {"seconds": 0})
    await call(client, "POST", "/_sim/remove", {"ident": ident})
    assert not sim.account().tasks and sim.rate_limit == (1, 60.0)
    status, body = await call(client, "GET", "/_sim/requests")
    assert body["writes"] == 2 and body["refused"] == 0  # the refused Create counts too
    assert (await call(client, "POST", "/_sim/app", {}))[0] == 404
    assert (await call(client, "POST", "/_sim/complete", {"nope": 1}))[0] == 400


async def test_each_access_key_sees_its_own_account(client: Client, sim: LeadSquaredSim) -> None:
    sim.add_account("other", "other-access", "other-secret", {"x@other.example": True})
    await create(client)
    headers = {"x-LSQ-AccessKey": "other-access", "x-LSQ-SecretKey": "other-secret"}
    body = {"FromDate": "2027-03-10", "ToDate": "2027-03-10", "Users": ["rep@example.com"]}
    async with client.post(BY_EMAIL, json=body, headers=headers) as response:
        assert (await response.json())["RecordCount"] == 0


async def test_serve_listens_on_loopback_under_v2(session: aiohttp.ClientSession) -> None:
    runner = await simulator.serve()
    try:
        sim = runner.app[simulator.SIM]
        url = simulator.base_url(runner)
        assert url.endswith("/v2")
        async with session.get(f"{url}/Task.svc/Retrieve.GetById?id=x", headers=KEYS) as r:
            assert r.status == 200 and sim.requests[0]["path"] == f"{TASK}/Retrieve.GetById"
    finally:
        await runner.cleanup()
