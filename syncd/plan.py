"""The three-way plan: what one route run must do, decided from both sides and the state.

`plan_route` is a pure function (no I/O, no event loop): it compares each side's
current fingerprint with the one recorded at the last successful sync (DESIGN.md
section 6) and returns a tuple of frozen `Op`s. `syncd plan` prints them; `apply`
carries them out. Every branch of `decide` is a named case: the name travels with the
op into the plan table, the logs and the tests.

Deletion safety lives here too: a record missing from a listing is deleted only when
its absence is confirmed (`Side.absent`); an unconfirmed absence is only marked; an
item that merely left the window is forgotten, never deleted.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Literal

from syncd.model import (
    SINGLE,
    Event,
    Link,
    OccurrenceKey,
    Record,
    Window,
    calendar_uid,
    changed_fields,
    rid_start,
)

Direction = Literal["both", "to_vendor", "to_calendar"]
Action = Literal["create", "update", "delete", "bind", "forget", "mark_missing"]
SideName = Literal["calendar", "vendor", ""]

KEPT_DELETED = "vendor_deleted"  # tombstone reason: the vendor deleted it and the route keeps that
DELETED_BY_SYNCD = "deleted_by_syncd"  # tombstone reason: syncd deleted it; ignore late echoes
CANNOT_DELETE = "cannot_delete"  # tombstone reason: the other side could not delete its copy


@dataclass(frozen=True, slots=True)
class Item:
    """One listed record with what the plan needs to compare it."""

    record: Record
    view: Event  # the record as the other side would hold it (the adapters' `project`)
    fp: str  # fingerprint of `view` over the route's compared fields
    in_window: bool = True
    partner: str = ""  # calendar items: the vendor key syncd would choose for it
    ours: bool = True  # vendor items: its key has the shape of a key syncd chooses

    @property
    def key(self) -> str:
        """The record's key on its own side."""
        return self.record.key


@dataclass(frozen=True)
class Side:
    """One side's listing as the plan sees it."""

    items: Mapping[str, Item]
    complete: bool = True  # the listing is whole and trusted: absences may count
    writable: bool = True
    absent: frozenset[str] = frozenset()  # keys confirmed gone this run
    quarantined: frozenset[str] = frozenset()  # calendar UIDs, vendor keys: absence unsure
    updatable: bool = True  # can change a record it holds
    deletable: bool = True  # can delete a record it holds
    found_by_listing: bool = False  # a lost link is found again only by listing (markers)


@dataclass(frozen=True)
class Policy:
    """The route's settings that steer decisions."""

    direction: Direction = "to_vendor"
    conflict: Literal["calendar", "vendor", "newest"] = "calendar"
    on_vendor_delete: Literal["recreate", "keep_deleted"] = "recreate"
    import_new: bool = False
    occurrence_delete: Literal["exdate", "cancel"] = "exdate"

    def writes(self, side: SideName) -> bool:
        """Whether the route's direction lets syncd write to `side`."""
        if side == "vendor":
            return self.direction in ("both", "to_vendor")
        return self.direction in ("both", "to_calendar")

    @property
    def authority(self) -> SideName:
        """The side a one-way route (and a repair) takes as the truth."""
        return "vendor" if self.direction == "to_calendar" else "calendar"


@dataclass(frozen=True)
class Op:
    """One thing to do: write a side, or only the state."""

    action: Action
    side: SideName  # the side written; "" for state-only ops
    case: str  # the named decision case
    cal_key: str
    vendor_key: str
    source: Item | None = None  # the content to write or to bind
    target: Item | None = None  # the record being updated or deleted, as listed
    link: Link | None = None
    changed: frozenset[str] = frozenset()
    loser: Item | None = None  # a conflict's losing version, kept in the state store
    tombstone: str = ""  # remember this deletion with this reason
    cancel: bool = False  # a delete carried out as a cancellation (STATUS:CANCELLED)

    @property
    def writes(self) -> bool:
        """True for ops that write to a side, not only to the state."""
        return self.action in ("create", "update", "delete")


@dataclass(frozen=True)
class Inputs:
    """Everything one plan is made from."""

    calendar: Side
    vendor: Side
    links: tuple[Link, ...]
    window: Window
    policy: Policy = Policy()
    calendar_id: str = ""
    tombstones: frozenset[tuple[SideName, str]] = frozenset()  # (side, key) kept deleted
    fields: frozenset[str] = field(default_factory=frozenset)  # the fields both sides hold

    def side(self, name: SideName) -> Side:
        """The calendar or the vendor side."""
        return self.calendar if name == "calendar" else self.vendor

    def may_write(self, side: SideName) -> bool:
        """The route's direction allows writing `side`, and the side can be written."""
        return self.policy.writes(side) and self.side(side).writable


def plan_route(inputs: Inputs) -> tuple[Op, ...]:
    """The ops that bring both sides and the state into agreement."""
    links, rekeyed = _rekey_series(inputs)
    ops: list[Op] = list(rekeyed)
    linked_cal = {link.cal_key for link in links} | {op.cal_key for op in rekeyed}
    linked_vendor = {link.vendor_key for link in inputs.links} | {o.vendor_key for o in rekeyed}
    for link in links:
        ops.extend(_decide_linked(inputs, link))
    imported = _imported(inputs, linked_vendor)
    for item in _sorted_items(inputs.calendar.items, linked_cal):
        ops.extend(_decide_new_on_calendar(inputs, imported.get(item.key, item), linked_vendor))
    partners = {item.partner for item in inputs.calendar.items.values()} | {
        item.partner for item in imported.values()
    }
    for item in _sorted_items(inputs.vendor.items, linked_vendor | partners):
        ops.extend(_decide_new_on_vendor(inputs, item))
    return tuple(ops)


def _imported(inputs: Inputs, linked_vendor: set[str]) -> dict[str, Item]:
    """Calendar events syncd made for vendor-born records, with the vendor record as their
    partner: a crash between writing the event and recording the link must bind them on
    the next run, not offer the event to the vendor as new."""
    found: dict[str, Item] = {}
    for key, vendor in inputs.vendor.items.items():
        cal_key = imported_key(inputs.calendar_id, key)
        if not vendor.ours and key not in linked_vendor and cal_key in inputs.calendar.items:
            found[cal_key] = replace(inputs.calendar.items[cal_key], partner=key)
    return found


def _sorted_items(items: Mapping[str, Item], skip: set[str]) -> Iterator[Item]:
    return (items[key] for key in sorted(items) if key not in skip)


# --- presence of a linked record on one side -------------------------------------------

Presence = Literal["present", "absent", "missing", "unknown", "outside"]


def _presence(side: Side, key: str, anchor_in_window: bool, group: str = "") -> Presence:
    """How a linked record stands on one side this run."""
    if key in side.items:
        return "present"
    if key in side.absent:
        return "absent"
    if not side.complete or (group and group in side.quarantined):
        return "unknown"
    return "missing" if anchor_in_window else "outside"


# --- the decision ladder ---------------------------------------------------------------


def _decide_linked(inputs: Inputs, link: Link) -> list[Op]:
    """Every case for an item syncd has synced before (vdirsyncer's table, completed)."""
    c = inputs.calendar.items.get(link.cal_key)
    v = inputs.vendor.items.get(link.vendor_key)
    op = _Builder(inputs, link)
    if c is not None and v is not None:
        ops = _decide_both_present(inputs, op, link, c, v)
        return ops or ([op.bind("missing_reappeared", c, v)] if link.missing else [])
    anchored = link.anchor is None or inputs.window.holds(link.anchor)
    cal = _presence(inputs.calendar, link.cal_key, anchored, calendar_uid(link.cal_key))
    ven = _presence(
        inputs.vendor, link.vendor_key, anchored or bool(c and c.in_window), link.vendor_key
    )
    if "unknown" in (cal, ven):
        return []  # a side we cannot trust this run: touch nothing
    if "outside" in (cal, ven):
        return [op.forget("left_window")]  # leaving the window never deletes anything
    if "missing" in (cal, ven):
        side: SideName = "calendar" if cal == "missing" else "vendor"
        return [] if link.missing == side else [op.mark_missing(side)]
    if c is None and v is None:
        return [op.forget("gone_both")]
    if c is not None:  # the vendor record is confirmed gone
        return _decide_vendor_deleted(inputs, op, c, link)
    assert v is not None  # the calendar event is confirmed gone
    return _decide_calendar_deleted(inputs, op, v, link)


def _decide_both_present(inputs: Inputs, op: _Builder, link: Link, c: Item, v: Item) -> list[Op]:
    policy = inputs.policy
    cal_changed = c.fp != link.cal_fp
    ven_changed = v.fp != link.vendor_fp
    if not cal_changed and not ven_changed:
        if c.fp == v.fp:
            return []  # unchanged on both sides
        if _outcome_behind(inputs, c, v):
            return [op.record_outcome(c, v)]  # after a conflict the calendar won
        if link.accepted:
            return []  # a difference the vendor cannot hold, already noted
        # Neither changed, yet they differ (vdirsyncer #1155): repair toward the authority.
        return op.copy(policy.authority, c, v, "repair_divergence")
    if cal_changed and ven_changed and c.fp == v.fp:
        return [op.bind("both_changed_alike", c, v)]
    if cal_changed and ven_changed and _only_outcome_differs(inputs, c, v):
        return [op.record_outcome(c, v)]  # not a conflict: outcomes flow only back
    if cal_changed and not ven_changed:
        forward = policy.writes("vendor")
        case = "calendar_changed" if forward else "calendar_edit_reverted"
        return op.copy("calendar" if forward else "vendor", c, v, case)
    if ven_changed and not cal_changed:
        back = policy.writes("calendar")
        case = "vendor_changed" if back else "vendor_edit_overwritten"
        return op.copy("vendor" if back else "calendar", c, v, case)
    winner = _conflict_winner(policy, c, v)
    loser = v if winner == "calendar" else c
    return [replace(o, loser=loser) for o in op.copy(winner, c, v, "conflict")]


def _outcome_behind(inputs: Inputs, c: Item, v: Item) -> bool:
    """The vendor recorded an outcome the calendar does not show yet (OUTCOMES in
    model.py: they flow only back, whoever wins the other fields)."""
    compared = "outcome" in inputs.fields and inputs.may_write("calendar")
    return compared and c.view.outcome != v.view.outcome


def _only_outcome_differs(inputs: Inputs, c: Item, v: Item) -> bool:
    differs = changed_fields(c.view, v.view, inputs.fields) == {"outcome"}
    return differs and _outcome_behind(inputs, c, v)


def _conflict_winner(policy: Policy, c: Item, v: Item) -> SideName:
    """Both changed: the route's conflict policy (DESIGN.md section 6)."""
    if policy.direction != "both":
        return policy.authority
    if policy.conflict == "vendor":
        return "vendor"
    cal_time, ven_time = c.record.modified, v.record.modified
    if policy.conflict == "newest" and cal_time and ven_time and ven_time > cal_time:
        return "vendor"
    return "calendar"


def _decide_vendor_deleted(inputs: Inputs, op: _Builder, c: Item, link: Link) -> list[Op]:
    """The calendar still has it; the vendor's record is confirmed gone."""
    policy = inputs.policy
    if c.record.event.status == "cancelled" and inputs.may_write("vendor"):
        # Nothing to tell a vendor about a meeting that will not happen: its record is
        # gone, and a cancelled copy would undo a person's clean-up every run.
        return [op.forget("cancelled_not_recreated")]
    if policy.direction == "to_vendor":
        if policy.on_vendor_delete == "keep_deleted":
            return [op.forget("vendor_deleted_kept", tombstone=KEPT_DELETED)]
        return [op.create("vendor_deleted_recreated", "vendor", c)]
    if policy.direction == "both" and c.fp != link.cal_fp:
        return [op.create("edit_beats_delete", "vendor", c)]
    if not inputs.may_write("calendar"):
        return [op.forget("vendor_deleted_kept", tombstone=KEPT_DELETED)]
    deleted = op.delete("vendor_deleted", "calendar", c, DELETED_BY_SYNCD)
    cancels = policy.occurrence_delete == "cancel" and _rid(c.key) != SINGLE
    if deleted.action == "delete" and cancels:
        return [replace(deleted, case="vendor_deleted_cancelled", cancel=True)]
    return [deleted]


def _decide_calendar_deleted(inputs: Inputs, op: _Builder, v: Item, link: Link) -> list[Op]:
    """The vendor still has it; the calendar's event is confirmed gone."""
    policy = inputs.policy
    if policy.direction == "to_calendar":
        return [op.create("calendar_delete_reverted", "calendar", v)]
    if policy.direction == "both" and v.fp != link.vendor_fp and inputs.may_write("calendar"):
        return [op.create("edit_beats_delete", "calendar", v)]
    return [op.delete("calendar_deleted", "vendor", v, DELETED_BY_SYNCD)]


def _decide_new_on_calendar(inputs: Inputs, c: Item, linked_vendor: set[str]) -> list[Op]:
    """A calendar item with no link: adopt the vendor record with our key, or create."""
    v = inputs.vendor.items.get(c.partner)
    if not c.in_window or c.partner in linked_vendor:
        return []
    op = _Builder(inputs, None, c.key, c.partner)
    if v is not None:
        if c.fp == v.fp:
            return [op.bind("adopted", c, v)]
        return op.copy(inputs.policy.authority, c, v, "adopted_and_repaired") or [
            op.bind("adopted", c, v)
        ]
    if not inputs.may_write("vendor") or ("calendar", c.key) in inputs.tombstones:
        return []
    if c.record.event.status == "cancelled":
        return []  # nothing to tell a vendor about an event that will not happen
    if inputs.vendor.found_by_listing and not inputs.window.holds(c.record.event.start):
        # Listed by start date: an occurrence moved outside the window (its original
        # start still inside) could not be listed again, so a lost link would duplicate it.
        return []
    return [op.create("new_on_calendar", "vendor", c)]


def _decide_new_on_vendor(inputs: Inputs, v: Item) -> list[Op]:
    """A vendor record nobody links: import it when the route asks, else leave it alone."""
    if v.ours or not inputs.policy.import_new or not inputs.may_write("calendar"):
        return []  # records of ours with no event are orphans: never touched without a link
    if ("vendor", v.key) in inputs.tombstones or not v.in_window:
        return []
    if v.record.event.status == "cancelled":
        return []  # a cancelled booking is not worth a calendar event
    cal_key = imported_key(inputs.calendar_id, v.key)
    return [_Builder(inputs, None, cal_key, v.key).create("new_on_vendor", "calendar", v)]


def imported_key(calendar_id: str, vendor_key: str) -> str:
    """The occurrence key of an event syncd makes for a vendor-born record: stable, so a
    crash between the write and the state commit cannot make a second one."""
    digest = hashlib.sha256(f"{calendar_id}\0{vendor_key}".encode()).hexdigest()[:24]
    return OccurrenceKey(calendar_id, f"{IMPORTED_UID}{digest}").text


IMPORTED_UID = "syncd-"
IMPORTED_PREFIX = OccurrenceKey("", IMPORTED_UID).text.rpartition(":")[0]
"""The start of every `imported_key` (`VEVENT:syncd-`)."""


# --- series whose occurrences were re-keyed --------------------------------------------


@dataclass(frozen=True)
class _Vanished:
    """An occurrence the calendar no longer shows whose vendor record is still there:
    linked (`link`), or a record of ours with no link (after a reset)."""

    rid: str
    vendor_key: str
    link: Link | None = None


def _rekey_series(inputs: Inputs) -> tuple[list[Link], list[Op]]:
    """Pair vanished occurrences of a series with new ones of the same UID and patch the
    vendor records instead of deleting and re-creating them (ICALENDAR.md 6c): a series
    whose DTSTART moved keeps its CRM records, notes and links."""
    if not inputs.may_write("vendor"):
        return list(inputs.links), []
    vanished = _vanished_by_uid(inputs)
    fresh = _fresh_by_uid(inputs)
    pairs = [p for uid in vanished.keys() & fresh.keys() for p in _pair(vanished[uid], fresh[uid])]
    paired = {gone.link.cal_key for gone, _ in pairs if gone.link is not None}
    ops = [_rekey_op(inputs, gone, item) for gone, item in pairs]
    return [link for link in inputs.links if link.cal_key not in paired], ops


def _vanished_by_uid(inputs: Inputs) -> dict[str, list[_Vanished]]:
    """Vanished occurrences by UID. An unconfirmed absence counts here: pairing only
    patches, so a feed that needs a second listing to confirm still re-keys at once."""
    groups: dict[str, list[_Vanished]] = defaultdict(list)
    calendar = inputs.calendar
    for link in inputs.links:
        uid = calendar_uid(link.cal_key)
        anchored = link.anchor is None or inputs.window.holds(link.anchor)
        unseen = anchored and link.cal_key not in calendar.items and uid not in calendar.quarantined
        gone = link.cal_key in calendar.absent or (unseen and calendar.complete)
        if gone and link.vendor_key in inputs.vendor.items:
            groups[uid].append(_Vanished(_rid(link.cal_key), link.vendor_key, link))
    for uid, rid, key in _orphans(inputs):
        groups[uid].append(_Vanished(rid, key))
    return groups


def _orphans(inputs: Inputs) -> Iterator[tuple[str, str, str]]:
    """(uid, rid, vendor key) of our vendor records that nothing links or partners."""
    linked = {link.vendor_key for link in inputs.links}
    partners = {item.partner for item in inputs.calendar.items.values()}
    prefix = f"{inputs.calendar_id}:"
    for key, item in inputs.vendor.items.items():
        carried = item.record.marker or key  # our key, in the record or as its id
        mine = item.ours and item.in_window and carried.startswith(prefix)
        if mine and key not in linked and key not in partners:
            uid, _, rid = carried[len(prefix) :].rpartition(":")
            if carries_occurrence(uid, rid):
                yield uid, rid, key


def _fresh_by_uid(inputs: Inputs) -> dict[str, list[Item]]:
    linked = {link.cal_key for link in inputs.links}
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in inputs.calendar.items.values():
        if item.in_window and item.key not in linked and item.partner not in inputs.vendor.items:
            groups[calendar_uid(item.key)].append(item)
    return groups


_RID = re.compile(r"\d{8}(T\d{6}[ZL])?")


def carries_occurrence(uid: str, rid: str) -> bool:
    """Whether `<uid>:<rid>`, split at its last colon, reads as an occurrence of a series
    (how a vendor key or marker of ours names one)."""
    return bool(uid) and _RID.fullmatch(rid) is not None


MAX_SHIFT = timedelta(days=7)


def _pair(gone: list[_Vanished], fresh: list[Item]) -> list[tuple[_Vanished, Item]]:
    """Pair by one uniform shift: the most common offset (under a week) between a vanished
    and a new occurrence, and only the pairs exactly that far apart. An EXDATE next to an
    occurrence entering the window is no shift, so it is not paired."""
    offsets = Counter(
        _rid_time(item.key.rsplit(":", 1)[1]) - _rid_time(old.rid) for old in gone for item in fresh
    )
    shifts = [d for d, _ in offsets.most_common() if d and abs(d) < MAX_SHIFT]
    if not shifts:
        return []
    by_start = {_rid_time(item.key.rsplit(":", 1)[1]): item for item in fresh}
    return [
        (old, by_start[_rid_time(old.rid) + shifts[0]])
        for old in gone
        if _rid_time(old.rid) + shifts[0] in by_start
    ]


def _rid_time(rid: str) -> datetime:
    """A rid as a comparable time: UTC, local wall time (floating) or a date's midnight."""
    start = rid_start(rid)
    if isinstance(start, datetime):
        return start.replace(tzinfo=None)
    return datetime.combine(start, time())


def _rid(cal_key: str) -> str:
    return cal_key.rsplit(":", 1)[1]


def _rekey_op(inputs: Inputs, gone: _Vanished, item: Item) -> Op:
    current = inputs.vendor.items[gone.vendor_key]
    builder = _Builder(inputs, gone.link, item.key, gone.vendor_key)
    op = builder.update("series_rekeyed", "vendor", item, current)
    return replace(op, cal_key=item.key)  # op.link keeps the old key: the row it replaces


# --- building ops ----------------------------------------------------------------------


class _Builder:
    """Makes ops that share a link and keys, so the ladder above stays one line a case."""

    def __init__(
        self, inputs: Inputs, link: Link | None, cal_key: str = "", vendor_key: str = ""
    ) -> None:
        self.inputs = inputs
        self.link = link
        self.cal_key = link.cal_key if link else cal_key
        self.vendor_key = link.vendor_key if link else vendor_key

    def _op(self, action: Action, side: SideName, case: str) -> Op:
        return Op(action, side, case, self.cal_key, self.vendor_key, link=self.link)

    def create(self, case: str, side: SideName, source: Item) -> Op:
        if not self.inputs.may_write(side):
            return self.forget("read_only_side_unchanged")
        return replace(self._op("create", side, case), source=source)

    def update(self, case: str, side: SideName, source: Item, target: Item) -> Op:
        if not self.inputs.side(side).updatable:
            # Recorded once as an accepted difference, shown by `status`, never retried.
            c, v = (source, target) if side == "vendor" else (target, source)
            return self.bind("cannot_update", c, v)
        changed = changed_fields(target.view, source.view, self.inputs.fields)
        op = self._op("update", side, case)
        return replace(op, source=source, target=target, changed=changed)

    def copy(self, winner: SideName, c: Item, v: Item, case: str) -> list[Op]:
        """Write the winner's content over the other side, where the route may write."""
        target: SideName = "vendor" if winner == "calendar" else "calendar"
        if not self.inputs.may_write(target):
            return []
        source, current = (c, v) if winner == "calendar" else (v, c)
        return [self.update(case, target, source, current)]

    def delete(self, case: str, side: SideName, target: Item, tombstone: str) -> Op:
        if not self.inputs.may_write(side):
            # The side cannot follow: drop the link, leave the record where it is.
            return self.forget("read_only_side_unchanged")
        if not self.inputs.side(side).deletable:
            return self.forget("cannot_delete", tombstone=CANNOT_DELETE)
        return replace(self._op("delete", side, case), target=target, tombstone=tombstone)

    def record_outcome(self, c: Item, v: Item) -> Op:
        """The vendor's outcome, and only that, written into the calendar event."""
        op = self._op("update", "calendar", "outcome_recorded")
        return replace(op, source=v, target=c, changed=frozenset({"outcome"}))

    def bind(self, case: str, c: Item, v: Item) -> Op:
        return replace(self._op("bind", "", case), source=c, target=v)

    def forget(self, case: str, tombstone: str = "") -> Op:
        return replace(self._op("forget", "", case), tombstone=tombstone)

    def mark_missing(self, side: SideName) -> Op:
        return self._op("mark_missing", side, f"{side}_missing_unconfirmed")


def count_deletes(ops: Iterable[Op]) -> int:
    """How many ops delete something on a side."""
    return sum(1 for op in ops if op.action == "delete")
