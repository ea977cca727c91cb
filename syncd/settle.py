"""What a route's last run settled on, so that the next run may skip planning.

In the daemon each side is wrapped in `Polled`, which hands back the very listing
object it gave before until the side changes, with syncd's own writes folded in. A run
that planned nothing, or whose every write went through, leaves the route settled on
those listings; a later run that gets the same two objects, while no other process
wrote the state, has nothing to plan (a quiet 304, a vendor poll that changed nothing).
The window moves, so a settled route is planned again after `QUIET_FOR` all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from syncd.adapter import Adapter, KeepsListing
from syncd.model import Listing
from syncd.plan import Op, SideName

QUIET_FOR = 600.0  # seconds an unchanged route skips planning
UNSETTLED = ("quarantined", "parked", "unavailable", "raced", "marked_missing")
"""Counts after which a run's sides are not settled: the next run must plan again."""
SIDES: tuple[SideName, SideName] = ("calendar", "vendor")


@dataclass(frozen=True)
class Settled:
    """The two listings a route settled on, the state's write count then, and when."""

    calendar: Listing
    vendor: Listing
    others_wrote: int
    at: float


@dataclass
class Settling:
    """One route's settled listings and the bookkeeping that decides them."""

    others_wrote: Callable[[], int]  # the state's count of other processes' writes
    last: Settled | None = None
    _written_before: tuple[int, int] = (0, 0)
    _fetches: dict[str, int] = field(default_factory=dict)

    def quiet(self, calendar: Listing, vendor: Listing) -> bool:
        """Nothing can have changed: both listings are the very ones the route settled
        on, no other process wrote the state since, and that was recently."""
        last = self.last
        return (
            last is not None
            and calendar is last.calendar
            and vendor is last.vendor
            and self.others_wrote() == last.others_wrote
            and time.monotonic() - last.at < QUIET_FOR
        )

    def looked_again(self, side: Adapter, name: SideName) -> bool:
        """Whether this run's listing of a side is a new look at it, not the listing the
        daemon kept from the run before: only a new one can confirm an absence that
        needs a second listing."""
        if not isinstance(side, KeepsListing):
            return True  # listed afresh every run
        before, self._fetches[name] = self._fetches.get(name), side.fetches
        return before is None or side.fetches != before

    def before_writes(self, calendar: Adapter, vendor: Adapter) -> None:
        """Note how many writes each side's kept listing holds before this run's."""
        self._written_before = (written(calendar), written(vendor))

    def forget(self) -> None:
        """Settle on nothing: the next run plans (this one held deletes, failed, or
        waits on an absence's confirmation)."""
        self.last = None

    def settle(
        self,
        listings: tuple[Listing, Listing],
        sides: tuple[Adapter, Adapter],
        ops: tuple[Op, ...],
        counts: Mapping[str, int],
    ) -> None:
        """Settle on the listings this run planned nothing from; or, when every op went
        through, on those listings with this run's writes in them, the ones a written
        side keeps now (planning them again finds nothing to do: the state recorded
        what each write read back)."""
        self.last = None
        if any(counts.get(name) for name in UNSETTLED):
            return
        written_sides = {op.side for op in ops if op.writes}
        now = tuple(
            kept(side) if name in written_sides else listing
            for name, side, listing in zip(SIDES, sides, listings, strict=True)
        )
        if now[0] is None or now[1] is None or not self._only_ours(sides, ops):
            return
        self.last = Settled(now[0], now[1], self.others_wrote(), time.monotonic())

    def _only_ours(self, sides: tuple[Adapter, Adapter], ops: tuple[Op, ...]) -> bool:
        """Whether the kept listings hold this run's writes and nobody else's (a route
        sharing the calendar may have written it meanwhile: its writes were never
        planned against here)."""
        after = tuple(written(side) for side in sides)
        ours = tuple(sum(1 for op in ops if op.writes and op.side == s) for s in SIDES)
        done = tuple(a - b for a, b in zip(after, self._written_before, strict=True))
        return done == ours


def written(side: Adapter) -> int:
    """Writes a side's kept listing holds (0 for a side that keeps none)."""
    return side.written if isinstance(side, KeepsListing) else 0


def kept(side: Adapter) -> Listing | None:
    """The listing a side keeps now, None for a side that keeps none."""
    return side.kept() if isinstance(side, KeepsListing) else None
