"""An unchanged route skips planning: same listings, no other writer, a recent plan."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.adapter import Caps
from syncd.calendars.ics_file import IcsFile
from syncd.model import Event, Link, Person, Record, Window
from syncd.plan import CANNOT_DELETE, KEPT_DELETED, Item
from syncd.polled import Polled
from syncd.runner import RouteRunner
from syncd.settings import RouteConfig
from syncd.simulators.memory import MemoryAdapter
from syncd.state import State
from tests.builders import REP, Vevent, calendar, day, write

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def route_config(**settings: object) -> RouteConfig:
    """The tests' route from calendar `cal` to vendor `v`, with `settings` over it."""
    return RouteConfig.model_validate(
        {"calendar": "cal", "vendor": "v", "rep": {"email": REP}, **settings}
    )


ROUTE = route_config()


def file_route(tmp_path: Path, events: list[Vevent]) -> RouteRunner:
    """A route from a calendar file listed afresh every run (a feed answering 304, a file
    read again) to a memory vendor whose listing is kept as the daemon keeps it."""
    path = write(tmp_path, "calendar.ics", calendar(*events))
    calendar_side = Polled(IcsFile("cal", path), timedelta(0))
    vendor = Polled(MemoryAdapter(), timedelta(hours=1))
    return RouteRunner("r", ROUTE, "cal", calendar_side, vendor, State(tmp_path / "s.db"))


def route_runner(tmp_path: Path) -> tuple[RouteRunner, MemoryAdapter, Polled]:
    """A route over three memory events: its runner, the calendar and its kept side."""
    route = PolledRoute(tmp_path, MemoryAdapter(), timedelta(hours=1), events=3)
    return route.runner, route.calendar, route.kept_calendar


class PolledRoute:
    """A route over a memory calendar of `events` events and `vendor`, both sides kept
    as the daemon keeps them, on a clock the test moves (`clock`, in seconds)."""

    def __init__(
        self,
        tmp_path: Path,
        vendor: MemoryAdapter,
        calendar_poll: timedelta,
        events: int = 1,
        direction: str = "to_vendor",
    ) -> None:
        self.clock = 0.0
        self.calendar = MemoryAdapter(windowed=False)
        for n in range(events):
            start = NOW + timedelta(days=1, hours=n)
            event = Event(start, start + timedelta(hours=1), title=f"E{n}")
            self.calendar.put(f"VEVENT:e{n}:-", event)
        self.vendor = vendor
        self.kept_calendar = Polled(self.calendar, calendar_poll, clock=lambda: self.clock)
        kept_vendor = Polled(vendor, timedelta(minutes=10), clock=lambda: self.clock)
        route, state = route_config(direction=direction), State(tmp_path / "s.db")
        self.runner = RouteRunner(
            "r", route, "cal", self.kept_calendar, kept_vendor, state, clock=lambda: NOW
        )


async def test_an_unchanged_route_skips_planning_until_something_changes(tmp_path):
    runner, calendar, kept = route_runner(tmp_path)
    await runner.run()  # creates, each write kept in the vendor's listing: settled
    await runner.run()
    await runner.run()
    assert runner.plans == 1  # the kept listings hold the run's own writes: nothing to plan

    calendar.put("VEVENT:e9:-", Event(NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1)))
    kept.expire()  # the calendar is listed again (a new poll)
    report = await runner.run()
    assert runner.plans == 2 and report.counts["created"] == 1


async def test_a_run_whose_writes_did_not_all_go_through_is_planned_again(tmp_path):
    runner, _, _ = route_runner(tmp_path)
    vendor = runner.vendor
    assert isinstance(vendor, Polled) and isinstance(vendor.inner, MemoryAdapter)
    vendor.inner.reject = {"cal:e1"}
    first = await runner.run()
    assert first.counts["quarantined"] == 1
    await runner.run()
    assert runner.plans == 2  # not settled: the refused item is looked at again


async def test_another_process_writing_the_state_makes_the_route_plan_again(tmp_path):
    runner, _, _ = route_runner(tmp_path)
    await runner.run()
    await runner.run()
    assert runner.plans == 1
    other = State(tmp_path / "s.db")  # `syncd reset r` in another process
    other.reset("r")
    other.close()

    report = await runner.run()

    assert runner.plans == 2 and report.counts["adopted"] == 3  # re-adopted, not skipped


def views_made(runner: RouteRunner) -> list[str]:
    """The keys of the calendar records whose plan view the runner makes from now on."""
    made: list[str] = []
    original = runner.calendar_item

    def counting(record: Record, window: Window) -> Item | None:
        made.append(record.key)
        return original(record, window)

    runner.calendar_item = counting  # type: ignore[method-assign]
    return made


def move_third(tmp_path: Path, events: list[Vevent]) -> None:
    """Rewrite the calendar file with the third event renamed (and listed first)."""
    write(
        tmp_path,
        "calendar.ics",
        calendar(replace(events[2], title="Moved"), *events[:2], events[3]),
    )


async def test_a_uid_settles_when_its_plan_comes_out_empty_and_is_then_left_out(tmp_path):
    """Sides that keep no listing (`syncd sync`, bare adapters): the run after the
    creates plans every UID once and finds nothing; from then on a changed listing
    makes a view only for the UID that changed."""
    events = [Vevent(f"e{n}", f"Call {n}", day(1 + n)) for n in range(4)]
    path = write(tmp_path, "calendar.ics", calendar(*events))
    runner = RouteRunner(
        "r", ROUTE, "cal", IcsFile("cal", path), MemoryAdapter(), State(tmp_path / "s.db")
    )
    await runner.run()
    made = views_made(runner)
    assert (await runner.run()).ops == ()
    assert len(made) == 4  # nothing kept the creates' read-backs: every UID planned once
    made.clear()
    move_third(tmp_path, events)

    report = await runner.run()

    assert report.counts["updated"] == 1
    assert made == ["VEVENT:e2:-"]  # only the changed event's view was made again


async def test_a_cannot_delete_tombstone_does_not_block_re_creating_the_event(tmp_path):
    runner, _, _ = route_runner(tmp_path)
    state = runner.state
    state.forget_link("r", "VEVENT:e0:-", ("calendar", "VEVENT:e0:-", CANNOT_DELETE))
    state.forget_link("r", "VEVENT:e1:-", ("calendar", "VEVENT:e1:-", KEPT_DELETED))

    kept = runner._tombstones()

    assert ("calendar", "VEVENT:e0:-") not in kept  # the event may come back and sync
    assert ("calendar", "VEVENT:e1:-") in kept  # a kept vendor deletion still holds


async def test_a_first_sync_is_followed_by_a_quiet_run_while_the_calendar_is_unchanged(tmp_path):
    """The calendar is listed again every run (a feed answering 304, a file read again):
    the same kept listing comes back, and the vendor's kept listing holds the creates,
    so the run after a first sync plans nothing instead of comparing every link."""
    runner = file_route(tmp_path, [Vevent(f"e{n}", "Call", day(1 + n)) for n in range(5)])
    first = await runner.run()
    await runner.run()
    assert first.counts["created"] == 5 and runner.plans == 1


async def test_a_change_after_quiet_runs_plans_only_its_uid(tmp_path):
    """Quiet runs plan nothing and unsettle nothing: the change that follows makes a view
    of its own event only (once the kept views aged in quiet runs, and the next change
    re-made every view: 1.7 s instead of 0.9 s for 1% of a 10,000-event feed)."""
    events = [Vevent(f"e{n}", f"Call {n}", day(1 + n)) for n in range(4)]
    runner = file_route(tmp_path, events)
    await runner.run()
    await runner.run()  # quiet
    await runner.run()  # quiet
    made = views_made(runner)
    move_third(tmp_path, events)
    report = await runner.run()
    assert report.counts["updated"] == 1
    assert made == ["VEVENT:e2:-"]


async def test_a_change_reads_the_link_objects_of_its_uid_only(tmp_path, monkeypatch):
    """A run that plans reads every link's keys, hash and window flag (`LinkIndex`), but
    makes `Link` objects only for the UIDs it plans: every link of the route as objects
    was 4.7 MiB of a 10,000-link re-sync's peak, for one changed event."""
    events = [Vevent(f"e{n}", f"Call {n}", day(1 + n)) for n in range(4)]
    runner = file_route(tmp_path, events)
    await runner.run()
    asked: list[list[str]] = []
    by_key = State.links_by_key

    def counted(self: State, route: str, cal_keys: Sequence[str]) -> tuple[Link, ...]:
        asked.append(list(cal_keys))
        return by_key(self, route, cal_keys)

    monkeypatch.setattr(State, "links_by_key", counted)
    move_third(tmp_path, events)
    report = await runner.run()
    assert report.counts["updated"] == 1
    assert asked[0] == ["VEVENT:e2:-"]
    assert all(keys == ["VEVENT:e2:-"] for keys in asked)


async def test_one_glitchy_listing_is_not_two_when_the_daemon_kept_it(tmp_path):
    """A vendor whose absence needs a second listing (Salesloft) was "listed again" from
    the daemon's kept listing while its poll was fresh: one glitch deleted the event."""
    relisting = MemoryAdapter(Caps(absence="relist"))
    route = PolledRoute(tmp_path, relisting, timedelta(minutes=1), direction="both")
    runner, calendar, vendor = route.runner, route.calendar, route.vendor
    await runner.run()
    held = vendor.items.pop("cal:e0")  # the vendor's listing glitches once
    route.clock += 600  # both sides are listed afresh
    await runner.run()  # marked missing
    vendor.items["cal:e0"] = held  # the glitch is over
    route.clock += 60  # the calendar polls again; the vendor's kept listing is still fresh
    await runner.run()
    assert "VEVENT:e0:-" in calendar.items  # not deleted on one listing
    route.clock += 600  # a real second look at the vendor finds the record again
    await runner.run()
    assert "VEVENT:e0:-" in calendar.items and not runner.state.links("r")[0].missing


async def test_routes_sharing_a_calendar_do_not_settle_on_each_others_writes(tmp_path):
    """Two routes of one daemon share the calendar's kept listing. Both imported a
    booking in overlapping runs, and each settled on a listing holding the other's
    import, which its plan never saw: the next run was quiet and never carried it."""

    def both(vendor: str) -> RouteConfig:
        return route_config(vendor=vendor, direction="both", import_new=True)

    def booked(title: str, hours: int) -> Event:
        start = NOW + timedelta(days=1, hours=hours)
        client = Person("c@client.test", "C")
        return Event(start, start + timedelta(hours=1), title, owner=REP, contact=client)

    calendar = MemoryAdapter(windowed=False)
    shared, state = Polled(calendar, timedelta(hours=1)), State(tmp_path / "s.db")
    vendors = {"va": MemoryAdapter(), "vb": MemoryAdapter()}
    vendors["va"].put("booked-a", booked("Booked at A", 1))
    vendors["vb"].put("booked-b", booked("Booked at B", 2))
    runners = [
        RouteRunner(
            name,
            both(name),
            "cal",
            shared,
            Polled(vendor, timedelta(hours=1)),
            state,
            clock=lambda: NOW,
        )
        for name, vendor in vendors.items()
    ]
    await asyncio.gather(*(runner.run() for runner in runners))  # side by side
    for runner in runners:
        await runner.run()
    for vendor in vendors.values():
        titles = sorted(r.event.title for r in vendor.records().values())
        assert titles == ["Booked at A", "Booked at B"]


async def test_unlinked_events_outside_the_window_cost_no_view_and_linked_ones_stay(tmp_path):
    """A calendar lists single events wherever they lie (a linked one moved months away
    must not read as deleted), but one that no link holds can lead to no op: it gets no
    plan view (a third of a big calendar's records), while a linked one that moves far
    out keeps its view and leaves the window without a delete."""
    calendar_side = MemoryAdapter(windowed=False)
    near, far = NOW + timedelta(days=1), NOW + timedelta(days=200)
    calendar_side.put("VEVENT:near:-", Event(near, near + timedelta(hours=1), title="Near"))
    calendar_side.put("VEVENT:far:-", Event(far, far + timedelta(hours=1), title="Far"))
    vendor = MemoryAdapter()
    runner = RouteRunner(
        "r", ROUTE, "cal", calendar_side, vendor, State(tmp_path / "s.db"), clock=lambda: NOW
    )
    made = views_made(runner)
    first = await runner.run()
    assert first.counts["created"] == 1 and set(vendor.items) == {"cal:near"}
    assert made == ["VEVENT:near:-"]

    moved = NOW + timedelta(days=300)
    calendar_side.put("VEVENT:near:-", Event(moved, moved + timedelta(hours=1), title="Near"))
    report = await runner.run()
    assert "VEVENT:near:-" in made[1:]  # linked: judged wherever it lies
    assert "VEVENT:far:-" not in made
    assert report.counts.get("deleted", 0) == 0 and set(vendor.items) == {"cal:near"}


async def test_sides_listed_again_unchanged_keep_a_settled_route_quiet(tmp_path):
    """Each poll of an unchanged vendor used to hand the runner new record objects: a
    plan over every record (1.3 s a poll for 10,000 in the daemon) to find nothing."""
    route = PolledRoute(tmp_path, MemoryAdapter(), timedelta(minutes=1), events=3)
    runner, calendar_side, vendor = route.runner, route.calendar, route.vendor
    await runner.run()
    route.clock += 600  # both sides listed afresh: nothing changed on either
    await runner.run()
    assert (runner.plans, vendor.listings, calendar_side.listings) == (1, 2, 2)
    vendor.put("cal:e1", replace(vendor.items["cal:e1"][1], title="Edited at the vendor"))
    route.clock += 600
    report = await runner.run()
    assert runner.plans == 2 and report.counts["updated"] == 1  # the calendar wins it back


async def test_an_absence_awaiting_a_second_listing_is_confirmed_though_the_listing_is_the_same(
    tmp_path,
):
    """A vendor that confirms an absence by a second listing (Salesloft), polled every ten
    minutes, a route every five: the run after the one that marked the record missing
    settled on the kept listing, and the next fetch, finding the same records, handed
    back the same listing, so the route stayed quiet and the absence was never
    confirmed (found by review). A route waiting on a confirmation does not settle."""
    route = PolledRoute(tmp_path, MemoryAdapter(Caps(absence="relist")), timedelta(minutes=5))
    runner, vendor = route.runner, route.vendor
    await runner.run()
    vendor.remove("cal:e0")  # deleted at the vendor by somebody
    cases: list[str] = []
    for _ in range(8):  # forty minutes of route runs
        route.clock += 300
        cases += [op.case for op in (await runner.run()).ops]
    assert cases == ["vendor_missing_unconfirmed", "vendor_deleted_recreated"]
    assert "cal:e0" in vendor.items


async def test_an_event_outside_the_window_whose_vendor_record_is_listed_still_partners_it(
    tmp_path,
):
    """After a reset (no links), an event moved far away while its vendor record still
    lies in the window: the event keeps its view, so the record is its partner and no
    orphan for the series re-keying to take (found by review)."""
    calendar_side = MemoryAdapter(windowed=False)
    near = NOW + timedelta(days=1)
    calendar_side.put("VEVENT:e0:-", Event(near, near + timedelta(hours=1), title="E0"))
    vendor = MemoryAdapter()
    state = State(tmp_path / "s.db")
    runner = RouteRunner("r", ROUTE, "cal", calendar_side, vendor, state, clock=lambda: NOW)
    await runner.run()
    state.reset("r")
    far = NOW + timedelta(days=300)
    calendar_side.put("VEVENT:e0:-", Event(far, far + timedelta(hours=1), title="E0"))
    made = views_made(runner)
    report = await runner.run()
    assert made == ["VEVENT:e0:-"] and report.ops == ()
    assert set(vendor.items) == {"cal:e0"}
