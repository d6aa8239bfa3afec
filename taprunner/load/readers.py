"""The readers of ``aiouws tap load``, one per format, behind one registry.

A reader opens a file and returns a :class:`~taprunner.load.source.Source`. A
new format is one :class:`Reader` entry in :data:`READERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taprunner.load.columns import LoadError
from taprunner.load.source import Source

__all__ = ["READERS", "Reader", "format_names", "open_source"]


@dataclass(frozen=True, slots=True)
class Reader:
    """One input format: its name, file name endings and how to open it."""

    name: str
    suffixes: tuple[str, ...]
    open: Callable[[Path, int], Source]
    """``open(path, infer_rows)``: infer_rows is for formats without types."""


def _fits(path: Path, infer_rows: int) -> Source:
    from taprunner.load.fitsfile import open_fits

    return open_fits(path)


def _votable(path: Path, infer_rows: int) -> Source:
    from taprunner.load.votable import open_votable

    return open_votable(path)


def _parquet(path: Path, infer_rows: int) -> Source:
    from taprunner.load.parquetfile import open_parquet

    return open_parquet(path)


def _csv(path: Path, infer_rows: int) -> Source:
    from taprunner.load.textfile import open_delimited

    return open_delimited(path, ",", infer_rows)


def _tsv(path: Path, infer_rows: int) -> Source:
    from taprunner.load.textfile import open_delimited

    return open_delimited(path, "\t", infer_rows)


def _ecsv(path: Path, infer_rows: int) -> Source:
    from taprunner.load.textfile import open_ecsv

    return open_ecsv(path)


READERS: tuple[Reader, ...] = (
    Reader("fits", (".fits", ".fit", ".fts"), _fits),
    Reader("votable", (".vot", ".votable", ".xml"), _votable),
    Reader("parquet", (".parquet", ".parq", ".pq"), _parquet),
    Reader("csv", (".csv",), _csv),
    Reader("tsv", (".tsv", ".tab"), _tsv),
    Reader("ecsv", (".ecsv",), _ecsv),
)


def open_source(path: Path, format_name: str | None, infer_rows: int) -> Source:
    """Open ``path`` with the reader of ``format_name`` (None: by its ending).

    Raises
    ------
    LoadError
        Unknown format or ending; the file is missing or unreadable as that
        format (the message names the file and the cause).
    """
    reader = _reader(path, format_name)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    try:
        return reader.open(path, infer_rows)
    except LoadError as exc:
        raise LoadError(f"{path}: {exc}") from exc
    # astropy and pyarrow raise many unrelated types (OSError, ValueError,
    # KeyError, ExpatError, ArrowInvalid...) for a bad file; all mean the same.
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{path}: not a readable {reader.name} file: {exc}") from exc


def _reader(path: Path, format_name: str | None) -> Reader:
    if format_name is not None:
        for reader in READERS:
            if reader.name == format_name:
                return reader
        raise LoadError(f"unknown format {format_name!r}")
    name = path.name.lower()
    for reader in READERS:
        if name.endswith(reader.suffixes):
            return reader
    known = ", ".join(s for r in READERS for s in r.suffixes)
    raise LoadError(f"{path}: unknown file type (known endings: {known}; or --format)")


def format_names() -> list[str]:
    """The names ``--format`` takes."""
    return [reader.name for reader in READERS]
