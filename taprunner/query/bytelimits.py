"""Bounded bytes per value, per fetched batch and per result, for the row paths.

A :class:`ResultLimits` says how large one value and the whole result may grow
(``TapSettings.value_bytes``, and ``sync_bytes`` or ``result_bytes``). A
:class:`ByteGate` applies them to one result as its batches stream: it sizes the
next fetch so that a batch holds about :data:`BATCH_BYTES` (a few rows when
they are large, :data:`MAX_ROWS` when they are small), lets through the rows
before the first value over its limit, and counts the bytes written. A result
cut by either limit ends with QUERY_STATUS OVERFLOW saying which limit cut it
(:attr:`ByteGate.cut`), never as complete.

:func:`encode_off_loop` runs a batch's encoding in a worker thread when it is
large, so that the server's event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from taprunner.formats.fields import FieldSpec, Row
from taprunner.formats.registry import RowEncoder
from taprunner.settings import TapSettings

__all__ = [
    "BATCH_BYTES",
    "FIRST_ROWS",
    "MAX_ROWS",
    "ByteGate",
    "ResultLimits",
    "element_bytes",
    "encode_off_loop",
    "result_cut",
    "value_cut",
]

#: Rows fetched first (nothing is known of their size yet), and at most.
FIRST_ROWS = 100
MAX_ROWS = 10_000
#: Bytes of values a fetched batch aims at.
BATCH_BYTES = 4 * 1024 * 1024
#: Estimated bytes above which a batch is encoded in a worker thread.
THREAD_BYTES = 256 * 1024
#: Bytes per value of fixed-size FIELDs (their arraysize counts).
_ELEMENT_BYTES = {
    "boolean": 1,
    "bit": 1,
    "unsignedByte": 1,
    "short": 2,
    "int": 4,
    "long": 8,
    "float": 4,
    "double": 8,
    "char": 1,
    "unicodeChar": 2,
}
#: Variable-size values counted by their length: text (characters), bytea.
_ONE_BYTE = frozenset({"char", "unicodeChar", "unsignedByte"})


@dataclass(frozen=True, slots=True)
class ResultLimits:
    """Bytes one value and a whole result may take; ``setting`` names the latter."""

    value_bytes: int
    result_bytes: int
    setting: str = "tap_result_bytes"

    @classmethod
    def for_sync(cls, tap: TapSettings) -> ResultLimits:
        """The limits of a /tap/sync response."""
        return cls(tap.value_bytes, tap.sync_bytes, "tap_sync_bytes")

    @classmethod
    def for_file(cls, tap: TapSettings) -> ResultLimits:
        """The limits of an async job's result file."""
        return cls(tap.value_bytes, tap.result_bytes, "tap_result_bytes")


class ByteGate:
    """The byte limits applied to one result streaming through ``fields``."""

    def __init__(self, fields: Sequence[FieldSpec], limits: ResultLimits) -> None:
        self.limits = limits
        #: (column index, bytes per element) of the variable-size columns.
        self._variable = [
            (i, element_bytes(f))
            for i, f in enumerate(fields)
            if f.arraysize is not None and "*" in f.arraysize
        ]
        self._fixed = sum(
            _ELEMENT_BYTES.get(f.datatype, 8) * _fixed_count(f.arraysize)
            for f in fields
            if f.arraysize is None or "*" not in f.arraysize
        )
        self.rows = FIRST_ROWS
        """Rows to fetch next."""
        self.written = 0
        """Bytes written so far."""
        self.cut: str | None = None
        """Why the result was cut short (the OVERFLOW INFO's text), if it was."""

    def admit(self, batch: Sequence[Row]) -> tuple[Sequence[Row], int]:
        """The rows of ``batch`` before the first one holding a value over the
        value limit (then :attr:`cut` says so), and their estimated bytes. Sizes
        the next fetch by the bytes seen per row (and the bytes the result may
        still take, so that a cut result overshoots its limit little)."""
        if not batch:
            return batch, 0
        total = self._fixed * len(batch)
        first_over = len(batch)
        for index, element in self._variable:
            sizes = _sizes([row[index] for row in batch], element)
            if element == 1 and max(sizes) * 4 > self.limits.value_bytes:
                sizes = _utf8_sizes(
                    [row[index] for row in batch], sizes, self.limits.value_bytes
                )
            if max(sizes) > self.limits.value_bytes:
                over = next(
                    n for n, s in enumerate(sizes) if s > self.limits.value_bytes
                )
                first_over = min(first_over, over)
            total += sum(sizes)
        per_row = max(1, total // len(batch))
        # About BATCH_BYTES, and not much more than the result may still take.
        room = (self.limits.result_bytes - self.written - total) // per_row + 1
        self.rows = max(1, min(MAX_ROWS, BATCH_BYTES // per_row, room))
        if first_over < len(batch):
            self.cut = value_cut(self.limits)
            return batch[:first_over], per_row * first_over
        return batch, total

    def wrote(self, count: int) -> bool:
        """Count ``count`` bytes written; whether the result limit is reached
        (the caller stops, and calls :meth:`stop` if rows were left)."""
        self.written += count
        return self.written >= self.limits.result_bytes

    def stop(self) -> None:
        """Rows are left but the result limit is reached: the result is cut."""
        if self.cut is None:
            self.cut = result_cut(self.limits, self.written)


def element_bytes(field: FieldSpec) -> int:
    """Bytes ``tap_value_bytes`` counts per element of a variable-size value of
    ``field``: 1 per character of a text, byte of a bytea, else the element's."""
    return 1 if field.datatype in _ONE_BYTE else _ELEMENT_BYTES.get(field.datatype, 8)


def result_cut(limits: ResultLimits, written: int) -> str:
    """Why a result was cut once ``written`` bytes reached the result limit (every
    data path says it alike)."""
    return (
        f"result cut at {written} bytes by {limits.setting}"
        f" ({limits.result_bytes} bytes)"
    )


def value_cut(limits: ResultLimits) -> str:
    """Why a result was cut before a value over ``limits.value_bytes``."""
    return (
        f"result cut before a value larger than {limits.value_bytes} bytes"
        " (tap_value_bytes)"
    )


async def encode_off_loop(
    encoder: RowEncoder, rows: Sequence[Row], estimated: int
) -> bytes:
    """``encoder.encode(rows)``, in a worker thread when the rows are large (the
    event loop then runs between the thread's GIL switch intervals)."""
    if estimated < THREAD_BYTES:
        return encoder.encode(rows)
    return await asyncio.to_thread(encoder.encode, rows)


def _fixed_count(arraysize: str | None) -> int:
    """Elements of a fixed arraysize (``2``, ``3x3``); 1 for a scalar."""
    count = 1
    for part in (arraysize or "1").split("x"):
        count *= int(part) if part.isdigit() else 1
    return count


def _sizes(values: list[object], element: int) -> list[int]:
    """Bytes of each value: characters of a text (:func:`_utf8_sizes` counts its
    bytes), bytes of a bytea, ``element`` per element of an array; 0 for NULL."""
    try:
        sizes = list(map(len, values))  # type: ignore[arg-type]
    except TypeError:  # NULLs, or values without a length (dates, UUIDs)
        try:
            sizes = [0 if v is None else len(v) for v in values]  # type: ignore[arg-type]
        except TypeError:
            sizes = [len(v) if hasattr(v, "__len__") else 0 for v in values]
    if element != 1:
        return [s * element for s in sizes]
    return sizes


def _utf8_sizes(values: list[object], sizes: list[int], limit: int) -> list[int]:
    """``sizes`` with the texts that could be over ``limit`` (a character
    takes up to 4 bytes) counted in UTF-8 bytes, as the binary paths count
    ``tap_value_bytes``; the others are not encoded."""
    return [
        len(v.encode()) if s * 4 > limit and isinstance(v, str) else s
        for v, s in zip(values, sizes, strict=True)
    ]
