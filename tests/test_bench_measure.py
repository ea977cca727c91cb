"""The benches' process figures are the command's own (bench/first_sync.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def first_sync() -> Iterator[object]:
    sys.path.insert(0, str(BENCH))
    try:
        import first_sync

        yield first_sync
    finally:
        sys.path.remove(str(BENCH))


def test_a_command_started_by_a_big_process_reports_its_own_peak_rss(first_sync) -> None:
    """wait4() on a child started straight from the bench reported the bench's peak RSS
    (Linux folds the parent's high-water mark into the child's on exec): vdirsyncer and
    `syncd sync` were "measured" at whatever the bench process held at the time."""
    held = bytearray(256 * 2**20)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident in this process
    child = [sys.executable, "-S", "-c", "block = bytearray(32 * 2**20)"]
    wall, cpu, rss, code = first_sync.measured_run(child, subprocess.DEVNULL)
    assert code == 0 and wall > 0 and cpu > 0
    assert 32 < rss < 128  # its 32 MiB and an interpreter, not this process's 256 MiB
    del held  # alive, and resident, until the child was measured
