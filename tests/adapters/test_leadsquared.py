"""LeadSquared adapter: the shared contract over loopback HTTP, plus its own quirks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.adapter import Adapter
from syncd.errors import AuthFailed, Gone, Malformed, RateLimited, Rejected
from syncd.http import Budget, HttpClient, Response
from syncd.model import Event, Record, Window
from syncd.simulators import leadsquared as simulator
from syncd.simulators.leadsquared import LeadSquaredSim
from syncd.vendors import leadsquared
from syncd.vendors.leadsquared import LeadSquared, client_headers
from tests.adapters.contract import WINDOW, AdapterContract

FIXTURES = Path(__file__).parent.parent / "fixtures" / "leadsquared"
KEYS = client_headers(simulator.DEFAULT_ACCESS_KEY, simulator.DEFAULT_SECRET_KEY)
REP = "rep@example.com"
LIST_PATH = "/v2/Task.svc/RetrieveAppointments/ByUserEmailAddress"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def client(session: aiohttp.ClientSession, url: str, budget: Budget | None = None) -> HttpClient:
    return HttpClient(session, url, label="leadsquared", headers=KEYS, budget=budget, timeout=10.0)


@pytest.fixture
def sim() -> LeadSquaredSim:
    """The simulator: one account, keys sim-access/sim-secret, rep@ active, gone@ not."""
    return simulator.default()


@pytest.fixture
async def served(sim: LeadSquaredSim) -> AsyncIterator[str]:
    """The simulator on 127.0.0.1: its base URL, `/v2` included."""
    runner = await simulator.serve(sim=sim)
    yield simulator.base_url(runner)
    await runner.cleanup()


@pytest.fixture
def adapter(served: str, session: aiohttp.ClientSession) -> LeadSquared:
    """The adapter bound to the simulator, listing the rep's appointments."""
    return LeadSquared(client(session, served), owners=[REP])


def bodies(sim: LeadSquaredSim, suffix: str) -> list[Any]:
    """The bodies of the requests to the path ending in `suffix`."""
    return [r["body"] for r in sim.requests if r["path"].endswith(suffix)]


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class TestLeadSquared(AdapterContract):
    """The contract, then LeadSquared's own behaviour."""

    def test_is_an_adapter(self, adapter: LeadSquared) -> None:
        typed: Adapter = adapter
        assert typed.caps.fields == {"start", "end", "title", "description", "outcome"}
        assert typed.caps.server_ids and typed.caps.partial_update
        assert not typed.caps.holds_cancelled and typed.caps.absence == "get"

    async def test_create_carries_the_key_as_a_marker_and_lists_without_it(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        stored = sim.task(made.key)
        assert stored.description == "Agenda: pricing\n\nsyncd-key: team:a"
        [listed] = (await adapter.list(WINDOW)).records
        assert (listed.key, listed.remote_id, listed.marker) == (stored.id, stored.id, "team:a")
        assert listed.event.description == "Agenda: pricing" and listed == made
        assert listed.version == sim.render(stored)["ModifiedOn"]

    async def test_create_notifies_nobody_by_default(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        await adapter.create("team:a", event)
        [body] = bodies(sim, "/Create")
        assert body["NotifyBy"] == "1000" and "Reminder" not in body
        assert (body["RelatedEntity"], body["RelatedEntityId"]) == (0, "")
        assert body["DueDate"] == "2027-03-10 14:00:30" and body["EndDate"] == "2027-03-10 15:00:00"
        assert (body["OwnerEmailAddress"], body["TaskType"]) == (REP, {"Name": "Meeting"})

    async def test_notifications_and_a_lead_only_when_asked(
        self, served: str, session: aiohttp.ClientSession, sim: LeadSquaredSim, event: Event
    ) -> None:
        sim.account().leads.add("lead-1")
        options: dict[str, Any] = {"notify_by_email": True, "reminder_minutes": 30}
        adapter = LeadSquared(
            client(session, served), owners=[REP], related_entity=1, related_entity_id="lead-1",
            **options,
        )  # fmt: skip
        made = await adapter.create("team:a", event)
        [body] = bodies(sim, "/Create")
        assert (body["NotifyBy"], body["Reminder"], body["RelatedEntityId"]) == (
            "1100", 30, "lead-1",
        )  # fmt: skip
        assert sim.task(made.key).related == (1, "lead-1")

    async def test_credentials_never_travel_in_a_url(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        await adapter.list(WINDOW)
        updated = await adapter.update(made, replace(event, title="T"), frozenset({"title"}))
        await adapter.delete(updated)
        assert len(sim.requests) == 6
        assert {r["auth"] for r in sim.requests} == {"header"}
        assert not [r for r in sim.requests if {"accessKey", "secretKey"} & set(r["query"])]

    def test_translation_of_a_documented_appointments_page(self) -> None:
        total, items = leadsquared.page_of(fixture("appointments_page.json"))
        pending, completed = (leadsquared.to_record(item) for item in items)
        start = datetime(2022, 7, 25, 10, 30, tzinfo=UTC)
        assert total == 2 and pending == Record(
            key="cad802c2-0c01-11ed-b7fd-0218d8753a48",
            event=Event(start, start + timedelta(minutes=30), "Meeting: Discovery call",
                        "Agenda: pricing"),
            version="2022-07-25 10:08:55.000",
            remote_id="cad802c2-0c01-11ed-b7fd-0218d8753a48",
            modified=datetime(2022, 7, 25, 10, 8, 55, tzinfo=UTC),
            marker="team:uid-1@example.com",
        )  # fmt: skip
        assert completed.event.status == "confirmed" and completed.marker == ""
        assert completed.event.start == completed.event.end == datetime(2022, 7, 26, 9, tzinfo=UTC)
        assert leadsquared.project(pending.event) == pending.event

    def test_payload_shaped_like_the_seed_example(self, adapter: LeadSquared) -> None:
        event = Event(
            start=datetime(2020, 11, 11, 10, 30, tzinfo=UTC),
            end=datetime(2020, 11, 11, 10, 45, tzinfo=UTC),
            title="Meeting: Subject",
            description="Describing the task",
            owner="taskowner@example.com",
        )
        assert adapter.create_payload("team:a", event) == {
            "Name": "Meeting: Subject",
            "Description": "Describing the task\n\nsyncd-key: team:a",
            "RelatedEntity": 0,
            "RelatedEntityId": "",
            "DueDate": "2020-11-11 10:30:00",
            "EndDate": "2020-11-11 10:45:00",
            "NotifyBy": "1000",
            "OwnerEmailAddress": "taskowner@example.com",
            "TaskType": {"Name": "Meeting"},
        }

    @pytest.mark.parametrize("status", [200, 500])
    def test_an_mx_exception_is_rejected_on_200_and_500(self, status: int) -> None:
        with pytest.raises(Rejected, match="MXMandatoryAttributeMissingException"):
            leadsquared.check(Response(status, {}, fixture("mx_error.json")), "here")

    @pytest.mark.parametrize("status", [200, 429, 500])
    def test_the_rate_limit_exception_is_rate_limited_on_any_status(self, status: int) -> None:
        with pytest.raises(RateLimited) as caught:
            leadsquared.check(Response(status, {}, fixture("rate_limited.json")), "here")
        assert caught.value.retry_after is None

    @pytest.mark.parametrize(
        "answer",
        [
            Response(200, {}, fixture("create_response.json")),
            Response(200, {}, fixture("update_response.json")),
            Response(200, {}, fixture("delete_response.json")),
            Response(200, {}, []),
            Response(503, {}, "Service Unavailable"),  # left to raise_for_status
            Response(401, {}, None),
        ],
    )
    def test_other_answers_pass_the_body_check(self, answer: Response) -> None:
        leadsquared.check(answer, "here")

    async def test_404_is_a_wrong_base_url_never_gone(
        self, served: str, session: aiohttp.ClientSession
    ) -> None:
        adapter = LeadSquared(client(session, served.removesuffix("/v2")), owners=[REP])
        with pytest.raises(AuthFailed, match="base_url"):
            await adapter.get("any")

    def test_all_day_event_is_projected_to_utc_midnights(self) -> None:
        event = Event(date(2027, 3, 10), date(2027, 3, 11), owner=REP, location="x")
        assert leadsquared.project(event) == Event(
            datetime(2027, 3, 10, tzinfo=UTC), datetime(2027, 3, 11, tzinfo=UTC), "(no title)"
        )

    async def test_an_untitled_event_is_sent_as_no_title(
        self, adapter: LeadSquared, event: Event
    ) -> None:
        made = await adapter.create("team:a", replace(event, title=""))
        assert made.event.title == "(no title)" == adapter.project(replace(event, title="")).title

    @pytest.mark.parametrize("status", [200, 429, 500])
    async def test_the_vendor_rate_limit_is_rate_limited_whatever_the_status(
        self, adapter: LeadSquared, sim: LeadSquaredSim, status: int
    ) -> None:
        sim.set_rate_limit(1, 60.0, status=status)
        await adapter.list(WINDOW)
        with pytest.raises(RateLimited) as caught:
            await adapter.list(WINDOW)
        assert caught.value.retry_after is None and sim.refused == 1

    @pytest.mark.parametrize("mx_status", [500, 200])
    async def test_an_inactive_owner_is_rejected_with_one_request(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event, mx_status: int
    ) -> None:
        sim.mx_status = mx_status
        adapter = LeadSquared(adapter.http, owners=[REP, "gone@example.com"])
        with pytest.raises(Rejected, match="not an active user"):
            await adapter.create("team:a", replace(event, owner="gone@example.com"))
        assert len(sim.requests) == 1 and sim.account().tasks == {}

    async def test_an_event_without_owner_is_rejected_before_any_request(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        with pytest.raises(Rejected, match="no owner"):
            await adapter.create("team:a", replace(event, owner=""))
        assert sim.requests == []

    async def test_update_sends_only_the_changed_fields_and_keeps_the_marker(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        hour = timedelta(hours=1)
        edits = [
            (replace(event, title="New", location="not held"), {"title", "location"}),
            (replace(event, description="New agenda"), {"description"}),
            (replace(event, start=event.start + hour, end=event.end + hour), {"start", "end"}),
        ]
        for new, changed in edits:
            made = await adapter.update(made, new, frozenset(changed))
        assert bodies(sim, "/Update") == [
            {"UserTaskId": made.key, "Name": "New"},
            {"UserTaskId": made.key, "Description": "New agenda\n\nsyncd-key: team:a"},
            {"UserTaskId": made.key, "DueDate": "2027-03-10 15:00:30",
             "EndDate": "2027-03-10 16:00:00"},
        ]  # fmt: skip
        assert (made.marker, made.event.description) == ("team:a", "New agenda")

    async def test_update_of_nothing_it_holds_writes_nothing(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        again = await adapter.update(made, replace(event, location="x"), frozenset({"location"}))
        assert again == made and sim.writes == 1

    @pytest.mark.parametrize("mode", ["error", "zero"])
    async def test_update_of_a_task_deleted_at_the_vendor_is_gone(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event, mode: Any
    ) -> None:
        sim.unknown_update = mode
        made = await adapter.create("team:a", event)
        sim.remove(made.key)
        with pytest.raises(Gone):
            await adapter.update(made, replace(event, title="T"), frozenset({"title"}))

    async def test_an_update_the_vendor_refuses_for_a_live_task_stays_rejected(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.fail_next(500, body=fixture("mx_error.json"))
        with pytest.raises(Rejected):
            await adapter.update(made, replace(event, title="T"), frozenset({"title"}))

    async def test_an_end_date_the_update_ignores_is_rejected(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        sim.update_sets_end = False
        made = await adapter.create("team:a", event)
        longer = replace(event, end=event.end + timedelta(hours=1))
        with pytest.raises(Rejected, match="EndDate"):
            await adapter.update(made, longer, frozenset({"end"}))

    async def test_delete_sends_one_id_and_a_refused_delete_of_a_gone_task_is_fine(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        await adapter.delete(made)
        assert bodies(sim, "/DeleteTasks") == [{"TaskIds": [made.key]}]
        sim.fail_next(500, body=fixture("mx_error.json"))
        await adapter.delete(made)

    async def test_a_refused_delete_of_a_live_task_is_rejected(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.fail_next(200, body=fixture("mx_error.json"))
        with pytest.raises(Rejected):
            await adapter.delete(made)
        assert sim.task(made.key)

    async def test_a_completed_task_reads_as_confirmed_with_its_outcome(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.complete(made.key)
        got = await adapter.get(made.key)
        assert got.event.status == "confirmed" and got.event.outcome == "completed"
        assert replace(got.event, outcome="") == made.event and got.version != made.version

    async def test_a_create_whose_read_back_fails_returns_what_was_sent(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        sim.stall_next(0)  # the create passes ...
        sim.fail_next(503)  # ... and the read-back fails
        made = await adapter.create("team:a", event)
        [stored] = sim.account().tasks.values()
        assert (made.key, made.marker, made.version) == (stored.id, "team:a", "")
        assert made.event == adapter.project(event)

    async def test_a_window_over_100_days_is_split_without_duplicates(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        window = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
        days = [date(2027, 1, 5), date(2027, 4, 9), date(2027, 12, 20)]  # 04-09: two spans
        for n, day in enumerate(days):
            await adapter.create(f"team:{n}", replace(event, start=at(day), end=at(day, 13)))
        sim.requests.clear()
        listing = await adapter.list(window)
        spans = [(date.fromisoformat(b["FromDate"]), date.fromisoformat(b["ToDate"]))
                 for b in bodies(sim, LIST_PATH)]  # fmt: skip
        assert len(spans) == 4 and all((b - a).days <= 100 for a, b in spans)
        assert spans[0][0] == date(2026, 12, 31) and spans[-1][1] == date(2028, 1, 2)
        assert all(spans[n][1] == spans[n + 1][0] for n in range(3))
        assert [r.marker for r in listing.records] == ["team:0", "team:1", "team:2"]

    async def test_listing_keeps_only_owned_appointments_inside_the_window(
        self, adapter: LeadSquared, sim: LeadSquaredSim, event: Event
    ) -> None:
        sim.set_user("other@example.com")
        early = at(date(2027, 2, 28), 23)
        await adapter.create("team:in", event)
        await adapter.create("team:early", replace(event, start=early, end=early))
        both = LeadSquared(adapter.http, owners=[REP, "other@example.com"])
        await both.create("team:other", replace(event, owner="other@example.com"))
        assert [r.marker for r in (await adapter.list(WINDOW)).records] == ["team:in"]
        assert bodies(sim, LIST_PATH)[0]["Users"] == [REP]

    @pytest.mark.slow
    async def test_200_creates_within_the_budget_meet_no_refusal(
        self, sim: LeadSquaredSim, served: str, session: aiohttp.ClientSession, event: Event
    ) -> None:
        sim.set_rate_limit(25, 0.5)
        adapter = LeadSquared(client(session, served, Budget(25, 0.5)), owners=[REP])
        # A call holds its place in the window until one window after its answer, so no
        # pause between sending and arriving (a garbage collection, a slow connect) can
        # put more calls into the server's window than it allows.
        creates = (adapter.create(f"team:{n}", event) for n in range(200))
        made = await asyncio.gather(*creates)
        assert sim.refused == 0 and len(sim.account().tasks) == 200
        assert all(m.version for m in made)  # every read-back came through too


class Canned(HttpClient):
    """A client answering from a list of bodies: paging logic without a server."""

    def __init__(self, session: aiohttp.ClientSession, answers: list[Any]) -> None:
        super().__init__(session, "http://canned.invalid", label="leadsquared")
        self.answers, self.sent = answers, list[Any]()

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.sent.append(kwargs.get("json_body"))
        return Response(200, {}, self.answers.pop(0))


TASKS = fixture("appointments_page.json")["List"]
IN_WINDOW = {**TASKS[0], "DueDate": "2027-03-10 14:00:00.000", "EndDate": None}


def canned(session: aiohttp.ClientSession, answers: list[Any]) -> LeadSquared:
    return LeadSquared(Canned(session, answers), owners=[REP])


async def test_paging_follows_page_index_until_the_record_count(
    session: aiohttp.ClientSession,
) -> None:
    second = {**IN_WINDOW, "UserTaskId": "t2"}
    adapter = canned(session, [{"RecordCount": 3, "List": [IN_WINDOW, second]},
                               {"RecordCount": 3, "List": [IN_WINDOW]}])  # fmt: skip
    listing = await adapter.list(WINDOW)
    assert [r.key for r in listing.records] == [IN_WINDOW["UserTaskId"], "t2"]
    assert isinstance(adapter.http, Canned)
    assert [b["Paging"] for b in adapter.http.sent] == [
        {"PageIndex": 1, "PageSize": 100}, {"PageIndex": 2, "PageSize": 100},
    ]  # fmt: skip


async def test_a_listing_that_runs_dry_early_is_malformed(session: aiohttp.ClientSession) -> None:
    adapter = canned(session, [{"RecordCount": 5, "List": [IN_WINDOW]}, {"RecordCount": 5}])
    with pytest.raises(Malformed):
        await adapter.list(WINDOW)
    adapter = canned(
        session, [{"RecordCount": 5, "List": [IN_WINDOW]}, {"RecordCount": 5, "List": []}]
    )
    with pytest.raises(Malformed, match="ended at 1 of 5"):
        await adapter.list(WINDOW)


async def test_an_unreadable_task_is_a_problem_not_a_failure(
    session: aiohttp.ClientSession,
) -> None:
    bad = {**IN_WINDOW, "UserTaskId": "bad", "DueDate": "tomorrow"}
    adapter = canned(session, [{"RecordCount": 3, "List": [IN_WINDOW, bad, "junk"]}])
    listing = await adapter.list(WINDOW)
    assert [r.key for r in listing.records] == [IN_WINDOW["UserTaskId"]]
    assert [p.key for p in listing.problems] == ["bad", "?"]


async def test_create_reads_the_documented_id_back(session: aiohttp.ClientSession) -> None:
    created = fixture("create_response.json")
    task = {**IN_WINDOW, "UserTaskId": created["Message"]["Id"]}
    adapter = canned(session, [created, [task]])
    event = Event(datetime(2027, 3, 10, 14, tzinfo=UTC), datetime(2027, 3, 10, 15, tzinfo=UTC),
                  owner=REP)  # fmt: skip
    made = await adapter.create("team:uid-1@example.com", event)
    assert made.key == made.remote_id == "5a1b2c3d-0c01-11ed-b7fd-0218d8753a48"
    assert made.marker == "team:uid-1@example.com"


async def test_a_create_answer_without_an_id_is_malformed(session: aiohttp.ClientSession) -> None:
    event = Event(datetime(2027, 3, 10, tzinfo=UTC), datetime(2027, 3, 10, tzinfo=UTC), owner=REP)
    with pytest.raises(Malformed):
        await canned(session, [{"Status": "Success", "Message": {}}]).create("team:a", event)


def test_owners_are_required(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError):
        LeadSquared(Canned(session, []), owners=[])
    with pytest.raises(ValueError):
        LeadSquared(Canned(session, []), owners=[REP], related_entity=1)


async def test_an_owner_outside_the_listed_owners_is_refused_before_any_request(
    adapter: LeadSquared, sim: LeadSquaredSim
) -> None:
    sim.set_user("other@example.com")
    start = at(date(2027, 3, 10), 9)
    event = Event(start, start, title="Call", owner="rep@example.com")
    before = len(sim.requests)
    with pytest.raises(Rejected, match="not among the route's owners"):
        await adapter.create("team:x", replace(event, owner="other@example.com"))
    assert len(sim.requests) == before
