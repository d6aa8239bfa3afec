"""Fixed-width BINARY/BINARY2 upload rows turned into PostgreSQL binary COPY data
with numpy, a block of rows at a time.

An uploaded table of numeric scalars only (the usual crossmatch list: ids and
positions) has rows of one width, so a block of the decoded STREAM
(:func:`taprunner.load.binary.stream_bytes`) is a numpy structured array; its
fields are reordered into COPY's binary row (a 16-bit field count, then per
field a 32-bit length and the big-endian value) by whole-column assignments,
never a Python loop per row. NULLs (a BINARY2 null bit, a float NaN, an integer
equal to the FIELD's VALUES null: what :mod:`taprunner.load.binary` reads as
None) get length -1 and lose their value bytes (a boolean mask over the block's
bytes). Other tables take the record path (:mod:`.uploadstream`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["COPY_HEADER", "COPY_TRAILER", "FixedRows", "blocks", "fixed_rows"]

#: PostgreSQL's binary COPY signature, flags and header extension length.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
#: Decoded STREAM bytes per block (rows never straddle two blocks).
BLOCK_BYTES = 1 << 20
#: VOTable datatype -> (its big-endian numpy type, the column's SQL one in COPY).
_TYPES = {
    "unsignedByte": (">u1", ">i2"),
    "short": (">i2", ">i2"),
    "int": (">i4", ">i4"),
    "long": (">i8", ">i8"),
    "float": (">f4", ">f4"),
    "double": (">f8", ">f8"),
}


class FixedRows:
    """How to turn blocks of fixed-width rows into COPY data (see the module)."""

    def __init__(
        self, datatypes: Sequence[str], nulls: Sequence[str | None], binary2: bool
    ) -> None:
        self.width = len(datatypes)
        self.mask_bytes = (self.width + 7) // 8 if binary2 else 0
        source: list[tuple[str, Any, Any]] = [("m", "u1", (self.mask_bytes,))]
        target: list[tuple[str, str]] = [("n", ">i2")]
        for i, datatype in enumerate(datatypes):
            given, wanted = _TYPES[datatype]
            source.append((f"v{i}", given, ()))
            target += [(f"l{i}", ">i4"), (f"v{i}", wanted)]
        self.source = np.dtype([(n, t, s) if s else (n, t) for n, t, s in source])
        self.target = np.dtype(target)
        self.floats = [d in ("float", "double") for d in datatypes]
        self.null_values = [
            None if f else _integer(n) for f, n in zip(self.floats, nulls, strict=True)
        ]
        #: Per field: its value's first and last byte (exclusive) in a COPY row.
        fields: Mapping[str, Any] = self.target.fields or {}
        self.spans = []
        for i in range(self.width):
            dtype, offset = fields[f"v{i}"][:2]
            self.spans.append((offset, offset + dtype.itemsize))

    @property
    def row_bytes(self) -> int:
        """Bytes of one row in the STREAM."""
        return self.source.itemsize

    def encode(self, block: bytes) -> bytes:
        """COPY data of ``block`` (whole rows of the STREAM)."""
        rows = np.frombuffer(block, dtype=self.source)
        out = np.empty(len(rows), dtype=self.target)
        out["n"] = self.width
        nulls = self._nulls(rows)
        for i in range(self.width):
            out[f"l{i}"] = self.target[f"v{i}"].itemsize
            out[f"v{i}"] = rows[f"v{i}"]
        if nulls is None:
            return out.tobytes()
        keep = np.ones((len(rows), self.target.itemsize), dtype=bool)
        for i, (start, end) in enumerate(self.spans):
            column = nulls[:, i]
            out[f"l{i}"][column] = -1
            keep[:, start:end] &= ~column[:, None]
        flat: np.ndarray[Any, Any] = out.view(np.uint8).reshape(len(rows), -1)
        return bytes(flat[keep].tobytes())

    def _nulls(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
        """Rows x fields, True where NULL; None when the block has none."""
        nulls = np.zeros((len(rows), self.width), dtype=bool)
        if self.mask_bytes:
            bits = np.unpackbits(rows["m"], axis=1, bitorder="big")
            nulls |= bits[:, : self.width].astype(bool)
        for i in range(self.width):
            values = rows[f"v{i}"]
            if self.floats[i]:
                nulls[:, i] |= np.isnan(values)
            elif self.null_values[i] is not None:
                nulls[:, i] |= values == self.null_values[i]
        return nulls if nulls.any() else None


def fixed_rows(
    datatypes: Sequence[str],
    arraysizes: Sequence[str | None],
    nulls: Sequence[str | None],
    binary2: bool,
) -> FixedRows | None:
    """The block encoder of these FIELDs, or None unless every one is a numeric
    scalar (whose VALUES null, if any, is an integer)."""
    for datatype, arraysize, null in zip(datatypes, arraysizes, nulls, strict=True):
        if datatype not in _TYPES or arraysize not in (None, "1"):
            return None
        if null is not None and datatype not in ("float", "double"):
            try:
                _integer(null)
            except ValueError:
                return None
    return FixedRows(datatypes, nulls, binary2)


def blocks(chunks: Iterator[bytes], row_bytes: int) -> Iterator[bytes]:
    """``chunks`` regrouped into blocks of whole rows of about BLOCK_BYTES; a
    last partial row is left to the caller: ``blocks`` yields it alone (its
    length not a multiple of ``row_bytes``)."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        if len(pending) >= BLOCK_BYTES:
            whole = len(pending) - len(pending) % row_bytes
            yield bytes(pending[:whole])
            del pending[:whole]
    if pending:
        whole = len(pending) - len(pending) % row_bytes
        if whole:
            yield bytes(pending[:whole])
        if whole < len(pending):
            yield bytes(pending[whole:])


def _integer(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text, 16) if text[:2].lower() == "0x" else int(text)
