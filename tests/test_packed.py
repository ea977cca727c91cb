"""A calendar's records packed by UID group (`syncd.packed`): what they decode to, and
the token that stands for them and their window flags between runs."""

from __future__ import annotations

import inspect
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from syncd.calendars.local import find
from syncd.errors import Gone
from syncd.links import LinkIndex
from syncd.model import (
    Event,
    Link,
    Listing,
    OccurrenceKey,
    Person,
    Problem,
    Record,
    Window,
    vendor_key,
)
from syncd.packed import PRIMER_BYTES, GroupedRecords, Packed, joined, primer
from syncd.partition import UNKNOWN, Split

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)


def occurrence(uid: str, start: datetime, title: str = "Weekly", moved: bool = False) -> Record:
    """An occurrence of a series; `moved`: an override an hour later than its rid."""
    rid = start.strftime("%Y%m%dT%H%M%SZ")
    actual = start + HOUR if moved else start
    people = (Person("rep@example.com", "", "ACCEPTED"), Person("ann@client.test", "Ann"))
    event = Event(actual, actual + HOUR, title, organizer="rep@example.com", attendees=people)
    return Record(f"VEVENT:{uid}:{rid}", event, anchor=start)


def series(uid: str, weeks: int = 3, title: str = "Weekly") -> tuple[Record, ...]:
    return tuple(
        occurrence(uid, NOW + timedelta(weeks=n), title, moved=n == 1) for n in range(weeks)
    )


def grouped(*groups: tuple[Record, ...]) -> GroupedRecords:
    return GroupedRecords({records[0].key.split(":")[1]: Packed.of(records) for records in groups})


def test_packed_groups_decode_to_their_records_in_the_order_an_eager_listing_holds():
    b, a = series("b"), series("a", title="Other")
    problem = Problem("VEVENT:a:-", "an unreadable override")
    packed = Packed.of(a, (problem,))
    records = GroupedRecords({"b": Packed.of(b), "a": packed})

    again, problems = Packed.from_text(packed.text())  # as the state store hands it back
    assert packed.records() == again.records() == a and problems == (problem,)
    assert (again.blob, again.instants, again.count) == (packed.blob, packed.instants, 3)
    assert tuple(records) == tuple(sorted(a + b, key=lambda record: record.key))
    assert records == tuple(sorted(a + b, key=lambda record: record.key)) and len(records) == 6
    assert records.group("a") == a and records.group("none") == ()
    assert find(Listing(records), b[2].key) == b[2]  # decoding only b's group
    with pytest.raises(Gone):
        find(Listing(records), "VEVENT:b:-")


def test_a_primed_group_decodes_alike_and_packs_smaller() -> None:
    """A calendar's groups are compressed with a preset dictionary cut from its first
    groups' text: the same records back, a token as stable, and far fewer bytes."""
    groups = [series(f"s{n}", title=f"Call {n}") for n in range(60)]
    primed = primer(Packed.of(group).text() for group in groups)
    assert 0 < len(primed) <= PRIMER_BYTES
    plain = [Packed.of(group) for group in groups]
    packed = [Packed.of(group, primer=primed) for group in groups]
    assert [each.records() for each in packed] == groups
    assert sum(len(each.blob) for each in packed) < 0.6 * sum(len(each.blob) for each in plain)
    again, _ = Packed.from_text(packed[3].text(), primed)  # as a restart reads it back
    window = Window(NOW, NOW + timedelta(weeks=1))
    assert (again.blob, again.token(window)) == (packed[3].blob, packed[3].token(window))


def test_a_token_is_the_same_while_no_window_edge_crosses_a_start_or_an_original_start():
    records = series("s")  # starts at NOW, NOW + 1 week (+ 1 hour: moved), NOW + 2 weeks
    packed = Packed.of(records)
    before = packed.token(Window(NOW - HOUR, NOW + timedelta(days=8)))

    assert packed.token(Window(NOW - 2 * HOUR, NOW + timedelta(days=9))) == before
    # the end passes the moved occurrence's original start, not yet its actual start
    assert packed.token(Window(NOW - HOUR, NOW + timedelta(weeks=1, minutes=1))) != before
    # the start passes the first start by one microsecond: it has left the window
    left = packed.token(Window(NOW + MICROSECOND, NOW + timedelta(days=8)))
    assert left != packed.token(Window(NOW, NOW + timedelta(days=8)))


def test_a_token_changes_with_any_record_of_the_group():
    window = Window(NOW - HOUR, NOW + timedelta(days=30))
    edited = series("s", title="Weekly (moved room)")
    assert Packed.of(series("s")).token(window) == Packed.of(series("s")).token(window)
    assert Packed.of(edited).token(window) != Packed.of(series("s")).token(window)


def test_sources_join_grouped_unless_a_uid_is_in_two_of_them_or_one_is_eager():
    a, b = grouped(series("a")), grouped(series("b"))
    both = joined([a, b])
    assert isinstance(both, GroupedRecords) and set(both.uids()) == {"a", "b"}

    twice = joined([a, grouped(series("a", title="Copy"))])
    assert isinstance(twice, tuple) and len(twice) == 6
    with_nothing = joined([a, (), b])  # an unreadable file, a VTODO: no records
    assert isinstance(with_nothing, GroupedRecords) and set(with_nothing.uids()) == {"a", "b"}
    eager = joined([a, series("c")])
    assert isinstance(eager, tuple) and eager == tuple(a) + series("c")


@pytest.mark.parametrize("long_uid", [False, True])
def test_placing_an_unlinked_vendor_key_decodes_only_groups_whose_keys_may_be_hashed(
    decoded: list[str], long_uid: bool
):
    """A vendor tombstone no link holds asks which event chose its key: a packed
    calendar answers from its UIDs, decoding only a group whose keys are hashed."""
    uid = "u" * 200 if long_uid else "plain"
    mine = series(uid)
    listing = Listing(grouped(mine, series("other")))
    key = vendor_key(OccurrenceKey.parse("cal", mine[2].key))  # hashed for the long UID
    split = Split(
        "cal", (listing, Listing(())), LinkIndex.of(()), [("vendor", key), ("vendor", "cal:gone")]
    )

    assert split.tombstones == {uid: {("vendor", key)}, UNKNOWN: {("vendor", "cal:gone")}}
    assert len(decoded) == (1 if long_uid else 0)


def test_a_link_without_its_packed_record_waits_and_one_with_it_does_not():
    records = series("s")
    listing = Listing(grouped(records))
    vendor = Listing((Record("cal:s:x", records[0].event),))
    listed = Link(records[0].key, "cal:s:x", "fp", "fp")
    unlisted = Link("VEVENT:s:20990101T090000Z", "cal:s:x", "fp", "fp")

    assert not Split("cal", (listing, vendor), LinkIndex.of([listed]), ()).waiting("s")
    assert Split("cal", (listing, vendor), LinkIndex.of([unlisted]), ()).waiting("s")


def test_a_packed_group_is_one_object_beside_one_bytes() -> None:
    """Regression: a group held its compressed text and its instants as two bytes
    objects, 10,000 more small objects for the bench feed's calendar (0.6 MiB, and
    arenas pinned for the daemon's life). The instants now lead the text in one."""
    groups = [series(f"u{n}") for n in range(200)]
    packed_py = inspect.getfile(Packed)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        packed = [Packed.of(records) for records in groups]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = [stat for stat in after.compare_to(before, "filename") if stat.count_diff > 0]
    mine = sum(stat.count_diff for stat in held if stat.traceback[0].filename == packed_py)
    assert mine == 2 * len(packed)  # each group's object and its bytes
    assert all(len(each.instants) == 6 * 8 for each in packed)  # starts and anchors
    assert [each.records() for each in packed] == groups
