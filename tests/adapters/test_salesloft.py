"""Salesloft adapter: the shared contract over loopback HTTP, plus its own quirks."""

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

from syncd.adapter import Adapter, BulkAdapter
from syncd.errors import AuthFailed, Malformed, RateLimited, Rejected, Unavailable
from syncd.http import HttpClient, Response
from syncd.model import Event, Person, Record
from syncd.simulators import salesloft as simulator
from syncd.simulators.salesloft import SalesloftSim
from syncd.vendors import salesloft
from syncd.vendors.salesloft import Salesloft, client_headers
from tests.adapters.contract import WINDOW, AdapterContract

FIXTURES = Path(__file__).parent.parent / "fixtures" / "salesloft"
CALENDAR = "external_u-1"
SEED_CALENDAR = "external_00000000-0000-0000-0000-000000000000"
T1 = datetime(2027, 2, 1, 9, tzinfo=UTC)
T2 = datetime(2027, 2, 2, 9, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def client(session: aiohttp.ClientSession, url: str) -> HttpClient:
    headers = client_headers(simulator.DEFAULT_KEY)
    return HttpClient(session, url, label="salesloft", headers=headers, timeout=10.0)


@pytest.fixture
def sim() -> SalesloftSim:
    """The simulator: one team, token `sim-key`, user rep@example.com (guid u-1)."""
    return simulator.default()


@pytest.fixture
async def served(sim: SalesloftSim) -> AsyncIterator[str]:
    runner = await simulator.serve(sim=sim)
    yield simulator.base_url(runner)
    await runner.cleanup()


@pytest.fixture
def adapter(served: str, session: aiohttp.ClientSession) -> Salesloft:
    """The adapter bound to the simulator, on the calendar of user `u-1`."""
    adapter = Salesloft(client(session, served), user_guid="u-1")
    adapter.poll_interval = 0.01
    return adapter


def writes(sim: SalesloftSim) -> list[Any]:
    return [r["body"] for r in sim.requests if r["method"] != "GET"]


def paths(sim: SalesloftSim) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sim.requests]


class TestSalesloft(AdapterContract):
    """The contract, then Salesloft's own behaviour."""

    def key_for(self, n: int) -> str:
        return f"team:uid-{n}@example.com"

    async def test_deleted_record_is_gone(self, adapter: Adapter, event: Event) -> None:
        """Overridden: there is no delete, a deleted record reads back cancelled."""
        made = await adapter.create(self.key_for(1), event)
        await adapter.delete(made)
        got = await adapter.get(made.key)
        assert got.event.status == "cancelled"
        assert got.event == replace(made.event, status="cancelled")

    def test_is_an_adapter(self, adapter: Salesloft) -> None:
        typed: Adapter = adapter
        assert isinstance(adapter, BulkAdapter)
        assert typed.caps.partial_update and typed.caps.holds_cancelled
        assert typed.caps.absence == "relist" and not typed.caps.server_ids
        assert typed.caps.fields == {
            "start", "end", "title", "description", "location", "status", "organizer",
            "attendees",
        }  # fmt: skip

    def test_translation_of_the_seed_response(self) -> None:
        record = salesloft.to_record(salesloft.data_of(fixture("upsert_response.json")))
        jim = Person("jim.halpert@example.com", "Jim Haplert", "ACCEPTED")
        gabe = Person("gabe.lewis@example.com", "Gabe Lewis", "NEEDS-ACTION")
        updated = datetime(2022, 10, 21, 11, 44, 43, 216099, tzinfo=UTC)
        assert record == Record(
            key="nCwjFxlX",
            event=Event(
                start=datetime(2022, 8, 4, 23, tzinfo=UTC),
                end=datetime(2022, 8, 4, 23, 30, tzinfo=UTC),
                title="Intro to the product capabilities",
                description="This field was not passed in the request and will remain unchanged",
                organizer="jim.halpert@example.com",
                attendees=(jim, gabe),
            ),
            version=updated.isoformat(),
            remote_id="LUHIDq0to6tM@domain.example.com",
            modified=updated,
        )
        assert salesloft.project(record.event) == record.event

    def test_payload_shaped_like_the_seed_request(self) -> None:
        seed = fixture("upsert_request.json")
        pdt = timezone_of(seed["start_time"])
        event = Event(
            start=datetime(2022, 8, 4, 16, tzinfo=pdt),
            end=datetime(2022, 8, 4, 16, 30, tzinfo=pdt),
            title=seed["title"],
            organizer="jim.halpert@example.com",
            attendees=(
                Person("jim.halpert@example.com", "Jim Haplert", "ACCEPTED"),
                Person("gabe.lewis@example.com", "Gabe Lewis", ""),
            ),
            modified=datetime(2022, 8, 4, 16, 30, tzinfo=pdt),
        )
        key = "team:LUHIDq0to6tM@domain.example.com"
        body = salesloft.to_payload(seed["calendar_id"], key, event)
        assert body["i_cal_uid"] == seed["i_cal_uid"] and body["id"] == key
        assert body["attendees"] == seed["attendees"]
        assert (body["start_time"], body["end_time"]) == (
            "2022-08-04T23:00:00Z",
            "2022-08-04T23:30:00Z",
        )
        assert body["updated_at"] == "2022-08-04T23:30:00.000000Z"
        assert body["status"] == "confirmed" and body["canceled_at"] is None
        assert body["recurring"] is False and body["organizer"] == "jim.halpert@example.com"

    @pytest.mark.parametrize(
        ("key", "uid", "recurring"),
        [
            ("team:uid-1@example.com", "uid-1@example.com", False),
            ("team:uid-1@example.com:20270310T140000Z", "uid-1@example.com", True),
            ("team:uid-1@example.com:20270310", "uid-1@example.com", True),
            ("team:uid-1@example.com:20270310T140000L", "uid-1@example.com", True),
            ("team:urn:uuid:1234", "urn:uuid:1234", False),
            ("team:urn:uuid:1234:20270310T140000Z", "urn:uuid:1234", True),
            ("team:h:abcdefghijklmnopqrstuvwxyz", "team:h:abcdefghijklmnopqrstuvwxyz", False),
            ("bare-key", "bare-key", False),
        ],
    )
    def test_the_uid_is_the_middle_of_the_key(self, key: str, uid: str, recurring: bool) -> None:
        assert salesloft.split_key(key) == (uid, recurring)

    def test_a_documented_list_page_reads_cancelled_all_day_and_drops_others(self) -> None:
        items, more, total = salesloft.page_of(fixture("list_page.json"))
        assert (more, total) == (False, 3)
        weekly, offsite = (salesloft.to_record(item) for item in items[:2])
        assert weekly.event.status == "cancelled"
        assert weekly.event.attendees == (
            Person("jim.halpert@example.com", "Jim Haplert", "ACCEPTED"),
        )  # the removed attendee is skipped
        assert weekly.remote_id == "series-1@domain.example.com"
        assert (offsite.event.start, offsite.event.end) == (date(2022, 8, 10), date(2022, 8, 11))
        assert offsite.event.status == "tentative" and offsite.event.transparent
        assert salesloft.project(offsite.event) == offsite.event

    @pytest.mark.parametrize(
        ("page", "cost"), [(1, 1), (100, 1), (101, 3), (150, 3), (151, 8), (250, 8), (251, 10),
                           (500, 10), (501, 30)]
    )  # fmt: skip
    def test_deep_pages_cost_more(self, page: int, cost: int) -> None:
        assert salesloft.page_cost(page) == cost

    def test_project_keeps_what_salesloft_holds(self) -> None:
        event = Event(
            start=datetime(2027, 3, 10, 14, 0, 30, 999, tzinfo=UTC),
            end=datetime(2027, 3, 10, 15, tzinfo=UTC),
            status="weird",
            owner="rep@example.com",
            contact=Person("x@example.com"),
            private=True,
            attendees=(Person("a@example.com", "A", "delegated"), Person("b@x", "", "declined")),
        )
        projected = salesloft.project(event)
        assert projected.start == datetime(2027, 3, 10, 14, 0, 30, tzinfo=UTC)
        assert projected.status == "confirmed" and projected.owner == "" and not projected.private
        assert projected.contact is None
        assert [p.partstat for p in projected.attendees] == ["NEEDS-ACTION", "DECLINED"]

    async def test_attendees_organizer_and_all_day_round_trip(
        self, adapter: Salesloft, sim: SalesloftSim
    ) -> None:
        event = Event(
            start=date(2027, 3, 10),
            end=date(2027, 3, 11),
            title="Offsite",
            location="Scranton",
            organizer="jim@example.com",
            attendees=(
                Person("jim@example.com", "Jim", "ACCEPTED"),
                Person("pam@example.com", "", "TENTATIVE"),
                Person("dwight@example.com", "Dwight", "DELEGATED"),
            ),
        )
        made = await adapter.create("team:offsite", event)
        [listed] = (await adapter.list(WINDOW)).records
        assert made.event == listed.event == adapter.project(event)
        stored = sim.event("team:offsite").values
        assert stored["all_day"] is True
        assert [a["organizer"] for a in stored["attendees"]] == [True, False, False]

    async def test_update_sends_only_the_changed_fields(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        updated = await adapter.update(
            made, replace(event, location="Room 5"), frozenset({"location", "owner"})
        )
        body = writes(sim)[-1]
        assert set(body) == {
            "calendar_id", "id", "i_cal_uid", "recurring", "updated_at", "start_time",
            "end_time", "all_day", "location",
        }  # fmt: skip
        assert updated.event == replace(made.event, location="Room 5")
        assert sim.event("team:a").changed == ["location"]

    async def test_update_of_nothing_it_holds_writes_nothing(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        again = await adapter.update(made, replace(event, owner="x@y"), frozenset({"owner"}))
        assert again == made and sim.writes == 1

    async def test_an_older_update_leaves_the_event_and_returns_the_vendors_version(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", replace(event, modified=T2))
        stale = replace(event, title="Stale", modified=T1)
        kept = await adapter.update(made, stale, frozenset({"title"}))
        assert sim.writes == 2  # it was sent; the vendor kept its newer version
        assert kept.event == made.event and kept.version == made.version
        assert sim.event("team:a").values["title"] == "Discovery call"
        newer = await adapter.update(made, replace(stale, modified=T2), frozenset({"title"}))
        assert newer.event.title == "Stale"  # an equal updated_at is not stale

    async def test_delete_cancels_and_a_create_revives(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        await adapter.delete(made)
        stored = sim.event("team:a").values
        assert stored["status"] == "cancelled" and stored["canceled_at"] is not None
        [listed] = (await adapter.list(WINDOW)).records
        assert listed.event.status == "cancelled"
        revived = await adapter.create("team:a", event)
        assert revived.event == made.event and sim.event("team:a").values["canceled_at"] is None

    async def test_an_update_of_a_vanished_event_writes_it_whole(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.remove("team:a")
        moved = replace(event, title="Moved")
        updated = await adapter.update(made, moved, frozenset({"title"}))
        assert updated.event == adapter.project(moved)
        assert sim.event("team:a").values["location"] == "Room 4"

    async def test_occurrences_are_events_sharing_the_series_uid(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        for day in (10, 17):
            start = event.start.replace(day=day)
            key = f"team:weekly@example.com:202703{day}T140000Z"
            await adapter.create(key, replace(event, start=start, end=start + timedelta(hours=1)))
        stored = sim.team().events.values()
        assert {e.i_cal_uid for e in stored} == {"weekly@example.com"}
        assert all(e.values["recurring"] for e in stored) and len(stored) == 2

    async def test_calendar_resolved_once_from_the_rep_email(
        self, served: str, session: aiohttp.ClientSession, sim: SalesloftSim, event: Event
    ) -> None:
        adapter = Salesloft(client(session, served), rep_email="REP@example.com")
        await adapter.create("team:a", event)
        await adapter.list(WINDOW)
        assert paths(sim)[0] == "GET /v2/users.json"
        assert sim.requests[0]["query"]["search"] == "REP@example.com"
        assert paths(sim).count("GET /v2/users.json") == 1
        assert sim.requests[2]["query"]["calendar_id"] == CALENDAR
        assert sim.event("team:a").calendar_id == CALENDAR

    async def test_an_unknown_rep_email_is_rejected(
        self, served: str, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(Rejected, match=r"nobody@example\.com"):
            await Salesloft(client(session, served), rep_email="nobody@example.com").list(WINDOW)

    @pytest.mark.parametrize("status", [422, 404])
    async def test_an_unknown_calendar_is_rejected(
        self, served: str, session: aiohttp.ClientSession, sim: SalesloftSim, event: Event,
        status: int,
    ) -> None:  # fmt: skip
        sim.unknown_calendar_status = status
        adapter = Salesloft(client(session, served), calendar_id="external_nobody")
        with pytest.raises(Rejected, match="calendar_id"):
            await adapter.create("team:a", event)

    async def test_an_exhausted_team_budget_is_rate_limited_without_a_delay(
        self, adapter: Salesloft, sim: SalesloftSim
    ) -> None:
        sim.window = 3600.0
        sim.consume(600)  # another integration of the team spent it all
        with pytest.raises(RateLimited) as caught:
            await adapter.list(WINDOW)
        assert caught.value.retry_after is None and sim.refused == 1

    async def test_a_bulk_of_5000_ends_with_every_record_present_once(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        sim.bulk_per_tick = 5_000
        items = [(f"team:bulk-{n}@example.com", self.nth(event, n % 600)) for n in range(5_000)]
        results = await adapter.upsert_many(items)
        assert [r.key for r in results if isinstance(r, Record)] == [key for key, _ in items]
        assert paths(sim).count("POST /v2/bulk_jobs/1/job_data") == 1
        stored = sim.team().events
        assert len(stored) == 5_000 and {e.id for e in stored.values()} == {k for k, _ in items}
        listing = await adapter.list(WINDOW)
        assert len(listing.records) == 5_000 and listing.complete

    async def test_bulk_uploads_in_chunks_and_updates_in_place(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(salesloft, "JOB_DATA_MAX", 2)
        made = await adapter.create("team:k0", event)
        items = [(f"team:k{n}", replace(event, title=f"#{n}")) for n in range(5)]
        results = await adapter.upsert_many(items)
        assert [r.event.title for r in results if isinstance(r, Record)] == [
            f"#{n}" for n in range(5)
        ]
        assert sum(p.endswith("/job_data") for p in paths(sim)) == 3
        assert len(sim.team().events) == 5 and results[0].version != made.version  # type: ignore[union-attr]

    async def test_a_failed_bulk_job_fails_every_item_without_raising(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        sim.fail_next(503)
        results = await adapter.upsert_many([("team:a", event), ("team:b", event)])
        assert all(isinstance(r, Unavailable) for r in results) and len(results) == 2

    async def test_one_bulk_job_at_a_time_per_team(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        other = Salesloft(adapter.http, user_guid="u-1")  # another route on the same account
        other.poll_interval = 0.01
        first = adapter.upsert_many([("team:a", event)])
        second = other.upsert_many([("team:b", event)])
        await asyncio.gather(first, second)
        creates = [n for n, p in enumerate(paths(sim)) if p == "POST /v2/bulk_jobs"]
        results = [n for n, p in enumerate(paths(sim)) if p.endswith("/results")]
        assert len(creates) == 2 and results[0] < creates[1]

    async def test_a_401_is_auth_failed_for_every_bulk_item(
        self, adapter: Salesloft, sim: SalesloftSim, event: Event
    ) -> None:
        sim.fail_next(401)
        [result] = await adapter.upsert_many([("team:a", event)])
        assert isinstance(result, AuthFailed)


class Canned(HttpClient):
    """A client answering from a list of bodies: paging and bulk logic without a server."""

    def __init__(self, session: aiohttp.ClientSession, answers: list[Any]) -> None:
        super().__init__(session, "http://canned.invalid", label="salesloft")
        self.answers, self.sent = answers, list[tuple[str, str, dict[str, Any]]]()

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.sent.append((method, path, kwargs))
        return Response(200, {}, self.answers.pop(0))


def canned(session: aiohttp.ClientSession, answers: list[Any]) -> Salesloft:
    adapter = Salesloft(Canned(session, answers), calendar_id=SEED_CALENDAR)
    adapter.poll_interval = 0
    return adapter


def timezone_of(text: str) -> Any:
    return datetime.fromisoformat(text).tzinfo


async def test_the_list_drops_other_calendars_and_stays_complete(
    session: aiohttp.ClientSession,
) -> None:
    page = fixture("list_page.json")
    listing = await canned(session, [page]).list(
        replace(
            WINDOW, start=datetime(2022, 8, 1, tzinfo=UTC), end=datetime(2022, 9, 1, tzinfo=UTC)
        )
    )
    assert [r.key for r in listing.records] == [item["id"] for item in page["data"][:2]]
    assert listing.complete


async def test_a_listing_short_of_its_total_count_is_incomplete(
    session: aiohttp.ClientSession,
) -> None:
    page = fixture("list_page.json")
    page["metadata"]["paging"]["total_count"] = 4
    assert not (await canned(session, [page]).list(WINDOW)).complete


async def test_deep_pages_pass_their_cost_to_the_funnel(session: aiohttp.ClientSession) -> None:
    def page(n: int) -> Any:
        return {"metadata": {"paging": {"next_page": n + 1 if n < 102 else None}}, "data": []}

    adapter = canned(session, [page(n) for n in range(1, 103)])
    await adapter.list(WINDOW)
    sent = adapter.http.sent  # type: ignore[attr-defined]
    assert [kwargs["cost"] for _, _, kwargs in sent[99:]] == [1, 3, 3]


async def test_a_page_without_paging_ends_when_short(session: aiohttp.ClientSession) -> None:
    item = fixture("upsert_response.json")["data"] | {"calendar_id": SEED_CALENDAR}
    listing = await canned(session, [{"data": [item]}]).list(
        replace(WINDOW, start=datetime(2022, 8, 1, tzinfo=UTC))
    )
    assert [r.key for r in listing.records] == ["nCwjFxlX"]


async def test_full_pages_without_paging_go_on(session: aiohttp.ClientSession) -> None:
    item = fixture("upsert_response.json")["data"] | {"start_time": "2027-03-10T10:00:00Z"}
    full = {"data": [item | {"id": f"e{n}"} for n in range(100)]}
    adapter = canned(session, [full, {"data": [item]}])
    assert len((await adapter.list(WINDOW)).records) == 101
    pages = [kwargs["params"]["page"] for _, _, kwargs in adapter.http.sent]  # type: ignore[attr-defined]
    assert pages == ["1", "2"]


async def test_an_unreadable_event_is_a_problem_not_a_failure(
    session: aiohttp.ClientSession,
) -> None:
    good = fixture("upsert_response.json")["data"] | {"start_time": "2027-03-10T10:00:00Z"}
    bad = good | {"id": "team:bad", "start_time": "tomorrow"}
    listing = await canned(session, [{"data": [good, bad, "junk"]}]).list(WINDOW)
    assert [r.key for r in listing.records] == ["nCwjFxlX"]
    assert [p.key for p in listing.problems] == ["team:bad", "?"]


async def test_the_calendar_is_looked_up_case_blind(session: aiohttp.ClientSession) -> None:
    adapter = Salesloft(Canned(session, [fixture("users_page.json")]), rep_email="rep@example.com")
    assert await adapter.calendar() == SEED_CALENDAR
    assert await adapter.calendar() == SEED_CALENDAR  # once


async def test_bulk_results_map_to_items_in_order(session: aiohttp.ClientSession) -> None:
    job = fixture("bulk_job_done.json")
    executing = {"data": job["data"] | {"state": "executing"}}
    answers = [
        job,
        {"data": {"records": 3}},
        job,
        executing,
        job,
        fixture("bulk_results.json"),
        {"data": []},
    ]
    event = Event(datetime(2022, 10, 23, 9, tzinfo=UTC), datetime(2022, 10, 23, 9, 30, tzinfo=UTC))
    adapter = canned(session, answers)
    results = await adapter.upsert_many([("iJc04yGg", event), ("VuNfsnuW", event), ("lost", event)])
    refused, done, lost = results
    assert (
        isinstance(refused, Rejected) and "start_time" in str(refused) and refused.key == "iJc04yGg"
    )
    assert isinstance(done, Record) and done.key == "VuNfsnuW"
    assert isinstance(lost, Unavailable) and lost.key == "lost"
    sent = [(method, path) for method, path, _ in adapter.http.sent]  # type: ignore[attr-defined]
    assert sent == [
        ("POST", "/v2/bulk_jobs"),
        ("POST", "/v2/bulk_jobs/42/job_data"),
        ("PUT", "/v2/bulk_jobs/42"),
        ("GET", "/v2/bulk_jobs/42"),
        ("GET", "/v2/bulk_jobs/42"),
        ("GET", "/v2/bulk_jobs/42/results"),
        ("GET", "/v2/bulk_jobs/42/results"),
    ]
    assert adapter.http.sent[-1][2]["params"]["id[gt]"] == "1002"  # type: ignore[attr-defined]


async def test_a_route_needs_a_calendar(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="calendar_id"):
        Salesloft(HttpClient(session, "http://x.invalid", label="salesloft"))


async def test_a_bulk_job_without_an_id_fails_every_item(session: aiohttp.ClientSession) -> None:
    event = Event(datetime(2027, 3, 10, 9, tzinfo=UTC), datetime(2027, 3, 10, 10, tzinfo=UTC))
    results = await canned(session, [{"data": {}}]).upsert_many([("a", event), ("b", event)])
    assert [type(r) for r in results] == [Malformed, Malformed]
