"""The `ics_url` feed over loopback: conditional GET, gzip, the size cap, the timeout."""

from __future__ import annotations

import asyncio
import gzip
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from syncd.blocks import Body
from syncd.calendars.ics_url import CHUNK, SPOOL_BYTES, IcsUrl, Spooled
from syncd.errors import Malformed, Unavailable
from syncd.model import Window
from tests.builders import Vevent, calendar, day, serving

WINDOW = Window(day(-1), day(30))
BODY = calendar(Vevent("a", "Call A", day(1)), Vevent("b", "Call B", day(2))).encode()


@dataclass
class Feed:
    """A feed that honours If-None-Match and records what it was asked."""

    body: bytes = BODY
    etag: str = '"v1"'
    gzip: bool = False
    delay: float = 0.0
    asked: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(dict(request.headers))
        await asyncio.sleep(self.delay)
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        body, headers = self.body, {"ETag": self.etag, "Content-Type": "text/calendar"}
        if self.gzip:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        return web.Response(body=body, headers=headers)


@pytest.fixture
async def served(session: aiohttp.ClientSession) -> AsyncIterator[tuple[Feed, IcsUrl]]:
    feed = Feed()
    async with serving(feed.handle) as base_url:
        yield feed, IcsUrl("team", f"{base_url}/cal.ics?token=t", session, timeout=2)


def keys(listing: object) -> list[str]:
    return sorted(r.key for r in listing.records)  # type: ignore[attr-defined]


async def test_an_unchanged_feed_answers_304_and_lists_the_same(served):
    feed, adapter = served
    first = await adapter.list(WINDOW)
    second = await adapter.list(WINDOW)
    assert keys(first) == keys(second) == ["VEVENT:a:-", "VEVENT:b:-"]
    assert "If-None-Match" not in feed.asked[0]
    assert feed.asked[1]["If-None-Match"] == '"v1"'
    assert adapter.expansions.parses == 1  # a 304 costs no parse


async def test_a_changed_feed_is_read_again(served):
    feed, adapter = served
    await adapter.list(WINDOW)
    feed.body, feed.etag = calendar(Vevent("c", "Call C", day(3))).encode(), '"v2"'
    assert keys(await adapter.list(WINDOW)) == ["VEVENT:c:-"]


async def test_a_gzip_feed_is_decoded(served):
    feed, adapter = served
    feed.gzip = True
    assert keys(await adapter.list(WINDOW)) == ["VEVENT:a:-", "VEVENT:b:-"]
    assert "gzip" in feed.asked[0]["Accept-Encoding"]


async def test_a_feed_over_the_size_cap_fails_the_listing(served):
    _, adapter = served
    adapter.max_bytes = 100
    with pytest.raises(Malformed, match="larger than 100 bytes"):
        await adapter.list(WINDOW)


async def test_a_slow_feed_times_out_as_unavailable(served):
    feed, adapter = served
    feed.delay, adapter.timeout = 1.0, 0.2
    with pytest.raises(Unavailable, match="no answer within"):
        await adapter.list(WINDOW)


async def test_the_same_bytes_without_validators_reuse_the_listing_and_no_body_is_held(served):
    """A feed that sends no ETag sends its whole body every time: when the bytes hash to
    the ones the kept listing was made from, that listing is the answer (the new chunks
    are never joined); the body itself is not held between listings."""
    feed, adapter = served
    feed.etag = ""
    first = await adapter.list(WINDOW)
    again = await adapter.list(WINDOW)
    assert "If-None-Match" not in feed.asked[1]
    assert again is first and adapter.expansions.parses == 1
    assert not any(isinstance(value, bytes) for value in vars(adapter.cache).values())
    feed.body = calendar(Vevent("c", "Call C", day(3))).encode()
    assert keys(await adapter.list(WINDOW)) == ["VEVENT:c:-"]
    feed.body = b"   "
    with pytest.raises(Malformed, match="empty body"):
        await adapter.list(WINDOW)


async def test_a_304_for_a_window_past_the_kept_expansion_fetches_the_feed_whole(served):
    """No body is held, so when the window has moved past what the kept expansion covers
    a 304 cannot be expanded again: the feed is fetched once more without validators."""
    feed, adapter = served
    await adapter.list(WINDOW)
    later = Window(WINDOW.start + timedelta(days=3), WINDOW.end + timedelta(days=3))

    listing = await adapter.list(later)

    assert keys(listing) == ["VEVENT:a:-", "VEVENT:b:-"]  # single events: wherever they lie
    assert feed.asked[1]["If-None-Match"] == '"v1"' and "If-None-Match" not in feed.asked[2]
    assert len(feed.asked) == 3 and adapter.expansions.parses == 2


@pytest.mark.parametrize("gzipped", [False, True])
async def test_a_feed_is_not_held_in_memory_once_it_has_streamed_in(served, gzipped: bool):
    """Regression: a changed feed was read as chunks joined at the end and then stripped
    to see whether it was empty, so for a moment its body existed three times; then once,
    in a buffer. It now streams into a spool that moves to a temporary file past
    `SPOOL_BYTES`: what a fetched body holds in memory is its digests, not its bytes.
    (The test's own server shares the process, so its send buffer is not measured.)"""
    feed, adapter = served
    filler = "".join(f"X-FILLER-{n}:{'x' * 60}\r\n" for n in range(30_000))
    feed.body, feed.gzip = f"BEGIN:VCALENDAR\r\n{filler}END:VCALENDAR\r\n".encode(), gzipped
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        body = await adapter._fetch(conditional=False)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert body is not None
    with body:
        assert body.contents().whole() == feed.body and body.size == len(feed.body)
    assert held < len(feed.body) / 10


def test_spooling_a_body_holds_at_most_the_spool_in_memory() -> None:
    """The spool itself: a body written 64 KiB at a time never has more than about
    `SPOOL_BYTES` of it in memory (the move to the file copies that much once)."""
    data = b"X-FILLER:" + b"x" * (4 * SPOOL_BYTES)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with Spooled() as body:
            for start in range(0, len(data), CHUNK):
                body.write(data[start : start + CHUNK])
            peak = tracemalloc.get_traced_memory()[1] - before
            assert body.contents().whole() == data and not body.blank
    finally:
        tracemalloc.stop()
    assert peak < 2 * SPOOL_BYTES + 2 * CHUNK


async def test_a_restamped_feed_is_answered_without_splitting_its_body(served, monkeypatch):
    """A feed that stamps DTSTAMP on every download changes its bytes every time: its
    stable digest is taken from the spool a piece at a time and the kept listing answers;
    only a real change reads the spool through again, to split it."""
    feed, adapter = served
    feed.etag = ""
    read: list[int] = []
    cut = Body.cut

    def counted(self: Body, start: int, end: int) -> bytes:
        piece = cut(self, start, end)
        read.append(len(piece))
        return piece

    monkeypatch.setattr(Body, "cut", counted)
    first = await adapter.list(WINDOW)
    restamped = BODY.replace(b"DTSTAMP:20260101T000000Z", b"DTSTAMP:20270505T101010Z")
    feed.body, read[:] = restamped, []
    assert await adapter.list(WINDOW) is first
    assert sum(read) == len(restamped) and adapter.expansions.parses == 1  # one pass
    feed.body, read[:] = BODY.replace(b"Call A", b"Call A, moved"), []
    assert keys(await adapter.list(WINDOW)) == ["VEVENT:a:-", "VEVENT:b:-"]
    assert sum(read) > 2 * len(feed.body) and adapter.expansions.parses == 2


async def test_a_body_that_cannot_be_spooled_fails_the_listing_as_unavailable(
    served, monkeypatch, tmp_path
):
    """A feed past `SPOOL_BYTES` moves to a temporary file; when TMPDIR cannot take it
    the listing fails as a side that is unavailable for now, saying why."""
    feed, adapter = served
    feed.body = BODY.replace(b"SUMMARY:Call A", b"SUMMARY:" + b"x" * (2 * SPOOL_BYTES))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(Unavailable, match="cannot spool the body to a file"):
        await adapter.list(WINDOW)
