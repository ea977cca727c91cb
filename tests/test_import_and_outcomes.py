"""Records booked at the vendor (`import_new`) and outcomes that flow back, per vendor.

Import: on a `direction: both` route with `import_new: true` and an `ics_dir` calendar, a
record a person made at the vendor (not syncd: its key does not have the shape
`<calendar>:<uid>[...]`, or a server-id vendor's record carries no `syncd-key:` marker)
becomes exactly one new event file whose UID syncd generates (`syncd-...`), and nothing is
written back to the vendor. From then on it is linked like any other item: a move at the
vendor moves the event, and deleting the event's file deletes the record (Apptoto: its
soft delete; Salesloft, which cannot delete: cancelled). A cancelled record is never
imported, and without `import_new` nothing is.

How a record is booked in each simulator, and what a listing can show at all:

- Sales Ask: the simulator has no control for a person adding a task, so a task stored
  under another integration's `event_id` (`crm-N`) stands in. No cancelled state is
  mapped (its `status` has no known meaning), so "a cancelled task" cannot be tested.
- LeadSquared: a task typed into the UI, no marker. The listing is
  `RetrieveAppointments/ByUserEmailAddress` for the route's `owners` (default the rep):
  a task of anyone else is never listed, so it can never be imported (tested); with the
  colleague among `owners` it is (tested). No cancelled state.
- YSUITE: the simulator's `add_task` (the UI); status 3 is cancelled.
- Apptoto: the simulator's `add_event`, with no `external_id` (made in Apptoto's UI: its
  key is `#<id>`) and with another integration's `external_id`. No cancelled state: a
  soft-deleted event stands in for a cancelled one.
- Salesloft: the listing reads only the rep's External Calendar `external_<guid>`.
  Meetings booked in Salesloft itself or synced from the rep's own Google/Outlook
  calendar are not in it, and a person cannot add to it in the UI: only another
  integration's upsert (its own `id`) lands there, and that is what is tested.

Outcomes (`model.OUTCOMES`): a vendor's record of what happened is written into the event
as `X-SYNCD-OUTCOME:<outcome>` (on one occurrence: into its RECURRENCE-ID override);
STATUS stays, the vendor is not written, and a second sync writes nothing. On a
`to_vendor` route the same change writes nothing anywhere. Recorded with YSUITE's
`no_show`/`complete` controls (status 4 / 2) and LeadSquared's `complete` (StatusCode 1).
Salesloft has none on the path syncd reads: `no_show` belongs to its Meetings resource,
not to the external calendar events syncd syncs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import icalendar
import pytest

from syncd.runner import RunReport
from syncd.simulators import apptoto, leadsquared, salesask, salesloft, ysuite
from tests.builders import REP, day
from tests.test_two_way_vendors import (
    NTH,
    SERIES,
    SINGLE,
    SINGLE_AT,
    SINGLE_KEY,
    Apptoto,
    LeadSquared,
    S,
    SalesAsk,
    Salesloft,
    TwoWay,
    Vendor,
    YSuite,
    assert_round_trips,
    each,
    expanded,
    kept_lines,
    master,
    occurrence_key,
    same_instant,
    series_as_written,
    source_component,
    the_override,
    two_way,
    vevents,
)

IMPORT = "    import_new: true\n"
TITLE = "Booked by phone"
BOOKED = (day(3, 14), day(3, 15))
MOVED = (day(4, 16), day(4, 17, 30))
OWN_FILES = ["visit.ics", "weekly.ics"]  # what `two_way` syncs first
COLLEAGUE = "colleague@example.com"
OUTCOME = "X-SYNCD-OUTCOME"
NOT_SHOWN = "the vendor's API does not show the outcome its person recorded"
YSUITE_CANCELLED = 3  # YSUITE's status codes, as the simulator's controls set them
YSUITE_OUTCOMES = {"completed": 2, "no_show": 4}


# --- the vendors' own people: records they book, outcomes they record -----------------


class Desk(Vendor[S]):
    """A vendor seen from its own people's side: records they book (not syncd), by the key
    syncd lists them under, and outcomes they record on syncd's records."""

    removal: ClassVar[str] = "gone"  # what deleting the linked event leaves at the vendor
    outcomes: ClassVar[tuple[str, ...]] = ()  # what its people can record (OUTCOMES names)

    def book(self, title: str, start: datetime, end: datetime) -> str:
        """A record made at the vendor by a person; its key in syncd's listing."""
        raise NotImplementedError

    def state(self, ref: str) -> str:
        """`live`, `cancelled`, `deleted` (soft: still stored) or `gone`."""
        raise NotImplementedError

    def titles(self) -> list[str]:
        """The title of every live record."""
        raise NotImplementedError

    def record_outcome(self, key: str, outcome: str) -> None:
        """A person records what happened to the meeting of syncd's `key`."""
        raise NotImplementedError

    def outcome_of(self, key: str) -> str:
        """The outcome the vendor's API shows for syncd's `key` (OUTCOMES name, or "")."""
        raise NotImplementedError


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SalesAskDesk(Desk[salesask.SalesAskSim], SalesAsk):
    def book(self, title: str, start: datetime, end: datetime) -> str:
        org, now = self.sim.org(), _now()
        ref = f"crm-{len(org.tasks) + 1}"
        customer = {"name": "Client Ltd", "email": "buyer@client.test"}
        org.tasks[ref] = salesask.Task(
            f"task-{ref}", ref, REP, start, now, now, end=end, title=title, customer=customer
        )  # straight into the store: no API request, no write counted
        return ref

    def state(self, ref: str) -> str:
        return "live" if ref in self.sim.org().tasks else "gone"

    def titles(self) -> list[str]:
        return [task.title or "" for task in self.sim.org().tasks.values()]


class LeadSquaredDesk(Desk[leadsquared.LeadSquaredSim], LeadSquared):
    outcomes = ("completed",)
    booker: ClassVar[str] = REP  # whose task a person books

    def task(self, key: str) -> leadsquared.Task:
        """A task by its `UserTaskId`, else the one carrying syncd's key."""
        found = self.sim.account().tasks.get(key)
        return found if found is not None else super().task(key)

    def book(self, title: str, start: datetime, end: datetime) -> str:
        self.sim.set_user(self.booker)  # an active user of the account
        account, now = self.sim.account(), _now()
        owner = account.users[self.booker]
        task = leadsquared.Task(
            str(uuid.uuid4()), title, account.types["Meeting"], owner, start, end, now, now,
            owner, owner, description="Asked for a call back",
        )  # fmt: skip
        account.tasks[task.id] = task
        return task.id

    def state(self, ref: str) -> str:
        return "live" if ref in self.sim.account().tasks else "gone"

    def titles(self) -> list[str]:
        return [task.name for task in self.sim.account().tasks.values()]

    def record_outcome(self, key: str, outcome: str) -> None:
        assert outcome == "completed"
        self.sim.complete(self.task(key).id)

    def outcome_of(self, key: str) -> str:
        return "completed" if self.sim.render(self.task(key))["StatusCode"] == 1 else ""


class LeadSquaredColleagueDesk(LeadSquaredDesk):
    """A colleague's task, the route listing only the rep's appointments."""

    booker = COLLEAGUE


class LeadSquaredTeamDesk(LeadSquaredColleagueDesk):
    """A colleague's task, the colleague among the route's `owners`."""

    options = f"{{owners: [{REP}, {COLLEAGUE}]}}"


class YSuiteDesk(Desk[ysuite.YSuiteSim], YSuite):
    outcomes = ("no_show", "completed")

    def task(self, key: str) -> ysuite.Activity:
        """A task by its `activity_id`, else the one carrying syncd's key."""
        return self.sim.task(int(key)) if key.isdigit() else super().task(key)

    def book(self, title: str, start: datetime, end: datetime) -> str:
        made = self.sim.add_task(title=title, start_datetime=start, end_datetime=end)
        return str(made["activity_id"])

    def state(self, ref: str) -> str:
        found = self.sim.ws().activities.get(int(ref))
        if found is None:
            return "gone"
        return "cancelled" if found.status == YSUITE_CANCELLED else "live"

    def titles(self) -> list[str]:
        return [
            task.title
            for task in self.sim.ws().activities.values()
            if task.activity_type == "Task" and task.status != YSUITE_CANCELLED
        ]

    def record_outcome(self, key: str, outcome: str) -> None:
        control = {"no_show": self.sim.no_show, "completed": self.sim.complete}[outcome]
        control(self.task(key).activity_id)

    def outcome_of(self, key: str) -> str:
        names = {code: name for name, code in YSUITE_OUTCOMES.items()}
        return names.get(self.task(key).render()["status"], "")


class ApptotoDesk(Desk[apptoto.ApptotoSim], Apptoto):
    """An event made in Apptoto's UI has no external_id: syncd knows it as `#<id>`."""

    removal = "deleted"  # Apptoto's delete is soft

    def appointment(self, ref: str) -> apptoto.Appointment:
        if ref.startswith("#"):
            return self.sim.account().events[int(ref[1:])]
        return self.sim.event(ref)

    def book(self, title: str, start: datetime, end: datetime) -> str:
        element = {"calendar_id": apptoto.CALENDAR_ID, "title": title}
        element |= {"start_time": start.isoformat(), "end_time": end.isoformat()}
        made = self.sim.add_event(element | self.foreign_id())
        return str(made["external_id"] or f"#{made['id']}")

    def foreign_id(self) -> dict[str, str]:
        """The element's external_id: none from Apptoto's UI."""
        return {}

    def times(self, key: str) -> tuple[datetime, datetime]:
        found = self.appointment(key)
        return found.start_time, found.end_time

    def move(self, key: str, start: datetime, end: datetime) -> None:
        if not key.startswith("#"):
            return super().move(key, start, end)
        found = self.appointment(key)  # the `edit` control finds events by external_id only
        found.start_time, found.end_time = start, end

    def delete(self, key: str) -> None:
        if not key.startswith("#"):
            return super().delete(key)
        self.appointment(key).is_deleted = True

    def state(self, ref: str) -> str:
        return "deleted" if self.appointment(ref).is_deleted else "live"

    def titles(self) -> list[str]:
        return [e.title for e in self.sim.account().events.values() if not e.is_deleted]


class ApptotoIntegrationDesk(ApptotoDesk):
    """An event another integration put in the calendar under its own external_id."""

    def foreign_id(self) -> dict[str, str]:
        return {"external_id": f"crm-{len(self.sim.account().events) + 1}"}


class SalesloftDesk(Desk[salesloft.SalesloftSim], Salesloft):
    removal = "cancelled"  # the API cannot delete: syncd cancels

    def book(self, title: str, start: datetime, end: datetime) -> str:
        team = self.sim.team()
        ref, guid = f"crm-{len(team.events) + 1}", next(iter(team.users))
        self.sim.upsert(
            team,
            {
                "calendar_id": f"external_{guid}",
                "id": ref,
                "i_cal_uid": f"{ref}@crm.example",
                "start_time": start.isoformat(),
                "end_time": end.isoformat(),
                "title": title,
            },
        )  # the upsert's own logic, not a request: no write counted
        return ref

    def state(self, ref: str) -> str:
        try:
            found = self.sim.event(ref)
        except salesloft.SimError:
            return "gone"
        return "cancelled" if found.values["status"] == "cancelled" else "live"

    def titles(self) -> list[str]:
        events = self.sim.team().events.values()
        return [e.values["title"] for e in events if e.values["status"] != "cancelled"]


DESKS: list[type[Vendor[Any]]] = [
    SalesAskDesk,
    LeadSquaredDesk,
    YSuiteDesk,
    ApptotoDesk,
    SalesloftDesk,
]
IMPORTING = [*DESKS, LeadSquaredTeamDesk, ApptotoIntegrationDesk]
WITHDRAWN = [YSuiteDesk, SalesloftDesk, ApptotoDesk]  # cancelled (Apptoto: soft-deleted)


def outcomes() -> pytest.MarkDecorator:
    cases = [(kind, outcome) for kind in DESKS for outcome in desk_class(kind).outcomes]
    ids = [f"{kind.__name__.lower()}-{outcome}" for kind, outcome in cases]
    return pytest.mark.parametrize(("kind", "outcome"), cases, ids=ids)


def desk_class(kind: type[Vendor[Any]]) -> type[Desk[Any]]:
    assert issubclass(kind, Desk)
    return kind


def desk(env: TwoWay) -> Desk[Any]:
    assert isinstance(env.vendor, Desk)
    return env.vendor


def writes_of(report: RunReport) -> list[tuple[str, str]]:
    return [(op.case, op.side) for op in report.ops if op.writes]


def assert_booking(vevent: icalendar.cal.Component, start: datetime, end: datetime) -> None:
    """The event shows the booked record: its title and times, confirmed, no outcome."""
    assert str(vevent["summary"]) == TITLE
    assert same_instant(vevent.decoded("dtstart"), start)
    assert same_instant(vevent.decoded("dtend"), end)
    assert str(vevent.get("status", "CONFIRMED")) == "CONFIRMED"
    assert OUTCOME not in vevent


async def import_one(env: TwoWay) -> tuple[str, str]:
    """Book a record at the vendor and sync: exactly one new event file, the other files
    untouched, the vendor not written. (The record's key at the vendor, the event's UID.)"""
    vendor, before = desk(env), env.files()
    ref = vendor.book(TITLE, *BOOKED)
    writes = vendor.writes

    report = await env.sync()

    assert writes_of(report) == [("new_on_vendor", "calendar")]
    after = env.files()
    new = sorted(set(after) - set(before))
    assert len(new) == 1, f"new files: {new}"
    assert {name: after[name] for name in before} == before
    data = env.data(new[0].removesuffix(".ics"))
    [vevent] = vevents(data)
    uid = str(vevent["uid"])
    assert uid.startswith("syncd-") and new[0] == f"{uid}.ics"
    assert_booking(vevent, *BOOKED)
    assert_round_trips(data)
    assert vendor.writes == writes  # nothing pushed back: no duplicate, no marker
    assert vendor.titles().count(TITLE) == 1 and vendor.state(ref) == "live"
    return ref, uid


# --- import_new ------------------------------------------------------------------------


@each(IMPORTING)
async def test_a_record_booked_at_the_vendor_is_imported_once(
    tmp_path: Path, kind: type[Desk[Any]]
) -> None:
    async with two_way(tmp_path, kind, IMPORT) as env:
        await import_one(env)
        await env.assert_quiet()
        assert desk(env).titles().count(TITLE) == 1


@each(IMPORTING)
async def test_a_move_at_the_vendor_moves_the_imported_event(
    tmp_path: Path, kind: type[Desk[Any]]
) -> None:
    async with two_way(tmp_path, kind, IMPORT) as env:
        vendor = desk(env)
        ref, uid = await import_one(env)
        vendor.move(ref, *MOVED)
        writes = vendor.writes

        report = await env.sync()

        assert writes_of(report) == [("vendor_changed", "calendar")]
        [vevent] = vevents(env.data(uid))
        assert str(vevent["uid"]) == uid
        assert_booking(vevent, *MOVED)
        assert vendor.writes == writes
        start, end = vendor.times(ref)  # not moved back
        assert same_instant(start, MOVED[0]) and same_instant(end, MOVED[1])
        await env.assert_quiet()


@each(IMPORTING)
async def test_deleting_the_imported_event_deletes_the_vendor_record(
    tmp_path: Path, kind: type[Desk[Any]]
) -> None:
    async with two_way(tmp_path, kind, IMPORT) as env:
        vendor = desk(env)
        ref, uid = await import_one(env)
        (env.folder / f"{uid}.ics").unlink()  # a local file's absence is final

        report = await env.sync()

        assert writes_of(report) == [("calendar_deleted", "vendor")]
        assert vendor.state(ref) == vendor.removal
        assert vendor.titles().count(TITLE) == 0
        assert sorted(env.files()) == OWN_FILES
        await env.assert_quiet()  # not imported again


@each(WITHDRAWN)
async def test_a_cancelled_record_at_the_vendor_is_not_imported(
    tmp_path: Path, kind: type[Desk[Any]]
) -> None:
    async with two_way(tmp_path, kind, IMPORT) as env:
        vendor = desk(env)
        ref = vendor.book(TITLE, *BOOKED)
        if vendor.cancels:
            vendor.cancel(ref)
        else:
            vendor.delete(ref)
        assert vendor.state(ref) in ("cancelled", "deleted")

        await env.assert_quiet()

        assert sorted(env.files()) == OWN_FILES


@each(DESKS)
async def test_without_import_new_a_booked_record_is_left_alone(
    tmp_path: Path, kind: type[Desk[Any]]
) -> None:
    async with two_way(tmp_path, kind) as env:
        vendor = desk(env)
        ref = vendor.book(TITLE, *BOOKED)

        await env.assert_quiet()

        assert sorted(env.files()) == OWN_FILES
        assert vendor.state(ref) == "live" and vendor.titles().count(TITLE) == 1
        start, end = vendor.times(ref)
        assert same_instant(start, BOOKED[0]) and same_instant(end, BOOKED[1])


async def test_a_leadsquared_task_of_an_owner_not_listed_is_never_seen(tmp_path: Path) -> None:
    """The listing asks for the route's owners' appointments only: a colleague's task is
    not in it, so `import_new` cannot import it (with the colleague among `owners` it is:
    `leadsquaredteamdesk` above)."""
    async with two_way(tmp_path, LeadSquaredColleagueDesk, IMPORT) as env:
        vendor = desk(env)
        ref = vendor.book(TITLE, *BOOKED)

        await env.assert_quiet()

        assert sorted(env.files()) == OWN_FILES and vendor.state(ref) == "live"
        listings = [r for r in vendor.sim.requests if "RetrieveAppointments" in r["path"]]
        assert listings and all(r["body"]["Users"] == [REP] for r in listings)


# --- outcomes --------------------------------------------------------------------------


@outcomes()
async def test_an_outcome_at_the_vendor_is_written_into_the_calendar_event(
    tmp_path: Path, kind: type[Desk[Any]], outcome: str
) -> None:
    async with two_way(tmp_path, kind) as env:
        vendor, series_file = desk(env), env.data("weekly")
        vendor.record_outcome(SINGLE_KEY, outcome)
        assert vendor.outcome_of(SINGLE_KEY) == outcome, NOT_SHOWN
        writes = vendor.writes

        report = await env.sync()

        assert writes_of(report) == [("vendor_changed", "calendar")]
        data = env.data("visit")
        assert f"\r\n{OUTCOME}:{outcome}\r\n".encode() in data
        [vevent] = vevents(data)
        assert "STATUS" not in vevent  # as the calendar wrote it: a no-show is no cancel
        assert kept_lines(vevent, OUTCOME) == kept_lines(source_component(SINGLE))
        assert same_instant(vevent.decoded("dtstart"), SINGLE_AT)
        assert vendor.writes == writes  # the outcome is the vendor's: never written back
        assert vendor.outcome_of(SINGLE_KEY) == outcome
        assert env.data("weekly") == series_file
        assert_round_trips(data)
        await env.assert_quiet()


@outcomes()
async def test_an_outcome_on_one_occurrence_becomes_an_override(
    tmp_path: Path, kind: type[Desk[Any]], outcome: str
) -> None:
    async with two_way(tmp_path, kind) as env:
        vendor, single_file = desk(env), env.data("visit")
        key = occurrence_key(NTH)
        vendor.record_outcome(key, outcome)
        assert vendor.outcome_of(key) == outcome, NOT_SHOWN
        writes = vendor.writes

        report = await env.sync()

        assert writes_of(report) == [("vendor_changed", "calendar")]
        data = env.data("weekly")
        override = the_override(data, NTH)
        assert str(override[OUTCOME]) == outcome and "STATUS" not in override
        assert OUTCOME not in master(data)  # the other occurrences had no such outcome
        assert kept_lines(master(data)) == kept_lines(source_component(SERIES))
        assert expanded(data) == series_as_written()  # no occurrence moved or cancelled
        assert env.data("visit") == single_file
        assert vendor.writes == writes
        assert_round_trips(data)
        await env.assert_quiet()


@outcomes()
async def test_on_a_to_vendor_route_an_outcome_writes_nothing(
    tmp_path: Path, kind: type[Desk[Any]], outcome: str
) -> None:
    async with two_way(tmp_path, kind, direction="to_vendor") as env:
        vendor = desk(env)
        vendor.record_outcome(SINGLE_KEY, outcome)
        assert vendor.outcome_of(SINGLE_KEY) == outcome, NOT_SHOWN

        await env.assert_quiet()

        assert OUTCOME.encode() not in env.data("visit")
        assert vendor.outcome_of(SINGLE_KEY) == outcome
