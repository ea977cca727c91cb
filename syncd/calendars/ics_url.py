"""`ics_url`: an iCalendar feed over HTTP(S); read-only.

Conditional GET with the last ETag / Last-Modified, gzip, a size cap and a timeout.
A body streams into a spool (memory up to `SPOOL_BYTES`, past that an unnamed temporary
file) while it is hashed: the same bytes again, or bytes that differ only in volatile
lines (a feed stamping DTSTAMP on every download), are answered with the kept
expansion; a body that really changed is split where it lies, a piece at a time, and
only its changed blocks are read again: the feed is never whole in memory.
A body that is not a calendar (an HTML login page, an empty or truncated body) or an
HTTP error fails the listing: the feed is never taken for "all events gone". The URL
is a secret (it often carries a token), so messages name the calendar id only. A
feed's absence is confirmed by a second listing (`absence="relist"`): feeds glitch.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp

from syncd.adapter import Caps
from syncd.blocks import Body, stable_digest
from syncd.calendars.base import ReadOnly
from syncd.calendars.reuse import Expansions
from syncd.errors import Malformed, Unavailable
from syncd.http import USER_AGENT, Response, env_proxy, raise_for_status
from syncd.ical import Limits
from syncd.model import Listing, Window

CHUNK = 64 * 1024
SPOOL_BYTES = 512 * 1024  # a body past this waits in a temporary file, not in memory


@dataclass
class FeedCache:
    """What the last good answer said, for the next conditional GET. Not the body: its
    expansion is kept (`Expansions`), and a 304 or the same bytes again hand that back."""

    etag: str = ""
    last_modified: str = ""
    digest: str = ""  # SHA-256 (hex) of the body


@dataclass
class IcsUrl(ReadOnly):
    """An HTTP(S) feed read through the shared session."""

    calendar_id: str
    url: str = field(repr=False)  # a secret: feed URLs carry tokens
    session: aiohttp.ClientSession
    timezone: str = "UTC"
    authorization: str = field(default="", repr=False)  # an Authorization header value
    timeout: float = 30.0
    max_bytes: int = 50 * 1024 * 1024
    limits: Limits = field(default_factory=Limits)
    caps = Caps(writable=False, deletable=False, absence="relist")
    kind = "ics_url"
    cache: FeedCache = field(default_factory=FeedCache, repr=False)
    expansions: Expansions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)

    async def list(self, window: Window) -> Listing:
        """Fetch (conditionally) and expand the feed. The bytes of the last answer are
        not held: when the feed answers 304 or sends them again, the expansion kept from
        them is the listing, and when that does not cover the window (it moved a day
        past it) the feed is fetched again unconditionally."""
        body = await self._fetch(conditional=True)
        if body is None:
            same = await self.expansions.unchanged("feed", self.cache.digest, window)
            if same is not None:
                return self.remember(same)
            body = await self._fetch(conditional=False)
        assert body is not None  # an unconditional fetch always reads the body
        with body:
            return self.remember(await self._expanded(body, window))

    async def _expanded(self, body: Spooled, window: Window) -> Listing:
        stable = await asyncio.to_thread(body.stable_digest)
        same = await self.expansions.restamped("feed", body.digest, stable, window)
        if same is not None:
            return same
        return await self.expansions.listing("feed", body.contents(), window, stable, body.digest)

    def forget_validators(self) -> None:
        """Drop the last ETag, Last-Modified and digest: the next fetch is unconditional
        (a full resync, SIGUSR2)."""
        self.cache = FeedCache()
        self.expansions.forget()

    async def _fetch(self, conditional: bool) -> Spooled | None:
        """The body, or None for the bytes of the last answer (a 304, or the same again)."""
        where = f"{self.calendar_id}: GET feed"
        try:
            async with self.session.get(
                self.url,
                headers=self._headers(conditional),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                proxy=env_proxy(self.url),
            ) as response:
                return await self._read(response, where, conditional)
        except TimeoutError:
            raise Unavailable(f"{where}: no answer within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            # not chained: aiohttp's error text can carry the URL, which is a secret
            raise Unavailable(f"{where}: {type(exc).__name__}") from None

    def _headers(self, conditional: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        if conditional and self.cache.digest and self.cache.etag:
            headers["If-None-Match"] = self.cache.etag
        if conditional and self.cache.digest and self.cache.last_modified:
            headers["If-Modified-Since"] = self.cache.last_modified
        return headers

    async def _read(
        self, response: aiohttp.ClientResponse, where: str, conditional: bool
    ) -> Spooled | None:
        if conditional and response.status == 304 and self.cache.digest:
            return None
        if response.status >= 400:
            raise_for_status(Response(response.status, dict(response.headers), None), where)
        body = Spooled()
        try:
            await self._stream(response, body, where)
        except BaseException:
            body.close()
            raise
        etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
        if conditional and body.digest == self.cache.digest:
            body.close()
            self.cache = FeedCache(etag, modified, body.digest)
            return None  # the same bytes again (no validators)
        if body.blank:
            body.close()
            raise Malformed(f"{where}: the feed answered with an empty body")
        self.cache = FeedCache(etag, modified, body.digest)
        return body

    async def _stream(self, response: aiohttp.ClientResponse, body: Spooled, where: str) -> None:
        """Spool and hash the body as it comes; `Malformed` past `max_bytes`."""
        async for chunk in response.content.iter_chunked(CHUNK):
            if body.size + len(chunk) > self.max_bytes:
                raise Malformed(f"{where}: the feed is larger than {self.max_bytes} bytes")
            try:
                body.write(chunk)
            except OSError as exc:  # a full or unwritable TMPDIR: the next poll may do
                raise Unavailable(f"{where}: cannot spool the body to a file: {exc}") from None


class Spooled:
    """A feed's body as it streamed in: its size, SHA-256 (hex) and whether it held only
    white space, and the bytes in a spool: memory up to `SPOOL_BYTES`, past that an
    unnamed temporary file (writes of 64 KiB into the page cache, microseconds each, so
    they stay on the event loop; reading it back goes to a thread)."""

    def __init__(self) -> None:
        self.size, self.blank = 0, True
        self._sha256 = hashlib.sha256()
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 # closed by close()

    def write(self, chunk: bytes) -> None:
        """Add the next chunk."""
        self._spool.write(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)
        self.blank = self.blank and chunk.isspace()

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the body so far."""
        return self._sha256.hexdigest()

    def stable_digest(self) -> str:
        """`blocks.stable_digest` of the body, read back a piece at a time."""
        return stable_digest(self.contents())

    def contents(self) -> Body:
        """The body where it lies, read a piece at a time (in a worker thread: a read of
        the file may wait on the disk) and cut where a block lies; never read whole."""
        return Body(self._spool)

    def close(self) -> None:
        """Drop the spool (a temporary file is gone with it)."""
        self._spool.close()

    def __enter__(self) -> Spooled:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
