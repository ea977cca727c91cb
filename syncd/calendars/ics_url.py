"""`ics_url`: an iCalendar feed over HTTP(S); read-only.

Conditional GET with the last ETag / Last-Modified, gzip, a size cap and a timeout.
A body that is not a calendar (an HTML login page, an empty or truncated body) or an
HTTP error fails the listing: the feed is never taken for "all events gone". The URL
is a secret (it often carries a token), so messages name the calendar id only. A
feed's absence is confirmed by a second listing (`absence="relist"`): feeds glitch.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import aiohttp

from syncd.adapter import Caps
from syncd.calendars.base import ReadOnly
from syncd.calendars.reuse import Expansions
from syncd.errors import Malformed, Unavailable
from syncd.http import USER_AGENT, Response, env_proxy, raise_for_status
from syncd.ical import Limits
from syncd.model import Listing, Window

CHUNK = 64 * 1024


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
        return self.remember(await self.expansions.listing("feed", body, window))

    def forget_validators(self) -> None:
        """Drop the last ETag, Last-Modified and digest: the next fetch is unconditional
        (a full resync, SIGUSR2)."""
        self.cache = FeedCache()
        self.expansions.forget()

    async def _fetch(self, conditional: bool) -> bytes | None:
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
    ) -> bytes | None:
        if conditional and response.status == 304 and self.cache.digest:
            return None
        if response.status >= 400:
            raise_for_status(Response(response.status, dict(response.headers), None), where)
        buffer, digest = await self._capped_body(response, where)
        etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
        if conditional and digest == self.cache.digest:
            self.cache = FeedCache(etag, modified, digest)
            return None  # the same bytes again (no validators)
        body = buffer.getvalue()  # the buffer's own bytes, not a copy
        if not body or body.isspace():  # not body.strip(): that copies a whole feed
            raise Malformed(f"{where}: the feed answered with an empty body")
        self.cache = FeedCache(etag, modified, digest)
        return body

    async def _capped_body(
        self, response: aiohttp.ClientResponse, where: str
    ) -> tuple[io.BytesIO, str]:
        """The body in one buffer, and its SHA-256; `Malformed` past `max_bytes`. Not a
        list of chunks joined at the end, which for a moment held the body twice (the
        largest part of a changed feed's peak memory): the buffer is sized once from
        Content-Length when the server sends it, else it grows."""
        buffer, digest = _reserved(response.content_length, self.max_bytes), hashlib.sha256()
        async for chunk in response.content.iter_chunked(CHUNK):
            if buffer.tell() + len(chunk) > self.max_bytes:
                raise Malformed(f"{where}: the feed is larger than {self.max_bytes} bytes")
            buffer.write(chunk)
            digest.update(chunk)
        buffer.truncate()  # a body shorter than it was announced
        return buffer, digest.hexdigest()


def _reserved(size: int | None, cap: int) -> io.BytesIO:
    """An empty buffer with room for `size` bytes: writing one byte at the end sizes it
    exactly once (otherwise CPython's BytesIO grows by an eighth at a time, each step a
    reallocation that may copy). The cap bounds what a wrong Content-Length reserves."""
    buffer = io.BytesIO()
    if size and 0 < size <= cap:
        buffer.seek(size - 1)
        buffer.write(b"\0")
        buffer.seek(0)
    return buffer
