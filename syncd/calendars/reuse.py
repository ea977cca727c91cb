"""Not parsing what did not change (issue 6), at the level of the body and of each block.

Parsing is the dominant cost (about 0.4 ms per VEVENT). An expansion is kept with the
SHA-256 of the bytes it came from and the window it covers, which is a day wider than
asked; while the bytes are the same and the asked window lies inside, the kept listing
is returned as it is. A feed that answers 304, or serves the same body without
validators, and an unchanged file therefore cost a hash, not a parse. Records of the
wider window that lie outside the asked one are harmless: the runner judges each
record against the route's own window.

When the bytes changed but the window still lies inside, the body is split into blocks
on the raw text (`syncd.blocks`) and only the UID groups whose effective digest changed
(their own VEVENTs, the VTIMEZONEs they use, the calendar header; DTSTAMP and the like
left out) go through `read_calendar`, in one small VCALENDAR; the kept records and
problems of the other groups are reused as they are, and groups that disappeared
contribute nothing. The result is what a whole parse would give. Anything that part-wise
parsing cannot reproduce exactly falls back to a whole parse: a body that is not plainly
one well-formed VCALENDAR (a truncated one then raises `Malformed` as before), several
VCALENDARs, a VEVENT without a UID, calendar-level problems (a dropped VTIMEZONE or
calendar property, known only to a whole parse), the per-calendar occurrence cap, or a
record or problem that cannot be told apart by its UID.

Each group's records are kept packed (`syncd.packed`): compressed codec text, decoded
only for the UIDs a run plans, so a big calendar's expansion costs a third of the
memory its record objects would between runs.

A first parse goes the same way, `CHUNK` UID groups at a time, so the parse tree of a
big feed (about 10 kB an event in icalendar) never exists whole: the peak is one
chunk's tree beside the records, and the memory it freed is reused by the next chunk
instead of being left to the allocator as a whole tree's would. The same fallbacks
apply, to one parse of the body whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Protocol

from syncd import __version__, blocks, codec
from syncd.errors import Malformed
from syncd.ical import Limits, read_calendar
from syncd.model import Listing, Problem, Record, Window
from syncd.packed import GroupedRecords, Packed, packing, primer

SLACK = timedelta(days=1)
log = logging.getLogger("syncd.calendars")
FORMAT = 1  # bump when expansion changes what records a body gives: kept parts are dropped
CHUNK = 250  # UID groups a parse holds at once: its tree, not the feed's, is the peak
_CAPPED = "(Limits.per_calendar)"  # the reason of a Problem left by the per-calendar cap


@dataclass(frozen=True, slots=True, eq=False)
class Part(Packed):
    """One UID group's share of a kept listing: its records packed (`syncd.packed`; the
    listing holds the parts themselves, not a packed copy of each), the digest it was
    parsed from, and its problems."""

    digest: bytes = b""  # `blocks.Group.digest`; the state store keeps it in hex
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Kept:
    """One source's last expansion: the digest of its bytes, the window it covers, and
    (when the listing splits cleanly by UID) each group's part, for partial re-parses."""

    digest: str
    covers: Window
    listing: Listing
    parts: dict[str, Part] | None = None
    stable: str = ""  # `blocks.stable_digest` of the bytes, when known


class PartStore(Protocol):
    """Where kept expansions outlive the process (the state store)."""

    def load_parts(
        self, calendar: str, source: str, stamp: str
    ) -> tuple[str, Window, dict[str, tuple[str, str]]] | None: ...

    def save_parts(
        self,
        calendar: str,
        source: str,
        head: tuple[str, str, Window],
        changed: dict[str, tuple[str, str]],
        removed: Iterable[str],
        expected: str | None = None,
    ) -> bool: ...

    def drop_parts(self, calendar: str, source: str | None = None) -> None: ...

    def retain_parts(self, calendar: str, sources: set[str]) -> None: ...


@dataclass
class Expansions:
    """The last expansion of each source (a feed, a file) of one calendar."""

    calendar: str
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    kept: dict[str, Kept] = field(default_factory=dict)
    primer: bytes = b""  # `packed.primer` of this calendar's groups, from the first ones
    parses: int = 0  # listings built from new bytes, whole or in part (tests and benches)
    whole_parses: int = 0  # bodies handed whole to read_calendar
    groups_parsed: int = 0  # UID groups handed to read_calendar, whole or in part
    store: PartStore | None = field(default=None, repr=False)  # kept across restarts
    _stored: dict[str, str] = field(default_factory=dict, repr=False)  # source -> digest
    _retained: bool = field(default=False, repr=False)

    async def listing(
        self,
        source: str,
        data: bytes | blocks.Body,
        window: Window,
        stable: str = "",
        digest: str = "",
    ) -> Listing:
        """The listing of `data` inside `window`, parsed only where something changed.
        `data` may lie in a file (`blocks.Body`): it is read a piece at a time and then
        only where it changed. `stable` and `digest`: the bytes' `blocks.stable_digest`
        and SHA-256 (hex), when the caller has them already."""
        body = data if isinstance(data, blocks.Body) else blocks.Body(data)
        if not digest:  # bytes in memory hash in milliseconds; a file is read to do it
            digest = await asyncio.to_thread(body.sha256) if body.in_file else body.sha256()
        same = await self.unchanged(source, digest, window)
        if same is not None:
            return same
        kept = self.kept.get(source)
        fresh = None
        if kept and kept.parts is not None and _inside(window, kept.covers):
            found = await asyncio.to_thread(self._partial, body, kept, stable)
            fresh = None if found is None else Kept(digest, kept.covers, *found[:2], found[2])
        if fresh is None:
            covers = Window(window.start, window.end + SLACK)
            fresh = Kept(
                digest, covers, *await asyncio.to_thread(self._parse, source, body, covers, stable)
            )
        self.kept[source] = fresh
        await self._persist(source, kept, fresh)
        return fresh.listing

    async def unchanged(self, source: str, digest: str, window: Window) -> Listing | None:
        """The kept listing of `source` when it was made from bytes with this SHA-256 (hex)
        and covers `window`, else None: a caller holding no bytes (a feed that answered
        304) then fetches them."""
        kept = await self._current(source)
        if kept is None:
            return None
        return kept.listing if kept.digest == digest and _inside(window, kept.covers) else None

    async def restamped(
        self, source: str, digest: str, stable: str, window: Window
    ) -> Listing | None:
        """The kept listing of `source` when new bytes (SHA-256 `digest`) differ from the
        ones it was made from only in volatile lines (`stable`: `blocks.stable_digest`),
        and it covers `window`; it is kept under the new digest. None: read the bytes (a
        spooled feed is then read back whole)."""
        kept = await self._current(source)
        if kept is None or not _restampable(kept, stable) or not _inside(window, kept.covers):
            return None
        fresh = Kept(digest, kept.covers, kept.listing, kept.parts, stable)
        self.kept[source] = fresh
        await self._persist(source, kept, fresh)
        return fresh.listing

    async def _current(self, source: str) -> Kept | None:
        """The expansion kept for `source`: in memory, else the one a previous process
        kept in the store, read once and then held here."""
        kept = self.kept.get(source) or await self._restored(source)
        if kept is not None:
            self.kept[source] = kept
        return kept

    # --- kept across restarts -------------------------------------------------------------

    @property
    def stamp(self) -> str:
        """What kept parts depend on besides the bytes: syncd and these settings."""
        limits = f"{self.limits.per_series}/{self.limits.per_calendar}"
        return f"{__version__}/{FORMAT}/{self.timezone}/{limits}"

    async def _restored(self, source: str) -> Kept | None:
        """The expansion a previous process kept for `source`, or None."""
        stored = self.store.load_parts(self.calendar, source, self.stamp) if self.store else None
        if stored is None:
            return None
        digest, covers, parts = stored
        self.primer = self.primer or primer(text for _, text in parts.values())
        try:
            decoded = await asyncio.to_thread(_decoded, parts, self.primer)
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # unreadable: a miss
            log.warning(
                "%s: %s: kept expansion unreadable, parsing again: %s", self.calendar, source, exc
            )
            self._drop(source)
            return None
        self._stored[source] = digest
        return Kept(digest, covers, _assembled(decoded), decoded)

    def retain(self, sources: set[str]) -> None:
        """Forget the sources that are gone, here and (once, and when some went) in the
        store: files deleted while syncd was not running included."""
        gone = self.kept.keys() - sources
        for source in gone:
            del self.kept[source]
            self._stored.pop(source, None)
        if self.store is not None and (gone or not self._retained):
            self._retained = True
            self._call(lambda store: store.retain_parts(self.calendar, sources))

    def _drop(self, source: str) -> None:
        self._stored.pop(source, None)
        if self.store is not None:
            self._call(lambda store: store.drop_parts(self.calendar, source))

    def _call(self, write: Callable[[PartStore], object]) -> object:
        """A store write that may fail (a busy database): keeping expansions is an
        optimisation, so a failure is logged and the next save writes everything."""
        assert self.store is not None
        try:
            return write(self.store)
        except Exception as exc:  # sqlite3 errors; the state module owns their types
            log.warning("%s: could not keep expansions: %s", self.calendar, exc)
            self._stored.clear()
            return None

    async def _persist(self, source: str, old: Kept | None, new: Kept) -> None:
        if self.store is None:
            return
        if new.parts is None:
            self._drop(source)  # cannot be kept by group
            return
        if old is None or self._stored.get(source) != old.digest:
            old = None  # what is stored is unknown here: write it all
        kept = old.parts if old is not None and old.parts is not None else {}
        before = kept if old is not None and old.covers == new.covers else {}
        changed = {
            uid: part
            for uid, part in new.parts.items()
            if uid not in before or before[uid].digest != part.digest
        }
        removed = kept.keys() - new.parts.keys()
        if old is not None and old.digest == new.digest and not (changed or removed):
            return
        head = (self.stamp, new.digest, new.covers)
        if old is not None:
            encoded = await asyncio.to_thread(_encoded, changed)
            expected = old.digest
            saved = self._call(
                lambda s: s.save_parts(self.calendar, source, head, encoded, removed, expected)
            )
            if saved:
                self._stored[source] = new.digest
                return
        # First save here, or another process wrote the source since: replace it all.
        everything = await asyncio.to_thread(_encoded, new.parts)
        if self._call(lambda s: s.save_parts(self.calendar, source, head, everything, ())):
            self._stored[source] = new.digest

    def _parse(
        self, source: str, data: blocks.Body, covers: Window, stable: str
    ) -> tuple[Listing, dict[str, Part] | None, str]:
        """A first parse: group by group in chunks (so a big feed's parse tree never
        exists whole), else the body whole."""
        self.parses += 1
        self.whole_parses += 1
        stable = stable or blocks.stable_digest(data)
        split = _single(data)
        if split is not None:
            calendar, found = split
            parts = self._parsed_groups(calendar, found, list(found), covers)
            if parts is not None and _within_cap(parts, self.limits):
                return _assembled(parts), parts, stable
        records, problems = self._read(data.whole(), covers, source)
        return Listing(records, problems), None, stable

    def _partial(
        self, data: blocks.Body, kept: Kept, stable: str
    ) -> tuple[Listing, dict[str, Part], str] | None:
        """The listing re-parsing only the changed groups (and the body's stable digest),
        or None: parse it whole."""
        stable = stable or blocks.stable_digest(data)
        if _restampable(kept, stable):
            assert kept.parts is not None
            return kept.listing, kept.parts, stable
        found = self._regrouped(data, kept)
        return None if found is None else (*found, stable)

    def _regrouped(self, data: blocks.Body, kept: Kept) -> tuple[Listing, dict[str, Part]] | None:
        split = _single(data)
        if split is None or kept.parts is None:
            return None
        calendar, found = split
        old = kept.parts
        changed = [uid for uid in found if uid not in old or old[uid].digest != found.digest(uid)]
        if not changed and found.keys() == old.keys():
            # Only volatile lines changed (a feed that stamps DTSTAMP on every fetch): the
            # kept listing itself, so a route that planned nothing from it stays quiet.
            return kept.listing, old
        fresh = set(changed)
        parts = {uid: old[uid] for uid in found if uid not in fresh}
        parsed = self._parsed_groups(calendar, found, changed, kept.covers)
        if parsed is None:
            return None
        parts.update(parsed)
        self.parses += 1
        if not _within_cap(parts, self.limits):
            return None
        return _assembled(parts), parts

    def _parsed_groups(
        self, calendar: blocks.VCalendar, found: blocks.Groups, chosen: list[str], covers: Window
    ) -> dict[str, Part] | None:
        """The part of each chosen UID's group, parsed `CHUNK` groups at a time; None
        when a chunk cannot be shared out by UID (the caller then parses the body whole).
        The first chunk carries every VTIMEZONE, so an unreadable one that no event uses
        still leads to the whole parse that reports it."""
        parts: dict[str, Part] = {}
        for first in range(0, len(chosen), CHUNK):
            chunk = [found[uid] for uid in chosen[first : first + CHUNK]]
            self.groups_parsed += len(chunk)
            body = blocks.body(calendar, chunk, every_zone=first == 0)
            try:
                records, problems = self._read(body, covers, "")
            except Malformed:
                return None  # the whole parse says it with the source's name
            shares = _share(records, problems, {g.uid: g for g in chunk})
            if shares is None:
                return None
            self.primer = self.primer or primer(codec.dumps(*share) for share in shares.values())
            parts.update({g.uid: _part(g.digest, *shares[g.uid], self.primer) for g in chunk})
        return parts

    def _read(
        self, data: bytes, covers: Window, source: str
    ) -> tuple[tuple[Record, ...], tuple[Problem, ...]]:
        try:
            expansion = read_calendar(
                data,
                calendar=self.calendar,
                window=covers,
                default_tz=self.timezone,
                limits=self.limits,
            )
        except Malformed as exc:
            raise Malformed(f"{self.calendar}: {source}: {exc}") from exc
        return expansion.records, expansion.problems

    def forget(self) -> None:
        """Parse everything again next time (a full resync), here and in the store."""
        self.kept.clear()
        self._stored.clear()
        if self.store is not None:
            self._call(lambda store: store.drop_parts(self.calendar))


def _within_cap(parts: dict[str, Part], limits: Limits) -> bool:
    """False past the per-calendar cap, which cuts by series order: only a whole parse
    knows where."""
    return sum(part.count for part in parts.values()) <= limits.per_calendar


def _restampable(kept: Kept, stable: str) -> bool:
    """Only volatile lines changed (a feed that stamps DTSTAMP on every fetch): the kept
    listing itself is the answer, so a route that planned nothing from it stays quiet."""
    return bool(kept.stable) and stable == kept.stable and kept.parts is not None


def _inside(window: Window, covers: Window) -> bool:
    return covers.start <= window.start and window.end <= covers.end


def _single(data: blocks.Body) -> tuple[blocks.VCalendar, blocks.Groups] | None:
    """The one VCALENDAR of a body and its UID groups, or None: parse it whole."""
    calendars = blocks.split(data)
    if calendars is None or len(calendars) != 1:
        return None
    found = blocks.groups(calendars[0])
    return None if found is None else (calendars[0], found)


def _uid(key: str) -> str | None:
    """The UID of a `VEVENT:<uid>:<rid>` key, None for any other component."""
    component, _, rest = key.partition(":")
    return rest.rpartition(":")[0] if component == "VEVENT" and ":" in rest else None


def _share(
    records: Iterable[Record], problems: Iterable[Problem], found: dict[str, blocks.Group]
) -> dict[str, tuple[tuple[Record, ...], tuple[Problem, ...]]] | None:
    """Records and problems per group, or None when one of them belongs to none."""
    mine: dict[str, tuple[list[Record], list[Problem]]] = {uid: ([], []) for uid in found}
    for record in records:
        uid = _uid(record.key)
        if uid not in mine:
            return None
        mine[uid][0].append(record)
    for item in problems:
        uid = _uid(item.key)
        if uid not in mine or item.reason.endswith(_CAPPED):
            return None  # calendar-level, or left by the per-calendar cap
        mine[uid][1].append(item)
    return {uid: (tuple(rs), tuple(ps)) for uid, (rs, ps) in mine.items()}


def _part(
    digest: bytes, records: tuple[Record, ...], problems: tuple[Problem, ...], primed: bytes
) -> Part:
    return Part(*packing(codec.dumps(records, problems), records, primed), digest, problems)


def _assembled(parts: dict[str, Part]) -> Listing:
    """The listing made of kept parts: what a whole parse gives (iterated, the same
    records in the same order), packed by UID group."""
    records = GroupedRecords(MappingProxyType(parts))  # the parts as they are
    problems = sorted(
        (p for part in parts.values() for p in part.problems),
        key=lambda item: (item.key, item.reason),
    )
    return Listing(records, tuple(problems))


def _encoded(parts: dict[str, Part]) -> dict[str, tuple[str, str]]:
    return {uid: (part.digest.hex(), part.text()) for uid, part in parts.items()}


def _decoded(stored: dict[str, tuple[str, str]], primed: bytes) -> dict[str, Part]:
    return {uid: _unpacked(digest, text, primed) for uid, (digest, text) in stored.items()}


def _unpacked(digest: str, text: str, primed: bytes) -> Part:
    """A part as the state store keeps it: its digest in hex and its codec text."""
    records, problems = codec.loads(text)
    return Part(*packing(text, records, primed), bytes.fromhex(digest), problems)
