"""Planning only the calendar UIDs that changed since their plan last came out empty.

The plan pairs keys only within one calendar UID: a link joins two keys of one
occurrence, a calendar event partners the vendor key made from its own, re-keyed
series and orphans pair by the UID a vendor key or marker carries, and an import pairs
with the key made from the vendor's. So the plan of a route is the plans of its UIDs
side by side, and since the plan is a pure function, a UID whose records on both
sides, links, tombstones and window flags are what they were when its plan last came
out empty plans nothing again. The runner builds no views for such a UID and leaves it out of
the plan: a re-sync costs the UIDs that changed, in time and in memory, not the whole
calendar.

A UID is called *settled* only when nothing about it waits on a later look: every link
has both its records listed, none is marked missing, and no problem names it. A
record no UID can be found for (a hashed vendor key with no link) is planned every
run. Signatures are Python hashes of the records, which live only as long as the
process: a restart or a reload (new runners) plans every UID once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from syncd.links import LinkIndex
from syncd.model import (
    Link,
    Listing,
    OccurrenceKey,
    Problem,
    Record,
    Window,
    calendar_uid,
    vendor_key,
)
from syncd.packed import CalendarGroups, by_uid
from syncd.paged import VendorEntries, entries
from syncd.plan import Op, carries_occurrence, imported_key

UNKNOWN = ""
"""The partition of records no UID can be found for: planned every run."""


@dataclass
class Partitioner:
    """Which UID each record of one run belongs to, on either side."""

    calendar_id: str
    links: LinkIndex
    calendar: CalendarGroups

    @cached_property
    def _linked(self) -> dict[str, str]:
        """vendor key -> UID of its link's calendar key."""
        return dict(zip(self.links.vendor_keys, self.links.uids, strict=True))

    @cached_property
    def _chosen(self) -> dict[str, str]:
        """The vendor key syncd chooses for each listed or linked calendar key -> its UID
        (made only when a vendor record has no link: after a first sync, none)."""
        keys = [*self._calendar_keys(), *self.links.cal_keys]
        chosen = (vendor_key(OccurrenceKey.parse(self.calendar_id, key)) for key in keys)
        return {vendor: calendar_uid(key) for vendor, key in zip(chosen, keys, strict=True)}

    def _calendar_keys(self) -> Iterator[str]:
        """Without decoding packed groups: each UID's single-event key, and the keys of
        the few groups whose occurrence keys may be hashed (an unhashed one reads back
        as its UID and rid: `_carried_uid`)."""
        for uid in self.calendar.uids():
            yield OccurrenceKey(self.calendar_id, uid).text
            if _may_hash(self.calendar_id, uid):
                yield from (record.key for record in self.calendar.group(uid))

    def linked_uid(self, vendor_key: str) -> str | None:
        """The UID of the link that holds a vendor key, if one does."""
        return self._linked.get(vendor_key)

    def vendor_uid(self, key: str, marker: str = "") -> str:
        """The UID whose plan a vendor record (its key, the marker it carries) takes
        part in."""
        found = self.linked_uid(key)
        if found is not None:
            return found
        carried = marker or key
        prefix = f"{self.calendar_id}:"
        if not carried.startswith(prefix):  # a record born at the vendor: its import's UID
            return calendar_uid(imported_key(self.calendar_id, key))
        found = self._chosen.get(key) or self._chosen.get(carried)
        return found if found is not None else _carried_uid(carried[len(prefix) :])


_LONGEST_RID = "20270301T090000Z"  # rids are dates or times in this form (`model.Rid`)


def _may_hash(calendar_id: str, uid: str) -> bool:
    """Whether an occurrence key of the UID may become a hashed vendor key."""
    probe = vendor_key(OccurrenceKey(calendar_id, uid, _LONGEST_RID))
    return probe.startswith(f"{calendar_id}:h:")


def _carried_uid(rest: str) -> str:
    """The UID a key of ours names when no listed event or link chose it: read the way
    the plan reads an orphan's (`<uid>:<rid>`), else unknown."""
    uid, _, rid = rest.rpartition(":")
    return uid if carries_occurrence(uid, rid) else UNKNOWN


class Split:
    """One run's records, links and tombstones by UID, and what each UID's plan reads."""

    def __init__(
        self,
        calendar_id: str,
        listings: tuple[Listing, Listing],
        links: LinkIndex,
        tombstones: Iterable[tuple[str, str]],
    ) -> None:
        cal, ven = listings
        self.listings = listings
        self.index = links
        self.groups = by_uid(cal.records)
        self.partitioner = Partitioner(calendar_id, self.index, self.groups)
        self._decoded: dict[str, Sequence[Record]] = {}  # a packed group once a run
        self.vendor_entries: VendorEntries = entries(ven.records)
        self.vendor: dict[str, list[int]] = defaultdict(list)  # UID -> its entries
        self.links: dict[str, list[int]] = defaultdict(list)  # UID -> its rows in `index`
        self.tombstones: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for entry, key, marker in self.vendor_entries.entries():
            self.vendor[self.partitioner.vendor_uid(key, marker)].append(entry)
        for row, uid in enumerate(self.index.uids):  # one string a UID for both maps
            self.links[uid].append(row)
        for side, key in tombstones:
            uid = calendar_uid(key) if side == "calendar" else self.partitioner.vendor_uid(key)
            self.tombstones[uid].add((side, key))

    def after_writes(
        self,
        listings: tuple[Listing, Listing],
        links: LinkIndex,
        tombstones: Iterable[tuple[str, str]],
    ) -> Split:
        """The split of the listings that hold this run's writes. When the calendar's
        records are the ones this split read (a route that wrote only the vendor), the
        groups it decoded are shared, not decoded again: on a first sync that is every
        group, and a second decoding of all of them set the first sync's peak."""
        fresh = Split(self.partitioner.calendar_id, listings, links, tombstones)
        if listings[0].records is self.listings[0].records:
            fresh._decoded = self._decoded
        return fresh

    def uids(self) -> set[str]:
        """Every UID with a record, a calendar group or a link."""
        return set(self.groups.uids()) | self.vendor.keys() | self.links.keys()

    def calendar_records(self, uid: str, keep: bool = True) -> Sequence[Record]:
        """One UID's calendar records: a packed group is decoded once a run, or, without
        `keep`, read without being kept when it was not decoded already."""
        decoded = self._decoded.get(uid)
        if decoded is None:
            decoded = self.groups.group(uid)
            if keep:
                self._decoded[uid] = decoded
        return decoded

    def weight(self, uid: str) -> int:
        """One UID's share of a plan's work and memory: its records on both sides (a
        series holds dozens, a single event one or two), and one for the UID itself."""
        return 1 + self.groups.size(uid) + len(self.vendor.get(uid, ()))

    def release(self, uids: Iterable[str]) -> None:
        """Forget the decoded groups of `uids` (a chunk of a long run is done with them)."""
        for uid in uids:
            self._decoded.pop(uid, None)

    def waiting(self, uid: str) -> bool:
        """Whether the UID's plan waits on a later look: a link without both records
        listed (its absence unconfirmed, or a get that failed), or marked missing."""
        rows = self.links.get(uid, ())
        if not rows:
            return False
        calendar = {record.key for record in self.calendar_records(uid, keep=False)}
        vendor = {self.vendor_entries.key(entry) for entry in self.vendor.get(uid, ())}
        index = self.index
        return any(
            index.missing(row)
            or index.cal_keys[row] not in calendar
            or index.vendor_keys[row] not in vendor
            for row in rows
        )

    def signature(self, uid: str, window: Window) -> int:
        """A hash of everything the UID's plan reads that can change between runs."""
        return hash(
            (
                self.groups.token(uid, window),
                frozenset(self.vendor_entries.token(e, window) for e in self.vendor.get(uid, ())),
                frozenset(self.index.token(row, window) for row in self.links.get(uid, ())),
                frozenset(self.tombstones.get(uid, ())),
            )
        )

    def problem_uids(self, calendar: Iterable[Problem], vendor: Iterable[Problem]) -> set[str]:
        """The UIDs problems are about: a calendar's names a UID or an occurrence key, a
        vendor's a record key (one that no link holds has no plan to wait on)."""
        found = {problem_uid(problem.key) for problem in calendar}
        for problem in vendor:
            found.add(self.partitioner.linked_uid(problem.key) or UNKNOWN)
        return found


def problem_uid(key: str) -> str:
    """The UID a calendar problem is about (its key is an occurrence key or a bare UID)."""
    return calendar_uid(key) if key.count(":") >= 2 else key


@dataclass(frozen=True)
class Scope:
    """What one run plans: the UIDs not settled with the signature each has this run,
    and (made when asked) their records and links."""

    signatures: Mapping[str, int]
    split: Split
    problems: frozenset[str]  # the UIDs the listings' problems name

    @cached_property
    def calendar(self) -> Listing:
        """The calendar listing with only the records of these UIDs."""
        return _restricted_calendar(self.split, self.signatures.keys())

    @cached_property
    def vendor(self) -> Listing:
        """The vendor listing with only the records of these UIDs."""
        return _restricted_vendor(self.split, self.signatures.keys())

    @cached_property
    def links(self) -> tuple[Link, ...]:
        """The links of these UIDs (each UID's in the state's order), loaded now."""
        by_uid = self.split.links
        rows = [row for uid in sorted(self.signatures) for row in by_uid.get(uid, ())]
        return self.split.index.load(rows)

    def weight(self) -> int:
        """What planning these UIDs costs, in `Split.weight`s."""
        return sum(self.split.weight(uid) for uid in self.signatures)

    def chunks(self, weight: int) -> Iterator[Scope]:
        """This scope as scopes of about `weight` each (at least one UID), their UIDs in
        the order of their first vendor record (so a chunk reads few of a paged
        listing's pages), then by UID."""
        vendor, last = self.split.vendor, len(self.split.listings[1].records)
        uids = sorted(self.signatures, key=lambda uid: (min(vendor.get(uid) or [last]), uid))
        part: dict[str, int] = {}
        held = 0
        for uid in uids:
            part[uid], held = self.signatures[uid], held + self.split.weight(uid)
            if held >= weight:
                yield Scope(part, self.split, self.problems)
                part, held = {}, 0
        if part:
            yield Scope(part, self.split, self.problems)


@dataclass
class Settled:
    """A route's UIDs whose plan came out empty, each with the signature it had then."""

    signatures: dict[str, int] = field(default_factory=dict)

    def scope(self, split: Split, window: Window, context: Hashable, problems: set[str]) -> Scope:
        """The UIDs to plan this run: every one whose signature differs from its settled
        one, and every one a listing problem names. `context` is what every UID's plan
        reads besides its own records, links and tombstones (the sides' completeness).
        A settled UID with nothing left on either side is forgotten."""
        present = split.uids()
        for uid in self.signatures.keys() - present:
            del self.signatures[uid]
        planned = {}
        for uid in present | problems:
            signature = hash((split.signature(uid, window), context))
            if uid == UNKNOWN or uid in problems or self.signatures.get(uid) != signature:
                planned[uid] = signature
        return Scope(planned, split, frozenset(problems))

    def settle(self, scope: Scope, ops: Iterable[Op], problems: Iterable[str]) -> None:
        """After a plan: the planned UIDs that planned nothing and wait on nothing are
        settled; the others (with ops, or named by `problems`) are not."""
        busy = {calendar_uid(op.cal_key) for op in ops} | set(problems)
        split = scope.split
        for uid, signature in scope.signatures.items():
            if uid in busy or uid == UNKNOWN or split.waiting(uid):
                self.signatures.pop(uid, None)
            else:
                self.signatures[uid] = signature

    def settle_written(
        self, split: Split, window: Window, context: Hashable, uids: Iterable[str]
    ) -> None:
        """Settle UIDs whose every op went through on the listings that hold those writes
        and the links recorded for them (`split`): planning them again finds nothing to
        do, as for a whole route in `settle.Settling.settle`."""
        for uid in uids:
            if uid != UNKNOWN and not split.waiting(uid):
                self.signatures[uid] = hash((split.signature(uid, window), context))


def _restricted_calendar(split: Split, uids: Iterable[str]) -> Listing:
    """The calendar listing with only the records of `uids`, in key order (as a packed
    listing iterates)."""
    cal = split.listings[0]
    chosen = sorted(
        (record for uid in uids for record in split.calendar_records(uid)),
        key=lambda record: record.key,
    )
    return Listing(tuple(chosen), cal.problems, cal.complete)


def _restricted_vendor(split: Split, uids: Iterable[str]) -> Listing:
    """The vendor listing with only the records of `uids`, in the listing's own order
    (paged records decoded only for them)."""
    ven = split.listings[1]
    chosen = split.vendor_entries.records(e for uid in uids for e in split.vendor.get(uid, ()))
    return Listing(chosen, ven.problems, ven.complete)
