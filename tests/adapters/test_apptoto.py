"""Apptoto adapter: the shared contract over loopback HTTP, plus its own quirks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from syncd.adapter import Adapter
from syncd.errors import AuthFailed, Gone, Malformed, RateLimited, Rejected
from syncd.http import HttpClient, Response
from syncd.model import Event, Person, Record, fingerprint
from syncd.simulators import apptoto as simulator
from syncd.simulators.apptoto import ApptotoSim
from syncd.vendors import apptoto
from syncd.vendors.apptoto import Apptoto, client_headers
from tests.adapters.contract import WINDOW, AdapterContract

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apptoto"
KEY = "team:uid-1@example.com"
WALK_IN = {  # an event made in Apptoto's own UI: no external_id
    "calendar_id": 1,
    "title": "Walk-in",
    "start_time": "2027-03-20T10:00:00-07:00",
    "end_time": "2027-03-20T11:00:00-07:00",
}
GUESTS = (Person("john@example.com", "John Doe"), Person("jane@example.com", "Jane Roe"))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def sim() -> ApptotoSim:
    """The simulator: account `sim-user` / `sim-key`, calendar 1."""
    return simulator.default()


@pytest.fixture
async def runner(sim: ApptotoSim) -> AsyncIterator[web.AppRunner]:
    runner = await simulator.serve(sim=sim)
    yield runner
    await runner.cleanup()


@pytest.fixture
def make(runner: web.AppRunner, session: aiohttp.ClientSession) -> Any:
    """Build an adapter bound to the simulator, with options overridden."""

    def build(**options: Any) -> Apptoto:
        headers = client_headers(simulator.USERNAME, simulator.API_KEY)
        url = simulator.base_url(runner)
        http = HttpClient(session, url, label="apptoto", headers=headers, budget=None, timeout=10.0)
        return Apptoto(http, **({"calendar_id": simulator.CALENDAR_ID} | options))

    return build


@pytest.fixture
def adapter(make: Any) -> Apptoto:
    return make()  # type: ignore[no-any-return]


def puts(sim: ApptotoSim) -> list[list[dict[str, Any]]]:
    """The `events` of every PUT the simulator received."""
    return [r["body"]["events"] for r in sim.requests if r["method"] == "PUT"]


class TestApptoto(AdapterContract):
    """The contract, then Apptoto's own behaviour."""

    def test_is_an_adapter(self, adapter: Apptoto, make: Any) -> None:
        typed: Adapter = adapter
        assert typed.caps.fields == {"start", "end", "title", "description", "location"}
        assert typed.caps.partial_update and not typed.caps.server_ids
        assert not typed.caps.holds_cancelled and typed.caps.absence == "get"
        assert "attendees" in make(auto_messages=True).caps.fields

    # -- translation ---------------------------------------------------------------------

    def test_translation_of_the_documented_event(self, make: Any) -> None:
        record = make(auto_messages=True).to_record(fixture("event.json"))
        assert record == Record(
            key=KEY,
            event=Event(
                start=datetime(2016, 4, 15, 19, tzinfo=UTC),
                end=datetime(2016, 4, 15, 20, tzinfo=UTC),
                title="Discovery call",
                location="Room 4",
                attendees=(Person("john@example.com", "John Doe"),),
            ),
            version=record.version,
            remote_id="33261",
            marker=KEY,
        )
        assert record.version and make().to_record(fixture("event.json")).event.attendees == ()

    def test_payload_of_the_documented_request(self, make: Any) -> None:
        adapter = make(time_zone="America/Los_Angeles")
        event = Event(
            start=datetime(2016, 6, 21, 21, tzinfo=UTC),
            end=datetime(2016, 6, 21, 22, tzinfo=UTC),
            title="Discovery call",
            description="Agenda: pricing",
            location="Room 4",
            attendees=GUESTS,
        )
        [expected] = fixture("put_request.json")["events"]
        assert adapter.to_payload(KEY, KEY, event) == expected

    def test_the_delete_answer_reads_as_deleted(self) -> None:
        [item] = apptoto.events_of(fixture("delete_response.json"))
        assert apptoto.is_deleted(item) and apptoto.marker_of(item) == KEY

    def test_all_day_events_are_local_midnights_read_back_as_dates(self, make: Any) -> None:
        adapter = make(time_zone="Europe/Berlin")
        event = Event(date(2027, 3, 10), date(2027, 3, 12), title="Offsite")
        payload = adapter.to_payload("team:a", "team:a", event)
        assert (payload["start_time"], payload["end_time"], payload["all_day"]) == (
            "2027-03-10T00:00:00+01:00",
            "2027-03-12T00:00:00+01:00",
            True,
        )
        assert adapter.to_event(payload) == adapter.project(event) == event
        rounded = payload | {"end_time": "2027-03-11T23:59:00+01:00"}  # an inclusive end
        assert adapter.to_event(rounded).end == date(2027, 3, 12)

    def test_times_go_out_with_the_zone_offset_and_come_back_as_instants(self, make: Any) -> None:
        adapter = make(time_zone="America/New_York")
        start = datetime(2027, 3, 20, 14, 0, 30, 500_000, tzinfo=UTC)
        payload = adapter.to_payload("team:a", "team:a", Event(start, start, title="x"))
        assert payload["start_time"] == "2027-03-20T10:00:30-04:00"
        assert payload["time_zone"] == "America/New_York"
        assert adapter.to_event(payload).start == start.replace(microsecond=0)

    @pytest.mark.parametrize("value", [None, "soon", 1700000000, "2027-13-01T00:00:00Z"])
    def test_unreadable_times_are_malformed(self, adapter: Apptoto, value: object) -> None:
        item = fixture("event.json") | {"start_time": value}
        with pytest.raises(Malformed):
            adapter.to_record(item)

    def test_blank_title_and_hash_auto_are_made_safe(self, adapter: Apptoto, make: Any) -> None:
        start = datetime(2027, 3, 10, tzinfo=UTC)
        event = Event(start, start, title="", description="Call #auto", location="#AUTO room")
        payload = adapter.to_payload("team:a", "team:a", event)
        assert payload["title"] == "(no title)"
        assert "#auto" not in json.dumps(payload, ensure_ascii=False).lower()
        assert adapter.project(event).description == "Call ＃auto"
        assert make(auto_messages=True).project(event).description == "Call #auto"

    # -- over HTTP ---------------------------------------------------------------------------

    async def test_no_auto_message_by_default_even_when_the_account_sends_them(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        sim.account().auto_messages = True
        sim.extract_participants = True
        noisy = replace(event, description="Ring john@example.com #auto", attendees=GUESTS)
        made = await adapter.create(KEY, noisy)
        await adapter.update(made, replace(noisy, attendees=GUESTS[:1]), frozenset({"attendees"}))
        assert sim.messages == [] and sim.event(KEY).participants == []
        assert [e["participants"] for [e] in puts(sim)] == [[]]  # updates never send them

    async def test_auto_messages_when_asked_send_attendees_as_participants(
        self, make: Any, sim: ApptotoSim, event: Event
    ) -> None:
        adapter = make(auto_messages=True)
        sim.account().auto_messages = True
        made = await adapter.create(KEY, replace(event, attendees=GUESTS))
        assert [m["to"] for m in sim.messages] == ["john@example.com", "jane@example.com"]
        assert made.event.attendees == GUESTS

    async def test_participants_are_sent_whole_whenever_attendees_change(
        self, make: Any, sim: ApptotoSim, event: Event
    ) -> None:
        adapter = make(auto_messages=True)
        made = await adapter.create(KEY, replace(event, attendees=GUESTS))
        sim.requests.clear()
        moved = replace(event, title="Moved", attendees=GUESTS)
        moved_record = await adapter.update(made, moved, frozenset({"title"}))
        fewer = replace(moved, attendees=(GUESTS[1], Person("max@example.com", "Max")))
        await adapter.update(moved_record, fewer, frozenset({"attendees"}))
        [[first], [second]] = puts(sim)
        assert "participants" not in first and first["title"] == "Moved"
        assert second["participants"] == [
            {"name": "Jane Roe", "email": "jane@example.com"},
            {"name": "Max", "email": "max@example.com"},
        ]
        assert [p.email for p in sim.event(KEY).participants] == [
            "jane@example.com",
            "max@example.com",
        ]

    async def test_a_messaged_participant_sticks_and_reads_back(
        self, make: Any, sim: ApptotoSim, event: Event
    ) -> None:
        adapter = make(auto_messages=True)
        made = await adapter.create(KEY, replace(event, attendees=GUESTS))
        sim.mark_messaged(KEY, "john@example.com")
        updated = await adapter.update(
            made, replace(event, attendees=GUESTS[1:]), frozenset({"attendees"})
        )
        assert {p.email for p in updated.event.attendees} == {p.email for p in GUESTS}

    async def test_recreating_after_a_soft_delete_takes_a_fresh_external_id(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        first = await adapter.create(KEY, event)
        await adapter.delete(first)
        second = await adapter.create(KEY, event)
        assert (second.key, second.marker) == (f"{KEY}~2", KEY)
        assert sim.event(KEY).is_deleted and not sim.event(f"{KEY}~2").is_deleted
        await adapter.delete(second)
        third = await adapter.create(second.key, event)  # the runner passes the link's key
        assert (third.key, third.marker) == (f"{KEY}~3", KEY)
        [listed] = (await adapter.list(WINDOW)).records
        assert (listed.key, listed.marker) == (third.key, KEY)
        assert (await adapter.get(third.key)).marker == KEY

    async def test_a_fresh_adapter_finds_the_reservation_by_lookup(
        self, adapter: Apptoto, make: Any, sim: ApptotoSim, event: Event
    ) -> None:
        await adapter.delete(await adapter.create(KEY, event))
        sim.requests.clear()
        again = await make().create(KEY, event)
        assert again.key == f"{KEY}~2"
        lookups = [r["query"] for r in sim.requests if r["method"] == "GET"]
        assert lookups == [
            {"external_id": KEY, "include_deleted": "true"},
            {"external_id": f"{KEY}~2", "include_deleted": "true"},
        ]
        assert puts(sim)[0][0]["custom_data"] == {"syncd_key": KEY}

    async def test_a_key_that_ends_like_a_suffix_is_its_own_base(
        self, adapter: Apptoto, event: Event
    ) -> None:
        made = await adapter.create("team:abc~2", event)
        assert (made.key, made.marker) == ("team:abc~2", "team:abc~2")

    async def test_create_over_a_live_record_updates_it_in_place(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        first = await adapter.create(KEY, event)
        sim.edit(KEY, {"participants": [{"name": "Added at Apptoto", "phone": "555 1212"}]})
        second = await adapter.create(KEY, replace(event, title="Again"))
        assert second.remote_id == first.remote_id and second.event.title == "Again"
        assert len(sim.account().events) == 1
        assert "participants" not in puts(sim)[-1][0]  # theirs are kept
        assert [p.name for p in sim.event(KEY).participants] == ["Added at Apptoto"]

    async def test_update_of_an_event_deleted_at_apptoto_is_gone(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        made = await adapter.create(KEY, event)
        sim.remove(KEY)
        with pytest.raises(Gone):
            await adapter.update(made, replace(event, title="x"), frozenset({"title"}))
        with pytest.raises(Gone):
            await adapter.get(KEY)
        assert (await adapter.create(KEY, event)).key == f"{KEY}~2"

    async def test_update_sends_only_the_changed_fields(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        made = await adapter.create(KEY, event)
        sim.requests.clear()
        await adapter.update(made, replace(event, location="Room 5"), frozenset({"location"}))
        assert puts(sim) == [[{"external_id": KEY, "calendar_id": 1, "location": "Room 5"}]]
        writes = sim.writes
        again = await adapter.update(made, replace(event, owner="x"), frozenset({"owner"}))
        assert again.event.location == "Room 5" and sim.writes == writes

    async def test_the_calendar_is_named_by_id_only(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        made = await adapter.create(KEY, event)
        await adapter.update(made, replace(event, title="x"), frozenset({"title"}))
        elements = [e for batch in puts(sim) for e in batch]
        assert all(e["calendar_id"] == 1 and "calendar" not in e for e in elements)
        assert sim.account().calendars == {1: "Default"}

    async def test_credentials_never_travel_in_a_url(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        made = await adapter.create(KEY, event)
        await adapter.list(WINDOW)
        await adapter.get(made.key)
        await adapter.delete(made)
        for request in sim.requests:
            text = json.dumps([request["path"], request["query"]])
            assert simulator.API_KEY not in text and simulator.USERNAME not in text
        assert adapter.http.headers["Authorization"].startswith("Basic ")

    async def test_listing_asks_for_the_window_with_deleted_events(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        await adapter.create(KEY, event)
        await adapter.delete(await adapter.create("team:b", event))
        early = datetime(2027, 2, 20, tzinfo=UTC)
        await adapter.create("team:early", replace(event, start=early, end=early))
        sim.add_event(WALK_IN)
        sim.requests.clear()
        listing = await adapter.list(WINDOW)
        keys = sorted(r.key for r in listing.records)
        assert keys[1:] == [KEY] and keys[0].startswith("#")
        assert sim.requests[0]["query"] == {
            "begin": "2027-03-01T00:00:00Z",
            "end": "2027-04-01T00:00:00Z",
            "page_size": "200",
            "include_deleted": "true",
            "page": "1",
        }
        assert [r["query"]["page"] for r in sim.requests] == ["1", "2"]  # until an empty page

    async def test_an_event_born_at_apptoto_is_reached_by_its_id(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        born = sim.add_event(WALK_IN)
        record = await adapter.get(f"#{born['id']}")
        updated = await adapter.update(
            record, replace(event, title="Renamed"), frozenset({"title"})
        )
        assert updated.key == record.key and sim.account().events[born["id"]].title == "Renamed"
        await adapter.delete(updated)
        assert sim.account().events[born["id"]].is_deleted

    async def test_upsert_many_batches_twenty_and_answers_in_order(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        await adapter.delete(await adapter.create("team:k7", event))
        sim.requests.clear()
        items = [(f"team:k{n}", self.nth(event, n)) for n in range(45)]
        results = await adapter.upsert_many(items)
        assert [r.key for r in results if isinstance(r, Record)] == [
            *(f"team:k{n}" for n in range(7)),
            "team:k7~2",
            *(f"team:k{n}" for n in range(8, 45)),
        ]
        assert [r.event.title for r in results if isinstance(r, Record)] == [
            f"#{n}" for n in range(45)
        ]
        assert [len(batch) for batch in puts(sim)] == [1, 20, 20, 4]

    async def test_upsert_many_keeps_the_participants_of_events_it_saw_alive(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        await adapter.create("team:a", event)
        await adapter.list(WINDOW)
        sim.requests.clear()
        await adapter.upsert_many([("team:a", event), ("team:b", event)])
        [[seen, new]] = puts(sim)
        assert "participants" not in seen and new["participants"] == []

    async def test_a_record_deleted_since_it_was_seen_is_recreated_fresh(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        await adapter.create(KEY, event)
        sim.remove(KEY)
        sim.requests.clear()
        again = await adapter.create(KEY, event)  # the PUT answers is_deleted: move on
        assert (again.key, again.marker) == (f"{KEY}~2", KEY)
        assert [r["method"] for r in sim.requests] == ["PUT", "GET", "PUT"]

    async def test_upsert_many_gives_each_item_its_batch_error(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event
    ) -> None:
        sim.fail_next(400, body={"error": "bad event"})
        items = [(f"team:k{n}", self.nth(event, n)) for n in range(25)]
        results = await adapter.upsert_many(items)
        refused = results[:20]
        assert all(isinstance(r, Rejected) for r in refused)
        assert [r.key for r in refused if isinstance(r, Rejected)] == [k for k, _ in items[:20]]
        assert all(isinstance(r, Record) for r in results[20:])

    @pytest.mark.parametrize("status", [401, 429])
    async def test_upsert_many_stops_sending_on_auth_or_rate_refusals(
        self, adapter: Apptoto, sim: ApptotoSim, event: Event, status: int
    ) -> None:
        sim.fail_next(status, {"Retry-After": "3"})
        items = [(f"team:k{n}", self.nth(event, n)) for n in range(45)]
        results = await adapter.upsert_many(items)
        kind = AuthFailed if status == 401 else RateLimited
        assert all(isinstance(r, kind) for r in results) and sim.writes == 1
        assert [r.key for r in results if isinstance(r, kind)] == [k for k, _ in items]

    async def test_projection_keeps_the_fingerprint_of_what_is_read_back(
        self, make: Any, event: Event
    ) -> None:
        adapter = make(auto_messages=True, time_zone="Asia/Kolkata")
        full = replace(event, attendees=(*GUESTS, Person("", "Phone only")))
        made = await adapter.create(KEY, full)
        fields = adapter.caps.fields
        assert fingerprint(made.event, fields) == fingerprint(adapter.project(full), fields)


class Canned(HttpClient):
    """An HttpClient answering from a list of bodies and remembering what was asked."""

    def __init__(self, session: aiohttp.ClientSession, bodies: list[Any]) -> None:
        super().__init__(session, "http://canned.invalid", label="apptoto")
        self.bodies, self.asked = bodies, list[tuple[str, Any]]()

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.asked.append((method, kwargs.get("params") or kwargs.get("json_body")))
        return Response(200, {}, self.bodies.pop(0))


def live(key: str, deleted: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = fixture("event.json")
    return item | {"external_id": key, "is_deleted": deleted}


async def test_a_put_answered_deleted_moves_on_to_a_fresh_key(
    session: aiohttp.ClientSession,
) -> None:
    event = Event(datetime(2027, 3, 10, 14, tzinfo=UTC), datetime(2027, 3, 10, 15, tzinfo=UTC))
    bodies = [{"events": []}, {"events": [live(KEY, True)]}, {"events": []}]
    http = Canned(session, [*bodies, {"events": [live(f"{KEY}~2")]}])
    made = await Apptoto(http, calendar_id=1).create(KEY, event)
    assert made.key == f"{KEY}~2"
    assert [m for m, _ in http.asked] == ["GET", "PUT", "GET", "PUT"]


async def test_listing_skips_deleted_and_foreign_events_and_reads_markers(
    session: aiohttp.ClientSession,
) -> None:
    http = Canned(session, [fixture("events_page.json"), {"events": []}])
    adapter = Apptoto(http, calendar_id=1, time_zone="America/Los_Angeles")
    listing = await adapter.list(WINDOW)
    assert [(r.key, r.marker) for r in listing.records] == [
        (KEY, KEY),
        (f"{KEY}~2", "team:uid-4@example.com"),
        ("#33265", ""),
    ]
    assert adapter._deleted == {"team:uid-2@example.com": "team:uid-2@example.com"}


async def test_an_unreadable_event_is_a_problem_not_a_failure(
    session: aiohttp.ClientSession,
) -> None:
    page = fixture("events_page.json")["events"][:1]
    bad = page[0] | {"id": 9, "external_id": "team:bad", "start_time": "tomorrow"}
    http = Canned(session, [{"events": [*page, bad, "junk"]}, {"events": []}])
    listing = await Apptoto(http, calendar_id=1).list(WINDOW)
    assert [r.key for r in listing.records] == [KEY]
    assert [p.key for p in listing.problems] == ["team:bad", "?"]


async def test_an_answer_without_events_is_malformed(session: aiohttp.ClientSession) -> None:
    with pytest.raises(Malformed):
        await Apptoto(Canned(session, [{"data": []}]), calendar_id=1).list(WINDOW)
