"""Sales Ask adapter: the shared contract over loopback HTTP, plus its own quirks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest

from syncd.adapter import Adapter
from syncd.errors import Malformed, Rejected
from syncd.http import HttpClient, Response
from syncd.model import Event, Person, Record
from syncd.paged import PagedRecords
from syncd.simulators import salesask as simulator
from syncd.simulators.salesask import SalesAskSim
from syncd.vendors import salesask
from syncd.vendors.salesask import SalesAsk, client_headers
from tests.adapters.contract import WINDOW, AdapterContract

SEED_REPLY = {  # the seed's example response, verbatim
    "id": "task_abc123",
    "event_id": "CRM-JOB-9871",
    "startTime": "2026-03-01T14:00:00.000Z",
    "customerName": "John Doe",
    "customerEmail": "john@example.com",
    "scheduledAt": "2026-03-01T14:15:00.000Z",
    "status": "scheduled",
    "metadata": {},
    "createdAt": "2026-02-28T09:00:00.000Z",
    "updatedAt": "2026-02-28T09:00:00.000Z",
}


@pytest.fixture
def sim() -> SalesAskSim:
    """The simulator: one organisation, key `sim-key`, one active and one inactive rep."""
    return simulator.default()


@pytest.fixture
async def adapter(sim: SalesAskSim, session: aiohttp.ClientSession) -> AsyncIterator[SalesAsk]:
    """The adapter bound to the simulator served on 127.0.0.1."""
    runner = await simulator.serve(sim=sim)
    url = simulator.base_url(runner)
    headers = client_headers("sim-key")
    http = HttpClient(session, url, label="salesask", headers=headers, budget=None, timeout=10.0)
    yield SalesAsk(http)
    await runner.cleanup()


def writes(sim: SalesAskSim) -> list[tuple[str, str, Any]]:
    """The write requests the simulator received: method, decoded path, body."""
    return [(r["method"], r["path"], r["body"]) for r in sim.requests if r["method"] != "GET"]


class TestSalesAsk(AdapterContract):
    """The contract, then Sales Ask's own behaviour."""

    def test_is_an_adapter(self, adapter: SalesAsk) -> None:
        typed: Adapter = adapter
        assert typed.caps.fields == {"start", "end", "title", "contact"}
        assert not typed.caps.holds_cancelled and typed.caps.absence == "get"

    def test_translation_of_the_seed_example(self) -> None:
        record = salesask.to_record(salesask.appointment_of({"appointment": SEED_REPLY}))
        start = datetime(2026, 3, 1, 14, tzinfo=UTC)
        assert record == Record(
            key="CRM-JOB-9871",
            event=Event(start, start, contact=Person("john@example.com", "John Doe")),
            version="2026-02-28T09:00:00+00:00",
            remote_id="task_abc123",
            modified=datetime(2026, 2, 28, 9, tzinfo=UTC),
        )
        assert salesask.project(record.event) == record.event

    def test_payload_of_the_seed_example(self) -> None:
        event = Event(
            start=datetime(2026, 3, 1, 14, tzinfo=UTC),
            end=datetime(2026, 3, 1, 15, tzinfo=UTC),
            title="Discovery call",
            owner="rep@company.com",
            contact=Person("john@example.com", "John Doe"),
        )
        assert salesask.to_payload("CRM-JOB-9871", event) == {
            "event_id": "CRM-JOB-9871",
            "user_email": "rep@company.com",
            "start_time": "2026-03-01T14:00:00.000Z",
            "end_time": "2026-03-01T15:00:00.000Z",
            "title": "Discovery call",
            "customer": {"name": "John Doe", "email": "john@example.com"},
        }

    @pytest.mark.parametrize(
        "value",
        [
            "2026-03-01T14:00:00.000Z",
            "2026-03-01T15:00:00+01:00",
            1772373600,
            1772373600000,
            {"_seconds": 1772373600, "_nanoseconds": 0},
        ],
        ids=["iso", "offset", "epoch-s", "epoch-ms", "firestore"],
    )
    def test_dates_in_every_form_the_backend_may_send(self, value: object) -> None:
        assert salesask.parse_time(value) == datetime(2026, 3, 1, 14, tzinfo=UTC)

    @pytest.mark.parametrize("value", [None, "soon", {"_seconds": "x"}, [1]])
    def test_unreadable_dates_are_malformed(self, value: object) -> None:
        with pytest.raises(Malformed):
            salesask.parse_time(value)

    def test_all_day_event_is_projected_to_utc_midnights(self) -> None:
        event = Event(date(2027, 3, 10), date(2027, 3, 11), title="Offsite", owner="r@x")
        projected = salesask.project(event)
        assert projected.start == datetime(2027, 3, 10, tzinfo=UTC)
        assert projected.end == datetime(2027, 3, 11, tzinfo=UTC)
        assert projected.owner == "" and projected.contact is None

    async def test_firestore_timestamps_round_trip(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        sim.firestore_timestamps = True
        made = await adapter.create("team:ts", event)
        [listed] = (await adapter.list(WINDOW)).records
        assert sim.render(sim.task("team:ts"))["startTime"]["_seconds"] > 0
        assert listed.event == made.event == adapter.project(event)
        assert listed.version == made.version != ""

    async def test_inactive_rep_is_rejected_and_not_retried(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        with pytest.raises(Rejected, match="not an active member"):
            await adapter.create("team:a", replace(event, owner="gone@example.com"))
        assert sim.writes == 1 and sim.org().tasks == {}

    async def test_rep_refused_with_404_is_still_rejected(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        sim.rep_error_status = 404
        with pytest.raises(Rejected):
            await adapter.create("team:a", replace(event, owner="nobody@example.com"))

    async def test_event_without_owner_is_rejected_before_any_request(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        with pytest.raises(Rejected):
            await adapter.create("team:a", replace(event, owner=""))
        assert sim.requests == []

    async def test_update_puts_only_the_changed_fields(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.requests.clear()
        moved = replace(event, title="Moved", description="not held")
        updated = await adapter.update(made, moved, frozenset({"title", "description"}))
        assert writes(sim) == [("PUT", "/v1/scheduled-tasks/team:a", {"title": "Moved"})]
        assert updated.event.contact == Person("john@example.com", "John Doe")

    async def test_update_of_fields_sales_ask_cannot_hold_writes_nothing(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        again = await adapter.update(made, replace(event, location="x"), frozenset({"location"}))
        assert again == made and sim.writes == 1

    async def test_cleared_contact_is_cleared_at_the_vendor(
        self, adapter: SalesAsk, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        updated = await adapter.update(made, replace(event, contact=None), frozenset({"contact"}))
        assert updated.event.contact is None
        assert (await adapter.get("team:a")).event.contact is None

    async def test_put_on_a_task_deleted_at_the_vendor_falls_back_to_post(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        made = await adapter.create("team:a", event)
        sim.remove("team:a")
        sim.requests.clear()
        moved = replace(event, title="Moved")
        updated = await adapter.update(made, moved, frozenset({"title"}))
        assert [(m, p) for m, p, _ in writes(sim)] == [
            ("PUT", "/v1/scheduled-tasks/team:a"),
            ("POST", "/v1/scheduled-tasks"),
        ]
        assert updated.remote_id != made.remote_id
        assert updated.event == adapter.project(moved)

    @pytest.mark.parametrize(
        "key", ["team:uid-1@example.com:20270310T140000Z", "odd/key with space?#%&+"]
    )
    async def test_keys_are_percent_encoded_in_paths(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event, key: str
    ) -> None:
        made = await adapter.create(key, event)
        assert made.key == key and sim.task(key).event_id == key
        updated = await adapter.update(made, replace(event, title="T"), frozenset({"title"}))
        assert (await adapter.get(key)).event == updated.event
        await adapter.delete(updated)
        assert sim.org().tasks == {}
        assert [r["path"] for r in sim.requests][1:] == [f"/v1/scheduled-tasks/{key}"] * 3

    async def test_listing_asks_for_dates_covering_the_window(
        self, adapter: SalesAsk, sim: SalesAskSim
    ) -> None:
        await adapter.list(WINDOW)
        query = {"fromDate": "2027-02-28", "toDate": "2027-04-02", "limit": "100"}
        assert sim.requests[0]["query"] == query

    async def test_listing_keeps_only_tasks_inside_the_window(
        self, adapter: SalesAsk, event: Event
    ) -> None:
        await adapter.create("team:in", event)
        early = datetime(2027, 2, 28, 12, tzinfo=UTC)
        await adapter.create("team:out", replace(event, start=early, end=early))
        assert [r.key for r in (await adapter.list(WINDOW)).records] == ["team:in"]

    @pytest.mark.parametrize("array_key", ["data", "items", "tasks"])
    async def test_listing_reads_other_array_keys(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event, array_key: str
    ) -> None:
        sim.array_key, sim.page_size = array_key, 1
        for n in range(3):
            await adapter.create(self.key_for(n), self.nth(event, n))
        sim.requests.clear()
        assert len((await adapter.list(WINDOW)).records) == 3
        cursors = [r["query"].get("startAfter") for r in sim.requests]
        assert len(cursors) == 3 and cursors[0] is None and None not in cursors[1:]

    async def test_vendor_variants_of_status_codes_are_accepted(
        self, adapter: SalesAsk, sim: SalesAskSim, event: Event
    ) -> None:
        sim.create_status, sim.delete_status = 200, 204
        made = await adapter.create("team:a", event)
        await adapter.delete(made)
        assert sim.org().tasks == {}


class Canned(HttpClient):
    """An HttpClient answering GETs from a list of bodies: paging logic without a server."""

    def __init__(self, session: aiohttp.ClientSession, bodies: list[Any]) -> None:
        super().__init__(session, "http://canned.invalid", label="salesask")
        self.bodies = bodies

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        return Response(200, {}, self.bodies.pop(0))


def page(items: list[Any], **extra: Any) -> Mapping[str, Any]:
    return {"appointments": items, **extra}


TASK = {**SEED_REPLY, "startTime": "2027-03-10T14:00:00.000Z"}


async def test_a_repeating_cursor_is_malformed(session: aiohttp.ClientSession) -> None:
    bodies = [page([TASK], nextCursor="c1"), page([], nextCursor="c2"), page([], nextCursor="c1")]
    with pytest.raises(Malformed, match="cursor repeats"):
        await SalesAsk(Canned(session, bodies)).list(WINDOW)


async def test_has_more_false_ends_the_listing(session: aiohttp.ClientSession) -> None:
    bodies = [page([TASK], nextCursor="c1", hasMore=False)]
    listing = await SalesAsk(Canned(session, bodies)).list(WINDOW)
    assert [r.key for r in listing.records] == ["CRM-JOB-9871"]


async def test_a_page_without_a_task_array_is_malformed(session: aiohttp.ClientSession) -> None:
    with pytest.raises(Malformed):
        await SalesAsk(Canned(session, [{"results": []}])).list(WINDOW)


async def test_an_unreadable_task_is_a_problem_not_a_failure(
    session: aiohttp.ClientSession,
) -> None:
    bad = {**TASK, "event_id": "team:bad", "startTime": "tomorrow"}
    listing = await SalesAsk(Canned(session, [page([TASK, bad, "junk"])])).list(WINDOW)
    assert [r.key for r in listing.records] == ["CRM-JOB-9871"]
    assert [p.key for p in listing.problems] == ["team:bad", "?"]


async def test_a_listing_is_packed_as_it_is_read(session: aiohttp.ClientSession) -> None:
    """A listing is rebuilt on every poll: it holds its tasks as packed pages
    (`syncd.paged`), not as records, and decodes to what was listed; a customer on many
    tasks is one contact object."""
    second = {**TASK, "event_id": "CRM-JOB-9872", "title": "Site visit"}
    listing = await SalesAsk(Canned(session, [page([TASK, second])])).list(WINDOW)
    assert isinstance(listing.records, PagedRecords) and len(listing.records.pages) == 1
    one, two = listing.records
    assert (one.key, two.key, two.event.title) == ("CRM-JOB-9871", "CRM-JOB-9872", "Site visit")
    assert one.event.contact == Person("john@example.com", "John Doe")
    assert one.event.contact is two.event.contact
