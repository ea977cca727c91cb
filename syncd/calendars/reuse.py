"""Not parsing what did not change (issue 6's first lever).

Parsing is the dominant cost (about 0.4 ms per VEVENT). An expansion is kept with the
SHA-256 of the bytes it came from and the window it covers, which is a day wider than
asked; while the bytes are the same and the asked window lies inside, the kept listing
is returned as it is. A feed that answers 304, or serves the same body without
validators, and an unchanged file therefore cost a hash, not a parse. Records of the
wider window that lie outside the asked one are harmless: the runner judges each
record against the route's own window.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from syncd.errors import Malformed
from syncd.ical import Limits, read_calendar
from syncd.model import Listing, Window

SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Kept:
    """One source's last expansion: the digest of its bytes and the window it covers."""

    digest: str
    covers: Window
    listing: Listing


@dataclass
class Expansions:
    """The last expansion of each source (a feed, a file) of one calendar."""

    calendar: str
    timezone: str = "UTC"
    limits: Limits = field(default_factory=Limits)
    kept: dict[str, Kept] = field(default_factory=dict)
    parses: int = 0  # how many times bytes were really parsed (for tests and benches)

    async def listing(self, source: str, data: bytes, window: Window) -> Listing:
        """The listing of `data` inside `window`, parsed only when something changed."""
        digest = hashlib.sha256(data).hexdigest()
        kept = self.kept.get(source)
        if kept and kept.digest == digest and _inside(window, kept.covers):
            return kept.listing
        covers = Window(window.start, window.end + SLACK)
        listing = await asyncio.to_thread(self._parse, source, data, covers)
        self.kept[source] = Kept(digest, covers, listing)
        return listing

    def _parse(self, source: str, data: bytes, covers: Window) -> Listing:
        self.parses += 1
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
        return Listing(expansion.records, expansion.problems)

    def forget(self) -> None:
        """Parse everything again next time (a full resync)."""
        self.kept.clear()


def _inside(window: Window, covers: Window) -> bool:
    return covers.start <= window.start and window.end <= covers.end
