"""Freed memory goes back to the OS after a run that planned (`syncd.heap`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from syncd import heap
from syncd.daemon import Daemon, RouteJob
from syncd.runner import RunReport
from syncd.state import State

PIECE = 64 * 1024  # under glibc's mmap threshold: from the heap, as a parse's strings are


def resident_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split("kB")[0]) / 1024


@pytest.mark.skipif(not heap.release_free_memory(), reason="no malloc_trim (not glibc)")
def test_freed_heap_between_live_blocks_is_released() -> None:
    pieces = [b"x" * PIECE for _ in range(1024)]  # 64 MiB touched
    pin = b"y" * PIECE  # above them: the heap's top cannot shrink by itself
    del pieces
    held = resident_mib()
    assert heap.release_free_memory()
    assert held - resident_mib() > 32  # most of the 64 MiB freed below `pin` went back
    del pin  # alive until the memory under it was measured


class Runner:
    """Stands for a route's runner: each run succeeds, and is counted."""

    runs = 0

    async def run(self, trigger: str) -> RunReport:
        self.runs += 1
        return RunReport("r", "ok")


async def test_the_daemon_releases_memory_after_every_run_skipped_ones_too(tmp_path, monkeypatch):
    released: list[bool] = []

    def release() -> bool:
        released.append(True)
        return True

    monkeypatch.setattr(heap, "release_free_memory", release)
    daemon = Daemon(tmp_path / "config.yaml")
    daemon.state = State(tmp_path / "state.db")
    runner = Runner()
    job = RouteJob("r", runner, timedelta(minutes=1), ())  # type: ignore[arg-type]
    daemon.jobs["r"] = job
    other = State(tmp_path / "state.db")
    try:
        await daemon._once(job)
        with other.locked("r", "syncd sync pid 1"):  # this run is skipped: the route is busy
            await daemon._once(job)
        await daemon._once(job)
        assert (runner.runs, len(released)) == (2, 3)
    finally:
        other.close()
        daemon.state.close()
