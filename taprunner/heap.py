"""Keeping the C heap's freed memory while large results stream (glibc only).

Each batch of a streamed result allocates and frees a few megabytes (asyncpg
Records, numpy columns, the encoded bytes). glibc hands the top of its heap back
to the kernel as soon as it is free, so the next batch faults the same pages in
again, zero-filled: about 50,000 page faults and 0.1-0.2 s of CPU (mostly system
time) per 1M BINARY2 rows. A top pad of 16 MB keeps that memory in the heap
(measured: 8 MB was not enough, 12 MB nearly so); the process keeps at most that
much more resident than it uses.
"""

from __future__ import annotations

import ctypes
import functools

__all__ = ["keep_heap_pad"]

#: glibc's mallopt parameter number for M_TOP_PAD (malloc.h).
_M_TOP_PAD = -2
HEAP_PAD = 16 * 1024 * 1024


@functools.cache
def keep_heap_pad() -> bool:
    """Ask glibc (once per process) to keep ``HEAP_PAD`` bytes at the heap's top.

    Returns whether the allocator took the setting; elsewhere (no glibc) nothing
    changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TOP_PAD, HEAP_PAD))
