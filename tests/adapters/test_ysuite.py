"""YSUITE adapter: the shared contract over loopback HTTP, plus its own quirks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from syncd.adapter import Adapter
from syncd.errors import AuthFailed, Gone, Malformed, Rejected
from syncd.http import HttpClient, Response
from syncd.model import Event, Person, Record, Window, fingerprint
from syncd.simulators import ysuite as simulator
from syncd.simulators.ysuite import YSuiteSim
from syncd.vendors import ysuite
from syncd.vendors.ysuite import YSuite, client_headers
from tests.adapters.contract import WINDOW, AdapterContract

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ysuite"
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
OPTIONS: dict[str, Any] = {
    "account_timezone": "Europe/Berlin",
    "supports_update": True,
    "supports_delete": True,
    "cstid": 10,
    "users": {"Rep@Example.com": 7},
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def sim() -> YSuiteSim:
    """The default simulator with the undocumented PUT and DELETE switched on."""
    sim = simulator.default()
    sim.supports_update = sim.supports_delete = True
    return sim


@pytest.fixture
async def runner(sim: YSuiteSim) -> AsyncIterator[web.AppRunner]:
    runner = await simulator.serve(sim=sim)
    yield runner
    await runner.cleanup()


@pytest.fixture
def make(runner: web.AppRunner, session: aiohttp.ClientSession) -> Any:
    """Build an adapter bound to the simulator, with `OPTIONS` overridden."""

    def build(**options: Any) -> YSuite:
        headers = client_headers(simulator.ACCESS, simulator.SECRET)
        url = simulator.base_url(runner)
        http = HttpClient(session, url, label="ysuite", headers=headers, budget=None, timeout=10.0)
        return YSuite(http, **(OPTIONS | options))

    return build


@pytest.fixture
def adapter(make: Any) -> YSuite:
    return make()  # type: ignore[no-any-return]


def writes(sim: YSuiteSim) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sim.requests if r["method"] != "GET"]


def at(zone: ZoneInfo, y: int, m: int, d: int, hour: int, minute: int, fold: int = 0) -> datetime:
    """A local wall time in `zone` (`fold=1`: the second of a repeated hour)."""
    return datetime(y, m, d, hour, minute, tzinfo=zone, fold=fold)


class TestYSuite(AdapterContract):
    """The contract, then YSUITE's own behaviour."""

    def test_is_an_adapter(self, adapter: YSuite) -> None:
        typed: Adapter = adapter
        caps = typed.caps
        assert caps.fields == {"start", "end", "title", "description", "status", "outcome"}
        assert caps.server_ids and caps.holds_cancelled and caps.absence == "get"
        assert caps.updatable and caps.deletable and not caps.partial_update

    def test_its_projection_keeps_an_outcome_so_one_that_flowed_back_is_no_difference(
        self, adapter: YSuite
    ) -> None:
        """The projection dropped the outcome: every outcome written into the calendar
        left the link noted as "the vendor holds other values for: outcome"."""
        event = Event(datetime(2027, 3, 1, 9, tzinfo=UTC), datetime(2027, 3, 1, 10, tzinfo=UTC))
        assert adapter.project(replace(event, outcome="no_show")).outcome == "no_show"

    # -- translation -----------------------------------------------------------------------

    def test_translation_of_the_documented_list_example(self) -> None:
        items, total, pages = ysuite.page_of(fixture("list_page.json")["data"], 0)
        record = ysuite.to_record(items[0], BERLIN)
        start = datetime(2026, 7, 15, 8, tzinfo=UTC)  # 10:00 in Berlin, summer time
        assert (total, pages) == (12, 2)
        assert record == Record(
            key="15",
            event=Event(start, start + timedelta(hours=1), title="Follow up with Sarah"),
            version=record.version,
            remote_id="15",
        )
        assert record.version and record.marker == ""

    def test_translation_of_a_task_with_marker_and_outcome(self) -> None:
        record = ysuite.to_record(fixture("task.json")["data"], NEW_YORK)
        assert record.key == "16" and record.marker == "team:uid-1@example.com"
        assert record.event.description == "Agenda: pricing"
        assert record.event.status == "confirmed"  # 4 no show: an outcome, not a cancellation
        assert record.event.start == datetime(2026, 7, 15, 18, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("code", "name"),
        [(0, "confirmed"), (1, "confirmed"), (2, "confirmed"), (3, "cancelled"), (4, "confirmed")],
    )
    def test_status_is_read_as_two_states(self, code: int, name: str) -> None:
        item = fixture("list_page.json")["data"]["data"][0] | {"status": code}
        assert ysuite.to_record(item, BERLIN).event.status == name

    @pytest.mark.parametrize(
        "item",
        [{"activity_id": "1"}, {"start_datetime": "x"}, {"status": 9}, {"title": 5}, [], "t"],
    )
    def test_unreadable_tasks_are_malformed(self, item: Any) -> None:
        base = {"activity_id": 1, "start_datetime": "2027-03-10T10:00:00"}
        with pytest.raises(Malformed):
            ysuite.to_record(base | item if isinstance(item, dict) else item, BERLIN)

    def test_the_off_by_one_trap_is_malformed(self) -> None:
        page = {"data": [], "current_page": 0, "total_records": 0, "total_pages": 1}
        with pytest.raises(Malformed, match="current_page"):
            ysuite.page_of(page, 0)

    async def test_create_sends_the_documented_request_shape(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        documented = fixture("create_request.json")
        start = datetime(2026, 7, 15, 8, tzinfo=UTC)
        event = Event(
            start,
            start + timedelta(hours=1),
            title=documented["title"],
            description=documented["description"],
            owner="rep@example.com",
        )
        await adapter.create("team:a", event)
        [post] = [r for r in sim.requests if r["method"] == "POST"]
        assert post["body"] == {
            **{k: documented[k] for k in ("title", "start_datetime", "end_datetime", "cstid")},
            "description": "Discuss contract renewal terms\n\nsyncd-key: team:a",
            "status": 0,
            "assigned_user_id": 7,
        }

    def test_headers_carry_both_keys(self) -> None:
        headers = client_headers("a", "s")
        assert headers["x-ysuite-access-key"] == "a" and headers["x-ysuite-secret-key"] == "s"

    # -- times -----------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("zone", "local", "stored"),
        [
            (NEW_YORK, at(NEW_YORK, 2027, 3, 14, 1, 30), "2027-03-14T01:30:00"),
            (NEW_YORK, at(NEW_YORK, 2027, 3, 14, 3, 30), "2027-03-14T03:30:00"),
            (BERLIN, at(BERLIN, 2027, 10, 31, 1, 30), "2027-10-31T01:30:00"),
            (BERLIN, at(BERLIN, 2027, 10, 31, 3, 30), "2027-10-31T03:30:00"),
        ],
        ids=["ny-before-gap", "ny-after-gap", "berlin-before-fold", "berlin-after-fold"],
    )
    async def test_dst_day_times_round_trip_to_the_same_instant(
        self, make: Any, sim: YSuiteSim, zone: ZoneInfo, local: datetime, stored: str
    ) -> None:
        adapter = make(account_timezone=str(zone))
        start = local.astimezone(UTC)
        event = Event(start, start + timedelta(hours=1), title="DST")
        made = await adapter.create("team:dst", event)
        assert sim.task(int(made.key)).start_datetime == stored
        got = await adapter.get(made.key)
        assert got.event.start == start and got.event.end == start + timedelta(hours=1)
        assert adapter.project(event) == got.event

    async def test_an_hour_across_the_spring_gap_keeps_its_length(
        self, make: Any, sim: YSuiteSim
    ) -> None:
        adapter = make(account_timezone="America/New_York")
        start = at(NEW_YORK, 2027, 3, 14, 1, 30).astimezone(UTC)
        made = await adapter.create("team:gap", Event(start, start + timedelta(hours=1)))
        task = sim.task(int(made.key))
        assert (task.start_datetime, task.end_datetime) == (
            "2027-03-14T01:30:00",
            "2027-03-14T03:30:00",
        )
        assert made.event.end - made.event.start == timedelta(hours=1)

    async def test_the_repeated_fall_back_hour_reads_as_its_first_instant(self, make: Any) -> None:
        adapter = make(account_timezone="Europe/Berlin")
        second = at(BERLIN, 2027, 10, 31, 2, 30, fold=1).astimezone(UTC)  # 01:30Z, CET
        event = Event(second, second + timedelta(minutes=30), title="Ambiguous")
        made = await adapter.create("team:fold", event)
        assert made.event.start == second - timedelta(hours=1)  # fold=0: 00:30Z, CEST
        fields = adapter.caps.fields
        assert fingerprint(adapter.project(event), fields) == fingerprint(made.event, fields)
        assert adapter.project(made.event) == made.event  # the difference is stable, no loop

    async def test_all_day_events_become_local_midnights(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        made = await adapter.create("team:day", Event(date(2027, 3, 10), date(2027, 3, 11)))
        task = sim.task(int(made.key))
        assert (task.start_datetime, task.end_datetime) == (
            "2027-03-10T00:00:00",
            "2027-03-11T00:00:00",
        )
        assert made.event.start == datetime(2027, 3, 9, 23, tzinfo=UTC)

    # -- text, marker, status --------------------------------------------------------------

    async def test_marker_round_trips_and_stays_out_of_the_description(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        key = "team:uid-1@example.com:20270310T140000Z"
        made = await adapter.create(key, replace(event, description="  Agenda  \n"))
        stored = sim.task(int(made.key)).description
        assert stored == f"Agenda\n\nsyncd-key: {key}"
        assert made.marker == key and made.key == str(int(made.key))
        assert made.event.description == "Agenda"
        [listed] = (await adapter.list(WINDOW)).records
        assert listed.marker == key
        updated = await adapter.update(
            made, replace(event, description=""), frozenset({"description"})
        )
        assert (updated.marker, updated.event.description) == (key, "")
        assert sim.task(int(made.key)).description == f"syncd-key: {key}"

    async def test_tasks_made_in_ysuite_have_no_marker(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        sim.add_task(description="Typed in the UI")
        [listed] = (await adapter.list(WINDOW)).records
        assert listed.marker == "" and listed.event.description == "Typed in the UI"

    async def test_titles_are_cut_to_150_and_never_blank(
        self, adapter: YSuite, event: Event
    ) -> None:
        long = await adapter.create("team:long", replace(event, title="x" * 149 + " yz"))
        assert long.event.title == "x" * 149
        blank = await adapter.create("team:blank", replace(event, title="   "))
        assert blank.event.title == "(no title)" == adapter.project(replace(event, title="")).title

    async def test_cancelled_event_is_status_3_and_reads_cancelled(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        cancelled = replace(event, status="cancelled")
        updated = await adapter.update(made, cancelled, frozenset({"status"}))
        assert sim.task(int(made.key)).status == 3 and updated.event.status == "cancelled"
        assert adapter.project(cancelled).status == "cancelled"
        reopened = await adapter.update(updated, event, frozenset({"status"}))
        assert sim.task(int(made.key)).status == 0 and reopened.event.status == "confirmed"

    @pytest.mark.parametrize("outcome", [1, 2, 4])
    async def test_an_update_keeps_the_vendor_outcome(
        self, adapter: YSuite, sim: YSuiteSim, event: Event, outcome: int
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.set_status(int(made.key), outcome)
        await adapter.update(made, replace(event, title="Moved"), frozenset({"title"}))
        assert sim.task(int(made.key)).status == outcome

    async def test_update_carries_fields_it_does_not_manage_over_a_replacing_put(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.put_replaces = True
        made = await adapter.create("team:a", event)
        sim.edit(int(made.key), {"priority": 4, "deal_id": 20, "tags": [1]})
        await adapter.update(made, replace(event, title="Moved"), frozenset({"title"}))
        task = sim.task(int(made.key))
        assert (task.priority, task.deal_id, task.cstid, task.tags) == (4, 20, 10, [1])
        assert (task.title, task.assigned_user_id) == ("Moved", 7)

    async def test_update_of_fields_ysuite_cannot_hold_writes_nothing(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        again = await adapter.update(made, replace(event, location="x"), frozenset({"location"}))
        assert again == made and sim.writes == 1

    # -- update and delete switched off ----------------------------------------------------

    async def test_without_update_and_delete_support_they_are_refused_unsent(
        self, make: Any, sim: YSuiteSim, event: Event
    ) -> None:
        adapter = make(supports_update=False, supports_delete=False)
        assert not adapter.caps.updatable and not adapter.caps.deletable
        made = await adapter.create("team:a", event)
        with pytest.raises(Rejected, match="supports_update"):
            await adapter.update(made, replace(event, title="x"), frozenset({"title"}))
        with pytest.raises(Rejected, match="supports_delete"):
            await adapter.delete(made)
        assert writes(sim) == [("POST", "/v1/tasks")]

    @pytest.mark.parametrize("status", [405, 404])
    async def test_a_missing_put_or_delete_route_is_rejected_not_gone(
        self, adapter: YSuite, sim: YSuiteSim, event: Event, status: int
    ) -> None:
        sim.supports_update = sim.supports_delete = False
        sim.missing_route_status = status
        made = await adapter.create("team:a", event)
        with pytest.raises(Rejected) as caught:
            await adapter.update(made, replace(event, title="x"), frozenset({"title"}))
        assert not isinstance(caught.value, Gone) and f"HTTP {status}" in str(caught.value)
        with pytest.raises(Rejected):
            await adapter.delete(made)
        assert sim.task(int(made.key)).title == event.title

    # -- errors ----------------------------------------------------------------------------

    async def test_not_found_400_is_gone(self, adapter: YSuite, sim: YSuiteSim) -> None:
        with pytest.raises(Gone):
            await adapter.get("99999")
        with pytest.raises(Gone):
            await adapter.get("1")  # an activity that is not a task
        sim.fail_next(400, body=fixture("error_not_found.json"))
        with pytest.raises(Gone):
            await adapter.get("3")
        assert [r["path"] for r in sim.requests] == [
            "/v1/tasks/99999",
            "/v1/tasks/1",
            "/v1/tasks/3",
        ]

    async def test_a_key_that_is_no_activity_id_is_gone_unasked(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        with pytest.raises(Gone):
            await adapter.get("team:uid")
        assert sim.requests == []

    async def test_a_business_400_is_rejected_not_gone(
        self, make: Any, sim: YSuiteSim, event: Event
    ) -> None:
        sim.link_error_status = 400
        with pytest.raises(Rejected) as caught:
            await make(cstid=99).create("team:a", event)
        assert not isinstance(caught.value, Gone) and "Cstid 99 not found" in str(caught.value)

    async def test_success_false_in_a_200_is_an_error(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.fail_next(200, body={"success": False, "message": "Something went wrong"})
        with pytest.raises(Rejected, match="Something went wrong"):
            await adapter.create("team:a", event)
        made = await adapter.create("team:a", event)
        sim.fail_next(200, body=fixture("error_not_found.json"))
        with pytest.raises(Gone):
            await adapter.get(made.key)

    async def test_no_organisation_is_auth_failed(self, adapter: YSuite, sim: YSuiteSim) -> None:
        sim.ws().organisation = False
        with pytest.raises(AuthFailed, match="No organisation"):
            await adapter.list(WINDOW)

    async def test_validation_422_is_rejected_with_the_field_message(
        self, make: Any, sim: YSuiteSim, event: Event
    ) -> None:
        with pytest.raises(Rejected, match="The selected cstid is invalid"):
            await make(cstid=99).create("team:a", event)
        with pytest.raises(Rejected, match="The selected assigned user id is invalid"):
            await make(users={"rep@example.com": 99}).create("team:a", event)
        sim.fail_next(422, body=fixture("error_422.json"))
        with pytest.raises(Rejected, match="The title field is required"):
            await make().create("team:a", event)
        assert not sim.snapshot()

    async def test_a_failed_read_back_after_a_stored_create_is_not_an_error(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.stall_next(0)  # the POST passes
        sim.fail_next(503)  # the GET that reads the stored task back fails
        made = await adapter.create("team:a", event)
        assert (made.marker, made.event, made.version) == ("team:a", adapter.project(event), "")
        assert (await adapter.get(made.key)).event == made.event and sim.writes == 1

    async def test_a_404_is_never_gone(self, adapter: YSuite, sim: YSuiteSim) -> None:
        sim.fail_next(404)
        with pytest.raises(Rejected, match="no such endpoint"):
            await adapter.get("3")

    # -- links and owners ------------------------------------------------------------------

    async def test_contact_is_found_by_email(self, make: Any, sim: YSuiteSim, event: Event) -> None:
        adapter = make(cstid=None, contact_lookup=True)
        guest = replace(event, contact=Person("  CUSTOMER@client.test", "Customer"))
        made = await adapter.create("team:a", guest)
        await adapter.create("team:b", guest)
        assert sim.task(int(made.key)).cstid == 10
        lookups = [r["query"] for r in sim.requests if r["path"] == "/v1/contacts"]
        assert lookups == [{"search": "customer@client.test", "pageSize": "100", "pageIndex": "0"}]

    async def test_unknown_contact_email_is_rejected_before_any_write(
        self, make: Any, sim: YSuiteSim, event: Event
    ) -> None:
        adapter = make(cstid=None, deal_id=20, contact_lookup=True)
        with pytest.raises(Rejected, match=r"no YSUITE contact has the email john@example\.com"):
            await adapter.create("team:a", event)
        assert sim.writes == 0

    async def test_event_without_a_link_is_rejected_before_any_request(
        self, make: Any, sim: YSuiteSim, event: Event
    ) -> None:
        with pytest.raises(Rejected, match="needs a contact or a deal"):
            await make(cstid=None, contact_lookup=True).create(
                "team:a", replace(event, contact=None)
            )
        assert sim.requests == []

    async def test_contact_lookup_reads_the_documented_shape(
        self, session: aiohttp.ClientSession
    ) -> None:
        http = Canned(session, [fixture("contacts_search.json"), {"success": True}])
        adapter = YSuite(http, account_timezone="UTC", contact_lookup=True)
        event = Event(WINDOW.start, WINDOW.start, contact=Person("customer@client.test"))
        with pytest.raises(Malformed):  # the canned create answer has no id
            await adapter.create("team:a", event)
        assert http.sent[1][2]["cstid"] == 10

    async def test_deal_and_unmapped_owner(self, make: Any, sim: YSuiteSim, event: Event) -> None:
        made = await make(cstid=None, deal_id=20).create("team:a", replace(event, owner="x@y"))
        task = sim.task(int(made.key))
        assert (task.deal_id, task.cstid, task.assigned_user_id) == (20, None, None)

    # -- listing ---------------------------------------------------------------------------

    async def test_listing_asks_for_local_dates_covering_the_window(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        await adapter.list(Window(datetime(2027, 3, 1, 23, tzinfo=UTC), WINDOW.end))
        assert sim.requests[0]["query"] == {
            "pageSize": "100",
            "pageIndex": "0",
            "due_date_from": "2027-03-02",  # midnight in Berlin
            "due_date_to": "2027-04-01",
            "sortBy": "activity_id",
            "sortOrder": "asc",
        }

    async def test_listing_keeps_only_tasks_starting_inside_the_window(
        self, adapter: YSuite, sim: YSuiteSim
    ) -> None:
        sim.add_task(title="in", start_datetime="2027-03-01T01:00:00")  # 00:00Z
        sim.add_task(title="out", start_datetime="2027-03-01T00:30:00")  # Feb 28, 23:30Z
        listed = (await adapter.list(WINDOW)).records
        assert [r.event.title for r in listed] == ["in"]

    async def test_brief_list_items_are_read_whole(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        made = [await adapter.create(self.key_for(n), self.nth(event, n)) for n in range(3)]
        full = (await adapter.list(WINDOW)).records
        sim.brief_list, sim.requests[:] = True, []
        brief = (await adapter.list(WINDOW)).records
        assert sorted(brief, key=lambda r: r.key) == sorted(full, key=lambda r: r.key)
        assert [r.marker for r in brief] == [m.marker for m in made]
        assert len(sim.requests) == 1 + len(made)

    async def test_tasks_inserted_between_page_reads_are_neither_missed_nor_doubled(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.sortable, sim.unknown_sort_status = (), None  # sortBy ignored: start order
        sim.page_size = 3
        made = [await adapter.create(self.key_for(n), self.nth(event, n)) for n in range(10)]
        sim.insert_during_paging = 3  # they start first, so every later page shifts
        listing = await adapter.list(WINDOW)
        keys = [r.key for r in listing.records]
        assert sorted(keys) == sorted(m.key for m in made) and listing.complete
        scans = [r["query"].get("pageIndex") for r in sim.requests if r["method"] == "GET"]
        assert scans.count("0") == 2 and len(sim.snapshot()) == 13

    async def test_a_task_deleted_between_page_reads_does_not_hide_another(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.page_size = 2
        made = [await adapter.create(self.key_for(n), self.nth(event, n)) for n in range(5)]

        def delete_first(s: YSuiteSim) -> None:
            s.between_pages = None
            s.remove(int(made[0].key))

        sim.between_pages = delete_first
        listing = await adapter.list(WINDOW)
        assert sorted(r.key for r in listing.records) == sorted(m.key for m in made[1:])
        assert listing.complete

    async def test_a_listing_that_never_settles_is_incomplete_but_whole(
        self, adapter: YSuite, sim: YSuiteSim, event: Event
    ) -> None:
        sim.page_size = 2
        made = [await adapter.create(self.key_for(n), self.nth(event, n)) for n in range(5)]
        sim.insert_during_paging = 100
        listing = await adapter.list(WINDOW)
        assert not listing.complete
        assert sorted(r.key for r in listing.records) == sorted(m.key for m in made)

    async def test_a_refused_sort_fails_the_listing(self, adapter: YSuite, sim: YSuiteSim) -> None:
        sim.sortable = ()
        with pytest.raises(Rejected, match="sort by"):
            await adapter.list(WINDOW)

    async def test_an_unreadable_item_is_a_problem_not_a_failure(
        self, session: aiohttp.ClientSession
    ) -> None:
        good = fixture("task.json")["data"] | {"start_datetime": "2027-03-10T10:00:00"}
        items = [good, good | {"activity_id": 17, "start_datetime": "soon"}, "junk"]
        page = {"data": items, "current_page": 1, "total_records": 3, "total_pages": 1}
        adapter = YSuite(Canned(session, [{"success": True, "data": page}]), account_timezone="UTC")
        listing = await adapter.list(WINDOW)
        assert [r.key for r in listing.records] == ["16"]
        assert [p.key for p in listing.problems] == ["17", "?0.2"]


class Canned(HttpClient):
    """An HttpClient answering from a list of bodies, recording what it was sent."""

    def __init__(self, session: aiohttp.ClientSession, bodies: list[Any]) -> None:
        super().__init__(session, "http://canned.invalid", label="ysuite")
        self.bodies = bodies
        self.sent: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.sent.append((method, path, kwargs.get("json_body")))
        return Response(200, {}, self.bodies.pop(0))
