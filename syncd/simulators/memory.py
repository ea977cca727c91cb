"""An in-process side: the `Adapter` protocol over a dict of key -> (version, Event).

vdirsyncer's MemoryStorage idea: the whole contract in a few lines, both the fake the
sync tests drive and runnable documentation of what an adapter must do. It plays a
calendar (every field, `windowed=False`: single events are listed even outside the
window, as calendar files list them) or a vendor (a `project` that keeps fewer fields).
Faults are explicit switches, never monkeypatching. `put` and `remove` are the outside
world editing this side: they bump versions but are not counted as syncd's writes.
Nothing on the sync path imports this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import replace

from syncd import paged
from syncd.adapter import Caps
from syncd.errors import Gone, Rejected, Unavailable, VersionMismatch
from syncd.model import Event, Listing, Record, Window, calendar_uid
from syncd.packed import GroupedRecords, Packed


def _identity(event: Event) -> Event:
    return event


class MemoryAdapter:
    """One side held in memory, with counters of syncd's writes and fault switches."""

    def __init__(
        self,
        caps: Caps | None = None,
        *,
        prefix: str = "",
        project: Callable[[Event], Event] = _identity,
        windowed: bool = True,
        fail_lists: int = 0,
        incomplete_lists: int = 0,
        reject: Collection[str] = (),
        fail_writes: bool = False,
        packed: bool = False,
        paged: bool = False,
    ) -> None:
        self.caps = caps or Caps()
        self.prefix = prefix  # set: creates make their own keys `<prefix><n>` (server ids)
        self._project = project
        self.windowed = windowed  # False: list every record, whatever the window
        self.fail_lists = fail_lists  # the next N listings raise `Unavailable`
        self.incomplete_lists = incomplete_lists  # the next N listings drop every other record
        self.reject = set(reject)  # keys whose writes raise `Rejected`
        self.fail_writes = fail_writes  # every write raises `Unavailable`
        self.packed = packed  # list packed UID groups (`syncd.packed`), as a feed or file does
        self.paged = paged  # list packed pages (`syncd.paged`), as a vendor does
        # key -> what another client writes just before syncd's next write of it, which
        # then answers `VersionMismatch` (HTTP 412); `None`: every write of it races
        self.races: dict[str, Event | None] = {}
        self.items: dict[str, tuple[str, Event]] = {}
        self.created = self.updated = self.deleted = 0
        self.listings = 0
        self._clock = 0

    @property
    def writes(self) -> int:
        """How many writes syncd made here (creates, updates and deletes)."""
        return self.created + self.updated + self.deleted

    def project(self, event: Event) -> Event:
        """The event as this side holds it."""
        return self._project(event)

    # --- the outside world ----------------------------------------------------------------

    def put(self, key: str, event: Event) -> Record:
        """Store `event` under `key` as somebody else would (not counted as syncd's)."""
        self._clock += 1
        self.items[key] = (str(self._clock), self.project(event))
        return self._record(key)

    def records(self) -> dict[str, Record]:
        """Everything this side holds now, by key."""
        return {key: self._record(key) for key in sorted(self.items)}

    def remove(self, key: str) -> None:
        """Delete `key` as somebody else would (not counted as syncd's)."""
        self.items.pop(key, None)

    # --- the Adapter protocol -------------------------------------------------------------

    async def list(self, window: Window) -> Listing:
        """Every record inside the window (every record when not `windowed`)."""
        self.listings += 1
        if self.fail_lists:
            self.fail_lists -= 1
            raise Unavailable("memory: listing failed (fault switch)")
        shown = tuple(
            r for r in self.records().values() if not self.windowed or r.in_window(window)
        )
        if self.incomplete_lists:
            self.incomplete_lists -= 1
            return self._listing(shown[::2], complete=False)
        return self._listing(shown)

    def _listing(self, shown: tuple[Record, ...], complete: bool = True) -> Listing:
        if self.paged:
            return Listing(paged.packed(shown), complete=complete)
        if not self.packed:
            return Listing(shown, complete=complete)
        by_uid: dict[str, list[Record]] = defaultdict(list)
        for record in sorted(shown, key=lambda record: record.key):
            by_uid[calendar_uid(record.key)].append(record)
        groups = {uid: Packed.of(records) for uid, records in by_uid.items()}
        return Listing(GroupedRecords(groups), complete=complete)

    async def get(self, key: str) -> Record:
        """One record; `Gone` when there is none."""
        if key not in self.items:
            raise Gone(f"memory: no record {key}", key=key)
        return self._record(key)

    async def create(self, key: str, event: Event) -> Record:
        """Store a new record (or replace one: creates are upserts here)."""
        self._check_write(key)
        if self.prefix:
            key = f"{self.prefix}{self._clock + 1}"
        self.created += 1
        return self.put(key, event)

    async def update(self, record: Record, event: Event, changed: frozenset[str]) -> Record:
        """Write `event` over the record; with `partial_update`, only the `changed` fields."""
        self._check_write(record.key)
        if record.key not in self.items:
            raise Gone(f"memory: no record {record.key}", key=record.key)
        if self.caps.partial_update:
            current = self.items[record.key][1]
            event = replace(current, **{name: getattr(event, name) for name in changed})
        self.updated += 1
        return self.put(record.key, event)

    async def delete(self, record: Record) -> None:
        """Delete the record; one already gone is fine."""
        self._check_write(record.key, deleting=True)
        self.deleted += 1
        self.remove(record.key)

    def _check_write(self, key: str, *, deleting: bool = False) -> None:
        # A write to a side the caps forbid is a bug in the caller, not a vendor refusal.
        assert self.caps.writable, f"memory: write to a read-only side ({key})"
        assert self.caps.deletable or not deleting, f"memory: delete on a no-delete side ({key})"
        if self.fail_writes:
            raise Unavailable(f"memory: write of {key} failed (fault switch)", key=key)
        if key in self.reject:
            raise Rejected(f"memory: write of {key} refused (fault switch)", key=key)
        if key in self.races:
            theirs = self.races[key]
            if theirs is not None:
                del self.races[key]
                self.put(key, theirs)
            raise VersionMismatch(f"memory: {key} changed since it was listed", key=key)

    def _record(self, key: str) -> Record:
        version, event = self.items[key]
        return Record(key, event, version)
