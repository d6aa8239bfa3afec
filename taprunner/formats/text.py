"""CSV (RFC 4180) and TSV result writers with the VOTableEncoder contract.

``header()`` is the line of column names, ``encode(rows)`` a batch of lines,
``footer()`` empty. NULL is an empty field; in CSV an empty string is written as
``""`` so the two stay distinct. TSV escapes backslash, tab, newline and CR
as ``\\\\ \\t \\n \\r`` (PostgreSQL's text COPY format, so both paths agree).
Lines end with CRLF in CSV (RFC 4180) and LF in TSV.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from taprunner.formats.cells import column_texts
from taprunner.formats.fields import FieldSpec, Row

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_PG_SPECIALS = {"+Inf": "Infinity", "-Inf": "-Infinity"}


def _field_texts(field: FieldSpec, column: Sequence[object]) -> list[str | None]:
    """Texts of one column; infinities spelt as PostgreSQL's COPY spells them."""
    texts = column_texts(field, column)
    if field.datatype not in ("float", "double"):
        return texts
    return [t if t is None else _PG_SPECIALS.get(t, t) for t in texts]


class DelimitedEncoder:
    """Produces the bytes of one CSV or TSV document, piece by piece."""

    def __init__(self, fields: Sequence[FieldSpec], *, delimiter: str = ",") -> None:
        self.fields = list(fields)
        self.delimiter = delimiter

    def header(self) -> bytes:
        """The line of column names."""
        return self._lines([[f.name for f in self.fields]])

    def encode(self, rows: Sequence[Row]) -> bytes:
        """A batch of rows (field order, ``None`` for NULL) as lines."""
        if not rows:
            return b""
        columns = zip(*rows, strict=True)
        texts = [_field_texts(f, c) for f, c in zip(self.fields, columns, strict=True)]
        return self._lines(list(zip(*texts, strict=True)))

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes:
        """Nothing: delimited formats have no trailer (neither an overflow, a cut
        nor an error can be signalled)."""
        return b""

    def _lines(self, rows: Sequence[Sequence[str | None]]) -> bytes:
        if self.delimiter == "\t":
            lines = [
                "\t".join("" if t is None else t.translate(_TSV_ESCAPES) for t in row)
                + "\n"
                for row in rows
            ]
        else:
            quote = self._needs_quotes
            lines = [
                self.delimiter.join(_csv_field(t, quote) for t in row) + "\r\n"
                for row in rows
            ]
        return "".join(lines).encode("utf-8")

    @property
    def _needs_quotes(self) -> re.Pattern[str]:
        return re.compile(f'[{re.escape(self.delimiter)}"\r\n]')


def _csv_field(text: str | None, needs_quotes: re.Pattern[str]) -> str:
    """One CSV field: NULL empty, the empty string and special characters quoted."""
    if text is None:
        return ""
    if text == "" or needs_quotes.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text
