"""`caldav`: one CalDAV calendar collection (RFC 4791) over the shared session; writable.

The first listing is a PROPFIND of every member's ETag (with the collection's
sync-token) and calendar-multiget REPORTs of the bodies, `batch` hrefs a request. Later
listings ask a sync-collection REPORT (RFC 6578) what changed since the last token and
fetch only that. A token the server refuses or a truncated answer, or a server with no
tokens, falls back to the ETag listing, which fetches only bodies whose ETag changed.
Bodies are kept per href and expanded through `Expansions`, so an unchanged object is
neither fetched nor parsed again. The listing is the whole collection, so absence is
authoritative; an object that cannot be parsed makes the listing incomplete.

Writes edit the kept object with `rewrite.py` (an occurrence becomes an override or an
EXDATE in its series) and PUT it back conditionally: `If-None-Match: *` for a new
resource, else `If-Match` with the ETag it was listed with (RFC 4791 5.3.2). A 412 means
another client wrote first: `VersionMismatch` (the runner plans again from a fresh
listing). After a write the object is read back with a GET, so the record returned is
what the server holds and the next listing fingerprints the same.

Hrefs are kept relative to the collection, so messages never show its URL (a secret).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from syncd.adapter import Caps
from syncd.calendars import dav
from syncd.calendars.base import Listed
from syncd.calendars.local import as_listing, find
from syncd.calendars.reuse import Expansions
from syncd.calendars.rewrite import held_fields, read_back_window, remove_event, write_event
from syncd.errors import Gone, Malformed, Rejected, VersionMismatch
from syncd.http import HttpClient, Response
from syncd.ical import Limits, read_calendar
from syncd.model import SINGLE, Event, Listing, OccurrenceKey, Problem, Record, Window
from syncd.packed import by_uid, joined

Check = Callable[[Response, str], None]
ICS = "text/calendar; charset=utf-8"
XML = "application/xml; charset=utf-8"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_VEVENT = re.compile(rb"^BEGIN:VEVENT", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Held:
    """One member as last fetched: its ETag and its bytes."""

    etag: str
    data: bytes


@dataclass(frozen=True)
class Delta:
    """What a listing learned: member -> ETag (changed ones, or all), removed members,
    and the token to ask from next time ("" for none)."""

    etags: Mapping[str, str]
    removed: frozenset[str]
    token: str


class _Refused(Exception):
    """The server would not answer from our sync-token."""


@dataclass
class Caldav(Listed):
    """A CalDAV collection; `http` is its funnel, with the collection URL as base."""

    calendar_id: str
    http: HttpClient = field(repr=False)  # its base URL is the collection's: a secret
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    batch: int = 100  # hrefs per calendar-multiget
    caps = Caps()

    sync_token: str = field(default="", repr=False)
    held: dict[str, Held] = field(default_factory=dict, repr=False)  # member name -> body
    _names: dict[str, str] = field(default_factory=dict, repr=False)  # UID -> member name
    _raced: set[str] = field(default_factory=set, repr=False)  # 412s since the last listing
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, repr=False)
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)  # one listing at once
    expansions: Expansions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.expansions = Expansions(self.calendar_id, self.timezone, self.limits)
        path = urlsplit(self.http.base_url).path
        self._path = path if path.endswith("/") else path + "/"

    # --- listing -----------------------------------------------------------------------

    async def list(self, window: Window) -> Listing:
        """Every event of the collection, fetching only what changed since last time."""
        async with self._turn:  # routes sharing the calendar share its token and bodies
            delta = await self._since(self.sync_token) if self.sync_token else None
            if delta is None:
                delta = await self._everything()
            for name in delta.removed:
                self.held.pop(name, None)
            await self._fetch(sorted(n for n, e in delta.etags.items() if self._differs(n, e)))
            self.sync_token = delta.token  # only now: a failed fetch asks the same again
            self._raced.clear()
            return self.remember(await self._listing(window))

    def forget_validators(self) -> None:
        """A full resync: list and fetch everything again, parse it again."""
        self.sync_token = ""
        self.held.clear()
        self.expansions.forget()

    async def _since(self, token: str) -> Delta | None:
        """The members changed and removed since `token`; None when the server refuses
        the token or truncates the answer (RFC 6578 3.6): list everything instead."""
        try:  # Depth 0: sync-level carries the scope (RFC 6578 3.3)
            answer = await self._dav("REPORT", dav.sync_collection(token), "0", _token_refused)
        except _Refused:
            return None
        if any(m.status == 507 and self._name(m.href) is None for m in answer.members):
            return None
        changed: dict[str, str] = {}
        removed: set[str] = set()
        for member in answer.members:
            name = self._name(member.href)
            if name is not None and member.status == 404:
                removed.add(name)
            elif name is not None and 200 <= member.status < 300:
                changed[name] = member.etag
        return Delta(changed, frozenset(removed), answer.sync_token)

    async def _everything(self) -> Delta:
        """Every member's ETag; members held but no longer listed are removed."""
        answer = await self._dav("PROPFIND", dav.propfind_etags(), "1")
        etags = {
            name: member.etag
            for member in answer.members
            if (name := self._name(member.href)) is not None and member.status == 200
        }
        return Delta(etags, frozenset(self.held.keys() - etags.keys()), answer.sync_token)

    def _differs(self, name: str, etag: str) -> bool:
        held = self.held.get(name)
        return held is None or not etag or held.etag != etag

    async def _fetch(self, names: Sequence[str]) -> None:
        """The bodies of `names`, `batch` a request; a member gone meanwhile is dropped.
        One the server leaves out fails the listing: the token must not move past it."""
        for start in range(0, len(names), self.batch):
            chunk = names[start : start + self.batch]
            answer = await self._dav("REPORT", dav.multiget(map(self._href, chunk)), "1")
            missing = set(chunk)
            for member in answer.members:
                name = self._name(member.href)
                if name is not None and member.status == 200 and member.data is not None:
                    self.held[name] = Held(member.etag, member.data.encode())
                elif name is not None and member.status == 404:
                    self.held.pop(name, None)
                missing.discard(name or "")
            if missing:
                raise Malformed(f"{self.calendar_id}: no body for {len(missing)} objects")

    async def _listing(self, window: Window) -> Listing:
        self.expansions.retain(set(self.held))
        results = [await self._expand(name, window) for name in sorted(self.held)]
        return Listing(
            joined([listing.records for listing in results]),
            tuple(p for listing in results for p in listing.problems),
            all(listing.complete for listing in results),
        )

    async def _expand(self, name: str, window: Window) -> Listing:
        """One member's records; a member that cannot be parsed is a problem, and makes
        the listing incomplete (its UIDs are unknown, so nothing counts as deleted)."""
        data = self.held[name].data
        if not _VEVENT.search(data):
            return Listing(())  # a VTODO or VJOURNAL: not an event
        try:
            listing = await self.expansions.listing(name, data, window)
        except Malformed as exc:
            key = OccurrenceKey(self.calendar_id, name.removesuffix(".ics")).text
            return Listing((), (Problem(key, str(exc)),), complete=False)
        for uid in by_uid(listing.records).uids():
            self._names[uid] = name
        return listing

    # --- writing -----------------------------------------------------------------------

    async def create(self, key: str, event: Event) -> Record:
        """A new single event as its own resource (never over an existing one); an
        occurrence goes into its series' resource."""
        occurrence = OccurrenceKey.parse(self.calendar_id, key)
        name = self._name_for(occurrence.uid)
        if occurrence.rid != SINGLE:
            if name not in self.held:
                raise Rejected(
                    f"{self.calendar_id}: the series {occurrence.uid} is not here", key=key
                )
            return await self._edit(occurrence, event, held_fields(event))
        async with self._lock(name):
            data = write_event(None, occurrence, event, ())
            await self._put(name, data, {"If-None-Match": "*"}, key)
            return await self._read_back(name, occurrence, event)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Write the changed fields (an occurrence: its override) into the resource that
        holds the event, if nobody changed it since it was listed."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        return await self._edit(occurrence, event, changed)

    async def delete(self, record: Record) -> None:
        """Delete the event's resource, or its part of it; an occurrence gets an EXDATE."""
        occurrence = OccurrenceKey.parse(self.calendar_id, record.key)
        name = self._name_for(occurrence.uid)
        async with self._lock(name):
            if name not in self.held and name not in self._raced:
                return  # not in the collection: already gone
            held = self._current(name, occurrence)
            left = await asyncio.to_thread(remove_event, held.data, occurrence)
            if left is not None:
                await self._put(name, left, {"If-Match": held.etag}, occurrence.text)
                await self._get(name)
                return
            with contextlib.suppress(Gone):  # somebody else deleted it: what we wanted
                await self._send("DELETE", name, {"If-Match": held.etag}, None, occurrence.text)
            self.held.pop(name, None)

    async def _edit(
        self, occurrence: OccurrenceKey, event: Event, changed: Iterable[str]
    ) -> Record:
        name = self._name_for(occurrence.uid)
        async with self._lock(name):
            held = self._current(name, occurrence)
            data = await asyncio.to_thread(
                write_event, held.data, occurrence, event, changed, self.timezone
            )
            await self._put(name, data, {"If-Match": held.etag}, occurrence.text)
            return await self._read_back(name, occurrence, event)

    def _current(self, name: str, occurrence: OccurrenceKey) -> Held:
        """The member as listed; `VersionMismatch` when a write to it raced already."""
        if name in self._raced:
            raise VersionMismatch(
                f"{self.calendar_id}: {name} changed since it was listed", key=occurrence.text
            )
        held = self.held.get(name)
        if held is None:
            raise Gone(f"{self.calendar_id}: {name} is gone", key=occurrence.text)
        return held

    async def _put(self, name: str, data: bytes, condition: dict[str, str], key: str) -> None:
        await self._send("PUT", name, condition | {"Content-Type": ICS}, data, key)

    async def _send(
        self, method: str, name: str, headers: dict[str, str], data: bytes | None, key: str
    ) -> None:
        """A conditional write; a 412 forgets the member and the sync-token, so the next
        listing fetches what the other client wrote."""
        try:
            await self.http.request(
                method, "/" + quote(name), headers=headers, data=data, key=key, check=_refused
            )
        except VersionMismatch:
            self.held.pop(name, None)
            self._raced.add(name)
            self.sync_token = ""
            raise

    async def _read_back(self, name: str, occurrence: OccurrenceKey, event: Event) -> Record:
        """The record as the server now holds it: what was written, as a reader sees it."""
        held = await self._get(name)
        expansion = await asyncio.to_thread(
            read_calendar,
            held.data,
            calendar=self.calendar_id,
            window=read_back_window(occurrence, event),
            default_tz=self.timezone,
            limits=self.limits,
        )
        return find(as_listing(expansion), occurrence.text)

    async def _get(self, name: str) -> Held:
        """Fetch one member and keep it: the next listing then fetches nothing for it."""
        response = await self.http.request("GET", "/" + quote(name))
        self.held[name] = Held(_header(response, "etag"), _text(response).encode())
        return self.held[name]

    # --- hrefs and requests ------------------------------------------------------------

    async def _dav(
        self, method: str, body: bytes, depth: str, check: Check | None = None
    ) -> dav.Multistatus:
        where = f"{self.calendar_id}: {method}"
        headers = {"Depth": depth, "Content-Type": XML}
        response = await self.http.request(method, "/", headers=headers, data=body, check=check)
        return dav.parse_multistatus(_text(response), where)

    def _name(self, href: str) -> str | None:
        """The member name an href gives (`u1.ics`), None for the collection itself or
        anything outside it."""
        path = unquote(urlsplit(href).path)
        base = unquote(self._path)
        rest = path[len(base) :] if path.startswith(base) else ""
        return rest if rest and "/" not in rest else None

    def _href(self, name: str) -> str:
        return self._path + quote(name)

    def _name_for(self, uid: str) -> str:
        return self._names.get(uid) or new_name(uid)

    def _lock(self, name: str) -> asyncio.Lock:
        """One writer per resource: occurrences of one series are edited in one object."""
        return self._locks.setdefault(name, asyncio.Lock())


def new_name(uid: str) -> str:
    """The resource name of a new event: its UID when that is safe in a path, else a
    safe form with a hash, so two UIDs never share a name."""
    safe = _UNSAFE.sub("_", uid)
    if safe != uid:
        safe += "-" + hashlib.sha256(uid.encode()).hexdigest()[:12]
    return safe + ".ics"


def _token_refused(response: Response, where: str) -> None:
    """RFC 6578 3.2 refuses a token with 403 or 409 and DAV:valid-sync-token; servers
    answer other 4xx too. Only refused credentials and rate limits keep their meaning."""
    if 400 <= response.status < 500 and response.status not in (401, 429):
        raise _Refused(where)


def _refused(response: Response, where: str) -> None:
    """A write that breaks a CalDAV precondition (RFC 4791 5.3.2.1: no-uid-conflict,
    valid-calendar-data, ...) comes as 403 or 409 with a DAV:error body; a bare 403 on a
    write, with credentials the listing accepted, is a share that may be read but not
    written. Either way the item is refused, not the credentials, and it is no
    concurrent change either."""
    if response.status not in (403, 409):
        return
    condition = dav.error_condition(_text(response))
    if response.status == 403 and not condition:
        condition = "the server refuses writes here (a read-only share?)"
    raise Rejected(f"{where}: HTTP {response.status} {condition}".rstrip())


def _text(response: Response) -> str:
    return response.body if isinstance(response.body, str) else ""


def _header(response: Response, name: str) -> str:
    return next((v for k, v in response.headers.items() if k.lower() == name), "")
