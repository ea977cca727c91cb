"""Freed memory goes back to the OS after a run that planned (`syncd.heap`)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from syncd import cli, heap
from syncd.config import load_config
from syncd.daemon import Daemon, RouteJob
from syncd.state import State
from tests.builders import CountingRunner

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


async def test_the_daemon_releases_memory_after_every_run_skipped_ones_too(tmp_path, monkeypatch):
    released: list[bool] = []

    def release() -> bool:
        released.append(True)
        return True

    monkeypatch.setattr(heap, "release_free_memory", release)
    config = tmp_path / "config.yaml"
    config.write_text("daemon: {first_sync: inline}\n")  # the runner stands in this process
    daemon = Daemon(config)
    daemon.config = load_config(config)
    daemon.state = State(tmp_path / "state.db")
    runner = CountingRunner()
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


ARENAS_AFTER_A_THREAD = """
import ctypes, sys, tempfile, threading
from syncd import heap
if sys.argv[1] == "one" and not heap.share_one_arena():
    sys.exit("mallopt refused")
held = []
thread = threading.Thread(target=lambda: held.extend(bytes(4096) for _ in range(256)))
thread.start()
thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
with tempfile.NamedTemporaryFile("r") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(report.read().count("<heap nr="))
"""


def arenas_after_a_thread(mode: str) -> int:
    """The allocator arenas of a fresh interpreter after one thread allocated (glibc's
    `malloc_info` lists one `<heap>` an arena)."""
    argv = [sys.executable, "-c", ARENAS_AFTER_A_THREAD, mode]
    return int(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(heap._mallopt() is None, reason="no mallopt (not glibc)")
def test_a_worker_threads_allocations_share_the_main_arena() -> None:
    assert arenas_after_a_thread("default") > 1  # what the test relies on: a thread's own
    assert arenas_after_a_thread("one") == 1


def test_a_command_shares_one_arena_before_it_runs(tmp_path, monkeypatch) -> None:
    asked: list[str] = []

    def share() -> bool:
        asked.append("arena")
        return True

    def dispatch(args: argparse.Namespace) -> int:
        asked.append(args.command)
        return 0

    monkeypatch.setattr(heap, "share_one_arena", share)
    monkeypatch.setattr(cli, "_dispatch", dispatch)
    assert cli.main(["-c", str(tmp_path / "config.yaml"), "run"]) == 0
    assert asked == ["arena", "run"]
