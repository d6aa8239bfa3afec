"""VOTable TABLEDATA streamed: FIELDs and rows from astropy's XML event iterator.

The first TABLE's FIELDs (with DESCRIPTION and VALUES null) are read up to its
DATA; when that is TABLEDATA, rows are converted from their TD texts a batch
at a time as the document is read, so memory stays one batch whatever the
file's size. BINARY and BINARY2 are streamed by :mod:`.binary`; FITS is parsed
whole by astropy (:mod:`.votable`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taprunner.load.columns import LoadError, SourceColumn
from taprunner.load.source import Batches

__all__ = ["TableHead", "read_head", "stream_rows", "timestamp"]

Events = Iterator[tuple[bool, str, Any, tuple[int, int]]]


@dataclass
class TableHead:
    """The first TABLE as far as its DATA: columns, description, null values."""

    columns: list[SourceColumn] = field(default_factory=list)
    nulls: list[str | None] = field(default_factory=list)
    #: The FIELDs' arraysize attributes as written (BINARY needs char sizes).
    arraysizes: list[str | None] = field(default_factory=list)
    description: str | None = None
    #: The DATA's serialisation: TABLEDATA, BINARY, BINARY2, FITS (None: no DATA).
    serialisation: str | None = None


def _events(path: Path) -> Iterator[Events]:
    """The document's XML events (one iterator, closed when the loop ends)."""
    from astropy.utils.xml.iterparser import (  # type: ignore[import-untyped]
        get_xml_iterator,
    )

    from taprunner.load.expand import xml_source

    with xml_source(path) as source, get_xml_iterator(source) as events:
        yield events


def read_head(path: Path) -> TableHead:
    """FIELDs and DESCRIPTION of the first TABLE of ``path``; stops at its DATA."""
    head = TableHead()
    fields: list[dict[str, str]] = []
    stack: list[str] = []
    for events in _events(path):
        for start, tag, data, _ in events:
            if start:
                stack.append(tag)
                if stack[-2:] == ["TABLE", "FIELD"]:
                    fields.append(dict(data))
                elif stack[-2:] == ["FIELD", "VALUES"] and "TABLE" in stack:
                    fields[-1]["null"] = data.get("null")
                elif len(stack) > 2 and stack[-2] == "DATA" and "TABLE" in stack:
                    head.serialisation = tag
                    break
                continue
            stack.pop()
            if tag == "DESCRIPTION" and "TABLE" in stack:
                text = " ".join(str(data).split())
                if stack[-1] == "FIELD":
                    fields[-1]["description"] = text
                elif stack[-1] == "TABLE":
                    head.description = text or None
            elif tag == "TABLE":
                break
    head.columns = [_column(f) for f in fields]
    head.nulls = [f.get("null") for f in fields]
    head.arraysizes = [f.get("arraysize") for f in fields]
    return head


def _column(attributes: dict[str, str]) -> SourceColumn:
    datatype = attributes.get("datatype", "")
    arraysize = attributes.get("arraysize")
    if datatype in ("char", "unicodeChar"):
        arraysize = arraysize if arraysize and "x" in arraysize else "*"
    elif arraysize == "1":
        arraysize = None
    return SourceColumn(
        name=attributes.get("name") or attributes.get("ID") or "",
        datatype=datatype,
        arraysize=arraysize,
        xtype=attributes.get("xtype") or None,
        unit=attributes.get("unit") or None,
        ucd=attributes.get("ucd") or None,
        utype=attributes.get("utype") or None,
        description=attributes.get("description") or None,
    )


def stream_rows(path: Path, head: TableHead, rows: int) -> Batches:
    """The first TABLE's TABLEDATA rows, ``rows`` at a time."""
    convert = [
        _converter(c, null) for c, null in zip(head.columns, head.nulls, strict=True)
    ]
    width = len(convert)
    batch: list[tuple[object, ...]] = []
    row: list[str] = []
    number = 0
    inside = False
    for events in _events(path):
        for start, tag, data, _ in events:
            if tag == "TABLEDATA":
                if not start:
                    break
                inside = True
            elif not inside:
                continue
            elif tag == "TR":
                if start:
                    row = []
                    continue
                number += 1
                batch.append(_convert_row(row, convert, width, number))
                if len(batch) >= rows:
                    yield batch
                    batch = []
            elif tag == "TD" and not start:
                row.append(str(data))
    if batch:
        yield batch


def _convert_row(
    texts: list[str],
    convert: list[Callable[[str], object]],
    width: int,
    number: int,
) -> tuple[object, ...]:
    if len(texts) != width:
        raise LoadError(f"row {number} has {len(texts)} TDs, the table {width} FIELDs")
    try:
        return tuple(c(t) for c, t in zip(convert, texts, strict=True))
    except ValueError as exc:
        raise LoadError(f"row {number}: {exc}") from exc


_TRUE = frozenset({"T", "t", "1", "true", "TRUE", "True"})
_FALSE = frozenset({"F", "f", "0", "false", "FALSE", "False"})


def _boolean(text: str) -> bool | None:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in ("?", " ", ""):
        return None
    raise ValueError(f"not a boolean: {text!r}")


def _integer(text: str) -> int:
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


def timestamp(text: str) -> datetime:
    """A DALI timestamp (``Z`` or an offset: converted to UTC, naive)."""
    parsed = datetime.fromisoformat(text.removesuffix("Z"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.replace(tzinfo=None)


_SCALAR: dict[str, Callable[[str], object]] = {
    "boolean": _boolean,
    "bit": _boolean,
    "unsignedByte": _integer,
    "short": _integer,
    "int": _integer,
    "long": _integer,
    "float": float,
    "double": float,
}


def _converter(column: SourceColumn, null: str | None) -> Callable[[str], object]:
    """TD text -> value; empty or the VALUES null -> None."""
    if column.datatype in ("char", "unicodeChar"):
        is_timestamp = (column.xtype or "").lower() == "timestamp"
        element: Callable[[str], object] = timestamp if is_timestamp else str
        if not is_timestamp:
            return lambda text: None if null is not None and text == null else text
    else:
        element = _SCALAR.get(column.datatype) or _refuse(column)
        if column.arraysize is not None:
            scalar = element
            element = lambda text: [scalar(v) for v in text.split()]  # noqa: E731

    def convert(text: str) -> object:
        text = text.strip()
        if not text or text == null:
            return None
        return element(text)

    return convert


def _refuse(column: SourceColumn) -> Callable[[str], object]:
    raise LoadError(
        f"column {column.name!r}: datatype {column.datatype} is not supported"
    )
