"""The Apptoto simulator's own behaviour (vendors/apptoto.md section 9), over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from syncd.simulators import SIMULATORS
from syncd.simulators import apptoto as simulator
from syncd.simulators.apptoto import ApptotoSim

Client = TestClient[Any, Any]
AUTH = {"Authorization": aiohttp.encode_basic_auth("sim-user", "sim-key")}
EVENTS = "/v1/events"


def element(external_id: str | None = "ext-1", **fields: Any) -> dict[str, Any]:
    """A valid PUT element, with overrides (None drops a field)."""
    body = {
        "external_id": external_id,
        "calendar_id": 1,
        "title": "Discovery call",
        "start_time": "2027-03-10T07:00:00-07:00",
        "end_time": "2027-03-10T08:00:00-07:00",
        "participants": [{"name": "John Doe", "email": "john@example.com"}],
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


@pytest.fixture
def sim() -> ApptotoSim:
    return simulator.default()


@pytest.fixture
async def client(sim: ApptotoSim, aiohttp_client: Callable[[Any], Awaitable[Client]]) -> Client:
    return await aiohttp_client(sim.app())


async def call(
    client: Client, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    """One authenticated request: status and decoded body (text when not JSON)."""
    async with client.request(method, path, json=body, params=params, headers=AUTH) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def put(client: Client, *elements: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    status, body = await call(client, "PUT", EVENTS, {"events": list(elements), **extra})
    assert status == 200, body
    events: list[dict[str, Any]] = body["events"]
    return events


def test_the_registry_names_this_module() -> None:
    assert SIMULATORS["apptoto"] == simulator.__name__


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": aiohttp.encode_basic_auth("sim-user", "wrong")},
        {"Authorization": "Basic !!"},
    ],
)
async def test_missing_or_wrong_credentials_are_401_json(
    client: Client, headers: dict[str, str]
) -> None:
    async with client.get(EVENTS, headers=headers) as response:
        assert response.status == 401 and "error" in await response.json()


async def test_put_creates_then_patches_by_external_id(client: Client) -> None:
    [made] = await put(client, element(location="Room 4"))
    assert made["id"] > 0 and made["is_deleted"] is False
    assert made["start_time"] == "2027-03-10T07:00:00-07:00"  # the offset sent is echoed
    [patched] = await put(client, {"external_id": "ext-1", "title": "Renamed"})
    assert patched["id"] == made["id"] and patched["title"] == "Renamed"
    assert patched["location"] == "Room 4" and patched["participants"] == made["participants"]


async def test_put_matches_by_id_too(client: Client) -> None:
    [made] = await put(client, element(external_id=None))
    [patched] = await put(client, {"id": made["id"], "content": "Notes"})
    assert patched["id"] == made["id"] and patched["content"] == "Notes"


@pytest.mark.parametrize("missing", ["title", "start_time", "end_time", "calendar_id"])
async def test_a_new_event_without_a_required_field_is_400(client: Client, missing: str) -> None:
    status, body = await call(client, "PUT", EVENTS, {"events": [element(**{missing: None})]})
    assert status == 400 and "error" in body


@pytest.mark.parametrize(
    "fields",
    [
        {"start_time": "2027-03-10T07:00:00"},
        {"start_time": "tomorrow"},
        {"calendar_id": 99},
        {"show_as": 7},
        {"time_zone": "Mars/Olympus"},
        {"all_day": "yes"},
        {"participants": "john"},
    ],
)
async def test_invalid_fields_are_400_and_change_nothing(
    client: Client, sim: ApptotoSim, fields: dict[str, Any]
) -> None:
    status, _ = await call(client, "PUT", EVENTS, {"events": [element("ok"), element(**fields)]})
    assert status == 400 and sim.account().events == {}


async def test_an_unknown_calendar_name_makes_a_calendar_unless_prevented(
    client: Client, sim: ApptotoSim
) -> None:
    named = element(calendar_id=None, calendar="Typo")
    status, _ = await call(
        client, "PUT", EVENTS, {"events": [named], "prevent_calendar_creation": True}
    )
    assert status == 400 and list(sim.account().calendars) == [1]
    [made] = await put(client, named)
    assert made["calendar_id"] != 1 and sim.account().calendars[made["calendar_id"]] == "Typo"


async def test_moving_calendars_is_ignored_or_refused(client: Client, sim: ApptotoSim) -> None:
    sim.account().calendars[2] = "Other"
    await put(client, element())
    [same] = await put(client, {"external_id": "ext-1", "calendar_id": 2})
    assert same["calendar_id"] == 1
    sim.calendar_move = "reject"
    status, _ = await call(
        client, "PUT", EVENTS, {"events": [{"external_id": "ext-1", "calendar_id": 2}]}
    )
    assert status == 400


async def test_participants_and_custom_data_are_replaced_whole(client: Client) -> None:
    await put(client, element(custom_data={"a": 1, "b": 2}))
    jane = {"name": "Jane", "email": "jane@example.com", "phone": "(555) 555-1212"}
    [made] = await put(
        client, {"external_id": "ext-1", "participants": [jane], "custom_data": {"c": 3}}
    )
    assert made["custom_data"] == {"c": 3}
    [person] = made["participants"]
    assert (person["email"], person["normalized_phone"], person["state"]) == (
        "jane@example.com",
        "+15555551212",
        "initial",
    )


async def test_a_messaged_participant_sticks_unless_switched_off(
    client: Client, sim: ApptotoSim
) -> None:
    await put(client, element())
    sim.mark_messaged("ext-1", "john@example.com")
    [kept] = await put(client, {"external_id": "ext-1", "participants": []})
    assert [p["email"] for p in kept["participants"]] == ["john@example.com"]
    sim.account().sticky_participants = False
    [gone] = await put(client, {"external_id": "ext-1", "participants": []})
    assert gone["participants"] == []


async def test_a_participant_sent_again_keeps_its_id_and_state(
    client: Client, sim: ApptotoSim
) -> None:
    [made] = await put(client, element())
    sim.set_state("ext-1", "john@example.com", "confirmed")
    [again] = await put(client, {"external_id": "ext-1", "participants": element()["participants"]})
    assert again["participants"][0]["id"] == made["participants"][0]["id"]
    assert again["participants"][0]["state"] == "confirmed"


async def test_get_one_event_is_bare_and_404_when_unknown(client: Client) -> None:
    [made] = await put(client, element())
    status, body = await call(client, "GET", "/v1/event", external_id="ext-1")
    assert status == 200 and body == made
    assert (await call(client, "GET", "/v1/event", id=str(made["id"])))[1] == made
    assert (await call(client, "GET", "/v1/event", external_id="nope"))[0] == 404


async def test_delete_is_soft_and_keeps_the_external_id_taken(
    client: Client, sim: ApptotoSim
) -> None:
    await put(client, element())
    status, body = await call(client, "DELETE", EVENTS, external_id="ext-1")
    assert status == 200 and body["events"][0]["is_deleted"] is True
    assert (await call(client, "GET", EVENTS))[1]["events"] == []
    [hidden] = (await call(client, "GET", EVENTS, include_deleted="true"))[1]["events"]
    assert hidden["is_deleted"] is True
    [still] = await put(client, {"external_id": "ext-1", "title": "Back?"})
    assert still["is_deleted"] is True and still["title"] == "Back?"  # updated, not revived
    assert (await call(client, "DELETE", EVENTS, external_id="ext-1"))[0] == 200
    sim.repeat_delete_status = 404
    assert (await call(client, "DELETE", EVENTS, external_id="ext-1"))[0] == 404
    assert (await call(client, "DELETE", EVENTS, external_id="nope"))[0] == 404


@pytest.mark.parametrize(("mode", "status"), [("revive", 200), ("reject", 400)])
async def test_put_on_a_deleted_event_by_switch(
    client: Client, sim: ApptotoSim, mode: str, status: int
) -> None:
    await put(client, element())
    sim.remove("ext-1")
    sim.deleted_put = mode
    answer, _ = await call(client, "PUT", EVENTS, {"events": [{"external_id": "ext-1"}]})
    assert answer == status
    assert sim.event("ext-1").is_deleted is (mode == "reject")


async def test_post_always_creates_and_refuses_a_taken_external_id(client: Client) -> None:
    status, body = await call(client, "POST", EVENTS, {"events": [element(external_id=None)] * 2})
    assert status == 200 and len({e["id"] for e in body["events"]}) == 2
    await put(client, element())
    assert (await call(client, "POST", EVENTS, {"events": [element()]}))[0] == 400


async def test_listing_filters_on_the_start_and_pages_until_empty(
    client: Client, sim: ApptotoSim
) -> None:
    for day in range(10, 15):
        start = f"2027-03-{day}T07:00:00-07:00"
        await put(client, element(f"e{day}", start_time=start, end_time=start))
    query = {"begin": "2027-03-11T14:00:00Z", "end": "2027-03-13T14:00:00Z"}
    sim.page_size = 2
    pages = [
        [
            e["external_id"]
            for e in (await call(client, "GET", EVENTS, **query, page=str(n)))[1]["events"]
        ]
        for n in (1, 2, 3)
    ]
    assert pages == [["e11", "e12"], ["e13"], []]  # both bounds inclusive


async def test_the_default_page_is_thirty(client: Client, sim: ApptotoSim) -> None:
    await put(client, *(element(f"e{n}") for n in range(25)))
    await put(client, *(element(f"f{n}") for n in range(10)))
    assert len((await call(client, "GET", EVENTS))[1]["events"]) == 30


async def test_an_email_filter_repeats_events_per_matching_participant(client: Client) -> None:
    people = [{"email": "a@example.com"}, {"email": "b@example.com", "name": "B"}]
    await put(client, element(participants=people))
    _, body = await call(client, "GET", EVENTS, email_address="B@example.com")
    [only] = body["events"]
    assert [p["name"] for p in only["participants"]] == ["B"]


async def test_a_big_batch_is_a_502_html_page(client: Client, sim: ApptotoSim) -> None:
    status, body = await call(
        client, "PUT", EVENTS, {"events": [element(f"e{n}") for n in range(26)]}
    )
    assert status == 502 and body.startswith("<html>") and sim.account().events == {}


async def test_auto_messages_are_logged_never_sent_and_only_when_asked(
    client: Client, sim: ApptotoSim
) -> None:
    await put(client, element("quiet"))
    assert sim.messages == []
    await put(client, element("tagged", content="Reminder #auto please"))
    sim.account().auto_messages = True
    phone = [{"name": "P", "phone": "+441212121212"}]
    await put(client, element("account", participants=phone))
    assert [(m["external_id"], m["channel"], m["to"]) for m in sim.messages] == [
        ("tagged", "email", "john@example.com"),
        ("account", "sms", "+441212121212"),
    ]
    await put(client, {"external_id": "account", "title": "Moved"})
    assert len(sim.messages) == 2  # each participant once
    assert (await call(client, "GET", "/_sim/messages"))[1]["messages"] == sim.messages


async def test_participants_are_extracted_from_text_only_when_none_are_given(
    client: Client, sim: ApptotoSim
) -> None:
    sim.extract_participants = True
    [found] = await put(client, element("a", participants=None, content="mail x@example.com"))
    [empty] = await put(client, element("b", participants=[], content="mail x@example.com"))
    assert [p["email"] for p in found["participants"]] == ["x@example.com"]
    assert empty["participants"] == []


async def test_rate_limit_answers_429_json_without_retry_after(
    client: Client, sim: ApptotoSim
) -> None:
    sim.rate_limit = (2, 60)
    statuses = [(await call(client, "GET", EVENTS))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    async with client.get(EVENTS, headers=AUTH) as response:
        assert "Retry-After" not in response.headers and "error" in await response.json()
    sim.retry_after, sim._limiters = True, {}
    for _ in range(2):
        await call(client, "GET", EVENTS)
    async with client.get(EVENTS, headers=AUTH) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "30"


async def test_faults_are_scripted_in_order(client: Client, sim: ApptotoSim) -> None:
    sim.fail_next(503, {"X-Why": "test"})
    sim.fail_next(400, body={"errors": {"title": ["is bad"]}})
    async with client.get(EVENTS, headers=AUTH) as response:
        assert (response.status, response.headers["X-Why"]) == (503, "test")
    assert await call(client, "GET", EVENTS) == (400, {"errors": {"title": ["is bad"]}})
    assert (await call(client, "GET", EVENTS))[0] == 200


async def test_a_stalled_request_waits_and_others_do_not(client: Client, sim: ApptotoSim) -> None:
    sim.stall_next(30)
    slow = asyncio.ensure_future(call(client, "GET", EVENTS))
    for _ in range(1000):  # until the stalled request has arrived
        if sim.requests:
            break
        await asyncio.sleep(0.01)
    assert (await call(client, "GET", EVENTS))[0] == 200
    assert not slow.done()
    sim._release.set()
    assert (await slow)[0] == 200


async def test_the_log_counts_writes_and_keeps_bodies(client: Client, sim: ApptotoSim) -> None:
    await put(client, element())
    await call(client, "GET", EVENTS, page="1")
    await call(client, "DELETE", EVENTS, external_id="ext-1")
    assert sim.writes == 2
    assert [(r["method"], r["query"]) for r in sim.requests] == [
        ("PUT", {}),
        ("GET", {"page": "1"}),
        ("DELETE", {"external_id": "ext-1"}),
    ]
    assert sim.requests[0]["body"]["events"][0]["external_id"] == "ext-1"


async def test_vendor_side_controls_over_http(client: Client, sim: ApptotoSim) -> None:
    await put(client, element())
    edit = {"external_id": "ext-1", "changes": {"title": "Edited at Apptoto"}}
    assert (await call(client, "POST", "/_sim/edit", edit))[1]["result"][
        "title"
    ] == "Edited at Apptoto"
    born = {"element": {"calendar_id": 1, "title": "Walk-in", "start_time": "2027-03-20T10:00:00Z",
                        "end_time": "2027-03-20T11:00:00Z"}}  # fmt: skip
    assert (await call(client, "POST", "/_sim/add_event", born))[1]["result"]["external_id"] is None
    await call(client, "POST", "/_sim/remove", {"external_id": "ext-1"})
    events = (await call(client, "GET", "/_sim/events"))[1]["events"]
    assert [(e["title"], e["is_deleted"]) for e in events] == [
        ("Edited at Apptoto", True),
        ("Walk-in", False),
    ]
    assert (await call(client, "POST", "/_sim/nope", {}))[0] == 404
    assert (await call(client, "POST", "/_sim/remove", {"bad": 1}))[0] == 400
    assert (await call(client, "GET", "/_sim/requests"))[0] == 200


async def test_serve_listens_on_loopback_with_the_default_account() -> None:
    runner = await simulator.serve()
    try:
        url = simulator.base_url(runner)
        async with aiohttp.ClientSession() as session, session.get(url + EVENTS, headers=AUTH) as r:
            assert r.status == 200 and await r.json() == {"events": []}
        assert runner.app[simulator.SIM].account().calendars == {1: "Default"}
    finally:
        await runner.cleanup()
