"""A vendor's listing kept packed page by page, its records decoded only where a plan
reads them.

A vendor is re-listed every poll, and a run plans only the calendar UIDs that changed
(`partition`): what it needs of every other vendor record is its key, the syncd key it
may carry (its marker), whether its content changed, and where its starts fall against
the window. So a listing is packed while it is read: every `PAGE` records become one
compressed page of `codec` lines, and each record leaves behind only its key, its
marker, a hash of its line and the instants of its start and original start. For
10,000 Sales Ask tasks that is about a quarter of the memory of the record objects,
and a poll never holds more than a page of them at once.

`PagedRecords` is a `Sequence[Record]`: whatever iterates it gets every record, decoded
and in listing order. `entries` gives an eager listing (a tuple) the same face, so what
reads a vendor listing by entry has one path for both.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Hashable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from syncd import codec
from syncd.model import Record, Window
from syncd.packed import DecodedOnDemand, instant, record_token

PAGE = 128  # records a page: a vendor's own pages are 100 or so
_LEVEL = 1  # zlib: the fastest level (as `packed`)
_NO_ANCHOR = -(2**63)  # the instant array's mark for a record without an original start


class PagedRecords(DecodedOnDemand):
    """A vendor listing's records as compressed pages (see the module docstring)."""

    def __init__(self) -> None:
        self.pages: list[bytes] = []
        self.keys: list[str] = []
        self.markers: dict[int, str] = {}  # entry -> marker, for the records that carry one
        self._lines = array("q")  # entry -> page * PAGE + line
        self._hashes = array("q")
        self._starts = array("q")
        self._anchors = array("q")

    def add_page(self, records: Sequence[Record]) -> None:
        """Pack up to `PAGE` records as one more page."""
        assert len(records) <= PAGE
        lines = [codec.record_text(record) for record in records]
        self._add_entries(records, lines, len(self.pages))
        self.pages.append(zlib.compress("\n".join(lines).encode(), _LEVEL))

    def _add_entries(self, records: Sequence[Record], lines: list[str], page: int) -> None:
        for line, (record, text) in enumerate(zip(records, lines, strict=True)):
            self._add_entry(record.key, record.marker, hash(text), page * PAGE + line)
            self._starts.append(instant(record.event.start))
            anchor = record.anchor
            self._anchors.append(_NO_ANCHOR if anchor is None else instant(anchor))

    def _add_entry(self, key: str, marker: str, digest: int, where: int) -> None:
        if marker:
            self.markers[len(self.keys)] = marker
        self.keys.append(key)
        self._hashes.append(digest)
        self._lines.append(where)

    def entries(self) -> Iterator[tuple[int, str, str]]:
        """(entry, key, marker) of every record, in listing order."""
        markers = self.markers
        return ((entry, key, markers.get(entry, "")) for entry, key in enumerate(self.keys))

    def key(self, entry: int) -> str:
        """The key of one entry's record."""
        return self.keys[entry]

    def token(self, entry: int, window: Window) -> tuple[int, bool, bool]:
        """Equal for two runs exactly when the record is equal and has the same window
        flags: its line's hash, inside by either start, actual start inside."""
        low, high = instant(window.start), instant(window.end)
        start, anchor = self._starts[entry], self._anchors[entry]
        starts_inside = low <= start < high
        inside = starts_inside or (anchor != _NO_ANCHOR and low <= anchor < high)
        return self._hashes[entry], inside, starts_inside

    def records(self, entries: Iterable[int]) -> tuple[Record, ...]:
        """The records of `entries`, decoded in entry order; each page read once, and one
        page's lines held at a time (a chunk of a long run reads a few from every page)."""
        where = self._lines
        found: dict[int, Record] = {}
        page, lines = -1, [""]
        for entry in sorted(set(entries), key=where.__getitem__):
            wanted, line = divmod(where[entry], PAGE)
            if wanted != page:
                lines = []  # the page before is let go before the next is read
                page, lines = wanted, zlib.decompress(self.pages[wanted]).decode().split("\n")
            found[entry] = codec.read_record_text(lines[line])
        return tuple(found[entry] for entry in sorted(found))

    def folded(self, gone: AbstractSet[str], written: Sequence[Record]) -> PagedRecords:
        """This listing without the records of `gone` keys, then `written` packed after
        them. The pages are shared, not copied, and a page no record is left on is
        dropped: a daemon whose vendor keeps listing what it wrote keeps this listing
        for months, one fold per write."""
        folded = self._copy() if gone.isdisjoint(self.keys) else self._without(gone)
        for first in range(0, len(written), PAGE):
            folded.add_page(written[first : first + PAGE])
        return folded

    def _copy(self) -> PagedRecords:
        """Every entry kept (writes that only added records, a first sync's): the columns
        copied whole, without a step per entry."""
        copy = PagedRecords()
        copy.pages, copy.keys, copy.markers = self.pages[:], self.keys[:], self.markers.copy()
        copy._lines, copy._hashes = self._lines[:], self._hashes[:]
        copy._starts, copy._anchors = self._starts[:], self._anchors[:]
        return copy

    def _without(self, gone: AbstractSet[str]) -> PagedRecords:
        kept = [entry for entry, key in enumerate(self.keys) if key not in gone]
        live = sorted({self._lines[entry] // PAGE for entry in kept})
        moved = {page: index for index, page in enumerate(live)}
        folded = PagedRecords()
        folded.pages = [self.pages[page] for page in live]
        for entry in kept:
            page, line = divmod(self._lines[entry], PAGE)
            marker = self.markers.get(entry, "")
            folded._add_entry(
                self.keys[entry], marker, self._hashes[entry], moved[page] * PAGE + line
            )
            folded._starts.append(self._starts[entry])
            folded._anchors.append(self._anchors[entry])
        return folded

    def same_content(self, other: PagedRecords) -> bool:
        """Whether both hold the same records under the same keys, in any order. A vendor
        lists in the same order poll after poll: that is compared in place, without the
        two sorted lists of pairs (1.9 MiB for 10,000 records, every poll)."""
        if len(self.keys) != len(other.keys):
            return False
        if self.keys == other.keys:
            return self._hashes == other._hashes
        return sorted(self._digests()) == sorted(other._digests())

    def _digests(self) -> Iterator[tuple[str, int]]:
        return zip(self.keys, self._hashes, strict=True)

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records(range(len(self.keys))))

    def __repr__(self) -> str:
        return f"PagedRecords({len(self.pages)} pages, {len(self.keys)} records)"


class Packer:
    """Packs a listing's records as they are read: a page at a time."""

    def __init__(self) -> None:
        self._packed = PagedRecords()
        self._pending: list[Record] = []

    def add(self, record: Record) -> None:
        """One more record; a full page is packed at once."""
        self._pending.append(record)
        if len(self._pending) == PAGE:
            self._packed.add_page(self._pending)
            self._pending = []

    def done(self) -> PagedRecords:
        """Every record added, packed."""
        if self._pending:
            self._packed.add_page(self._pending)
            self._pending = []
        return self._packed


def packed(records: Iterable[Record]) -> PagedRecords:
    """Records packed into pages."""
    packer = Packer()
    for record in records:
        packer.add(record)
    return packer.done()


class VendorEntries(Protocol):
    """A vendor listing's records by entry: paged (`PagedRecords`) or not."""

    def entries(self) -> Iterable[tuple[int, str, str]]: ...

    def key(self, entry: int) -> str: ...

    def token(self, entry: int, window: Window) -> Hashable: ...

    def records(self, entries: Iterable[int]) -> tuple[Record, ...]: ...


class _Eager:
    """An eager vendor listing by entry, answering as pages do; an entry's token is the
    record's content and window flags."""

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = records

    def entries(self) -> Iterator[tuple[int, str, str]]:
        return ((entry, r.key, r.marker) for entry, r in enumerate(self._records))

    def key(self, entry: int) -> str:
        return self._records[entry].key

    def token(self, entry: int, window: Window) -> Hashable:
        return record_token(self._records[entry], window)

    def records(self, entries: Iterable[int]) -> tuple[Record, ...]:
        return tuple(self._records[entry] for entry in sorted(set(entries)))


def entries(records: Sequence[Record]) -> VendorEntries:
    """A vendor listing's records by entry, pages as they are."""
    return records if isinstance(records, PagedRecords) else _Eager(records)


def folded(
    records: Sequence[Record], gone: AbstractSet[str], written: Sequence[Record]
) -> Sequence[Record]:
    """A listing's records without those of `gone` keys and with `written` after them;
    still paged when they were."""
    if isinstance(records, PagedRecords):
        return records.folded(gone, written)
    return tuple(r for r in records if r.key not in gone) + tuple(written)
