"""The plan as a table of named cases: one row per situation, pure (no loop, no state).

Each row builds both sides' listings, the links and the route's policy by hand, calls
`plan_route` and compares the exact ops: action, side written, case, both keys, the
changed fields, the tombstone and a conflict's loser. The last test reads `plan.py`
and fails when a case name there has no row here.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

import pytest

from syncd import plan
from syncd.model import SINGLE, Event, Link, OccurrenceKey, Record, Window, fingerprint, vendor_key
from syncd.plan import (
    CANNOT_DELETE,
    DELETED_BY_SYNCD,
    KEPT_DELETED,
    Inputs,
    Item,
    Op,
    Policy,
    Side,
    SideName,
    imported_key,
    plan_route,
)

CAL = "team"
NOW = datetime(2027, 3, 1, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=1), NOW + timedelta(days=30))
FIELDS = frozenset({"start", "end", "title"})
INSIDE = datetime(2027, 3, 10, 9, tzinfo=UTC)
OUTSIDE = datetime(2027, 1, 10, 9, tzinfo=UTC)
CK = OccurrenceKey(CAL, "u1").text  # VEVENT:u1:-
VK = vendor_key(OccurrenceKey(CAL, "u1"))  # team:u1
TITLE = frozenset({"title"})
WHEN = frozenset({"start", "end"})

# --- building blocks ---------------------------------------------------------------------


def ev(title: str = "Call", start: datetime = INSIDE) -> Event:
    return Event(start, start + timedelta(hours=1), title=title)


def fp(title: str = "Call", start: datetime = INSIDE) -> str:
    return fingerprint(ev(title, start), FIELDS)


def cal(
    title: str = "Call",
    *,
    uid: str = "u1",
    rid: str = SINGLE,
    start: datetime = INSIDE,
    modified: datetime | None = None,
) -> Item:
    """A calendar item as the runner builds it (a calendar holds every field)."""
    key = OccurrenceKey(CAL, uid, rid)
    event = ev(title, start)
    record = Record(key.text, event, "c1", modified=modified)
    return Item(record, event, fp(title, start), WINDOW.holds(start), partner=vendor_key(key))


def ven(
    title: str = "Call",
    *,
    key: str = VK,
    start: datetime = INSIDE,
    modified: datetime | None = None,
    ours: bool = True,
) -> Item:
    """A vendor item; `ours` when its key has the shape syncd chooses."""
    event = ev(title, start)
    record = Record(key, event, "v1", modified=modified)
    return Item(record, event, fp(title, start), WINDOW.holds(start), ours=ours)


def link(
    cal_title: str = "Call",
    ven_title: str = "Call",
    *,
    cal_key: str = CK,
    ven_key: str = VK,
    anchor: datetime = INSIDE,
    missing: Literal["calendar", "vendor", ""] = "",
    accepted: bool = False,
) -> Link:
    """The state row written when both sides last agreed (on these titles)."""
    return Link(
        cal_key,
        ven_key,
        fp(cal_title, anchor),
        fp(ven_title, anchor),
        anchor=anchor,
        missing=missing,
        accepted=accepted,
    )


def side(
    *items: Item,
    complete: bool = True,
    writable: bool = True,
    absent: tuple[str, ...] = (),
    quarantined: tuple[str, ...] = (),
) -> Side:
    return Side(
        {item.key: item for item in items},
        complete,
        writable,
        frozenset(absent),
        frozenset(quarantined),
    )


class Want(NamedTuple):
    """One expected op, as compared."""

    action: str
    side: str
    case: str
    cal_key: str = CK
    vendor_key: str = VK
    changed: frozenset[str] = frozenset()
    tombstone: str = ""
    loser: str = ""  # the key of a conflict's losing version


def seen(op: Op) -> Want:
    loser = op.loser.key if op.loser else ""
    return Want(
        op.action, op.side, op.case, op.cal_key, op.vendor_key, op.changed, op.tombstone, loser
    )


BOTH = Policy(direction="both")
TO_VENDOR = Policy(direction="to_vendor")
TO_CAL = Policy(direction="to_calendar")


@dataclass(frozen=True)
class Row:
    """One named situation and the exact ops it must plan."""

    name: str
    calendar: Side
    vendor: Side
    links: tuple[Link, ...] = ()
    policy: Policy = TO_VENDOR
    want: tuple[Want, ...] = ()
    tombstones: frozenset[tuple[SideName, str]] = field(default_factory=frozenset)
    fields: frozenset[str] = FIELDS

    def inputs(self) -> Inputs:
        return Inputs(
            self.calendar,
            self.vendor,
            self.links,
            WINDOW,
            self.policy,
            CAL,
            self.tombstones,
            self.fields,
        )


EARLY = datetime(2027, 2, 27, 8, tzinfo=UTC)
LATE = datetime(2027, 2, 27, 9, tzinfo=UTC)
OUTCOME_FIELDS = FIELDS | {"outcome"}
OCCURRENCE = OccurrenceKey(CAL, "s1", "20270310T090000Z")


def cancelled(item: Item) -> Item:
    """The item with its event cancelled."""
    event = replace(item.record.event, status="cancelled")
    return replace(item, record=replace(item.record, event=event), view=event)


def with_outcome(item: Item, outcome: str) -> Item:
    """The item with a vendor outcome, fingerprinted over the fields holding outcomes."""
    event = replace(item.record.event, outcome=outcome)
    record = replace(item.record, event=event)
    return replace(item, record=record, view=event, fp=fingerprint(event, OUTCOME_FIELDS))


def outcome_link(c: Item, v: Item, *, accepted: bool = False) -> Link:
    return Link(CK, VK, c.fp, v.fp, anchor=INSIDE, accepted=accepted)


SERIES_OLD = OccurrenceKey(CAL, "s1", "20270310T090000Z")
SERIES_NEW = OccurrenceKey(CAL, "s1", "20270310T100000Z")
FOREIGN = "crm-123"

# --- the table ---------------------------------------------------------------------------

ROWS = [
    # Nothing changed anywhere.
    Row("unchanged", side(cal()), side(ven()), (link(),)),
    # A calendar event syncd has never seen, no record at the vendor: create it there.
    Row(
        "new_on_calendar",
        side(cal()),
        side(),
        want=(Want("create", "vendor", "new_on_calendar"),),
    ),
    Row("new_on_calendar_outside_window_is_ignored", side(cal(start=OUTSIDE)), side()),
    # An occurrence moved outside the window (its original start inside): created where
    # a key finds it again, not where only a start-date listing could (a lost link
    # would otherwise be created anew).
    Row(
        "moved_outside_is_created_where_its_key_finds_it",
        side(replace(cal(start=OUTSIDE), in_window=True)),
        side(),
        want=(Want("create", "vendor", "new_on_calendar"),),
    ),
    Row(
        "moved_outside_is_not_created_where_only_a_listing_finds_it",
        side(replace(cal(start=OUTSIDE), in_window=True)),
        Side({}, found_by_listing=True),
    ),
    # First run: the vendor already has a record under the key syncd would choose.
    Row(
        "adopted",
        side(cal()),
        side(ven()),
        want=(Want("bind", "", "adopted"),),
    ),
    Row(
        "adopted_and_repaired",
        side(cal("Call")),
        side(ven("Old title")),
        want=(Want("update", "vendor", "adopted_and_repaired", changed=TITLE),),
    ),
    Row(
        "adopted_unrepaired_when_authority_target_is_read_only",
        side(cal("Call")),
        side(ven("Old title"), writable=False),
        want=(Want("bind", "", "adopted"),),
    ),
    # One side changed since the last sync.
    Row(
        "calendar_changed",
        side(cal("New")),
        side(ven()),
        (link(),),
        TO_VENDOR,
        (Want("update", "vendor", "calendar_changed", changed=TITLE),),
    ),
    Row(
        "calendar_changed_time",
        side(cal(start=INSIDE + timedelta(hours=2))),
        side(ven()),
        (link(),),
        BOTH,
        (Want("update", "vendor", "calendar_changed", changed=WHEN),),
    ),
    Row(
        "calendar_edit_reverted",
        side(cal("New")),
        side(ven()),
        (link(),),
        TO_CAL,
        (Want("update", "calendar", "calendar_edit_reverted", changed=TITLE),),
    ),
    Row(
        "vendor_changed",
        side(cal()),
        side(ven("New")),
        (link(),),
        BOTH,
        (Want("update", "calendar", "vendor_changed", changed=TITLE),),
    ),
    Row(
        "vendor_edit_overwritten",
        side(cal()),
        side(ven("New")),
        (link(),),
        TO_VENDOR,
        (Want("update", "vendor", "vendor_edit_overwritten", changed=TITLE),),
    ),
    Row(
        "both_changed_alike",
        side(cal("New")),
        side(ven("New")),
        (link(),),
        BOTH,
        (Want("bind", "", "both_changed_alike"),),
    ),
    # Both changed, differently: the conflict policy picks, the loser is kept.
    Row(
        "conflict_calendar_wins",
        side(cal("Mine")),
        side(ven("Theirs")),
        (link(),),
        Policy("both", conflict="calendar"),
        (Want("update", "vendor", "conflict", changed=TITLE, loser=VK),),
    ),
    Row(
        "conflict_vendor_wins",
        side(cal("Mine")),
        side(ven("Theirs")),
        (link(),),
        Policy("both", conflict="vendor"),
        (Want("update", "calendar", "conflict", changed=TITLE, loser=CK),),
    ),
    Row(
        "conflict_newest_vendor_newer",
        side(cal("Mine", modified=EARLY)),
        side(ven("Theirs", modified=LATE)),
        (link(),),
        Policy("both", conflict="newest"),
        (Want("update", "calendar", "conflict", changed=TITLE, loser=CK),),
    ),
    Row(
        "conflict_newest_calendar_newer",
        side(cal("Mine", modified=LATE)),
        side(ven("Theirs", modified=EARLY)),
        (link(),),
        Policy("both", conflict="newest"),
        (Want("update", "vendor", "conflict", changed=TITLE, loser=VK),),
    ),
    Row(
        "conflict_newest_without_times_calendar_wins",
        side(cal("Mine")),
        side(ven("Theirs", modified=LATE)),
        (link(),),
        Policy("both", conflict="newest"),
        (Want("update", "vendor", "conflict", changed=TITLE, loser=VK),),
    ),
    Row(
        "conflict_one_way_route_follows_its_authority",
        side(cal("Mine")),
        side(ven("Theirs")),
        (link(),),
        Policy("to_vendor", conflict="vendor"),
        (Want("update", "vendor", "conflict", changed=TITLE, loser=VK),),
    ),
    # Neither side changed, yet they differ (vdirsyncer #1155).
    Row(
        "repair_divergence",
        side(cal("Call")),
        side(ven("Other")),
        (link("Call", "Other"),),
        TO_VENDOR,
        (Want("update", "vendor", "repair_divergence", changed=TITLE),),
    ),
    Row(
        "repair_divergence_to_calendar",
        side(cal("Call")),
        side(ven("Other")),
        (link("Call", "Other"),),
        TO_CAL,
        (Want("update", "calendar", "repair_divergence", changed=TITLE),),
    ),
    Row(
        "accepted_difference_is_left_alone",
        side(cal("Call")),
        side(ven("Other")),
        (link("Call", "Other", accepted=True),),
        BOTH,
    ),
    # The vendor's record is confirmed gone, the calendar still has the event.
    Row(
        "vendor_deleted_recreated",
        side(cal()),
        side(absent=(VK,)),
        (link(),),
        Policy("to_vendor", on_vendor_delete="recreate"),
        (Want("create", "vendor", "vendor_deleted_recreated"),),
    ),
    Row(
        "vendor_deleted_kept",
        side(cal()),
        side(absent=(VK,)),
        (link(),),
        Policy("to_vendor", on_vendor_delete="keep_deleted"),
        (Want("forget", "", "vendor_deleted_kept", tombstone=KEPT_DELETED),),
    ),
    Row(
        "vendor_deleted_kept_when_calendar_is_read_only",
        side(cal(), writable=False),
        side(absent=(VK,)),
        (link(),),
        BOTH,
        (Want("forget", "", "vendor_deleted_kept", tombstone=KEPT_DELETED),),
    ),
    Row(
        "edit_beats_delete_calendar_edit",
        side(cal("New")),
        side(absent=(VK,)),
        (link(),),
        BOTH,
        (Want("create", "vendor", "edit_beats_delete"),),
    ),
    Row(
        "vendor_deleted",
        side(cal()),
        side(absent=(VK,)),
        (link(),),
        BOTH,
        (Want("delete", "calendar", "vendor_deleted", tombstone=DELETED_BY_SYNCD),),
    ),
    # A route that keeps deleted occurrences as cancelled overrides (single events are
    # still deleted).
    Row(
        "vendor_deleted_occurrence_cancelled",
        side(cal(uid="s1", rid=OCCURRENCE.rid)),
        side(absent=(vendor_key(OCCURRENCE),)),
        (link(cal_key=OCCURRENCE.text, ven_key=vendor_key(OCCURRENCE)),),
        Policy("both", occurrence_delete="cancel"),
        (
            Want(
                "delete",
                "calendar",
                "vendor_deleted_cancelled",
                OCCURRENCE.text,
                vendor_key(OCCURRENCE),
                tombstone=DELETED_BY_SYNCD,
            ),
        ),
    ),
    # A cancelled event whose vendor record is gone: never re-created there as cancelled.
    Row(
        "cancelled_not_recreated",
        side(cancelled(cal())),
        side(absent=(VK,)),
        (link(),),
        TO_VENDOR,
        (Want("forget", "", "cancelled_not_recreated"),),
    ),
    Row(
        "cancelled_unlinked_is_not_created",
        side(cancelled(cal())),
        side(),
        policy=BOTH,
    ),
    # A vendor outcome flows back whoever won the other fields: after a conflict the
    # calendar won (the link noted the difference), and when only the outcome differs.
    Row(
        "outcome_recorded_after_a_conflict",
        side(cal("Mine")),
        side(with_outcome(ven("Theirs"), "completed")),
        (outcome_link(cal("Mine"), with_outcome(ven("Theirs"), "completed"), accepted=True),),
        BOTH,
        (Want("update", "calendar", "outcome_recorded", changed=frozenset({"outcome"})),),
        fields=OUTCOME_FIELDS,
    ),
    Row(
        "outcome_only_difference_is_no_conflict",
        side(with_outcome(cal(), "")),
        side(with_outcome(ven(), "no_show")),
        (Link(CK, VK, "old-cal", "old-vendor", anchor=INSIDE),),
        BOTH,
        (Want("update", "calendar", "outcome_recorded", changed=frozenset({"outcome"})),),
        fields=OUTCOME_FIELDS,
    ),
    # The calendar's event is confirmed gone, the vendor still has the record.
    Row(
        "calendar_deleted",
        side(absent=(CK,)),
        side(ven()),
        (link(),),
        TO_VENDOR,
        (Want("delete", "vendor", "calendar_deleted", tombstone=DELETED_BY_SYNCD),),
    ),
    Row(
        "calendar_deleted_both",
        side(absent=(CK,)),
        side(ven()),
        (link(),),
        BOTH,
        (Want("delete", "vendor", "calendar_deleted", tombstone=DELETED_BY_SYNCD),),
    ),
    Row(
        "edit_beats_delete_vendor_edit",
        side(absent=(CK,)),
        side(ven("New")),
        (link(),),
        BOTH,
        (Want("create", "calendar", "edit_beats_delete"),),
    ),
    Row(
        "calendar_delete_reverted",
        side(absent=(CK,)),
        side(ven()),
        (link(),),
        TO_CAL,
        (Want("create", "calendar", "calendar_delete_reverted"),),
    ),
    Row(
        "gone_both",
        side(absent=(CK,)),
        side(absent=(VK,)),
        (link(),),
        BOTH,
        (Want("forget", "", "gone_both"),),
    ),
    # Leaving the window forgets the link and deletes nothing.
    Row(
        "left_window",
        side(),
        side(),
        (link(anchor=OUTSIDE),),
        BOTH,
        (Want("forget", "", "left_window"),),
    ),
    Row(
        "left_window_vendor_side",
        side(cal(start=OUTSIDE)),
        side(),
        (link(anchor=OUTSIDE),),
        BOTH,
        (Want("forget", "", "left_window"),),
    ),
    # Missing from a complete listing but not confirmed gone: only marked.
    Row(
        "calendar_missing_unconfirmed",
        side(),
        side(ven()),
        (link(),),
        BOTH,
        (Want("mark_missing", "calendar", "calendar_missing_unconfirmed"),),
    ),
    Row(
        "vendor_missing_unconfirmed",
        side(cal()),
        side(),
        (link(),),
        TO_VENDOR,
        (Want("mark_missing", "vendor", "vendor_missing_unconfirmed"),),
    ),
    Row("missing_already_marked", side(cal()), side(), (link(missing="vendor"),), TO_VENDOR),
    Row(
        "missing_reappeared",
        side(cal()),
        side(ven()),
        (link(missing="vendor"),),
        TO_VENDOR,
        (Want("bind", "", "missing_reappeared"),),
    ),
    # A series whose occurrences were re-keyed (DTSTART moved by an hour): patch, not
    # delete + create.
    Row(
        "series_rekeyed",
        side(
            cal(uid="s1", rid=SERIES_NEW.rid, start=INSIDE + timedelta(hours=1)),
            absent=(SERIES_OLD.text,),
        ),
        side(ven(key=vendor_key(SERIES_OLD))),
        (link(cal_key=SERIES_OLD.text, ven_key=vendor_key(SERIES_OLD)),),
        TO_VENDOR,
        (
            Want(
                "update",
                "vendor",
                "series_rekeyed",
                SERIES_NEW.text,
                vendor_key(SERIES_OLD),
                changed=WHEN,
            ),
        ),
    ),
    # A vendor record nobody links.
    Row(
        "new_on_vendor",
        side(),
        side(ven(key=FOREIGN, ours=False)),
        policy=Policy("both", import_new=True),
        want=(Want("create", "calendar", "new_on_vendor", imported_key(CAL, FOREIGN), FOREIGN),),
    ),
    # A vendor that cannot update (YSUITE without supports_update): the difference is
    # recorded once as accepted, never retried.
    Row(
        "cannot_update",
        side(cal("New")),
        Side({VK: ven()}, updatable=False),
        (link(),),
        want=(Want("bind", "", "cannot_update"),),
    ),
    # ... nor delete: the link goes, a tombstone keeps the event from being re-created.
    Row(
        "cannot_delete",
        side(absent=(CK,)),
        Side({VK: ven()}, deletable=False),
        (link(),),
        want=(Want("forget", "", "cannot_delete", tombstone=CANNOT_DELETE),),
    ),
    # A crash came between writing the imported event and recording its link: bind them.
    Row(
        "imported_event_without_link_is_bound_not_offered_to_the_vendor",
        side(cal(uid=OccurrenceKey.parse(CAL, imported_key(CAL, FOREIGN)).uid)),
        side(ven(key=FOREIGN, ours=False)),
        policy=Policy("both", import_new=True),
        want=(Want("bind", "", "adopted", imported_key(CAL, FOREIGN), FOREIGN),),
    ),
    Row(
        "new_on_vendor_not_imported_without_import_new",
        side(),
        side(ven(key=FOREIGN, ours=False)),
        policy=BOTH,
    ),
    Row(
        "new_on_vendor_outside_window_is_ignored",
        side(),
        side(ven(key=FOREIGN, ours=False, start=OUTSIDE)),
        policy=Policy("both", import_new=True),
    ),
    Row(
        "orphan_vendor_record_of_ours_is_left_alone",
        side(),
        side(ven(key="team:gone-uid")),
        policy=Policy("both", import_new=True),
    ),
    # Sides that cannot be trusted this run: nothing is touched.
    Row(
        "incomplete_calendar_listing_touches_nothing",
        side(complete=False),
        side(ven()),
        (link(),),
        BOTH,
    ),
    Row(
        "incomplete_vendor_listing_touches_nothing",
        side(cal()),
        side(complete=False),
        (link(),),
        BOTH,
    ),
    Row(
        "quarantined_uid_touches_nothing",
        side(quarantined=("u1",)),
        side(ven()),
        (link(),),
        BOTH,
    ),
    # Remembered deletions are not undone.
    Row(
        "calendar_tombstone_is_not_recreated",
        side(cal()),
        side(),
        policy=TO_VENDOR,
        tombstones=frozenset({("calendar", CK)}),
    ),
    Row(
        "vendor_tombstone_is_not_imported",
        side(),
        side(ven(key=FOREIGN, ours=False)),
        policy=Policy("both", import_new=True),
        tombstones=frozenset({("vendor", FOREIGN)}),
    ),
    # The direction (or a read-only side) forbids the write.
    Row("to_calendar_route_creates_nothing_at_the_vendor", side(cal()), side(), policy=TO_CAL),
    Row(
        "read_only_vendor_gets_no_create",
        side(cal()),
        side(writable=False),
        policy=TO_VENDOR,
    ),
    Row(
        "read_only_calendar_gets_no_vendor_change",
        side(cal(), writable=False),
        side(ven("New")),
        (link(),),
        BOTH,
    ),
    Row(
        "read_only_calendar_gets_no_import",
        side(writable=False),
        side(ven(key=FOREIGN, ours=False)),
        policy=Policy("both", import_new=True),
    ),
    Row(
        "to_vendor_route_never_deletes_calendar_events",
        side(cal()),
        side(absent=(VK,)),
        (link(),),
        Policy("to_vendor", on_vendor_delete="keep_deleted"),
        (Want("forget", "", "vendor_deleted_kept", tombstone=KEPT_DELETED),),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_plan_case(row: Row) -> None:
    ops = plan_route(row.inputs())
    assert [seen(op) for op in ops] == list(row.want)
    for op in ops:
        assert_well_formed(op, row)


def assert_well_formed(op: Op, row: Row) -> None:
    """Writes name what they write and over what; nothing writes where it may not."""
    if op.writes:
        assert row.inputs().may_write(op.side), f"{op.case} writes {op.side}"
    own_key = op.cal_key if op.side == "calendar" else op.vendor_key
    if op.action in ("create", "update"):
        assert op.source is not None
        source_side = row.vendor if op.side == "calendar" else row.calendar
        assert op.source.key in source_side.items
    if op.action in ("update", "delete"):
        assert op.target is not None
        if op.case != "series_rekeyed":  # it patches the old record under the new key
            assert op.target.key == own_key


def test_plan_is_deterministic_over_many_items() -> None:
    """Items are planned in key order, whatever order the listings came in."""
    items = [cal(uid=f"u{n}") for n in (3, 1, 2)]
    ops = plan_route(Row("x", side(*items), side(), policy=TO_VENDOR).inputs())
    assert [op.cal_key for op in ops] == sorted(item.key for item in items)


# --- every case in plan.py has a row -------------------------------------------------------


def case_names_in_plan() -> set[str]:
    """The case strings `plan.py` hands to the op builder, read from its source."""
    tree = ast.parse(Path(inspect.getfile(plan)).read_text())
    builder = plan._Builder
    slots = {
        name: list(inspect.signature(method).parameters).index("case") - 1  # minus self
        for name, method in vars(builder).items()
        if callable(method) and "case" in inspect.signature(method).parameters
    }
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                assigned.setdefault(target.id, set()).update(_strings(node.value))
    names: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in slots:
            continue
        slot = slots[node.func.attr]
        given = [k.value for k in node.keywords if k.arg == "case"]
        given += node.args[slot : slot + 1]
        for arg in given:
            if isinstance(arg, ast.Name):
                names |= assigned.get(arg.id, set())
            else:
                names |= _strings(arg)
    return names


def _strings(node: ast.expr) -> set[str]:
    """String constants in an expression; an f-string's fields stand for each side name."""
    if isinstance(node, ast.JoinedStr):
        return {_fill(node, side_name) for side_name in ("calendar", "vendor")}
    return {
        sub.value
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
    }


def _fill(node: ast.JoinedStr, value: str) -> str:
    parts = [
        part.value if isinstance(part, ast.Constant) else value
        for part in node.values
        if isinstance(part, ast.Constant | ast.FormattedValue)
    ]
    return "".join(str(part) for part in parts)


def test_every_case_in_plan_has_a_row() -> None:
    cases = case_names_in_plan()
    assert len(cases) >= 20, f"the source parse found too few cases: {sorted(cases)}"
    covered = {want.case for row in [*ROWS, *READ_ONLY_ROWS] for want in row.want}
    assert cases - covered == set(), "cases of plan.py without a row in test_plan.py"


def test_row_names_are_unique() -> None:
    names = [row.name for row in ROWS]
    assert len(names) == len(set(names))


# --- regressions and known gaps -------------------------------------------------------------


def test_edit_beats_delete_writes_no_read_only_calendar() -> None:
    """Found by the state machine: a vendor edit of a record whose event was deleted from
    a read-only calendar re-created the event there. The route acts as to_vendor would."""
    row = Row(
        "x",
        side(writable=False, absent=(CK,)),
        side(ven("New")),
        (link(),),
        BOTH,
    )
    ops = plan_route(row.inputs())
    assert [seen(op) for op in ops] == [
        Want("delete", "vendor", "calendar_deleted", tombstone=DELETED_BY_SYNCD)
    ]


# Deletion cases whose target side cannot be written (config.py lets only a to_vendor
# route have a read-only calendar, so a valid config reaches none of them): the link is
# forgotten and the record left where it is.
KEPT = (Want("forget", "", "read_only_side_unchanged"),)
READ_ONLY_ROWS = [
    Row(
        "vendor_deleted_recreated_on_read_only_vendor",
        side(cal()),
        side(writable=False, absent=(VK,)),
        (link(),),
        TO_VENDOR,
        want=KEPT,
    ),
    Row(
        "edit_beats_delete_on_read_only_vendor",
        side(cal("New")),
        side(writable=False, absent=(VK,)),
        (link(),),
        BOTH,
        want=KEPT,
    ),
    Row(
        "calendar_deleted_on_read_only_vendor",
        side(absent=(CK,)),
        side(ven(), writable=False),
        (link(),),
        BOTH,
        want=KEPT,
    ),
    Row(
        "calendar_delete_reverted_on_read_only_calendar",
        side(writable=False, absent=(CK,)),
        side(ven()),
        (link(),),
        TO_CAL,
        want=KEPT,
    ),
]


@pytest.mark.parametrize("row", READ_ONLY_ROWS, ids=[row.name for row in READ_ONLY_ROWS])
def test_deletion_cases_write_no_read_only_side(row: Row) -> None:
    test_plan_case(row)
