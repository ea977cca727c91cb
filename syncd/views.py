"""The plan's view of each record, kept between route runs while the record is the
very same object (the daemon's kept listings hand the same objects until a side
changes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from syncd import routing
from syncd.model import Record, Window
from syncd.plan import Item


class Views:
    """The plan's view of each record, kept while the record is the very same object.

    A kept listing hands the same record objects run after run, so an unchanged record
    costs only its window check, not the route's rules, a projection and a fingerprint.
    Views live for two runs: what the last run saw, and what this one has used."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[Record, Item | routing.NoOwner | None]] = {}
        self.now: dict[int, tuple[Record, Item | routing.NoOwner | None]] = {}

    def next_run(self) -> None:
        """Forget what no run has used since the one before."""
        self.last, self.now = self.now, {}

    def view(
        self, record: Record, window: Window, make: Callable[[Record, Window], Item | None]
    ) -> Item | None:
        """The kept view of `record` (its window flag brought up to date), or a new one."""
        kept = self.now.get(id(record)) or self.last.get(id(record))
        if kept is None or kept[0] is not record:
            try:
                kept = (record, make(record, window))
            except routing.NoOwner as exc:
                kept = (record, exc)
        self.now[id(record)] = kept
        seen = kept[1]
        if isinstance(seen, routing.NoOwner):
            raise seen
        if seen is None or seen.in_window == record.in_window(window):
            return seen
        return replace(seen, in_window=not seen.in_window)
