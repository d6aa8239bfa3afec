"""VOTable BINARY and BINARY2 streamed: base64 decoded and rows parsed a chunk
at a time, so memory stays one batch whatever the file's size.

The FIELDs come from :func:`.tabledata.read_head`; a second, short expat pass
finds the byte offset of the first TABLE's ``STREAM``, whose text is then read
in chunks (whitespace dropped, base64 decoded in whole quads) and cut into rows
per VOTable 1.4 section 5.4-5.5: each field's bytes in order, big-endian;
variable arrays (``*``, ``N*``) after a 4-byte count; BINARY2 rows start with a
null bitmask of one bit per field (most significant first).

NULL: a BINARY2 null bit, a float NaN, an integer equal to the FIELD's VALUES
null, a boolean ``?``, space or NUL, a char equal to the VALUES null, an empty
variable array or a fixed one whose elements are all NULL (as astropy reads
them). Values have the form :mod:`.tabledata` gives them (arrays as flat lists).
"""

from __future__ import annotations

import binascii
import io
import math
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.parsers import expat

from taprunner.load.columns import LoadError, SourceColumn
from taprunner.load.expand import open_expanded
from taprunner.load.source import Batches
from taprunner.load.tabledata import TableHead, timestamp

__all__ = ["stream_binary", "stream_bytes"]

_CHUNK = 1 << 16
_WHITESPACE = b" \t\r\n"
#: datatype -> (struct code, bytes) of the fixed-size numeric types.
_NUMBERS = {
    "unsignedByte": ("B", 1),
    "short": ("h", 2),
    "int": ("i", 4),
    "long": ("q", 8),
    "float": ("f", 4),
    "double": ("d", 8),
}
_TRUE = frozenset(b"Tt1")
_FALSE = frozenset(b"Ff0")


def stream_binary(path: Path, head: TableHead, rows: int) -> Batches:
    """The first TABLE's BINARY or BINARY2 rows, ``rows`` at a time."""
    parsers = [
        _parser(c, size, null)
        for c, size, null in zip(head.columns, head.arraysizes, head.nulls, strict=True)
    ]
    width = len(parsers)
    mask_bytes = (width + 7) // 8 if head.serialisation == "BINARY2" else 0
    data = _Bytes(stream_bytes(path))
    batch: list[tuple[object, ...]] = []
    number = 0
    no_nulls = bytes(mask_bytes)
    while not data.at_end():
        number += 1
        try:
            mask = data.take(mask_bytes) if mask_bytes else no_nulls
            values = tuple([p(data) for p in parsers])
        except (EOFError, ValueError, UnicodeDecodeError) as exc:
            raise LoadError(f"row {number}: {exc}") from exc
        if mask != no_nulls:  # a BINARY2 row with NULL flags
            nulls = _bits(mask, width)
            values = tuple(None if n else v for v, n in zip(values, nulls, strict=True))
        batch.append(values)
        if len(batch) >= rows:
            yield batch
            batch = []
    if batch:
        yield batch


def stream_bytes(path: Path) -> Iterator[bytes]:
    """The first TABLE's STREAM, base64-decoded, a chunk (up to 48 KiB) at a time.

    For readers of their own (the upload loader's fixed-width rows, decoded
    with numpy); LoadError for a missing, external, truncated or non-base64
    STREAM.
    """
    offset = _stream_offset(path)
    with _open(path) as raw:
        yield from _decoded(raw, offset)


@contextmanager
def _open(path: Path) -> Iterator[io.BufferedIOBase]:
    """The file's bytes, expanded as astropy's XML iterator reads them."""
    with open_expanded(path) as expanded:
        yield expanded.stream


class _Found(Exception):
    """Ends the expat pass at the STREAM."""


def _stream_offset(path: Path) -> int:
    """Byte offset of the first TABLE's DATA/BINARY(2)/STREAM start tag."""
    parser = expat.ParserCreate()
    stack: list[str] = []
    found: list[int] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        stack.append(name.rsplit(":", 1)[-1])
        if stack[-1] == "STREAM" and stack[-3:-1] in (
            ["DATA", "BINARY"],
            ["DATA", "BINARY2"],
        ):
            if attributes.get("href"):
                raise LoadError("STREAM href (external data) is not supported")
            encoding = attributes.get("encoding", "base64")
            if encoding != "base64":
                raise LoadError(f"STREAM encoding {encoding!r} is not supported")
            found.append(parser.CurrentByteIndex)
            raise _Found

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: stack.pop()
    with _open(path) as raw:
        try:
            while chunk := raw.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except _Found:
            return found[0]
    raise LoadError("no STREAM in the first TABLE's DATA")


def _decoded(raw: io.BufferedIOBase, offset: int) -> Iterator[bytes]:
    """The STREAM's base64 text from ``offset`` (its start tag), decoded."""
    raw.seek(offset)
    text = _after_start_tag(raw)
    rest = b""
    while True:
        end = text.find(b"<")
        part = rest + text[: end if end >= 0 else len(text)].translate(
            None, _WHITESPACE
        )
        whole = len(part) - len(part) % 4
        rest = part[whole:]
        try:
            yield binascii.a2b_base64(part[:whole], strict_mode=True)
        except binascii.Error as exc:
            raise LoadError(f"STREAM is not base64: {exc}") from exc
        if end >= 0:
            if text[end + 1 : end + 2] not in (b"/", b""):
                raise LoadError("markup (a comment, CDATA) inside the STREAM")
            if rest:
                raise LoadError("STREAM's base64 ends in an incomplete quad")
            return
        text = raw.read(_CHUNK)
        if not text:
            raise LoadError("the STREAM ends early (file truncated?)")


def _after_start_tag(raw: io.BufferedIOBase) -> bytes:
    """Reads past ``<STREAM ...>``; the text read after it (b"<" if empty)."""
    quote: int | None = None
    previous = 0
    while chunk := raw.read(_CHUNK):
        for i, byte in enumerate(chunk):
            if quote is not None:
                quote = None if byte == quote else quote
            elif byte in b"\"'":
                quote = byte
            elif byte == ord(">"):
                return b"<" if previous == ord("/") else chunk[i + 1 :]
            previous = byte
    raise LoadError("the STREAM ends early (file truncated?)")


class _Bytes:
    """The decoded bytes, taken a field at a time."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._position = 0

    def _fill(self, size: int) -> bool:
        while len(self._buffer) - self._position < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buffer = self._buffer[self._position :] + chunk
            self._position = 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def take(self, size: int) -> bytes:
        if not self._fill(size):
            raise EOFError("the STREAM ends inside the row (file truncated?)")
        start = self._position
        self._position += size
        return self._buffer[start : self._position]

    def count(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])


def _bits(data: bytes, width: int) -> list[bool]:
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(width)]


Parse = Callable[[_Bytes], object]


def _items(arraysize: str | None) -> tuple[int, bool]:
    """Fixed element count (per variable step) and whether a count comes first."""
    if not arraysize:
        return 1, False
    dims = arraysize.split("x")
    variable = dims[-1].endswith("*")
    if variable:
        dims = dims[:-1]
    return math.prod(int(d) for d in dims if d), variable


def _parser(column: SourceColumn, arraysize: str | None, null: str | None) -> Parse:
    items, variable = _items(arraysize)
    if column.datatype in ("char", "unicodeChar"):
        return _text(column, items, variable, null)
    element: Callable[[_Bytes, int], list[Any]]
    if column.datatype in ("boolean", "bit"):
        element = _boolean_elements if column.datatype == "boolean" else _bit_elements
        nulls: Callable[[object], bool] = lambda v: v is None  # noqa: E731
    elif column.datatype in _NUMBERS:
        code, size = _NUMBERS[column.datatype]
        element = _number_elements(code, size)
        nulls = _null_test(column.datatype, null)
    else:
        raise LoadError(
            f"column {column.name!r}: datatype {column.datatype} is not supported"
        )
    scalar = not variable and column.arraysize is None
    if scalar and column.datatype in _NUMBERS:
        return _number(*_NUMBERS[column.datatype], nulls)

    def parse(data: _Bytes) -> object:
        if scalar:
            value = element(data, 1)[0]
            return None if nulls(value) else value
        if not variable:  # as astropy: NULL when all elements are, else kept
            values = element(data, items)
            return None if all(nulls(v) for v in values) else values
        count = data.count() * items
        values = [None if nulls(v) else v for v in element(data, count)]
        return values if any(v is not None for v in values) else None

    return parse


def _number(code: str, size: int, nulls: Callable[[object], bool]) -> Parse:
    """A numeric scalar's parser (the common case, kept short)."""
    unpack = struct.Struct(f">{code}").unpack

    def parse(data: _Bytes) -> object:
        value = unpack(data.take(size))[0]
        return None if nulls(value) else value

    return parse


def _number_elements(code: str, size: int) -> Callable[[_Bytes, int], list[Any]]:
    def elements(data: _Bytes, count: int) -> list[Any]:
        return list(struct.unpack(f">{count}{code}", data.take(count * size)))

    return elements


def _boolean_elements(data: _Bytes, count: int) -> list[bool | None]:
    values: list[bool | None] = []
    for byte in data.take(count):
        if byte in _TRUE:
            values.append(True)
        elif byte in _FALSE:
            values.append(False)
        elif byte in b"? \0":
            values.append(None)
        else:
            raise ValueError(f"not a boolean: {bytes([byte])!r}")
    return values


def _bit_elements(data: _Bytes, count: int) -> list[bool]:
    if count == 1:  # one bit in a byte: astropy writes 0x08, the spec 0x80
        return [data.take(1)[0] != 0]
    return _bits(data.take((count + 7) // 8), count)


def _null_test(datatype: str, null: str | None) -> Callable[[object], bool]:
    if datatype in ("float", "double"):
        return lambda v: v != v  # NaN
    if null is None:
        return lambda v: False
    text = null.strip()
    number = int(text, 16) if text[:2].lower() == "0x" else int(text)
    return lambda v: v == number


def _text(column: SourceColumn, items: int, variable: bool, null: str | None) -> Parse:
    wide = column.datatype == "unicodeChar"
    size, codec = (2, "utf-16-be") if wide else (1, "latin-1")
    convert = (column.xtype or "").lower() == "timestamp"

    def parse(data: _Bytes) -> object:
        count = data.count() if variable else items
        text = data.take(count * size).decode(codec)
        if not variable:
            text = text.split("\0", 1)[0]
        if null is not None and text == null:
            return None
        if convert:
            return timestamp(text) if text.strip() else None
        return text

    return parse
