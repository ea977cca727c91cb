"""`ics_url`: an iCalendar feed over HTTP(S); read-only.

Conditional GET with the last ETag / Last-Modified, gzip, a size cap and a timeout.
A body that is not a calendar (an HTML login page, an empty or truncated body) or an
HTTP error fails the listing: the feed is never taken for "all events gone". The URL
is a secret (it often carries a token), so messages name the calendar id only. A
feed's absence is confirmed by a second listing (`absence="relist"`): feeds glitch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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
    """What the last good answer said, for the next conditional GET."""

    etag: str = ""
    last_modified: str = ""
    body: bytes = b""
    digest: bytes = b""  # SHA-256 of the body


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
        """Fetch (conditionally) and expand the feed."""
        body = await self._fetch()
        return self.remember(await self.expansions.listing("feed", body, window))

    def forget_validators(self) -> None:
        """Drop the last ETag, Last-Modified and body: the next fetch is unconditional
        (a full resync, SIGUSR2)."""
        self.cache = FeedCache()
        self.expansions.forget()

    async def _fetch(self) -> bytes:
        where = f"{self.calendar_id}: GET feed"
        try:
            async with self.session.get(
                self.url,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                proxy=env_proxy(self.url),
            ) as response:
                return await self._read(response, where)
        except TimeoutError:
            raise Unavailable(f"{where}: no answer within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            # not chained: aiohttp's error text can carry the URL, which is a secret
            raise Unavailable(f"{where}: {type(exc).__name__}") from None

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        if self.cache.body and self.cache.etag:
            headers["If-None-Match"] = self.cache.etag
        if self.cache.body and self.cache.last_modified:
            headers["If-Modified-Since"] = self.cache.last_modified
        return headers

    async def _read(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        if response.status == 304 and self.cache.body:
            return self.cache.body
        if response.status >= 400:
            raise_for_status(Response(response.status, dict(response.headers), None), where)
        chunks, digest = await self._capped_chunks(response, where)
        if digest == self.cache.digest:
            body = self.cache.body  # the same bytes again (no validators): not joined anew
        else:
            self.cache = FeedCache()  # the old body goes before the new one is joined
            body = b"".join(chunks)
        del chunks
        if not body.strip():
            raise Malformed(f"{where}: the feed answered with an empty body")
        etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
        self.cache = FeedCache(etag, modified, body, digest)
        return body

    async def _capped_chunks(
        self, response: aiohttp.ClientResponse, where: str
    ) -> tuple[Sequence[bytes], bytes]:
        """The body's chunks and their SHA-256; `Malformed` past `max_bytes`."""
        chunks: list[bytes] = []
        size, digest = 0, hashlib.sha256()
        async for chunk in response.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise Malformed(f"{where}: the feed is larger than {self.max_bytes} bytes")
            chunks.append(chunk)
            digest.update(chunk)
        return chunks, digest.digest()
