"""Two-way routes, per vendor (issue 5): what a person does at the vendor reaches an
`ics_dir` calendar. A move at the vendor moves the calendar event, a cancellation
cancels it, a deletion removes it (once the absence is confirmed), and for one
occurrence of a series an override or an EXDATE appears while the rest of the series
stays as it was. After each, a second sync writes nothing on either side.

Each vendor is a small class saying how a person edits a record in its simulator
(the simulators' own vendor-side controls): `move`, `cancel` (where the vendor has a
cancelled state), `delete`, and where the record of a syncd key is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from syncd.model import split_marker
from syncd.runner import RunReport
from syncd.simulators import apptoto, leadsquared, salesask, salesloft, ysuite
from tests.builders import REP, Vevent, calendar, day, run_sync, simulated, utc, write

ZONE = "Europe/Berlin"  # YSUITE's account zone: its times are naive wall times there
SINGLE_AT = day(2, 10)
SERIES_AT = day(1, 9)
WEEKS = 5
ALARM = ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT15M", "END:VALARM"]
SINGLE = Vevent(
    "visit", "Site visit", SINGLE_AT, extra=["SEQUENCE:2", "X-CRM-NOTE:bring samples", *ALARM]
)
SERIES = Vevent(
    "weekly",
    "Pipeline review",
    SERIES_AT,
    extra=[f"RRULE:FREQ=WEEKLY;COUNT={WEEKS}", "SEQUENCE:1", "X-CRM-NOTE:weekly", *ALARM],
)
VOLATILE = ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE")  # what any write may refresh
SINGLE_KEY = "cal:visit"
NTH = 2  # the occurrence edited at the vendor


def occurrence_start(n: int) -> datetime:
    return SERIES_AT + timedelta(weeks=n)


def occurrence_key(n: int) -> str:
    """The vendor key of the series' n-th occurrence (0-based)."""
    return f"cal:weekly:{utc(occurrence_start(n))}"


# --- the vendors: how a person edits a record in each simulator ------------------------


class Counting(Protocol):
    writes: int  # write requests received: every simulator counts them


S = TypeVar("S", bound=Counting)


class Vendor(Generic[S]):
    """One vendor's simulator and its vendor-side edits, by syncd's vendor key."""

    module: ClassVar[ModuleType]
    account: ClassVar[str]  # the vendor's account in the config, YAML flow style, no braces
    switches: ClassVar[Mapping[str, object]] = {}
    options: ClassVar[str] = "{}"  # the route's options, YAML flow style
    cancels: ClassVar[bool] = False  # the vendor has a cancelled state
    relists: ClassVar[bool] = False  # a deletion counts only after a second listing

    def __init__(self, sim: S) -> None:
        self.sim = sim

    def times(self, key: str) -> tuple[datetime, datetime]:
        """The record's start and end, as the vendor holds them."""
        raise NotImplementedError

    def move(self, key: str, start: datetime, end: datetime) -> None:
        raise NotImplementedError

    def cancel(self, key: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    @property
    def writes(self) -> int:
        """Write requests the vendor's API has received."""
        return self.sim.writes


class SalesAsk(Vendor[salesask.SalesAskSim]):
    module: ClassVar[ModuleType] = salesask
    account = f"kind: salesask, api_key: {salesask.DEFAULT_KEY}"

    def times(self, key: str) -> tuple[datetime, datetime]:
        task = self.sim.task(key)
        assert task.end is not None
        return task.start, task.end

    def move(self, key: str, start: datetime, end: datetime) -> None:
        self.sim.edit(key, {"start_time": _ms(start), "end_time": _ms(end)})

    def delete(self, key: str) -> None:
        self.sim.remove(key)


class LeadSquared(Vendor[leadsquared.LeadSquaredSim]):
    module: ClassVar[ModuleType] = leadsquared
    account = (
        f"kind: leadsquared, access_key: {leadsquared.DEFAULT_ACCESS_KEY},"
        f" secret_key: {leadsquared.DEFAULT_SECRET_KEY}"
    )

    def task(self, key: str) -> leadsquared.Task:
        """The task carrying syncd's key in its description."""
        [found] = [
            task
            for task in self.sim.account().tasks.values()
            if split_marker(task.description)[1] == key
        ]
        return found

    def times(self, key: str) -> tuple[datetime, datetime]:
        task = self.task(key)
        return task.due, task.end

    def move(self, key: str, start: datetime, end: datetime) -> None:
        stamp = "%Y-%m-%d %H:%M:%S"
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        changes = {"DueDate": f"{start:{stamp}}", "EndDate": f"{end:{stamp}}"}
        self.sim.edit(self.task(key).id, changes)

    def delete(self, key: str) -> None:
        self.sim.remove(self.task(key).id)


class YSuite(Vendor[ysuite.YSuiteSim]):
    module: ClassVar[ModuleType] = ysuite
    account = (
        f"kind: ysuite, access_key: {ysuite.ACCESS}, secret_key: {ysuite.SECRET},"
        f" account_timezone: {ZONE}, supports_update: true, supports_delete: true,"
        f" users: {{{REP}: 7}}"
    )
    switches: ClassVar[Mapping[str, object]] = {
        "server_timezone": ZONE,  # edits given as aware times land in the account zone
        "supports_update": True,  # as the account in the config says
        "supports_delete": True,
    }
    options = "{cstid: 10}"
    cancels = True

    def task(self, key: str) -> ysuite.Activity:
        """The task carrying syncd's key in its description."""
        [found] = [
            task
            for task in self.sim.ws().activities.values()
            if task.activity_type == "Task" and split_marker(task.description or "")[1] == key
        ]
        return found

    def times(self, key: str) -> tuple[datetime, datetime]:
        task = self.task(key)
        assert task.end_datetime is not None
        zone = ZoneInfo(ZONE)
        start, end = (datetime.fromisoformat(t) for t in (task.start_datetime, task.end_datetime))
        return start.replace(tzinfo=zone), end.replace(tzinfo=zone)

    def move(self, key: str, start: datetime, end: datetime) -> None:
        self.sim.edit(self.task(key).activity_id, {"start_datetime": start, "end_datetime": end})

    def cancel(self, key: str) -> None:
        self.sim.cancel(self.task(key).activity_id)  # status 3

    def delete(self, key: str) -> None:
        self.sim.remove(self.task(key).activity_id)


class Apptoto(Vendor[apptoto.ApptotoSim]):
    module: ClassVar[ModuleType] = apptoto
    account = f"kind: apptoto, username: {apptoto.USERNAME}, api_key: {apptoto.API_KEY}"
    options = f"{{calendar_id: {apptoto.CALENDAR_ID}}}"

    def times(self, key: str) -> tuple[datetime, datetime]:
        event = self.sim.event(key)
        return event.start_time, event.end_time

    def move(self, key: str, start: datetime, end: datetime) -> None:
        self.sim.edit(key, {"start_time": start.isoformat(), "end_time": end.isoformat()})

    def delete(self, key: str) -> None:
        self.sim.remove(key)  # Apptoto's delete is soft: the event stays, is_deleted


class Salesloft(Vendor[salesloft.SalesloftSim]):
    module: ClassVar[ModuleType] = salesloft
    account = f"kind: salesloft, api_key: {salesloft.DEFAULT_KEY}"
    cancels = True
    relists = True  # no GET by id: a second complete listing confirms an absence

    def times(self, key: str) -> tuple[datetime, datetime]:
        values = self.sim.event(key).values
        return values["start_time"], values["end_time"]

    def move(self, key: str, start: datetime, end: datetime) -> None:
        self.sim.edit(key, {"start_time": start.isoformat(), "end_time": end.isoformat()})

    def cancel(self, key: str) -> None:
        self.sim.cancel(key)  # status cancelled, canceled_at set

    def delete(self, key: str) -> None:
        self.sim.remove(key)  # a disconnected calendar; the API itself cannot delete


VENDORS: list[type[Vendor[Any]]] = [SalesAsk, LeadSquared, YSuite, Apptoto, Salesloft]
CANCELLING = [v for v in VENDORS if v.cancels]


def each(vendors: list[type[Vendor[Any]]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("kind", vendors, ids=[v.__name__.lower() for v in vendors])


def _ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- one route: a vdir folder and a vendor, direction both -----------------------------


@dataclass
class TwoWay:
    vendor: Vendor[Any]
    folder: Path
    config: Path

    async def sync(self) -> RunReport:
        [report] = await run_sync(self.config)
        assert report.outcome == "ok", report.error
        return report

    def data(self, uid: str) -> bytes:
        return (self.folder / f"{uid}.ics").read_bytes()

    def files(self) -> dict[str, tuple[bytes, int, int]]:
        """Every file of the folder: its bytes, modification time and inode (an atomic
        rewrite with the same bytes is a new inode)."""
        found = {}
        for path in sorted(self.folder.iterdir()):
            stat = path.stat()
            found[path.name] = (path.read_bytes(), stat.st_mtime_ns, stat.st_ino)
        return found

    async def assert_quiet(self) -> None:
        """A sync now plans no write and writes nothing at either side."""
        writes, files = self.vendor.writes, self.files()
        report = await self.sync()
        assert [(op.case, op.side, op.cal_key) for op in report.ops if op.writes] == []
        assert self.vendor.writes == writes
        assert self.files() == files


def config_text(
    vendor: Vendor[Any], base_url: str, route_extra: str, direction: str = "both"
) -> str:
    return f"""\
state: state.db
calendars:
  cal: {{kind: ics_dir, path: cal}}
vendors:
  v: {{{vendor.account}, base_url: "{base_url}", rate_limit: off, timeout: 5s}}
routes:
  r:
    calendar: cal
    vendor: v
    direction: {direction}
    rep: {{email: {REP}}}
    options: {vendor.options}
{route_extra}"""


@asynccontextmanager
async def two_way(
    tmp_path: Path, kind: type[Vendor[Any]], route_extra: str = "", direction: str = "both"
) -> AsyncIterator[TwoWay]:
    """The single event and the series in a vdir folder, synced once to the vendor (and a
    second time with nothing to do); the route's `direction` is `both` unless given."""
    folder = tmp_path / "cal"
    folder.mkdir()
    write(folder, "visit.ics", calendar(SINGLE))
    write(folder, "weekly.ics", calendar(SERIES))
    async with simulated(kind.module, **kind.switches) as (sim, base_url):
        vendor = kind(sim)
        text = config_text(vendor, base_url, route_extra, direction)
        env = TwoWay(vendor, folder, write(tmp_path, "config.yaml", text))
        report = await env.sync()
        assert report.counts["created"] == 1 + WEEKS
        await env.assert_quiet()
        yield env


# --- reading the written files ---------------------------------------------------------


def parsed(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def assert_round_trips(data: bytes) -> None:
    """A file syncd wrote serialises back to the very same bytes once parsed."""
    assert parsed(data).to_ical() == data


def vevents(data: bytes) -> list[icalendar.cal.Component]:
    return list(parsed(data).walk("VEVENT"))


def master(data: bytes) -> icalendar.cal.Component:
    [found] = [v for v in vevents(data) if "RECURRENCE-ID" not in v]
    return found


def overrides(data: bytes) -> list[icalendar.cal.Component]:
    return [v for v in vevents(data) if "RECURRENCE-ID" in v]


def kept_lines(component: icalendar.cal.Component, *skip: str) -> list[str]:
    """The component's content lines (alarms included) but those a write may refresh and
    `skip`, in a stable order: what must survive an edit untouched."""
    left = (*VOLATILE, *skip)
    return sorted(
        line
        for line in (str(raw) for raw in component.content_lines())
        if line and line.split(":")[0].split(";")[0].upper() not in left
    )


def source_component(event: Vevent) -> icalendar.cal.Component:
    [found] = icalendar.Calendar.from_ical(calendar(event)).walk("VEVENT")
    return found


def expanded(data: bytes) -> set[tuple[datetime, datetime, str]]:
    """Every occurrence the file holds: (start, end, status), in UTC."""
    window = (SERIES_AT - timedelta(days=7), SERIES_AT + timedelta(weeks=WEEKS + 1))
    return {
        (
            v.decoded("dtstart").astimezone(UTC),
            v.decoded("dtend").astimezone(UTC),
            str(v.get("status", "CONFIRMED")).upper(),
        )
        for v in recurring_ical_events.of(parsed(data)).between(*window)
    }


def series_as_written() -> set[tuple[datetime, datetime, str]]:
    hour = timedelta(hours=1)
    return {(occurrence_start(n), occurrence_start(n) + hour, "CONFIRMED") for n in range(WEEKS)}


def same_instant(a: datetime, b: datetime) -> bool:
    """Both times are aware (a floating time would be a wrong write) and equal."""
    assert a.tzinfo is not None and b.tzinfo is not None, (a, b)
    return a.astimezone(UTC) == b.astimezone(UTC)


def the_override(data: bytes, n: int) -> icalendar.cal.Component:
    """The one override in the file, which must be the n-th occurrence's."""
    found = overrides(data)
    assert len(found) == 1, f"{len(found)} overrides in the series' file"
    [override] = found
    assert same_instant(override.decoded("recurrence-id"), occurrence_start(n))
    return override


async def sync_until_deleted(env: TwoWay, uid: str) -> None:
    """Sync after a deletion at the vendor. A vendor that confirms an absence only by a
    second listing must leave the calendar alone on the first."""
    if env.vendor.relists:
        before = env.files()
        report = await env.sync()
        assert [op.case for op in report.ops if op.writes] == []
        assert env.files() == before, f"{uid}: written on an unconfirmed absence"
    await env.sync()


# --- single events ---------------------------------------------------------------------


@each(VENDORS)
async def test_a_move_at_the_vendor_moves_the_calendar_event(tmp_path: Path, kind):
    async with two_way(tmp_path, kind) as env:
        series_file = env.data("weekly")
        start, end = (
            SINGLE_AT + timedelta(days=1, hours=4),
            SINGLE_AT + timedelta(days=1, hours=5.5),
        )
        env.vendor.move(SINGLE_KEY, start, end)

        report = await env.sync()

        assert [(op.case, op.side) for op in report.ops if op.writes] == [
            ("vendor_changed", "calendar")
        ]
        [vevent] = vevents(env.data("visit"))
        assert str(vevent["uid"]) == "visit"
        assert same_instant(vevent.decoded("dtstart"), start)
        assert same_instant(vevent.decoded("dtend"), end)
        assert vevent.decoded("sequence") == 3
        assert kept_lines(vevent, "DTSTART", "DTEND") == kept_lines(
            source_component(SINGLE), "DTSTART", "DTEND"
        )
        assert [a.decoded("trigger") for a in vevent.walk("VALARM")] == [timedelta(minutes=-15)]
        assert str(vevent["x-crm-note"]) == "bring samples"
        assert env.data("weekly") == series_file
        vendor_start, vendor_end = env.vendor.times(SINGLE_KEY)  # not moved back
        assert same_instant(vendor_start, start) and same_instant(vendor_end, end)
        assert_round_trips(env.data("visit"))
        await env.assert_quiet()


@each(CANCELLING)
async def test_a_cancel_at_the_vendor_cancels_the_calendar_event(tmp_path: Path, kind):
    async with two_way(tmp_path, kind) as env:
        env.vendor.cancel(SINGLE_KEY)

        report = await env.sync()

        assert [(op.case, op.side) for op in report.ops if op.writes] == [
            ("vendor_changed", "calendar")
        ]
        [vevent] = vevents(env.data("visit"))
        assert str(vevent["status"]) == "CANCELLED"
        assert same_instant(vevent.decoded("dtstart"), SINGLE_AT)
        assert vevent.decoded("sequence") == 3
        assert kept_lines(vevent, "STATUS") == kept_lines(source_component(SINGLE), "STATUS")
        assert_round_trips(env.data("visit"))
        await env.assert_quiet()


@each(VENDORS)
async def test_a_deletion_at_the_vendor_removes_the_event_file(tmp_path: Path, kind):
    async with two_way(tmp_path, kind) as env:
        series_file = env.data("weekly")
        env.vendor.delete(SINGLE_KEY)

        await sync_until_deleted(env, "visit")

        assert sorted(p.name for p in env.folder.iterdir()) == ["weekly.ics"]
        assert env.data("weekly") == series_file
        await env.assert_quiet()


# --- one occurrence of a series --------------------------------------------------------


@each(VENDORS)
async def test_a_move_of_one_occurrence_at_the_vendor_writes_an_override(tmp_path: Path, kind):
    async with two_way(tmp_path, kind) as env:
        single_file = env.data("visit")
        original = occurrence_start(NTH)
        start, end = original + timedelta(days=1, hours=2), original + timedelta(days=1, hours=2.5)
        env.vendor.move(occurrence_key(NTH), start, end)

        await env.sync()

        data = env.data("weekly")
        override = the_override(data, NTH)
        assert same_instant(override.decoded("dtstart"), start)
        assert same_instant(override.decoded("dtend"), end)
        assert "RRULE" not in override and "EXDATE" not in override
        assert str(override["uid"]) == "weekly"
        assert str(override["x-crm-note"]) == "weekly"  # the series' other properties
        assert len(override.walk("VALARM")) == 1  # and its alarm come along
        assert kept_lines(master(data)) == kept_lines(source_component(SERIES))
        moved = (original, original + timedelta(hours=1), "CONFIRMED")
        assert expanded(data) == series_as_written() - {moved} | {
            (start.astimezone(UTC), end.astimezone(UTC), "CONFIRMED")
        }
        assert env.data("visit") == single_file
        assert_round_trips(data)
        await env.assert_quiet()


@each(VENDORS)
async def test_a_deleted_occurrence_at_the_vendor_becomes_an_exdate(tmp_path: Path, kind):
    async with two_way(tmp_path, kind) as env:
        env.vendor.delete(occurrence_key(NTH))

        await sync_until_deleted(env, "weekly")

        data = env.data("weekly")
        series = master(data)
        exdates = [d.dt for prop in _listed(series.get("exdate")) for d in prop.dts]
        assert len(exdates) == 1 and same_instant(exdates[0], occurrence_start(NTH))
        assert overrides(data) == []
        assert series["rrule"].to_ical() == f"FREQ=WEEKLY;COUNT={WEEKS}".encode()
        assert kept_lines(series, "EXDATE") == kept_lines(source_component(SERIES))
        gone = (occurrence_start(NTH), occurrence_start(NTH) + timedelta(hours=1), "CONFIRMED")
        assert expanded(data) == series_as_written() - {gone}
        assert_round_trips(data)
        await env.assert_quiet()


@each(VENDORS)
async def test_with_occurrence_delete_cancel_a_deleted_occurrence_is_cancelled(
    tmp_path: Path, kind
):
    async with two_way(tmp_path, kind, "    occurrence_delete: cancel\n") as env:
        env.vendor.delete(occurrence_key(NTH))

        await sync_until_deleted(env, "weekly")

        assert_cancelled_override(env.data("weekly"), NTH)
        await env.assert_quiet()


@each(CANCELLING)
async def test_a_cancelled_occurrence_at_the_vendor_becomes_a_cancelled_override(
    tmp_path: Path, kind
):
    async with two_way(tmp_path, kind) as env:
        env.vendor.cancel(occurrence_key(NTH))

        await env.sync()

        assert_cancelled_override(env.data("weekly"), NTH)
        await env.assert_quiet()


def assert_cancelled_override(data: bytes, n: int) -> None:
    """The n-th occurrence is an override with STATUS:CANCELLED at its own time; the
    series itself (its rule, no EXDATE) and every other occurrence are as written."""
    override = the_override(data, n)
    assert str(override["status"]) == "CANCELLED"
    assert same_instant(override.decoded("dtstart"), occurrence_start(n))
    assert kept_lines(master(data)) == kept_lines(source_component(SERIES))
    cancelled = (occurrence_start(n), occurrence_start(n) + timedelta(hours=1))
    assert expanded(data) == series_as_written() - {(*cancelled, "CONFIRMED")} | {
        (*cancelled, "CANCELLED")
    }
    assert_round_trips(data)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
