"""The first rows of a TAP result file, for the job page's preview.

Bounded twice: at most :data:`PREVIEW_ROWS` rows, read from at most
:data:`PREVIEW_BYTES` bytes of the file. A longer VOTable is cut inside its
data (whole base64 quads of a BINARY/BINARY2 stream, whole ``TR`` of a
TABLEDATA) and closed, so that astropy parses the rows that are complete (the
last one read is dropped: it may be cut); CSV and TSV are read line by line,
VOParquet by its first batch (pyarrow). Runs in a thread (astropy is no
asyncio code): :func:`read_preview` is blocking.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PREVIEW_BYTES",
    "PREVIEW_ROWS",
    "Preview",
    "PreviewColumn",
    "preview_of",
    "read_preview",
]

#: Rows shown at most.
PREVIEW_ROWS = 100
#: Bytes of the result file read at most.
PREVIEW_BYTES = 1024 * 1024
#: Characters of one cell shown at most.
CELL_CHARS = 200
_STREAM = re.compile(rb"<STREAM[^>]*>")
_SPACE = re.compile(rb"\s+")


@dataclass(frozen=True, slots=True)
class PreviewColumn:
    """One column of a preview: its name and what the VOTable says of it."""

    name: str
    datatype: str = ""
    unit: str = ""
    ucd: str = ""
    xtype: str = ""


@dataclass(frozen=True, slots=True)
class Preview:
    """The first rows of a result (cells as text), and whether there are more."""

    columns: tuple[PreviewColumn, ...]
    rows: tuple[tuple[str, ...], ...]
    partial: bool
    """Whether the file holds more rows than shown (or may: it was cut)."""


def read_preview(path: Path, media_type: str) -> Preview:
    """The preview of the result file at ``path`` (of ``media_type``).

    Raises
    ------
    ValueError
        The file cannot be read as its media type says.
    """
    size = path.stat().st_size
    with path.open("rb") as stream:
        data = stream.read(PREVIEW_BYTES)
    return preview_of(data, size, media_type, path)


def preview_of(
    data: bytes, size: int, media_type: str, path: Path | None = None
) -> Preview:
    """The preview of a result's first bytes ``data`` (``size`` in all; the
    file at ``path`` where it is a local one).

    Raises
    ------
    ValueError
        As :func:`read_preview`.
    """
    cut = size > len(data)
    if "votable" in media_type or media_type.endswith("xml"):
        return _votable(data, cut)
    if media_type.startswith("text/csv"):
        return _delimited(data, cut, ",")
    if media_type.startswith("text/tab-separated-values"):
        return _delimited(data, cut, "\t")
    if "parquet" in media_type:
        if path is None and cut:
            raise ValueError("no preview of a Parquet result this large in the store")
        return _parquet(path if path is not None else io.BytesIO(data))
    raise ValueError(f"no preview of {media_type}")


def _cell(value: Any) -> str:
    if value is None or value is Ellipsis:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        import numpy as np

        if np.ma.is_masked(value):
            return ""
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _closed(data: bytes) -> tuple[bytes, bool]:
    """A cut VOTable made whole: its data ended at the last complete unit."""
    found = _STREAM.search(data)
    if found is not None:
        head = data[: found.end()]
        body = _SPACE.sub(b"", data[found.end() :].split(b"<", 1)[0])
        body = body[: len(body) // 4 * 4]
        kind = b"BINARY2" if b"<BINARY2" in head else b"BINARY"
        tail = b"</STREAM></" + kind + b"></DATA></TABLE></RESOURCE></VOTABLE>"
        return head + body + tail, True
    end = data.rfind(b"</TR>")
    start = data.find(b"<TABLEDATA>")
    if start < 0:
        raise ValueError("result too long to preview: no data within the bytes read")
    body = data[: end + 5] if end > start else data[: start + len(b"<TABLEDATA>")]
    return body + b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>", False


def _votable(data: bytes, cut: bool) -> Preview:
    from astropy.io import votable  # type: ignore[import-untyped]

    drop_last = False
    if cut:
        data, drop_last = _closed(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            table = votable.parse(io.BytesIO(data)).get_first_table()
        except Exception as exc:
            raise ValueError(f"cannot read the result: {exc}") from exc
    columns = tuple(
        PreviewColumn(
            name=str(f.name),
            datatype=str(f.datatype or ""),
            unit=str(f.unit or ""),
            ucd=str(f.ucd or ""),
            xtype=str(f.xtype or ""),
        )
        for f in table.fields
    )
    array = table.array
    count = len(array) - 1 if drop_last and len(array) else len(array)
    shown = min(count, PREVIEW_ROWS)
    rows = tuple(
        tuple(_cell(array[name][i]) for name in array.dtype.names) for i in range(shown)
    )
    return Preview(columns, rows, partial=cut or count > shown)


def _delimited(data: bytes, cut: bool, delimiter: str) -> Preview:
    lines = data.decode("utf-8", "replace").splitlines()
    if cut and lines:
        lines.pop()  # may be cut
    try:
        parsed = list(csv.reader(lines[: PREVIEW_ROWS + 1], delimiter=delimiter))
    except csv.Error as exc:  # a cell over the csv module's field size limit
        raise ValueError(f"cannot read the result: {exc}") from exc
    if not parsed:
        return Preview((), (), partial=cut)
    header, body = parsed[0], parsed[1:]
    columns = tuple(PreviewColumn(name=name) for name in header)
    rows = tuple(tuple(_cell(v) for v in row) for row in body[:PREVIEW_ROWS])
    return Preview(columns, rows, partial=cut or len(lines) > PREVIEW_ROWS + 1)


def _parquet(path: Path | io.BytesIO) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError("no preview of Parquet without pyarrow") from exc
    with pq.ParquetFile(path) as parquet:
        total = parquet.metadata.num_rows
        batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)
        names = parquet.schema_arrow.names
    columns = tuple(PreviewColumn(name=n) for n in names)
    if batch is None:
        return Preview(columns, (), partial=False)
    data = batch.to_pydict()
    rows = tuple(tuple(_cell(data[n][i]) for n in names) for i in range(batch.num_rows))
    return Preview(columns, rows, partial=total > len(rows))
