"""The heap settings for streamed results (taprunner.query.heap), in a fresh process."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource, sys
import numpy as np
from taprunner.query.heap import keep_heap_pad
if sys.argv[1] == "pad" and not keep_heap_pad():
    print("unsupported")
    raise SystemExit
for _ in range(5):  # warm up: the heap grows once
    np.ones(1 << 20, np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):  # a batch's worth of 1 MB buffers, allocated and freed
    np.ones(1 << 20, np.uint8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_batch_buffers_stay_in_the_heap() -> None:
    """With the pad set, 1 MB buffers are reused: no page faults per batch (glibc
    maps each one afresh when only M_TOP_PAD is set, 256 faults per buffer)."""
    faults = _faults("pad")
    if faults == "unsupported":  # not glibc: nothing to check
        return
    assert int(faults) < 2000, faults
