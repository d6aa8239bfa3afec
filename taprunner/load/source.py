"""What a reader gives the COPY writer: a :class:`Source`.

Its columns (VOTable terms, header metadata) and either record batches (binary
``COPY``: FITS, VOTable, Parquet) or a :class:`TextCopy` (the file's own text
goes to ``COPY ... (FORMAT csv)`` unparsed: CSV, TSV, ECSV). Either way memory
holds a batch, not the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from taprunner.load.columns import SourceColumn

__all__ = ["Batches", "Source", "TextCopy"]

#: Rows of one batch: a tuple of Python values per row, in column order.
Batches = Iterator[list[tuple[object, ...]]]


@dataclass(frozen=True, slots=True)
class TextCopy:
    """How PostgreSQL's CSV parser reads the file from ``offset`` on (where the
    line of column names starts)."""

    delimiter: str
    offset: int
    #: Lines before ``offset`` (comments, ECSV header): PostgreSQL counts
    #: lines from the line of column names.
    skipped_lines: int = 0
    #: Whether a quoted empty string ("") of a text column is NULL too (ECSV,
    #: as astropy reads it); it always is in other columns.
    quoted_empty_text_is_null: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """An opened file: its columns and the way its rows reach ``COPY``."""

    path: Path
    columns: tuple[SourceColumn, ...]
    description: str | None = None
    #: Record batches of at most the given number of rows (binary COPY).
    batches: Callable[[int], Batches] | None = None
    #: The file's text, copied as CSV (exactly one of batches and text is set).
    text: TextCopy | None = None
