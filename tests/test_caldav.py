"""The `caldav` calendar against Radicale on loopback: listings fetch only what changed
(sync-token, else ETags), writes are conditional and land in the series' resource, a
412 is a race to re-plan, and a `both` route syncs both ways end to end."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest

from syncd import registry
from syncd.calendars.caldav import Caldav, Held, new_name
from syncd.cli import OK
from syncd.config import check_config, load_config
from syncd.errors import Gone, Rejected, VersionMismatch
from syncd.http import HttpClient
from syncd.model import Event, OccurrenceKey, Record, Window
from syncd.simulators.salesask import SalesAskSim
from syncd.state import State
from tests.builders import (
    Vevent,
    calendar,
    config_text,
    day,
    run,
    run_sync,
    salesask_server,
    utc,
    write,
)
from tests.radicale_server import COLLEAGUE, PASSWORD, USER, Radicale, radicale

WINDOW = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
AUTH = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
MARCH = datetime(2027, 3, 1, 9, tzinfo=UTC)
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale(tmp_path_factory.mktemp("radicale")) as running:
        yield running


@pytest.fixture
async def collection(server: Radicale, session: aiohttp.ClientSession) -> str:
    """A new, empty calendar collection for one test."""
    url = server.collection(f"cal{next(_names)}")
    async with session.request("MKCALENDAR", url, headers=AUTH) as response:
        assert response.status == 201
    return url


@pytest.fixture
def adapter(collection: str, session: aiohttp.ClientSession) -> Caldav:
    return caldav(collection, session)


def caldav(url: str, session: aiohttp.ClientSession) -> Caldav:
    return Caldav("cal", HttpClient(session, url, "cal", headers=AUTH, timeout=10.0))


# --- another client, talking to Radicale directly -----------------------------------------


async def put(session: aiohttp.ClientSession, url: str, text: str) -> None:
    async with session.put(url, data=text.encode(), headers=AUTH | ICS) as response:
        assert response.status in (201, 204), await response.text()


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """(status, ETag, body) of one resource."""
    async with session.get(url, headers=AUTH) as response:
        return response.status, response.headers.get("ETag", ""), await response.text()


async def remove(session: aiohttp.ClientSession, url: str) -> None:
    async with session.delete(url, headers=AUTH) as response:
        assert response.status in (200, 204)


def single(uid: str, title: str, start: datetime = MARCH) -> str:
    return calendar(Vevent(uid, title, start))


def weekly(uid: str = "series", count: int = 4) -> str:
    return calendar(Vevent(uid, "Weekly review", MARCH, extra=[f"RRULE:FREQ=WEEKLY;COUNT={count}"]))


TODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VTODO\r\nUID:todo-1\r\n"
    "DTSTAMP:20270101T000000Z\r\nSUMMARY:Not an event\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
)


def key(uid: str, rid: str = "-") -> str:
    return OccurrenceKey("cal", uid, rid).text


def events(records: Iterable[Record]) -> dict[str, Event]:
    """Each record's event, without LAST-MODIFIED (a write to a series touches it)."""
    return {record.key: replace(record.event, modified=None) for record in records}


def titles(records: tuple[Record, ...]) -> dict[str, str]:
    return {record.key: record.event.title for record in records}


def vevents(text: str) -> list[Any]:
    """The VEVENTs of a body, as icalendar reads them (their properties, loosely typed)."""
    return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))


async def listed(adapter: Caldav) -> tuple[tuple[Record, ...], int]:
    """The records of a listing and the requests it took."""
    before = adapter.http.requests_sent
    listing = await adapter.list(WINDOW)
    assert listing.complete
    return tuple(listing.records), adapter.http.requests_sent - before


# --- listing ------------------------------------------------------------------------------


async def test_a_first_listing_reads_etags_and_bodies_in_two_requests(adapter, collection, session):
    await put(session, collection + "a.ics", single("a", "Intro A"))
    await put(session, collection + "series.ics", weekly())
    await put(session, collection + "todo.ics", TODO)

    records, requests = await listed(adapter)

    assert requests == 2  # PROPFIND for the ETags, one calendar-multiget for the bodies
    assert titles(records) == {
        key("a"): "Intro A",
        **{key("series", utc(MARCH + timedelta(weeks=n))): "Weekly review" for n in range(4)},
    }
    _, etag, _ = await fetch(session, collection + "a.ics")
    assert adapter.held["a.ics"].etag == etag
    assert adapter.sync_token.startswith("http://radicale.org/ns/sync/")


async def test_an_unchanged_listing_asks_once_and_fetches_no_bodies(adapter, collection, session):
    await put(session, collection + "a.ics", single("a", "Intro A"))
    first, _ = await listed(adapter)
    parses = adapter.expansions.parses

    again, requests = await listed(adapter)

    assert requests == 1  # the sync-collection REPORT, answered with no changes
    assert again == first
    assert adapter.expansions.parses == parses


async def test_the_sync_token_brings_changes_additions_and_removals(adapter, collection, session):
    for uid in ("a", "b", "c"):
        await put(session, collection + f"{uid}.ics", single(uid, f"Intro {uid}"))
    await listed(adapter)
    await put(session, collection + "a.ics", single("a", "Intro A renamed"))
    await remove(session, collection + "b.ics")
    await put(session, collection + "d.ics", single("d", "Intro d"))

    records, requests = await listed(adapter)

    assert requests == 2  # the REPORT, and one multiget of the two changed bodies
    assert titles(records) == {
        key("a"): "Intro A renamed",
        key("c"): "Intro c",
        key("d"): "Intro d",
    }


async def test_a_token_the_server_refuses_falls_back_to_an_etag_listing(
    adapter, collection, session
):
    for uid in ("a", "b"):
        await put(session, collection + f"{uid}.ics", single(uid, f"Intro {uid}"))
    await listed(adapter)
    adapter.sync_token = adapter.sync_token.rpartition("/")[0] + "/" + "0" * 64  # never issued
    await put(session, collection + "b.ics", single("b", "Intro b renamed"))
    await remove(session, collection + "a.ics")

    records, requests = await listed(adapter)

    assert requests == 3  # the refused REPORT (403), the PROPFIND, a multiget of b only
    assert titles(records) == {key("b"): "Intro b renamed"}
    assert (await listed(adapter))[1] == 1  # a fresh token from the PROPFIND, used again


async def test_bodies_are_fetched_in_batches(adapter, collection, session):
    for n in range(5):
        await put(session, collection + f"e{n}.ics", single(f"e{n}", f"Event {n}"))
    adapter.batch = 2

    records, requests = await listed(adapter)

    assert len(records) == 5
    assert requests == 1 + 3


async def test_an_object_that_cannot_be_read_makes_the_listing_incomplete(
    adapter, collection, session
):
    """Radicale refuses (and skips) what it cannot parse, so the truncated body a less
    careful server could serve is put where the fetched body of b.ics is kept."""
    await put(session, collection + "a.ics", single("a", "Intro A"))
    await put(session, collection + "b.ics", single("b", "Intro B"))
    await listed(adapter)
    etag = adapter.held["b.ics"].etag
    adapter.held["b.ics"] = Held(etag, b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\n")

    listing = await adapter.list(WINDOW)

    assert not listing.complete
    assert titles(listing.records) == {key("a"): "Intro A"}
    assert [p.key for p in listing.problems] == [key("b")]


async def test_messages_do_not_show_the_collection_url(server, session):
    missing = caldav(server.collection("no-such-calendar-t0k3n"), session)
    with pytest.raises(Gone) as caught:
        await missing.list(WINDOW)
    assert "t0k3n" not in str(caught.value)
    assert str(caught.value).startswith("cal: PROPFIND /: HTTP 404")


# --- writing single events ----------------------------------------------------------------


def moved(record: Record, hours: int = 1, title: str | None = None) -> Event:
    event = record.event
    shift = timedelta(hours=hours)
    return replace(
        event, start=event.start + shift, end=event.end + shift, title=title or event.title
    )


async def test_a_single_event_round_trips_create_update_delete(adapter, collection, session):
    await listed(adapter)
    new = Event(MARCH, MARCH + timedelta(hours=1), title="Demo", location="Room 4")

    created = await adapter.create(key("new@x"), new)

    status, _, body = await fetch(session, collection + new_name("new@x"))
    assert (status, created.event.title, created.event.location) == (200, "Demo", "Room 4")
    [vevent] = vevents(body)
    assert (str(vevent["uid"]), str(vevent["summary"])) == ("new@x", "Demo")
    records, requests = await listed(adapter)
    assert (records, requests) == ((created,), 1)  # what create returned is what is listed

    updated = await adapter.update(created, moved(created, title="Demo, moved"), TITLE_AND_TIMES)

    [vevent] = vevents((await fetch(session, collection + new_name("new@x")))[2])
    assert vevent["dtstart"].dt == MARCH + timedelta(hours=1)
    assert str(vevent["location"]) == "Room 4"  # not changed, so kept
    assert (await listed(adapter))[0] == (updated,)

    await adapter.delete(updated)

    assert (await fetch(session, collection + new_name("new@x")))[0] == 404
    assert (await listed(adapter))[0] == ()


TITLE_AND_TIMES = frozenset({"title", "start", "end"})


async def test_an_update_lands_in_the_resource_that_holds_the_uid(adapter, collection, session):
    await put(session, collection + "3f2a-not-the-uid.ics", single("meeting@x", "Review"))
    [record], _ = await listed(adapter)

    await adapter.update(record, moved(record, 0, "Review, renamed"), frozenset({"title"}))

    [vevent] = vevents((await fetch(session, collection + "3f2a-not-the-uid.ics"))[2])
    assert str(vevent["summary"]) == "Review, renamed"
    assert (await fetch(session, collection + new_name("meeting@x")))[0] == 404


async def test_an_unsafe_uid_gets_a_safe_resource_name() -> None:
    assert new_name("abc@x") == "abc@x.ics"
    assert new_name("a/b").startswith("a_b-") and new_name("a/b") != new_name("a_b")


# --- writing occurrences ------------------------------------------------------------------


def nth(records: tuple[Record, ...], n: int) -> Record:
    return next(r for r in records if r.key == key("series", utc(MARCH + timedelta(weeks=n))))


async def test_an_occurrence_update_makes_an_override_and_keeps_the_series(
    adapter, collection, session
):
    await put(session, collection + "series.ics", weekly())
    before, _ = await listed(adapter)

    written = await adapter.update(
        nth(before, 1), moved(nth(before, 1), 2, "Moved"), TITLE_AND_TIMES
    )

    master, override = vevents((await fetch(session, collection + "series.ics"))[2])
    assert "RRULE" in master and "RECURRENCE-ID" not in master
    assert override["recurrence-id"].dt == MARCH + timedelta(weeks=1)
    assert override["dtstart"].dt == MARCH + timedelta(weeks=1, hours=2)
    after, _ = await listed(adapter)
    assert nth(after, 1) == written
    assert (written.event.title, written.event.start) == (
        "Moved",
        MARCH + timedelta(weeks=1, hours=2),
    )
    assert events(nth(after, n) for n in (0, 2, 3)) == events(nth(before, n) for n in (0, 2, 3))


async def test_an_occurrence_delete_adds_an_exdate(adapter, collection, session):
    await put(session, collection + "series.ics", weekly())
    before, _ = await listed(adapter)

    await adapter.delete(nth(before, 2))

    [master] = vevents((await fetch(session, collection + "series.ics"))[2])
    assert [d.dt for d in master["exdate"].dts] == [MARCH + timedelta(weeks=2)]
    after, _ = await listed(adapter)
    assert events(after) == events(r for r in before if r.key != nth(before, 2).key)


async def test_two_occurrences_of_one_series_written_at_once_both_land(
    adapter, collection, session
):
    await put(session, collection + "series.ics", weekly())
    before, _ = await listed(adapter)

    await asyncio.gather(
        adapter.update(nth(before, 1), moved(nth(before, 1), 1), TITLE_AND_TIMES),
        adapter.update(nth(before, 3), moved(nth(before, 3), 3), TITLE_AND_TIMES),
    )

    events = vevents((await fetch(session, collection + "series.ics"))[2])
    assert sorted(e["recurrence-id"].dt for e in events if "recurrence-id" in e) == [
        MARCH + timedelta(weeks=1),
        MARCH + timedelta(weeks=3),
    ]


async def test_an_occurrence_created_for_a_series_that_is_not_here_is_refused(adapter):
    await listed(adapter)
    with pytest.raises(Exception, match="series ghost is not here"):
        await adapter.create(key("ghost", utc(MARCH)), Event(MARCH, MARCH + timedelta(hours=1)))


# --- races --------------------------------------------------------------------------------


async def test_a_write_racing_another_client_is_a_version_mismatch_then_relisted(
    adapter, collection, session
):
    await put(session, collection + "a.ics", single("a", "Intro A"))
    [record], _ = await listed(adapter)
    await put(session, collection + "a.ics", single("a", "Renamed by someone else"))

    with pytest.raises(VersionMismatch):
        await adapter.update(record, moved(record, 0, "Ours"), frozenset({"title"}))
    with pytest.raises(VersionMismatch):  # no second try on what we know is stale
        await adapter.update(record, moved(record, 0, "Ours"), frozenset({"title"}))

    [fresh], _ = await listed(adapter)
    assert fresh.event.title == "Renamed by someone else"
    written = await adapter.update(fresh, moved(fresh, 0, "Ours"), frozenset({"title"}))
    assert written.event.title == "Ours"


async def test_a_create_over_a_resource_someone_else_made_is_a_version_mismatch(
    adapter, collection, session
):
    await listed(adapter)
    await put(session, collection + "a.ics", single("a", "Made elsewhere"))

    with pytest.raises(VersionMismatch):
        await adapter.create(key("a"), Event(MARCH, MARCH + timedelta(hours=1), title="Ours"))

    [record], _ = await listed(adapter)
    assert record.event.title == "Made elsewhere"


async def test_a_delete_of_something_already_gone_is_fine(adapter, collection, session):
    await put(session, collection + "a.ics", single("a", "Intro A"))
    [record], _ = await listed(adapter)
    await remove(session, collection + "a.ics")

    await adapter.delete(record)  # Radicale answers 404 before it checks If-Match

    assert (await listed(adapter))[0] == ()
    await adapter.delete(record)  # not listed any more: nothing to ask


# --- config -------------------------------------------------------------------------------


def test_check_config_takes_a_caldav_calendar(tmp_path: Path) -> None:
    block = "    kind: caldav\n    url: https://dav.example.com/cal/\n    username: rep\n"
    path = write(tmp_path, "config.yaml", config_text("http://127.0.0.1:1", block, BOTH))
    assert check_config(path, {}) == []
    lone = block.replace("    username: rep\n", "    password: secret\n")
    write(tmp_path, "config.yaml", config_text("http://127.0.0.1:1", lone, BOTH))
    assert check_config(path, {}) == ["calendars.cal.password: needs username too (basic auth)"]


BOTH = "    direction: both\n"
TOKEN, SECRET = "path-t0k3n-41c2", "hunter2-caldav"


async def test_the_url_and_password_reach_no_repr_report_or_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    block = (  # port 9 (discard) on loopback refuses connections: the listing fails
        f"    kind: caldav\n    url: http://127.0.0.1:9/dav/{TOKEN}/cal/\n"
        f"    username: rep\n    password: {SECRET}\n"
    )
    path = write(tmp_path, "config.yaml", config_text("http://127.0.0.1:9", block, BOTH))
    config = load_config(path)
    async with aiohttp.ClientSession() as session:
        shown = repr(registry.runners(config, State(None), session, ["r"]))

    [report] = await run_sync(path)

    assert report.outcome == "failed"
    for text in (shown, report.error, caplog.text):
        assert TOKEN not in text and SECRET not in text


# --- end to end ---------------------------------------------------------------------------


@pytest.fixture
async def both_ways(collection: str, tmp_path: Path) -> AsyncIterator[tuple[SalesAskSim, Path]]:
    block = (
        f"    kind: caldav\n    url: {collection}\n"
        f"    username: {USER}\n    password: {PASSWORD}\n    timeout: 10s"
    )
    async with salesask_server() as (simulator, base_url):
        yield simulator, write(tmp_path, "config.yaml", config_text(base_url, block, BOTH))


def _ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_a_both_route_syncs_radicale_and_the_vendor_both_ways(both_ways, collection, session):
    simulator, config_path = both_ways
    start = day(2, 10)
    await put(session, collection + "intro.ics", calendar(Vevent("intro", "Intro call", start)))
    weekly_start = day(1, 9)
    series = Vevent("weekly", "Weekly", weekly_start, extra=["RRULE:FREQ=WEEKLY;COUNT=3"])
    await put(session, collection + "weekly.ics", calendar(series))

    assert await run(config_path) == OK  # calendar -> vendor
    assert simulator.task("cal:intro").title == "Intro call"
    second = f"cal:weekly:{utc(weekly_start + timedelta(weeks=1))}"
    assert simulator.task(second).start == weekly_start + timedelta(weeks=1)

    later = start + timedelta(hours=3)
    simulator.edit("cal:intro", {"start_time": _ms(later), "end_time": _ms(later + HOUR)})
    shifted = weekly_start + timedelta(weeks=1, hours=2)
    simulator.edit(second, {"start_time": _ms(shifted), "end_time": _ms(shifted + HOUR)})
    assert await run(config_path) == OK  # vendor -> calendar

    [intro] = vevents((await fetch(session, collection + "intro.ics"))[2])
    assert intro["dtstart"].dt == later
    master, override = vevents((await fetch(session, collection + "weekly.ics"))[2])
    assert "RRULE" in master
    assert override["dtstart"].dt == shifted

    etags = [(await fetch(session, collection + n))[1] for n in ("intro.ics", "weekly.ics")]
    writes = simulator.writes
    assert await run(config_path) == OK  # nothing changed: nothing written anywhere
    assert simulator.writes == writes
    assert [(await fetch(session, collection + n))[1] for n in ("intro.ics", "weekly.ics")] == etags


HOUR = timedelta(hours=1)


async def test_a_route_whose_write_races_another_client_plans_again_in_the_same_run(
    both_ways, collection, session, tmp_path
):
    """Another client writes the object between syncd's listing and its PUT: the 412 is
    not an error; the run lists again, sees both sides changed and lets the route's
    conflict policy (the calendar) decide, all in one run."""
    simulator, config_path = both_ways
    start = day(2, 10)
    await put(session, collection + "intro.ics", calendar(Vevent("intro", "Intro call", start)))
    config = load_config(config_path)
    state = State(tmp_path / "race.db")
    try:
        route = registry.runners(config, state, session, ["r"])["r"]
        assert (await route.run()).outcome == "ok"
        simulator.edit("cal:intro", {"title": "Renamed at the vendor"})
        theirs = calendar(Vevent("intro", "Renamed by another client", start))
        assert isinstance(route.calendar, Caldav)
        route.calendar = _Racing(route.calendar, session, collection + "intro.ics", theirs)

        report = await route.run()

        assert report.outcome == "ok" and report.counts["raced"] == 1
        assert not state.quarantined("r")
        assert simulator.task("cal:intro").title == "Renamed by another client"
        [stored] = vevents((await fetch(session, collection + "intro.ics"))[2])
        assert str(stored["SUMMARY"]) == "Renamed by another client"
        assert [row["winner"] for row in state.conflicts("r")] == ["calendar"]
        assert not (await route.run()).ops
    finally:
        state.close()


class _Racing:
    """The calendar adapter, with another client writing the object just before syncd's
    first update of it: the race a 412 reports."""

    def __init__(self, inner: Caldav, session: aiohttp.ClientSession, url: str, text: str) -> None:
        self.inner, self.session, self.url, self.text = inner, session, url, text

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        if self.text:
            text, self.text = self.text, ""
            await put(self.session, self.url, text)
        return await self.inner.update(record, event, changed)


async def test_a_write_refused_by_a_read_only_share_is_quarantined_not_a_credentials_failure(
    server, session
):
    """A colleague's calendar shared read-only: the listing works, a PUT answers a bare
    403. That refuses the item, not the credentials (the route used to fail every run)."""
    owner = {"Authorization": aiohttp.encode_basic_auth(COLLEAGUE, PASSWORD)}
    async with session.request("MKCALENDAR", server.shared, headers=owner) as response:
        assert response.status in (201, 405), await response.text()  # 405: made before
    async with session.put(
        server.shared + "one.ics", data=single("one", "Shared").encode(), headers=owner | ICS
    ) as response:
        assert response.status in (201, 204)
    shared = caldav(server.shared, session)
    [record], _ = await listed(shared)
    with pytest.raises(Rejected, match="refuses writes here"):
        await shared.update(record, moved(record, 0, "Ours"), frozenset({"title"}))
