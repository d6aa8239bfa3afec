"""The byte gate of the row paths: batches sized by the bytes seen per row, rows
cut before a value over its limit, the result limit counted."""

from __future__ import annotations

from taprunner.formats.fields import FieldSpec
from taprunner.query.bytelimits import (
    BATCH_BYTES,
    FIRST_ROWS,
    MAX_ROWS,
    ByteGate,
    ResultLimits,
)

FIELDS = [
    FieldSpec("id", "long"),
    FieldSpec("s", "unicodeChar", "*"),
    FieldSpec("v", "double", "*"),
]
ROOMY = ResultLimits(value_bytes=10**6, result_bytes=10**12)


def test_the_next_fetch_holds_about_a_batch_of_bytes() -> None:
    gate = ByteGate(FIELDS, ROOMY)
    assert gate.rows == FIRST_ROWS
    small = [(i, "x", [1.0]) for i in range(FIRST_ROWS)]  # 8 + 1 + 8 bytes
    assert gate.admit(small) == (small, 17 * FIRST_ROWS)
    assert gate.rows == MAX_ROWS
    large = [(i, "x" * 100_000, None) for i in range(10)]
    rows, estimated = gate.admit(large)
    assert rows == large and estimated == 10 * 100_008
    assert gate.rows == BATCH_BYTES // 100_008
    assert gate.cut is None


def test_rows_from_the_first_value_over_the_limit_are_cut() -> None:
    gate = ByteGate(FIELDS, ResultLimits(value_bytes=800, result_bytes=10**12))
    batch = [(1, "a", None), (2, None, [0.0] * 50), (3, "b", [0.0] * 101), (4, "", [])]
    rows, _ = gate.admit(batch)
    assert rows == batch[:2]
    assert (
        gate.cut == "result cut before a value larger than 800 bytes (tap_value_bytes)"
    )


def test_the_result_limit_is_counted_and_sizes_the_last_fetches() -> None:
    gate = ByteGate(FIELDS, ResultLimits(10**6, 1000, "tap_sync_bytes"))
    gate.admit([(i, "xx", None) for i in range(10)])  # 10 bytes a row
    assert gate.rows == 100 - 10 + 1  # what the result may still take
    assert not gate.wrote(999)
    assert gate.wrote(1)
    assert gate.cut is None  # no rows left: complete
    gate.stop()
    assert gate.cut == "result cut at 1000 bytes by tap_sync_bytes (1000 bytes)"
