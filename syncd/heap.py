"""Handing freed memory back to the operating system after a route run that planned,
and one allocator arena for every thread.

A run over a big calendar builds and drops hundreds of thousands of objects (a parse in
a worker thread, the plan's views). CPython returns whole empty arenas, but the C
allocator keeps the free space between live blocks, and a worker thread's allocations
live in an arena of their own that is never trimmed by itself: a daemon that synced a
10,000-event feed once held about 9 MiB more than it used, for months. glibc's
`malloc_trim(0)` releases the free pages of every arena (it walks them all since glibc
2.8). Elsewhere (musl, macOS) there is nothing to call and nothing is done.

glibc also gives each thread that allocates an arena of its own (up to eight a core):
the worker thread that parses a changed feed grows one while the main thread's heap
holds free space the parse could have used, and a re-sync's peak is both. One arena
(`mallopt(M_ARENA_MAX, 1)`, asked before the first thread starts) serves every thread
from the same free space; most allocations are made under the interpreter's lock anyway.
Measured on the 10,000-event bench feed (`bench/daemon_rss.py`): the peak of a re-sync
of 1% changed events fell from 85 to 81 MiB.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none. The symbols the
    process already has (`CDLL(None)`): `ctypes.util.find_library` would start
    `ldconfig` in a subprocess."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


M_ARENA_MAX = -8  # glibc's <malloc.h>


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt`, or None where the C library has none."""
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # type: ignore[attr-defined]
    mallopt.restype = ctypes.c_int  # type: ignore[attr-defined]
    return mallopt


def share_one_arena() -> bool:
    """Have every thread allocate from the main arena (call before threads start);
    whether the C library took it."""
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def release_free_memory() -> bool:
    """Give the allocator's free pages back to the OS; whether anything could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
