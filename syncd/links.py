"""A route's links as a planning run first reads them: a few columns, not `Link` objects.

A run that plans anything reads every link of its route, to tell which UIDs changed
since their plan last came out empty (`partition`). What it needs of a link it will not
plan is little: its two keys (which UID a vendor record belongs to; whether the link's
records are both listed), whether it is marked missing, its original start (whether it
lies in the window) and a hash of the whole link (whether it changed). The `Link`
objects of the UIDs it does plan are loaded when asked. The 10,000 links of the bench
route as objects were 4.7 MiB of every re-sync's peak.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Callable, Iterable, Sequence

from syncd.model import Link, Window, calendar_uid
from syncd.packed import instant

_NO_ANCHOR = -(2**63)  # the anchor column's mark for a link without an original start
Loader = Callable[[Sequence[str]], tuple[Link, ...]]
"""The links with these calendar keys, in that order (a state read, or links at hand)."""


class LinkIndex:
    """Every link of a route, as columns in the state's order (by calendar key)."""

    __slots__ = ("_anchors", "_load", "_missing", "_tokens", "cal_keys", "uids", "vendor_keys")

    def __init__(self, load: Loader) -> None:
        self.cal_keys: list[str] = []
        self.uids: list[str] = []  # the UID of each calendar key, one string a UID's run
        self.vendor_keys: list[str] = []
        self._missing: dict[int, str] = {}  # row -> the side it is missing on, when it is
        self._anchors = array("q")  # row -> its original start (`packed.instant`)
        self._tokens = array("q")  # row -> hash of the whole link
        self._load = load

    @classmethod
    def of(cls, links: Iterable[Link]) -> LinkIndex:
        """An index of links at hand (a test, a caller holding them already)."""
        held = {link.cal_key: link for link in links}
        index = cls(lambda keys: tuple(held[key] for key in keys if key in held))
        for link in held.values():
            index.add(link)
        return index

    def add(self, link: Link) -> None:
        """Note one more link (the next in the state's order)."""
        row = len(self.cal_keys)
        uid = calendar_uid(link.cal_key)
        if self.uids and self.uids[-1] == uid:
            uid = self.uids[-1]  # a series' links come together: one string for all of them
        self.cal_keys.append(link.cal_key)
        self.uids.append(uid)
        self.vendor_keys.append(link.vendor_key)
        self._tokens.append(hash(link))
        self._anchors.append(_NO_ANCHOR if link.anchor is None else instant(link.anchor))
        if link.missing:
            self._missing[row] = link.missing

    def missing(self, row: int) -> str:
        """The side the link is marked missing on, "" when it is not."""
        return self._missing.get(row, "")

    def token(self, row: int, window: Window) -> tuple[int, bool]:
        """What a UID's signature holds of one link: its hash, and whether its original
        start lies in the window (no original start counts as inside)."""
        anchor, (start, end) = self._anchors[row], _edges(window)
        return self._tokens[row], anchor == _NO_ANCHOR or start <= anchor < end

    def load(self, rows: Iterable[int]) -> tuple[Link, ...]:
        """The `Link` objects of these rows, in that order."""
        return self._load([self.cal_keys[row] for row in rows])

    def __len__(self) -> int:
        return len(self.cal_keys)


@functools.lru_cache(maxsize=4)
def _edges(window: Window) -> tuple[int, int]:
    """A window's edges as instants: asked once a link every run, for one window."""
    return instant(window.start), instant(window.end)
