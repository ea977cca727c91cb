"""A process's resident memory from /proc, for the benches (Linux; elsewhere a fallback).

Light on purpose: the route worker imports it, and whatever it imports is counted in
the worker's figures.
"""

from __future__ import annotations

import resource
from pathlib import Path


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Reset a process's RSS high-water mark (Linux 4.0+); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def status_mib(field: str, pid: int | str = "self") -> float | None:
    """A memory line of /proc/PID/status (VmRSS, VmHWM: the peak since the last reset)
    in MiB; None where there is no such file or line."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak RSS since the last reset, else its ru_maxrss."""
    peak = status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
