"""Keeping the C heap's freed memory while large results stream (glibc only).

Each batch of a streamed result allocates and frees a few megabytes (asyncpg
Records, numpy columns, the encoded bytes). glibc hands the top of its heap back
to the kernel as soon as it is free, so the next batch faults the same pages in
again, zero-filled: about 50,000 page faults and 0.1-0.2 s of CPU (mostly system
time) per 1M BINARY2 rows. A top pad of 16 MB keeps that memory in the heap
(measured: 8 MB was not enough, 12 MB nearly so); the process keeps at most that
much more resident than it uses.

Setting any such parameter also turns off glibc's dynamic mmap threshold, which
would otherwise rise past the sizes a process frees. It stays at 128 KB, and every
larger buffer is mapped and unmapped again per batch: the columnar path's Arrow
buffers and numpy arrays (about 1 MB each) cost 49,000 page faults and 0.15-0.2 s
of system time per 1M rows, measured; 10M rows took 12 s instead of 8.6 s. The
threshold is therefore set too, to ``MMAP_THRESHOLD``.
"""

from __future__ import annotations

import ctypes
import functools

__all__ = ["keep_heap_pad", "release_heap"]

#: glibc's mallopt parameter numbers for M_TOP_PAD and M_MMAP_THRESHOLD (malloc.h).
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
HEAP_PAD = 16 * 1024 * 1024
#: Allocations from this size on get their own mapping (a batch's are below it).
MMAP_THRESHOLD = 8 * 1024 * 1024


@functools.cache
def keep_heap_pad() -> bool:
    """Ask glibc (once per process) to keep ``HEAP_PAD`` bytes at the heap's top
    and to serve allocations below ``MMAP_THRESHOLD`` from the heap.

    Returns whether the allocator took the settings; elsewhere (no glibc) nothing
    changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    padded = bool(mallopt(_M_TOP_PAD, HEAP_PAD))
    return padded and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_heap() -> bool:
    """Give the heap's free memory back to the kernel (glibc's ``malloc_trim``)
    once a job that streamed a large result is over (:func:`keep_heap_pad` was
    called): a warm runner then holds what it uses between jobs, not the pad
    and the fragments of its largest job (measured: a runner stayed at 79 MB
    after a 1M-row TABLEDATA job, 57 MB after the trim). Returns whether
    memory was released; without glibc nothing changes."""
    if not keep_heap_pad.cache_info().currsize:
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
