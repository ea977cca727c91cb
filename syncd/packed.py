"""A calendar's records kept packed by UID group between runs, decoded on demand.

A big calendar's expansion is mostly records nobody looks at again: between runs the
daemon only needs to know, per UID, whether anything its plan reads has changed
(`partition`). So each UID group is kept as its compressed `codec` text, beside the
sorted instants of its records' starts and original starts. A run decodes only the
groups it plans; the others are judged by a token: the hash of the packed bytes (equal
bytes, equal records) and where the window's two edges fall among those instants (which
of them lie inside, so each record's window flags, without decoding it). For the
10,000-event bench feed this holds 17,900 records in about a third of the memory their
objects take.

`GroupedRecords` is a `Sequence[Record]`: whatever iterates it gets every record,
decoded and in key order, exactly what an eager listing would hold. `by_uid` gives an
eager listing the same face (`CalendarGroups`), so what reads a listing by UID has one
path for both.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Iterator, KeysView, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Protocol, overload

from syncd import codec
from syncd.model import Moment, Problem, Record, Window, as_utc, calendar_uid

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LEVEL = 1  # zlib: the fastest level already packs a group's repeated text four to one
PRIMER_BYTES = 2048  # a calendar's preset dictionary; 8 KiB packed no better and slower
_PRIMER_GROUPS = 40
_POINT = array("q").itemsize  # bytes of one instant


def instant(moment: Moment) -> int:
    """A moment as whole microseconds since the epoch: exact, unlike a float timestamp,
    so a window edge and a start that differ by a microsecond are never taken as equal."""
    return (as_utc(moment) - _EPOCH) // _MICROSECOND


def primer(texts: Iterable[str]) -> bytes:
    """A preset zlib dictionary for one calendar's groups: the last `PRIMER_BYTES` of its
    first groups' codec text. A group is a few hundred bytes, too short for zlib to find
    much to repeat inside it; the calendar's own text already holds the codec's field
    layout, the rep's address and the usual attendees (the bench feed's 10,000 groups:
    1.9 MiB packed alone, 0.8 MiB with a primer, as fast)."""
    sample = "\n".join(islice(texts, _PRIMER_GROUPS))
    return sample.encode()[-PRIMER_BYTES:]


@dataclass(frozen=True, slots=True, eq=False)
class Packed:
    """One UID group's records (and problems) as compressed codec text, with the sorted
    instants of their starts and original starts (int64s, native order), and the preset
    dictionary (`primer`) it was compressed with, shared by a calendar's groups."""

    data: bytes  # the instants, then the compressed text: one object, not an array and
    # a bytes (a 10,000-group calendar holds 10,000 fewer objects, 0.6 MiB)
    points: int  # how many instants lead `data`
    count: int
    primer: bytes = b""

    @property
    def blob(self) -> bytes:
        """The compressed codec text."""
        return self.data[self.points * _POINT :]

    @property
    def instants(self) -> bytes:
        """The sorted instants, int64s in native order."""
        return self.data[: self.points * _POINT]

    @classmethod
    def of(
        cls, records: Sequence[Record], problems: Iterable[Problem] = (), primer: bytes = b""
    ) -> Packed:
        """Pack a group's records and problems."""
        return cls._made(codec.dumps(records, problems), records, primer)

    @classmethod
    def from_text(cls, text: str, primer: bytes = b"") -> tuple[Packed, tuple[Problem, ...]]:
        """Pack `codec` text (as the state store keeps it), and its problems."""
        records, problems = codec.loads(text)
        return cls._made(text, records, primer), problems

    @classmethod
    def _made(cls, text: str, records: Sequence[Record], primer: bytes) -> Packed:
        return cls(*packing(text, records, primer))

    def text(self) -> str:
        """The `codec` text, as the state store keeps it."""
        blob = memoryview(self.data)[self.points * _POINT :]
        if not self.primer:
            return zlib.decompress(blob).decode()
        inflate = zlib.decompressobj(zdict=self.primer)
        return (inflate.decompress(blob) + inflate.flush()).decode()

    def records(self) -> tuple[Record, ...]:
        """The group's records, decoded."""
        return codec.loads(self.text())[0]

    def token(self, window: Window) -> tuple[int, int, int]:
        """Equal for two runs exactly when the records are equal and each has the same
        window flags: the hash of the bytes and the dictionary they decode with (the same
        bytes are other text under another), and how many instants lie before either
        edge."""
        start, end = instant(window.start), instant(window.end)
        instants = memoryview(self.data)[: self.points * _POINT].cast("q")
        content = hash((self.data, self.primer))  # bytes cache their hash: cheap each run
        return content, bisect_left(instants, start), bisect_left(instants, end)


def packing(text: str, records: Sequence[Record], primer: bytes) -> tuple[bytes, int, int, bytes]:
    """The fields of a `Packed` (`data`, `points`, `count`, `primer`) for a group's codec
    text and its records: for a subclass that adds its own."""
    data = text.encode()
    if primer:
        deflate = zlib.compressobj(_LEVEL, zdict=primer)
        blob = deflate.compress(data) + deflate.flush()
    else:
        blob = zlib.compress(data, _LEVEL)
    instants = _instants(records)
    return instants + blob, len(instants) // _POINT, len(records), primer


def _instants(records: Iterable[Record]) -> bytes:
    found = []
    for record in records:
        found.append(instant(record.event.start))
        if record.anchor is not None:
            found.append(instant(record.anchor))
    return array("q", sorted(found)).tobytes()


class DecodedOnDemand(Sequence[Record]):
    """A listing's records held packed, a `Sequence` of every record decoded for whatever
    iterates or indexes it, and equal to the tuple of those records."""

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        return tuple(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DecodedOnDemand):
            return tuple(self) == tuple(other)
        return isinstance(other, tuple) and tuple(self) == other

    __hash__ = None  # type: ignore[assignment]  # equal to a tuple, so not hashable like one


class GroupedRecords(DecodedOnDemand):
    """A listing's records as packed UID groups (see the module docstring)."""

    def __init__(self, groups: Mapping[str, Packed]) -> None:
        self.groups = groups
        self._count = sum(packed.count for packed in groups.values())

    def uids(self) -> KeysView[str]:
        """Every UID with a group (one may hold no record inside the kept window)."""
        return self.groups.keys()

    def group(self, uid: str) -> tuple[Record, ...]:
        """One UID's records, decoded; none for a UID without a group."""
        packed = self.groups.get(uid)
        return () if packed is None else packed.records()

    def size(self, uid: str) -> int:
        """How many records one UID's group holds, without decoding it."""
        packed = self.groups.get(uid)
        return 0 if packed is None else packed.count

    def token(self, uid: str, window: Window) -> tuple[int, int, int] | None:
        """`Packed.token` of one UID's group; None without one."""
        packed = self.groups.get(uid)
        return None if packed is None else packed.token(window)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Record]:
        everything = [record for packed in self.groups.values() for record in packed.records()]
        return iter(sorted(everything, key=lambda record: record.key))

    def __repr__(self) -> str:
        return f"GroupedRecords({len(self.groups)} groups, {self._count} records)"


def joined(parts: Sequence[Sequence[Record]]) -> Sequence[Record]:
    """The records of several sources (the files of a folder, a collection's objects) as
    one sequence: still grouped when every source with records is (an unreadable file
    or a VTODO lists none) and no UID is in two of them, else every record decoded,
    source after source."""
    groups: dict[str, Packed] = {}
    for records in parts:
        if not isinstance(records, GroupedRecords) and not records:
            continue
        if not isinstance(records, GroupedRecords) or groups.keys() & records.uids():
            return tuple(record for records in parts for record in records)
        groups.update(records.groups)
    return GroupedRecords(groups)


def record_token(record: Record, window: Window) -> tuple[int, bool, bool]:
    """A record as a UID's signature holds it when it is not packed: its content, and
    the two window questions the plan asks of it (inside by either start; actual start
    inside)."""
    return hash(record), record.in_window(window), window.holds(record.event.start)


class CalendarGroups(Protocol):
    """A calendar listing's records by UID: packed (`packed.GroupedRecords`) or not."""

    def uids(self) -> Collection[str]: ...

    def group(self, uid: str) -> Sequence[Record]: ...

    def size(self, uid: str) -> int: ...

    def token(self, uid: str, window: Window) -> Hashable: ...


class _Unpacked:
    """An eager calendar listing by UID, answering as packed groups do; a UID's token
    is each record's content and window flags."""

    def __init__(self, records: Iterable[Record]) -> None:
        self._by_uid: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            self._by_uid[calendar_uid(record.key)].append(record)

    def uids(self) -> Collection[str]:
        return self._by_uid.keys()

    def group(self, uid: str) -> Sequence[Record]:
        return self._by_uid.get(uid, ())

    def size(self, uid: str) -> int:
        return len(self._by_uid.get(uid, ()))

    def token(self, uid: str, window: Window) -> Hashable:
        return frozenset(record_token(record, window) for record in self._by_uid.get(uid, ()))


def by_uid(records: Sequence[Record]) -> CalendarGroups:
    """A calendar listing's records by UID, packed groups as they are."""
    return records if isinstance(records, GroupedRecords) else _Unpacked(records)
