"""Periodic triggers for the daemon: the only module that imports apscheduler.

apscheduler 3.11's `AsyncIOScheduler` with its in-memory job store: jobs are never
persisted, the config is the source of truth. A job here only *asks* for a run; the
route's own guard (in `daemon.py`) makes sure runs never overlap and coalesces requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

# apscheduler logs every job it runs at INFO: a line per poll. syncd logs its own
# summary per route run instead (log on transitions, not on every poll).
logging.getLogger("apscheduler").setLevel(logging.WARNING)


class Schedule:
    """Interval jobs by id, with jitter, that can be pulled forward or pushed back."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        """Start firing jobs (on the running event loop)."""
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing jobs. apscheduler cancels the job coroutines still running, so a
        job that must finish runs its work in a task of its own."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def every(
        self,
        job_id: str,
        interval: timedelta,
        func: Callable[[], Awaitable[None]],
        *,
        first_in: timedelta,
        jitter: timedelta,
    ) -> None:
        """Call `func` every `interval` (± `jitter`), the first time after `first_in`."""
        self._scheduler.add_job(
            func,
            IntervalTrigger(seconds=interval.total_seconds(), jitter=jitter.total_seconds()),
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=_now() + first_in,
        )

    def next_in(self, job_id: str, delay: timedelta) -> None:
        """Move the job's next call to `delay` from now (backoff, or a resync now)."""
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.modify_job(job_id, next_run_time=_now() + delay)

    def remove(self, job_id: str) -> None:
        """Stop calling the job."""
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)

    def job_ids(self) -> set[str]:
        """The ids of the scheduled jobs."""
        return {job.id for job in self._scheduler.get_jobs()}


def _now() -> datetime:
    return datetime.now(UTC)
