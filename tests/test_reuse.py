"""Not parsing what did not change: same bytes and a window inside the kept one reuse
the kept listing; new bytes or a window beyond it parse again."""

from __future__ import annotations

from datetime import timedelta

from syncd.calendars.ics_file import IcsFile
from syncd.calendars.reuse import SLACK, Expansions
from syncd.model import Window
from tests.builders import Vevent, calendar, day, write

WINDOW = Window(day(-1), day(30))
BODY = calendar(Vevent("a", "Call", day(1)), Vevent("b", "Visit", day(2))).encode()


async def test_the_same_bytes_in_a_window_inside_the_kept_one_are_not_parsed_again():
    expansions = Expansions("cal")
    first = await expansions.listing("feed", BODY, WINDOW)
    later = Window(WINDOW.start + timedelta(hours=6), WINDOW.end + timedelta(hours=6))
    assert await expansions.listing("feed", BODY, later) is first
    assert expansions.parses == 1


async def test_new_bytes_or_a_window_past_the_kept_one_are_parsed_again():
    expansions = Expansions("cal")
    await expansions.listing("feed", BODY, WINDOW)
    changed = calendar(Vevent("a", "Call, moved", day(3))).encode()
    assert [r.event.title for r in (await expansions.listing("feed", changed, WINDOW)).records] == [
        "Call, moved"
    ]
    beyond = Window(WINDOW.start, WINDOW.end + SLACK + timedelta(seconds=1))
    await expansions.listing("feed", changed, beyond)
    assert expansions.parses == 3
    expansions.forget()
    await expansions.listing("feed", changed, beyond)
    assert expansions.parses == 4


async def test_an_unchanged_ics_file_costs_a_read_not_a_parse(tmp_path):
    path = write(tmp_path, "cal.ics", BODY.decode())
    adapter = IcsFile("cal", path)
    await adapter.list(WINDOW)
    await adapter.list(WINDOW)
    assert adapter.expansions.parses == 1
    write(tmp_path, "cal.ics", calendar(Vevent("a", "Call", day(1))))
    assert [r.key for r in (await adapter.list(WINDOW)).records] == ["VEVENT:a:-"]
    assert adapter.expansions.parses == 2
