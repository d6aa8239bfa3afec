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

from taprunner.votable import FieldSpec, Row, cell_text

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_PG_SPECIALS = {"+Inf": "Infinity", "-Inf": "-Infinity"}


def _field_text(field: FieldSpec, value: object) -> str:
    """Text of a value; infinities spelt as PostgreSQL's COPY spells them."""
    text = cell_text(field, value)
    return _PG_SPECIALS.get(text, text)


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
        texts = [
            [
                None if v is None else _field_text(f, v)
                for f, v in zip(self.fields, row, strict=True)
            ]
            for row in rows
        ]
        return self._lines(texts)

    def footer(self, *, overflow: bool = False) -> bytes:
        """Nothing: delimited formats have no trailer (overflow cannot be signalled)."""
        return b""

    def _lines(self, rows: list[list[str | None]]) -> bytes:
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
