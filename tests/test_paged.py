"""A vendor's listing packed page by page (`syncd.paged`): what it decodes to, the token
that stands for a record and its window flags, and folding syncd's writes in."""

from __future__ import annotations

import tracemalloc
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from syncd import codec, paged
from syncd.links import LinkIndex
from syncd.model import Event, Listing, Person, Record, Window
from syncd.paged import PAGE, PagedRecords
from syncd.partition import Split

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
WINDOW = Window(NOW, NOW + timedelta(days=30))


def task(n: int, title: str = "Call", marker: str = "") -> Record:
    """A vendor record: an occurrence's (with an original start) every third one."""
    start = NOW + timedelta(hours=n)
    event = Event(
        start,
        start + HOUR,
        title,
        description="line one\nline two\u2028still two",  # a break `splitlines` would cut
        contact=Person("ann@client.test", "Ann"),
        modified=NOW + timedelta(milliseconds=250),
    )
    anchor = start - HOUR if n % 3 == 0 else None
    key = f"cal:u{n}:{start:%Y%m%dT%H%M%SZ}"
    return Record(key, event, f"v{n}", f"srv-{n}", anchor, NOW + MICROSECOND, marker)


def tasks(count: int) -> tuple[Record, ...]:
    return tuple(replace(task(n), marker=task(n).key) if n % 2 else task(n) for n in range(count))


def test_pages_decode_to_the_records_listed_in_listing_order():
    records = tasks(PAGE * 2 + 5)
    packed = paged.packed(records)

    assert len(packed.pages) == 3 and len(packed) == len(records)
    assert tuple(packed) == records and packed == records  # fractions of seconds kept
    assert [(key, marker) for _, key, marker in packed.entries()] == [
        (r.key, r.marker) for r in records
    ]
    assert packed.records([PAGE + 1, 0]) == (records[0], records[PAGE + 1])


def test_a_record_line_is_one_line_and_reads_back_exactly():
    record = task(3)
    text = codec.record_text(record)
    assert "\n" not in text and codec.read_record_text(text) == record
    assert codec.read_record_text(text).modified == NOW + MICROSECOND


def test_records_decodes_only_the_pages_it_needs(monkeypatch: pytest.MonkeyPatch):
    packed = paged.packed(tasks(PAGE * 3))
    pages: list[int] = []
    decompress = zlib.decompress

    def counted(data: bytes) -> bytes:
        pages.append(packed.pages.index(data))
        return decompress(data)

    monkeypatch.setattr(zlib, "decompress", counted)
    packed.records([1, 2, PAGE * 2 + 7])
    assert pages == [0, 2]


def test_an_entry_token_changes_exactly_when_its_record_or_its_window_flags_do():
    first, again = paged.packed(tasks(4)), paged.packed(tasks(4))
    retitled = paged.packed((*tasks(4)[:3], task(3, title="Moved")))

    assert [first.token(e, WINDOW) for e in range(4)] == [again.token(e, WINDOW) for e in range(4)]
    assert first.token(2, WINDOW) == retitled.token(2, WINDOW)
    assert first.token(3, WINDOW) != retitled.token(3, WINDOW)

    start = NOW + 3 * HOUR  # task 3: its original start is an hour before
    for edge, inside, starts_inside in (
        (start - HOUR, True, True),
        (start - HOUR + MICROSECOND, True, True),  # the start is still inside
        (start + MICROSECOND, False, False),  # both starts fall before the window
    ):
        token = first.token(3, Window(edge, edge + timedelta(days=1)))
        assert token[1:] == (inside, starts_inside)
    moved = Window(start - HOUR - MICROSECOND, start)  # only the original start inside
    assert first.token(3, moved)[1:] == (True, False)


def test_folding_drops_the_gone_keys_appends_the_writes_and_shares_the_pages():
    records = tasks(PAGE + 2)
    packed = paged.packed(records)
    written = (replace(task(1), version="v1-new"), task(999))

    folded = packed.folded({records[1].key, records[2].key}, written)

    assert folded.pages[: len(packed.pages)] == packed.pages
    assert all(a is b for a, b in zip(folded.pages, packed.pages, strict=False))
    assert tuple(folded) == (records[0], *records[3:], *written)
    assert folded.markers == {e: r.marker for e, r in enumerate(folded) if r.marker}
    assert folded.token(0, WINDOW) == packed.token(0, WINDOW)
    assert paged.folded(records, {records[1].key}, written) == (
        records[0],
        *records[2:],
        *written,
    )


def test_writes_that_only_add_records_fold_in_as_a_copy_of_the_listing_before():
    """A first sync's writes add keys the listing does not hold: every entry is kept
    (the columns copied whole), the pages shared, and the listing before unchanged."""
    records = tuple(task(n, marker=f"syncd-{n}" if n % 2 else "") for n in range(PAGE + 2))
    packed = paged.packed(records)
    written = (task(500, marker="syncd-500"), task(501))

    folded = packed.folded({record.key for record in written}, written)

    assert all(a is b for a, b in zip(folded.pages, packed.pages, strict=False))
    assert tuple(folded) == (*records, *written)
    assert folded.markers == {e: r.marker for e, r in enumerate(folded) if r.marker}
    assert [folded.token(e, WINDOW) for e in range(len(records))] == [
        packed.token(e, WINDOW) for e in range(len(records))
    ]
    assert tuple(packed) == records and len(packed.pages) == 2


def test_a_page_no_record_is_left_on_is_dropped_when_writes_fold_in():
    """Regression: a fold kept every page, and a daemon whose vendor keeps listing what it
    wrote folds into one listing for months: a page whose records were all written
    again is gone, the others keep their records."""
    records = tasks(PAGE * 2 + 3)
    packed = paged.packed(records)
    first_page = {record.key for record in records[:PAGE]}
    again = tuple(replace(record, version="new") for record in records[:PAGE])

    folded = packed.folded(first_page, again)

    assert len(folded.pages) == 3 and folded.pages[:2] == packed.pages[1:]
    assert tuple(folded) == (*records[PAGE:], *again)


def test_a_listing_in_the_same_order_is_compared_without_copying_its_columns():
    """Regression: every vendor poll sorted both listings' (key, hash) pairs to compare
    them, 1.9 MiB for 10,000 records (190 bytes a record), when a vendor lists in the
    same order every time."""
    records = tasks(2000)
    before, again = paged.packed(records), paged.packed(records)
    tracemalloc.start()
    try:
        assert before.same_content(again)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(records)


def test_same_content_ignores_the_order_but_not_a_repeat_or_a_change():
    records = tasks(5)
    packed = paged.packed(records)
    assert packed.same_content(paged.packed(reversed(records)))
    assert not packed.same_content(paged.packed((*records[:4], records[0])))
    assert not packed.same_content(paged.packed((*records[:4], task(4, title="X"))))


@pytest.mark.parametrize("pack", [False, True])
def test_a_split_reads_paged_and_eager_vendor_listings_alike(pack: bool):
    """Which UID each record goes to, its signature and the restricted listing: the same
    for the pages as for the records themselves."""
    records = tasks(PAGE + 3)
    eager = Split("cal", (Listing(()), Listing(records)), LinkIndex.of(()), ())
    listing = paged.packed(records) if pack else records
    split = Split("cal", (Listing(()), Listing(listing)), LinkIndex.of(()), ())

    assert split.vendor == eager.vendor and "u7" in split.vendor
    same = split.signature("u7", WINDOW) == eager.signature("u7", WINDOW)
    assert same == (not pack)  # a paged token hashes the record's line, not its object
    restricted = split.vendor_entries.records(split.vendor["u7"] + split.vendor["u130"])
    assert restricted == (records[7], records[130])


def test_packing_holds_only_a_page_of_records_at_a_time():
    packer = paged.Packer()
    for record in tasks(PAGE - 1):
        packer.add(record)
    assert packer._packed.pages == []  # a page is packed only when it is full
    packer.add(task(PAGE))
    assert len(packer._packed.pages) == 1 and packer._pending == []
    assert isinstance(packer.done(), PagedRecords)


def test_records_from_many_pages_hold_one_pages_lines_at_a_time():
    """Regression: a chunk of a long run reads a few records from every page, and the
    lines of every page it had read stayed alive until the last (a run after a first
    sync held the whole listing's lines, 3.5 MiB for 10,000 records, once a chunk)."""
    long = "x" * 2000
    records = tuple(replace(task(n), remote_id=f"{n}{long}") for n in range(PAGE * 4))
    packed = paged.packed(records)
    one_page = 3 * len(zlib.decompress(packed.pages[0]))  # its bytes, text and lines

    tracemalloc.start()
    found = packed.records([0, PAGE, 2 * PAGE, 3 * PAGE])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert found == (records[0], records[PAGE], records[2 * PAGE], records[3 * PAGE])
    assert peak < 1.5 * one_page
