"""The output formats: one :class:`OutputFormat` entry per format the service writes.

Everything about a format lives in its entry: the media type and file extension
of its results, the RESPONSEFORMAT/FORMAT values that select it, its TAPRegExt
``outputFormat`` entry, its encoder and the data paths the query runner may take
for it. The TAP parameters (:mod:`taprunner.request`), the capabilities
(:mod:`taprunner.web.capabilities`) and the query runner
(:mod:`taprunner.query.execute`) all read :data:`OUTPUT_FORMATS`; adding a
format is adding an entry here (and its encoder).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from taprunner.formats.fields import FieldSpec, Row
from taprunner.formats.pgcopy import Connection, copy_csv
from taprunner.formats.text import DelimitedEncoder
from taprunner.formats.votable import VOTableEncoder

__all__ = [
    "OUTPUT_FORMATS",
    "PARQUET_AVAILABLE",
    "ArrowEncoder",
    "DataPath",
    "EncoderFactory",
    "OutputFormat",
    "RowEncoder",
    "TapRegExtFormat",
]

Sink = Callable[[bytes], Coroutine[Any, Any, None]]
#: The VOTable version the service writes.
VOTABLE_VERSION: Literal["1.4", "1.5"] = "1.4"
TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"


class DataPath(StrEnum):
    """A way the query runner can bring result rows to a format's encoder."""

    #: asyncpg rows from a server-side cursor, batch by batch (every format).
    CURSOR = "cursor"
    #: A small result fetched in one round trip on a prepared read-only session,
    #: without a transaction and a cursor: the fast lane's, when the query
    #: bounds its rows below the cursor's first batch (few rows may still be
    #: many bytes: no more are fetched than the cursor would; bytelimits).
    FETCH = "fetch"
    #: PostgreSQL writes the bytes itself with ``COPY ... TO STDOUT`` (the
    #: entry's ``copy``) when the columns' PostgreSQL text is the encoder's.
    COPY = "copy"
    #: PostgreSQL writes the rows as text COPY, transcoded into TABLEDATA chunk
    #: by chunk with bytes operations (:mod:`taprunner.formats.tdcopy`), when the
    #: columns' types allow (:func:`~taprunner.formats.tdcopy.copy_columns`).
    COPY_TEXT = "copy-text"
    #: Arrow batches from the columnar (ADBC) session, packed without Python
    #: rows; the encoder must be an :class:`ArrowEncoder` (binary VOTable, Parquet).
    ARROW = "arrow"


class RowEncoder(Protocol):
    """Bytes of one result document, piece by piece (no I/O)."""

    def header(self) -> bytes: ...

    def encode(self, rows: Sequence[Row]) -> bytes: ...

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes:
        """The end of the document; ``overflow``: more rows were there (MAXREC);
        ``cut``: why a byte limit cut the result short (the overflow's text)."""
        ...


@runtime_checkable
class ArrowEncoder(Protocol):
    """A :class:`RowEncoder` that also takes Arrow batches (the ARROW path)."""

    def header(self) -> bytes: ...

    def encode(self, rows: Sequence[Row]) -> bytes: ...

    def encode_arrow(self, batch: Any, count: int) -> bytes:
        """Bytes of the first ``count`` rows of an Arrow struct array (one child
        per FIELD; a nanoarrow ``CArray``)."""
        ...

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes: ...


class EncoderFactory(Protocol):
    """Makes the encoder of one result: its columns, the query and its notes."""

    def __call__(
        self, fields: Sequence[FieldSpec], *, query: str, maxrec_clamped: bool
    ) -> RowEncoder: ...


CopyWriter = Callable[[Connection, str, Sink], Coroutine[Any, Any, int]]
"""Streams a query's result in the format through COPY; returns the row count."""


@dataclass(frozen=True, slots=True)
class TapRegExtFormat:
    """One TAPRegExt ``outputFormat``: MIME type, RESPONSEFORMAT aliases, ivo-id."""

    mime: str
    aliases: tuple[str, ...] = ()
    ivo_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One output format of the service: how it is named, advertised and written."""

    name: str
    """Short name of the format, unique (e.g. ``binary2``, ``csv``)."""
    media_type: str
    """The Content-Type of its results."""
    extension: str
    """File extension of an async job's result file."""
    accepts: tuple[str, ...]
    """RESPONSEFORMAT/FORMAT values selecting it, lower case without blanks."""
    capability: TapRegExtFormat
    """Its entry in the capabilities (TAPRegExt ``outputFormat``)."""
    encoder: EncoderFactory
    paths: frozenset[DataPath]
    """The data paths the query runner may take for it."""
    copy: CopyWriter | None = None
    """PostgreSQL COPY writing the format (the :attr:`DataPath.COPY` path)."""
    compress: bool = False
    """Whether a streamed result is worth gzip/deflate when the client accepts
    it: text formats shrink several times; binary VOTable hardly does (its
    base64 of packed numbers) and would only cost the server CPU."""
    trailer: bool = True
    """Whether the document can say at its end that it is incomplete (a trailing
    QUERY_STATUS): a streamed result cut short in a format that cannot (CSV,
    TSV) ends without its last chunk instead, so it cannot pass for complete."""
    charset: str | None = None
    """The ``charset`` parameter its Content-Type carries (text formats, whose
    default would otherwise be US-ASCII, RFC 2046 and RFC 4180); XML and binary
    formats say their encoding themselves."""

    def __post_init__(self) -> None:
        if (DataPath.COPY in self.paths) != (self.copy is not None):
            raise ValueError(f"{self.name}: the COPY path needs a copy writer")

    def takes(self, path: DataPath) -> bool:
        """Whether the runner may bring the rows to this format by ``path``."""
        return path in self.paths


def _infos(query: str, maxrec_clamped: bool) -> list[tuple[str, str, str | None]]:
    """The INFOs of a VOTable result (and of a VOParquet result's header)."""
    infos: list[tuple[str, str, str | None]] = [("QUERY", query, None)]
    if maxrec_clamped:
        infos.append(
            ("WARNING", "MAXREC", "MAXREC lowered to the service's hard limit")
        )
    return infos


@dataclass(frozen=True, slots=True)
class VOTableEncoders:
    """Encoder factory of one VOTable serialization; QUERY and MAXREC as INFOs."""

    serialization: Literal["binary2", "binary", "tabledata"]

    def __call__(
        self, fields: Sequence[FieldSpec], *, query: str, maxrec_clamped: bool
    ) -> VOTableEncoder:
        return VOTableEncoder(
            fields,
            serialization=self.serialization,
            version=VOTABLE_VERSION,
            infos=_infos(query, maxrec_clamped),
        )


@dataclass(frozen=True, slots=True)
class ParquetEncoders:
    """Encoder factory of VOParquet; pyarrow is imported only here, when a
    Parquet result is asked for (not when a runner starts: about 45 MB)."""

    def __call__(
        self, fields: Sequence[FieldSpec], *, query: str, maxrec_clamped: bool
    ) -> RowEncoder:
        from taprunner.formats.parquet import ParquetEncoder

        return ParquetEncoder(fields, infos=_infos(query, maxrec_clamped))


@dataclass(frozen=True, slots=True)
class DelimitedEncoders:
    """Encoder factory of CSV (``,``) or TSV (tab): a header line, then rows."""

    delimiter: str

    def __call__(
        self, fields: Sequence[FieldSpec], *, query: str, maxrec_clamped: bool
    ) -> DelimitedEncoder:
        return DelimitedEncoder(fields, delimiter=self.delimiter)


@dataclass(frozen=True, slots=True)
class DelimitedCopy:
    """COPY writer of CSV (``,``) or TSV (tab), see :func:`.pgcopy.copy_csv`."""

    delimiter: str

    async def __call__(self, conn: Connection, sql: str, sink: Sink) -> int:
        return await copy_csv(conn, sql, sink, delimiter=self.delimiter)


_VOT = "application/x-votable+xml"
_PARQUET = "application/vnd.apache.parquet"
#: VOParquet needs pyarrow (the optional ``parquet`` extra): without it the
#: format is neither accepted nor advertised. Looked up, not imported.
PARQUET_AVAILABLE = importlib.util.find_spec("pyarrow") is not None
_ROWS = frozenset({DataPath.CURSOR, DataPath.FETCH})
_BINARY_ROWS = _ROWS | {DataPath.ARROW}
_COPIED = frozenset({DataPath.CURSOR, DataPath.COPY})

OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        name="binary2",
        media_type=_VOT,
        extension="vot",
        accepts=(
            "votable",
            _VOT,
            "text/xml",
            "votable/b2",
            "votable/binary2",
            f"{_VOT};serialization=binary2",
            f"{_VOT};serialization=binary2;version=1.4",
            "application/x-votable",
        ),
        capability=TapRegExtFormat(
            f"{_VOT};serialization=BINARY2",
            ("votable", "votable/b2", _VOT),
            f"{TAPREGEXT}#output-votable-binary2",
        ),
        encoder=VOTableEncoders("binary2"),
        paths=_BINARY_ROWS,
    ),
    OutputFormat(
        name="binary",
        media_type=_VOT,
        extension="vot",
        accepts=("votable/b", "votable/binary", f"{_VOT};serialization=binary"),
        capability=TapRegExtFormat(
            f"{_VOT};serialization=BINARY",
            ("votable/b",),
            f"{TAPREGEXT}#output-votable-binary",
        ),
        encoder=VOTableEncoders("binary"),
        paths=_BINARY_ROWS,
    ),
    OutputFormat(
        name="tabledata",
        media_type=_VOT,
        extension="vot",
        accepts=(
            "votable/td",
            "votable/tabledata",
            f"{_VOT};serialization=tabledata",
            "votabletd",
        ),
        capability=TapRegExtFormat(
            f"{_VOT};serialization=TABLEDATA",
            ("votable/td",),
            f"{TAPREGEXT}#output-votable-td",
        ),
        encoder=VOTableEncoders("tabledata"),
        paths=_ROWS | {DataPath.COPY_TEXT},
        compress=True,
    ),
    # TAPRegExt 1.0 defines standard keys for the VOTable serializations only.
    OutputFormat(
        name="csv",
        # TAP 1.1 section 2.7.1: CSV is "text/csv;header=present" (we send one).
        media_type="text/csv;header=present",
        extension="csv",
        accepts=("csv", "text/csv", "text/csv;header=present"),
        capability=TapRegExtFormat("text/csv", ("csv",)),
        encoder=DelimitedEncoders(","),
        paths=_COPIED,
        copy=DelimitedCopy(","),
        compress=True,
        trailer=False,
        charset="utf-8",
    ),
    OutputFormat(
        name="tsv",
        media_type="text/tab-separated-values",
        extension="tsv",
        accepts=("tsv", "text/tab-separated-values", "text/tsv"),
        capability=TapRegExtFormat("text/tab-separated-values", ("tsv",)),
        encoder=DelimitedEncoders("\t"),
        paths=_COPIED,
        copy=DelimitedCopy("\t"),
        compress=True,
        trailer=False,
        charset="utf-8",
    ),
    *(
        [
            OutputFormat(
                name="parquet",
                media_type=_PARQUET,
                extension="parquet",
                accepts=("parquet", _PARQUET, "application/x-parquet"),
                capability=TapRegExtFormat(_PARQUET, ("parquet",)),
                encoder=ParquetEncoders(),
                paths=_BINARY_ROWS,
            )
        ]
        if PARQUET_AVAILABLE
        else []
    ),
)
"""The output formats in capabilities order; the first one is the default."""
