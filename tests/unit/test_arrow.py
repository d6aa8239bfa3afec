"""Arrow batches pack to the same binary rows as Python rows (taprunner.formats.arrow).

The batches are real Arrow arrays built with nanoarrow, including what the
PostgreSQL driver never produces but Arrow allows: sliced batches (a parent
offset), children with their own offsets, and invalid UTF-8.
"""

from __future__ import annotations

import random
from typing import Any

import nanoarrow as na
import numpy as np
import pytest

from taprunner.formats.arrow import pack_batch
from taprunner.formats.binpack import BinaryPacker
from taprunner.formats.fields import FieldSpec

COLUMNS: list[tuple[FieldSpec, Any]] = [
    (FieldSpec("s", "short"), na.int16()),
    (FieldSpec("i", "int"), na.int32()),
    (FieldSpec("l", "long"), na.int64()),
    (FieldSpec("f", "float"), na.float32()),
    (FieldSpec("d", "double"), na.float64()),
    (FieldSpec("b", "boolean"), na.bool_()),
    (FieldSpec("u", "unicodeChar", "*"), na.string()),
    (FieldSpec("c", "char", "*"), na.string()),
]
TEXTS = ["", "a", "plain", "é", "héllo 😀 ☃", "日本", "x" * 40, "\U0001f600\U0001f601"]


def _value(field: FieldSpec, rnd: random.Random) -> object:
    if rnd.random() < 0.2:
        return None
    kind = field.datatype
    if kind == "short":
        return rnd.choice([-(2**15), -1, 0, 1, 2**15 - 1])
    if kind == "int":
        return rnd.randint(-(2**31), 2**31 - 1)
    if kind == "long":
        return rnd.randint(-(2**63) + 1, 2**63 - 1)
    if kind in ("float", "double"):
        return rnd.choice([0.0, -0.5, 1.25, float("inf"), -float("inf"), float("nan")])
    if kind == "boolean":
        return rnd.random() < 0.5
    text = rnd.choice(TEXTS)
    return text.encode("ascii", "ignore").decode() if kind == "char" else text


def _table(
    columns: list[tuple[FieldSpec, Any]], n: int, seed: int
) -> tuple[list[tuple[object, ...]], list[list[object]]]:
    rnd = random.Random(seed)
    values = [[_value(field, rnd) for _ in range(n)] for field, _ in columns]
    return list(zip(*values, strict=True)), values


def _batch(columns: list[tuple[FieldSpec, Any]], values: list[list[object]]) -> Any:
    children = [na.c_array(v, t) for (_, t), v in zip(columns, values, strict=True)]
    schema = na.struct({field.name: t for field, t in columns})
    return na.c_array_from_buffers(
        schema, length=len(values[0]), buffers=[None], children=children
    )


@pytest.mark.parametrize("binary2", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_same_bytes_as_the_row_path(binary2: bool, seed: int) -> None:
    fields = [field for field, _ in COLUMNS]
    rows, values = _table(COLUMNS, 257, seed)
    packer = BinaryPacker(fields, binary2=binary2)
    expected = packer.pack(rows).tobytes()
    assert pack_batch(packer, _batch(COLUMNS, values)).tobytes() == expected


def test_sliced_batches_limits_and_child_offsets() -> None:
    fields = [field for field, _ in COLUMNS]
    rows, values = _table(COLUMNS, 300, seed=42)
    packer = BinaryPacker(fields, binary2=True)
    batch = _batch(COLUMNS, values)
    sliced = batch[37:250]  # a parent offset of 37
    assert sliced.offset == 37
    got = pack_batch(packer, sliced, limit=100).tobytes()
    assert got == packer.pack(rows[37:137]).tobytes()
    # children that start at different offsets of their own buffers
    children = [
        na.c_array(v, t)[k : k + 200]
        for k, ((_, t), v) in enumerate(zip(COLUMNS, values, strict=True))
    ]
    schema = na.struct({field.name: t for field, t in COLUMNS})
    shifted = na.c_array_from_buffers(
        schema, length=200, buffers=[None], children=children
    )
    expected_rows = [
        tuple(values[k][k + r] for k in range(len(COLUMNS))) for r in range(200)
    ]
    got = pack_batch(packer, shifted).tobytes()
    assert got == packer.pack(expected_rows).tobytes()


def test_invalid_utf8_is_replaced_as_python_decodes_it() -> None:
    """Only a non-UTF-8 database (SQL_ASCII) can send such bytes."""
    field = FieldSpec("u", "unicodeChar", "*")
    data = b"ok\xff\xfeend\xc3\xa9"
    offsets = np.array([0, 2, 4, 7, 9], np.int32).tobytes()
    child = na.c_array_from_buffers(
        na.string(), length=4, buffers=[None, offsets, data]
    )
    batch = na.c_array_from_buffers(
        na.struct({"u": na.string()}), length=4, buffers=[None], children=[child]
    )
    packer = BinaryPacker([field], binary2=True)
    texts = ["ok", "\ufffd\ufffd", "end", "é"]
    assert (
        pack_batch(packer, batch).tobytes()
        == packer.pack([(t,) for t in texts]).tobytes()
    )
