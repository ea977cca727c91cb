"""Splitting a body into top-level blocks on the raw text, and hashing them without the
lines a feed re-stamps on every download."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from syncd import blocks

EVENT = [
    "BEGIN:VEVENT",
    "UID:a@test",
    "DTSTAMP:20260101T000000Z",
    "DTSTART;TZID=Office Time:20260301T090000",
    "SUMMARY:Call",
    "DESCRIPTION:a long text that is fol",
    " ded over two lines",
    "BEGIN:VALARM",
    "TRIGGER:-PT15M",
    "ACTION:DISPLAY",
    "END:VALARM",
    "END:VEVENT",
]
ZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Office Time",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0300",
    "TZOFFSETTO:+0300",
    "END:STANDARD",
    "END:VTIMEZONE",
]
OTHER = ["BEGIN:VEVENT", "UID:b@test", "DTSTART:20260302T090000Z", "END:VEVENT"]


def body(*parts: list[str], end: str = "\r\n", header: tuple[str, ...] = ()) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", *header]
    lines += [line for part in parts for line in part] + ["END:VCALENDAR", ""]
    return end.join(lines).encode()


def one(data: bytes) -> blocks.VCalendar:
    found = blocks.split(data)
    assert found is not None and len(found) == 1
    return found[0]


def replaced(lines: list[str], old: str, new: str) -> list[str]:
    return [new if line == old else line for line in lines]


def test_blocks_are_cut_at_depth_one_and_a_valarm_stays_inside_its_vevent():
    calendar = one(body(ZONE, EVENT, OTHER))
    assert calendar.header == (b"VERSION:2.0",)
    assert [(b.name, b.key) for b in calendar.blocks] == [
        ("VTIMEZONE", "Office Time"),
        ("VEVENT", "a@test"),
        ("VEVENT", "b@test"),
    ]
    assert calendar.text(calendar.blocks[1]) == "\r\n".join(EVENT).encode()
    assert calendar.blocks[1].tzids == {"Office Time"}


def test_folded_lines_stay_with_their_line_and_a_folded_uid_is_read_unfolded():
    folded = [
        "BEGIN:VEVENT",
        "UID:long-",
        " uid\\,x@test",
        "DTSTART:20260302T090000Z",
        "END:VEVENT",
    ]
    calendar = one(body(folded))
    assert calendar.blocks[0].key == "long-uid,x@test"  # unescaped, as the parser reads it
    assert calendar.text(calendar.blocks[0]).split(b"\r\n")[2] == b" uid\\,x@test"


def test_crlf_and_lf_bodies_split_and_hash_alike():
    crlf, lf = one(body(ZONE, EVENT)), one(body(ZONE, EVENT, end="\n"))
    assert [b.digest for b in crlf.blocks] == [b.digest for b in lf.blocks]
    assert crlf.header_digest == lf.header_digest


def test_several_vcalendars_each_keep_their_own_header_and_blocks():
    data = body(EVENT, header=("X-WR-TIMEZONE:Europe/Berlin",)) + body(OTHER)
    found = blocks.split(data)
    assert found is not None
    assert [c.header for c in found] == [
        (b"VERSION:2.0", b"X-WR-TIMEZONE:Europe/Berlin"),
        (b"VERSION:2.0",),
    ]
    assert [[b.key for b in c.blocks] for c in found] == [["a@test"], ["b@test"]]


def test_what_is_not_plainly_a_whole_calendar_is_not_split():
    whole = body(ZONE, EVENT)
    assert blocks.split(whole.removesuffix(b"END:VCALENDAR\r\n")) is None  # truncated
    assert blocks.split(whole[: len(whole) // 2]) is None
    assert blocks.split(b"<html><body>log in</body></html>") is None
    assert blocks.split(b"") is None
    assert blocks.split(body(["BEGIN:VEVENT", "UID:x", "END:VTODO"])) is None
    assert blocks.split(b"\xef\xbb\xbf" + whole) is not None


def test_a_dtstamp_only_change_keeps_the_digest_and_a_summary_change_does_not():
    before = one(body(EVENT)).blocks[0].digest
    stamped = replaced(EVENT, "DTSTAMP:20260101T000000Z", "DTSTAMP:20260505T101010Z")
    assert one(body(stamped)).blocks[0].digest == before
    assert (
        one(body(replaced(EVENT, "SUMMARY:Call", "SUMMARY:Call, moved"))).blocks[0].digest != before
    )
    modified = [*EVENT[:-1], "LAST-MODIFIED:20260101T000000Z", "END:VEVENT"]
    assert one(body(modified)).blocks[0].digest != before  # stale-write guards read it


def test_a_series_and_its_overrides_form_one_group_whose_digest_follows_its_timezone():
    master = replaced(EVENT, "SUMMARY:Call", "RRULE:FREQ=WEEKLY")
    override = replaced(EVENT, "SUMMARY:Call", "RECURRENCE-ID;TZID=Office Time:20260308T090000")
    calendar = one(body(ZONE, master, OTHER, override))
    found = blocks.groups(calendar)
    assert found is not None
    assert {uid: g.blocks for uid, g in found.items()} == {"a@test": (1, 3), "b@test": (2,)}
    moved = one(
        body(replaced(ZONE, "TZOFFSETTO:+0300", "TZOFFSETTO:+0400"), master, OTHER, override)
    )
    again = blocks.groups(moved)
    assert again is not None
    assert again["a@test"].digest != found["a@test"].digest
    assert again["b@test"].digest == found["b@test"].digest
    headed = blocks.groups(one(body(ZONE, master, OTHER, override, header=("CALSCALE:GREGORIAN",))))
    assert headed is not None and headed["b@test"].digest != found["b@test"].digest


def test_a_vevent_without_uid_makes_no_groups():
    assert (
        blocks.groups(one(body(["BEGIN:VEVENT", "DTSTART:20260302T090000Z", "END:VEVENT"]))) is None
    )


def test_the_small_body_holds_the_header_the_used_timezones_and_the_chosen_blocks():
    calendar = one(body(ZONE, EVENT, OTHER))
    found = blocks.groups(calendar)
    assert found is not None
    small = blocks.body(calendar, [found["a@test"]]).decode()
    assert small.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE")
    assert "UID:a@test" in small and "UID:b@test" not in small
    assert small.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    assert "VTIMEZONE" not in blocks.body(calendar, [found["b@test"]]).decode()


def test_the_stable_digest_ignores_only_volatile_lines() -> None:
    """A feed stamping DTSTAMP (folded or not, any case) on every fetch keeps its stable
    digest, so the kept listing is reused without splitting the body at all."""
    base = (
        b"BEGIN:VCALENDAR\r\nPRODID:-//a//EN\r\nBEGIN:VEVENT\r\nUID:x\r\n"
        b"DTSTAMP:20270101T000000Z\r\nSUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    restamped = base.replace(
        b"DTSTAMP:20270101T000000Z", b"dtstamp;VALUE=DATE-TIME:2027\r\n 0202T000000Z"
    )
    reproduced = base.replace(b"PRODID:-//a//EN", b"PRODID:-//b//EN")
    edited = base.replace(b"SUMMARY:Call", b"SUMMARY:Call moved")
    sneaky = base.replace(b"SUMMARY:Call", b"SUMMARY:DTSTAMP:Call")  # not a volatile line
    digest = blocks.stable_digest(base)
    assert blocks.stable_digest(restamped) == digest == blocks.stable_digest(reproduced)
    assert blocks.stable_digest(edited) != digest != blocks.stable_digest(sneaky)


@given(
    piece=st.integers(min_value=1, max_value=120),
    end=st.sampled_from(["\r\n", "\n", "\r"]),
    order=st.permutations([ZONE, EVENT, OTHER]),
    trailer=st.sampled_from(["", "\r\n", "\r\n\r\n"]),
    bom=st.booleans(),
)
def test_a_body_split_a_piece_at_a_time_gives_what_one_piece_gives(
    piece: int, end: str, order: list[list[str]], trailer: str, bom: bool
) -> None:
    """Lines are cut a piece at a time (a big feed's lines never exist as one list):
    wherever a piece ends (inside a folded line, between CR and LF, inside a leading
    byte-order mark), the blocks, their bytes and digests are those of the body split
    whole."""
    data = (b"\xef\xbb\xbf" if bom else b"") + body(*order, end=end) + trailer.encode()
    whole = blocks.split(data)
    saved = blocks._PIECE
    blocks._PIECE = piece
    try:
        pieces = blocks.split(data)
    finally:
        blocks._PIECE = saved
    assert whole is not None and pieces == whole


def test_a_split_holds_no_copy_of_the_blocks_text() -> None:
    """Regression: each block kept its lines joined into new bytes, so splitting a
    changed feed held the body twice (3 MB more for the bench feed's re-sync). A block
    is now where it lies in the body; its text is cut out only for the groups parsed."""
    events = [
        ["BEGIN:VEVENT", f"UID:{n}@test", "DESCRIPTION:" + "x" * 2000, "END:VEVENT"]
        for n in range(200)
    ]
    data = body(ZONE, *events, end="\n")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        found = blocks.split(data)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert found is not None and len(found[0].blocks) == 201
    assert held < len(data) / 4  # the blocks' own fields, not their bytes
    assert found[0].text(found[0].blocks[7]).split(b"\r\n")[1] == b"UID:6@test"  # CRLF


@given(
    pieces=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
    end=st.sampled_from(["\r\n", "\n", "\r"]),
    stamp=st.sampled_from(["DTSTAMP:2027", "dtstamp;VALUE=DATE-TIME:2027", "CREATED:1"]),
    folded=st.booleans(),
)
def test_the_stable_digest_of_a_body_handed_over_in_pieces_is_that_of_the_whole(
    pieces: list[int], end: str, stamp: str, folded: bool
) -> None:
    """A spooled feed is hashed a piece at a time: wherever the pieces end (inside a
    volatile line, between a line and its folded continuation, between CR and LF), the
    digest is the one of the body whole."""
    volatile = [stamp, " 0101T000000Z"] if folded else [stamp + "0101T000000Z"]
    event = [*EVENT[:2], *volatile, *EVENT[2:]]
    data = body(ZONE, event, OTHER, end=end)
    digest, start = blocks.StableDigest(), 0
    for size in pieces:
        digest.update(data[start : start + size])
        start += size
    digest.update(data[start:])
    assert digest.hexdigest() == blocks.stable_digest(data)
    restamped = data.replace(b"0101T000000Z", b"0202T000000Z")
    assert blocks.stable_digest(restamped) == blocks.stable_digest(data) or end == "\r"


def test_the_stable_digest_of_a_body_handed_over_whole_copies_none_of_it() -> None:
    """Regression: the digest that takes pieces first copied each piece into its own
    buffer, so a body handed over whole (a changed feed, the bench's 3.7 MB) was held
    twice while it was hashed."""
    data = body(
        *(
            ["BEGIN:VEVENT", f"UID:{n}", "DESCRIPTION:" + "x" * 2000, "END:VEVENT"]
            for n in range(200)
        )
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        blocks.stable_digest(data)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < len(data) / 10


def test_a_calendars_blocks_and_groups_are_held_as_columns() -> None:
    """Regression: every block and every group was an object with its own ints, bytes
    and tuple, about 500 bytes an event (5 MiB for the bench feed's split, held beside
    its re-parse). Columns hold about half that, most of it the UIDs themselves."""
    events = [["BEGIN:VEVENT", f"UID:{n}@test", "SUMMARY:Call", "END:VEVENT"] for n in range(2000)]
    data = body(ZONE, *events)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        calendar = one(data)
        found = blocks.groups(calendar)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert found is not None and len(found) == 2000 and len(calendar.blocks) == 2001
    assert found["7@test"].blocks == (8,) and calendar.blocks[8].key == "7@test"
    assert held < 2000 * 350
