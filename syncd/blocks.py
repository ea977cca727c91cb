"""Top-level component blocks of an iCalendar body, hashed so unchanged input is skipped.

Pure, no I/O. `split` cuts a body into its VCALENDARs, each with its own properties
(the header: VERSION, CALSCALE, X-WR-TIMEZONE, ...) and its top-level component blocks,
on the raw text: only BEGIN/END lines at depth 1 open and close a block, so a nested
VALARM stays inside its VEVENT, and folded lines stay with the line they continue.
A block is kept as where it lies in the body (the body is not copied: a 3 MB feed's
blocks would be another 3 MB), so it can be handed to the parser as it came. The body
is a `Body`: bytes, or a seekable file (a feed spooled as it streamed in) read a piece
at a time, so a changed feed is split without ever being whole in memory, and only the
blocks that changed are read again. A calendar's blocks and groups are held as columns
(`Blocks`, `Groups`): a few arrays for a 10,000-event feed, not 20,000 objects each
with its own ints and bytes; a `Block` or `Group` is made when asked for.

`groups` puts the VEVENTs of one UID together (a series' master and its overrides are
expanded together, so an override that changes re-expands its series) and gives each
group an effective digest: its own blocks, the VTIMEZONEs its TZID= parameters name,
and the calendar header. Lines in `VOLATILE` are left out of every digest.

Whatever `split` cannot read plainly (no BEGIN:VCALENDAR first, BEGIN/END that do not
nest, a missing END:VCALENDAR, lines outside any VCALENDAR) gives None: the caller then
parses the body whole, which raises `Malformed` where it should.
"""

from __future__ import annotations

import hashlib
import re
import sys
from array import array
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

__all__ = [
    "VOLATILE",
    "Block",
    "Blocks",
    "Body",
    "Group",
    "Groups",
    "VCalendar",
    "body",
    "groups",
    "split",
    "zones",
]

VOLATILE = ("DTSTAMP", "PRODID", "CREATED")
"""Properties a feed may re-stamp on every download (vdirsyncer's ignore-list idea) and
that no record reads. LAST-MODIFIED is not here: records carry it for stale-write guards."""

_VOLATILE_HEADS = tuple(name.encode() for name in VOLATILE)
_LINE_ENDS = re.compile(rb"\r\n|\n|\r")
_PIECE = 64 * 1024
_NONE: frozenset[str] = frozenset()  # shared by the many blocks that name no TZID
_UNESCAPE = re.compile(r"\\([\\;,nN])")
_BOM = b"\xef\xbb\xbf"
_SHA = 32  # bytes of a raw SHA-256 digest


class Body:
    """A calendar body: bytes in memory, or a seekable binary file (a spooled feed),
    handed to `split` a piece at a time and cut from where a block lies."""

    __slots__ = ("_data", "_file")

    def __init__(self, data: bytes | IO[bytes]) -> None:
        self._data = data if isinstance(data, bytes) else None
        self._file = None if isinstance(data, bytes) else data

    def pieces(self) -> Iterator[bytes]:
        """The body from its start, about `_PIECE` bytes at a time. A file is read from
        where the last piece ended, whatever `cut` read in between."""
        position = 0
        while piece := self.cut(position, position + _PIECE):
            yield piece
            position += len(piece)

    @property
    def in_file(self) -> bool:
        """Whether reading it means reading a file."""
        return self._file is not None

    def cut(self, start: int, end: int) -> bytes:
        """The bytes in `[start, end)`."""
        if self._file is None:
            assert self._data is not None
            return self._data[start:end]
        self._file.seek(start)
        return self._file.read(end - start)

    def whole(self) -> bytes:
        """Every byte (a body parsed whole, which only a fallback does)."""
        if self._data is not None:
            return self._data
        return b"".join(self.pieces())

    def sha256(self) -> str:
        """SHA-256 (hex) of the body."""
        if self._data is not None:
            return hashlib.sha256(self._data).hexdigest()
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level component: its name, where it lies in the body, and what it names
    (made on demand from `Blocks`, or while splitting)."""

    name: str  # VEVENT, VTIMEZONE, VTODO, ... (upper case)
    start: int  # the offset of its BEGIN line in `VCalendar.source`
    end: int  # the offset just past its END line (its line end not included)
    key: str  # the UID of a VEVENT (unescaped, as the parser reads it), a VTIMEZONE's TZID
    tzids: frozenset[str]  # the TZID= parameters of its lines
    digest: bytes  # SHA-256 (raw) of its unfolded lines without the VOLATILE ones
    nests_events: bool = False  # a VEVENT inside it (an X- wrapper, a VTODO): the parser
    # finds those too (it walks every VEVENT), so such a body is only parsed whole


class Blocks:
    """The top-level blocks of one VCALENDAR, in document order, held as columns."""

    __slots__ = ("digests", "ends", "keys", "names", "nests_events", "starts", "tzids")

    def __init__(self) -> None:
        self.names: list[str] = []  # interned: a pointer each
        self.starts, self.ends = array("q"), array("q")
        self.keys: list[str] = []
        self.tzids: list[frozenset[str]] = []  # shared between blocks naming the same
        self.digests = bytearray()  # `_SHA` bytes a block
        self.nests_events = False  # a VEVENT inside some block: the body is parsed whole

    def add(self, block: Block) -> None:
        """Append one block's fields."""
        self.names.append(block.name)
        self.starts.append(block.start)
        self.ends.append(block.end)
        self.keys.append(block.key)
        self.tzids.append(_shared(block.tzids))
        self.digests += block.digest
        self.nests_events = self.nests_events or block.nests_events

    def digest(self, index: int) -> bytes:
        """The raw digest of block `index`."""
        return _nth(self.digests, index)

    def __getitem__(self, index: int) -> Block:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        fields = (self.names[index], self.starts[index], self.ends[index], self.keys[index])
        return Block(*fields, self.tzids[index], self.digest(index))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Block]:
        return (self[index] for index in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blocks):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable while a split fills it


def _nth(digests: bytearray, index: int) -> bytes:
    """The `index`-th raw digest of a column of them."""
    return bytes(digests[index * _SHA : (index + 1) * _SHA])


_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared(tzids: frozenset[str]) -> frozenset[str]:
    """One object for equal TZID sets (a feed's events name a handful of zones)."""
    if not tzids:
        return _NONE
    if len(_SETS) > 1024:
        _SETS.clear()  # bounded: a daemon sees few zones, but feeds are not trusted
    return _SETS.setdefault(tzids, tzids)


@dataclass(frozen=True, slots=True)
class VCalendar:
    """One VCALENDAR: its own property lines, their digest, its component blocks, and
    the body they lie in."""

    header: tuple[bytes, ...]
    header_digest: str
    blocks: Blocks
    source: Body = field(repr=False, compare=False)

    def text(self, block: Block) -> bytes:
        """A block's physical lines as they came, joined by CRLF."""
        return self.lines(block.start, block.end)

    def lines(self, start: int, end: int) -> bytes:
        """The physical lines lying in `[start, end)` of the body, joined by CRLF."""
        return b"\r\n".join(_LINE_ENDS.split(self.source.cut(start, end)))


@dataclass(frozen=True, slots=True)
class Group:
    """The VEVENT blocks of one UID, with the digest that says whether to parse again
    (made on demand from `Groups`)."""

    uid: str
    blocks: tuple[int, ...]  # indices into VCalendar.blocks, in document order
    tzids: frozenset[str]
    digest: bytes  # SHA-256 (raw) of its own blocks, the VTIMEZONEs they use, the header


class Groups(Mapping[str, Group]):
    """The groups of one VCALENDAR by UID, in document order, held as columns."""

    __slots__ = ("_digests", "_first", "_index", "_more", "_tzids")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}  # UID -> group number
        self._first = array("q")  # the index of each group's first block
        self._more: dict[int, tuple[int, ...]] = {}  # the blocks of groups of several
        self._tzids: list[frozenset[str]] = []
        self._digests = bytearray()

    def add_block(self, uid: str, index: int) -> None:
        """File block `index` under `uid`."""
        number = self._index.setdefault(uid, len(self._first))
        if number == len(self._first):
            self._first.append(index)
        else:
            self._more[number] = (*self._members(number), index)

    def seal(self, number: int, tzids: frozenset[str], digest: bytes) -> None:
        """Set group `number`'s TZIDs and digest, in group order."""
        assert number == len(self._tzids)
        self._tzids.append(_shared(tzids))
        self._digests += digest

    def members(self) -> Iterator[tuple[int, str, tuple[int, ...]]]:
        """(group number, UID, block indices) of each group."""
        for uid, number in self._index.items():
            yield number, uid, self._members(number)

    def digest(self, uid: str) -> bytes:
        """The raw digest of the group of `uid` (KeyError when there is none)."""
        return _nth(self._digests, self._index[uid])

    def _members(self, number: int) -> tuple[int, ...]:
        return self._more.get(number) or (self._first[number],)

    def __getitem__(self, uid: str) -> Group:
        number = self._index[uid]
        digest = _nth(self._digests, number)
        return Group(uid, self._members(number), self._tzids[number], digest)

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __contains__(self, uid: object) -> bool:
        return uid in self._index


def _physical(source: Body) -> Iterator[tuple[bytes, int]]:
    """(line, its offset) for each physical line of a body, read a piece of about
    `_PIECE` bytes at a time: a 3 MB feed's hundred thousand lines never exist as one
    list, nor (in a file) the feed as one bytes. A leading byte-order mark is skipped."""
    offset, rest = 0, b""
    for piece in source.pieces():
        data = rest + piece if rest else piece
        if offset == 0 and data.startswith(_BOM):  # the mark may span the first pieces
            data, offset = data[len(_BOM) :], len(_BOM)
        cut = _line_end(data)
        yield from _lines(data[:cut], offset, last=False)
        offset, rest = offset + cut, data[cut:]
    if rest:
        yield from _lines(rest, offset, last=True)


def _line_end(data: bytes) -> int:
    """Just past the last line end of `data` known to be whole (a CR at the very end
    may be the first half of a CRLF); 0 when there is none."""
    return max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1


def _lines(data: bytes, offset: int, last: bool) -> Iterator[tuple[bytes, int]]:
    """The lines of `data` (which ends with a line end unless `last`) and their offsets,
    `data` lying at `offset` of the body."""
    lines = _LINE_ENDS.split(data)
    if not last:
        lines.pop()  # the empty text after the last line end
    position = 0
    for line in lines:
        yield line, offset + position
        position += len(line)
        position += 2 if data[position : position + 2] == b"\r\n" else 1


def _logical(source: Body) -> Iterator[tuple[bytes, int, int]]:
    """(unfolded line, start, end) for each content line of the body: its physical
    lines lie in `[start, end)`."""
    unfolded: bytes | None = None
    start = end = 0
    for line, offset in _physical(source):
        if line[:1] in (b" ", b"\t") and unfolded is not None:
            unfolded += line[1:]
            end = offset + len(line)
            continue
        if unfolded is not None:
            yield unfolded, start, end
        unfolded, start, end = line, offset, offset + len(line)
    if unfolded is not None:
        yield unfolded, start, end


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def _parts(line: str) -> tuple[str, list[tuple[str, str]], str]:
    """(NAME, [(PARAM, value)], value) of one unfolded content line; quotes respected."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            head, value = line[:index], line[index + 1 :]
            break
    else:
        head, value = line, ""
    name, *params = _split_params(head)
    pairs = []
    for param in params:
        key, _, raw = param.partition("=")
        pairs.append((key.strip().upper(), raw.strip().strip('"')))
    return name.strip().upper(), pairs, value


def _split_params(head: str) -> list[str]:
    pieces, quoted, start = [], False, 0
    for index, char in enumerate(head):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append(head[start:index])
            start = index + 1
    pieces.append(head[start:])
    return pieces


_BOUNDARY_HEADS = (b"BEG", b"END")


def _marker(line: bytes) -> tuple[str, str]:
    """("BEGIN" or "END", NAME) for a component boundary, else ("", "")."""
    if line[:3].upper() not in _BOUNDARY_HEADS:
        return "", ""  # the cheap test first: most lines are properties
    head, colon, rest = line.partition(b":")
    name = head.strip().upper()
    if colon and name in (b"BEGIN", b"END"):
        return name.decode(), sys.intern(_text(rest).strip().upper())  # one VEVENT str
    return "", ""


def _volatile(line: bytes) -> bool:
    if not line[:12].upper().startswith(_VOLATILE_HEADS):
        return False  # the cheap test first: most lines are not volatile
    return _parts(_text(line))[0] in VOLATILE


def _digest(lines: list[bytes]) -> str:
    kept = (line for line in lines if not _volatile(line))
    return hashlib.sha256(b"\n".join(kept)).hexdigest()


def _block(name: str, entries: list[tuple[bytes, str]], start: int, end: int) -> Block:
    """One top-level component from its lines (unfolded, boundary marker) lying in
    `[start, end)` of the body, in one pass: its key, the TZIDs it uses, and the digest
    of its non-volatile lines."""
    wanted = "UID" if name == "VEVENT" else "TZID" if name == "VTIMEZONE" else ""
    wanted_head = wanted.encode()
    key, depth, nests = "", 0, False
    tzids: set[str] = set()
    hashed: list[bytes] = []
    for unfolded, marker in entries:
        if marker:
            nests = nests or (depth > 0 and marker == "BEGIN" and _marker(unfolded)[1] == "VEVENT")
            depth += 1 if marker == "BEGIN" else -1
            hashed.append(unfolded)
            continue
        head = unfolded[:12].upper()
        if head.startswith(_VOLATILE_HEADS) and _parts(_text(unfolded))[0] in VOLATILE:
            continue
        hashed.append(unfolded)
        zoned = b"=" in unfolded and b"TZID=" in unfolded.upper()  # most lines have no "="
        if not zoned and not (wanted and head.startswith(wanted_head)):
            continue
        prop, params, value = _parts(_text(unfolded))
        tzids.update(raw for param, raw in params if param == "TZID")
        if depth == 1 and wanted and prop == wanted and not key:
            # The parser reads the UID as TEXT (RFC 5545 3.3.11), the TZID as it is.
            key = _UNESCAPE.sub(_unescaped, value) if wanted == "UID" else value.strip()
    return Block(
        name=name,
        start=start,
        end=end,
        key=key,
        tzids=frozenset(tzids) if tzids else _NONE,
        digest=hashlib.sha256(b"\n".join(hashed)).digest(),
        nests_events=nests,
    )


def _unescaped(match: re.Match[str]) -> str:
    char = match.group(1)
    return "\n" if char in "nN" else char


class _Splitter:
    """The state of one pass over a body: the open components and what is collected."""

    def __init__(self, source: Body) -> None:
        self.source = source
        self.calendars: list[VCalendar] = []
        self.header: list[tuple[bytes, int, int]] = []
        self.blocks = Blocks()
        self.current: list[tuple[bytes, str]] = []
        self.opened = 0  # where the open block's BEGIN line starts
        self.path: list[str] = []

    def outside(self, unfolded: bytes, marker: tuple[str, str]) -> bool:
        """A line between calendars: a blank, or the BEGIN of the next; else not plain."""
        if not unfolded.strip(b" \t\x00"):
            return True
        if marker != ("BEGIN", "VCALENDAR"):
            return False
        self.path, self.header, self.blocks = ["VCALENDAR"], [], Blocks()
        return True

    def calendar_line(self, unfolded: bytes, start: int, end: int, marker: str) -> bool:
        if marker != "END":
            self.header.append((unfolded, start, end))
            return True
        self.path.pop()
        digest = _digest([line for line, _, _ in self.header])
        lines = tuple(
            line
            for _, first, last in self.header
            for line in _LINE_ENDS.split(self.source.cut(first, last))
        )
        self.calendars.append(VCalendar(lines, digest, self.blocks, self.source))
        return True

    def line(self, unfolded: bytes, start: int, end: int) -> bool:
        """File one content line; False when the body is not plainly well-formed."""
        marker, name = _marker(unfolded)
        if not self.path:
            return self.outside(unfolded, (marker, name))
        if marker == "BEGIN":
            self.path.append(name)
        if len(self.path) == 1:
            if marker == "END" and name != "VCALENDAR":
                return False
            return self.calendar_line(unfolded, start, end, marker)
        if len(self.path) == 2 and marker == "BEGIN":
            self.current, self.opened = [], start
        self.current.append((unfolded, marker))
        if marker == "END":
            if self.path[-1] != name:
                return False
            self.path.pop()
            if len(self.path) == 1:
                self.blocks.add(_block(name, self.current, self.opened, end))
        return True


_VOLATILE_LINES = re.compile(
    rb"^(?:" + b"|".join(_VOLATILE_HEADS) + rb")[;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*",
    re.IGNORECASE | re.MULTILINE,
)


def stable_digest(data: bytes | Body) -> str:
    """The SHA-256 of a body without its VOLATILE lines (folded continuations too): equal
    for two bodies that differ only in those, without splitting either."""
    digest = StableDigest()
    for piece in [data] if isinstance(data, bytes) else data.pieces():
        digest.update(piece)
    return digest.hexdigest()


class StableDigest:
    """`stable_digest` of a body handed over a piece at a time (a feed read back from
    where it was spooled), without holding more of it than its last logical line. One
    regex pass in C per piece, not a Python loop over every line; the gaps between
    volatile lines are hashed in place, not copied (a body handed over whole is not
    copied at all)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending = b""  # the text after the last place it could be cut

    def update(self, piece: bytes) -> None:
        """Hash what `piece` completes: up to the last line end that no folded
        continuation follows, so no volatile line is ever split between pieces."""
        data = self._pending + piece if self._pending else piece
        cut = _cut(data)
        self._hash(data, cut)
        self._pending = data[cut:]

    def hexdigest(self) -> str:
        """The digest of everything handed over."""
        self._hash(self._pending, len(self._pending))
        self._pending = b""
        return self._digest.hexdigest()

    def _hash(self, data: bytes, end: int) -> None:
        view, start = memoryview(data), 0
        for match in _VOLATILE_LINES.finditer(data, 0, end):
            self._digest.update(view[start : match.start()])
            start = match.end()
        self._digest.update(view[start:end])


def _cut(data: bytes) -> int:
    """Just past the last line end in `data` whose next byte is known and does not fold
    the line on (RFC 5545 3.1); 0 when there is none yet."""
    end = len(data) - 1
    while (found := data.rfind(b"\n", 0, end)) >= 0:
        if data[found + 1] not in b" \t":
            return found + 1
        end = found
    return 0


def split(data: bytes | Body) -> list[VCalendar] | None:
    """The VCALENDARs of a body, or None when it is not plainly a whole calendar."""
    source = data if isinstance(data, Body) else Body(data)
    splitter = _Splitter(source)
    for unfolded, start, end in _logical(source):
        if len(splitter.path) > 1 and unfolded[:3].upper() not in _BOUNDARY_HEADS:
            splitter.current.append((unfolded, ""))  # a property: most lines
            continue
        if not splitter.line(unfolded, start, end):
            return None
    if splitter.path or not splitter.calendars:
        return None  # truncated (no END:VCALENDAR) or empty
    return splitter.calendars


def zones(calendar: VCalendar) -> dict[str, str]:
    """The digest of each TZID's VTIMEZONE block(s), in document order."""
    found: dict[str, list[str]] = {}
    columns = calendar.blocks
    for index in _zone_blocks(calendar):
        found.setdefault(columns.keys[index], []).append(columns.digest(index).hex())
    return {tzid: _combine(digests).hex() for tzid, digests in found.items()}


def _zone_blocks(calendar: VCalendar) -> list[int]:
    return [index for index, name in enumerate(calendar.blocks.names) if name == "VTIMEZONE"]


def _combine(parts: list[str]) -> bytes:
    return hashlib.sha256("\n".join(parts).encode()).digest()


def groups(calendar: VCalendar) -> Groups | None:
    """The VEVENT blocks grouped by UID with their effective digests.

    None when a VEVENT has no usable UID (the parser gives it a synthetic one from its
    content, which no raw-text group can match) or a component holds a VEVENT inside
    it: such a body is parsed whole.
    """
    columns = calendar.blocks
    if columns.nests_events:
        return None
    found = Groups()
    for index, (name, key) in enumerate(zip(columns.names, columns.keys, strict=True)):
        if name != "VEVENT":
            continue
        if not key.strip():
            return None
        found.add_block(key, index)
    timezones = zones(calendar)
    for number, _, indices in found.members():
        tzids = _NONE.union(*(columns.tzids[i] for i in indices))
        parts = [columns.digest(i).hex() for i in indices]
        parts += [f"{tzid}={timezones.get(tzid, '-')}" for tzid in sorted(tzids)]
        parts.append(calendar.header_digest)
        found.seal(number, tzids, _combine(parts))
    return found


def body(calendar: VCalendar, chosen: Collection[Group], every_zone: bool = False) -> bytes:
    """A small VCALENDAR: the header, the VTIMEZONEs the groups use (or all of them),
    the groups' blocks."""
    tzids = frozenset().union(*(group.tzids for group in chosen))
    columns = calendar.blocks
    zoned = [i for i in _zone_blocks(calendar) if every_zone or columns.keys[i] in tzids]
    indices = sorted({index for group in chosen for index in group.blocks}.union(zoned))
    parts = [b"BEGIN:VCALENDAR", *calendar.header]
    parts += [calendar.lines(columns.starts[i], columns.ends[i]) for i in indices]
    parts += [b"END:VCALENDAR", b""]
    return b"\r\n".join(parts)
