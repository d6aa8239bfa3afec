"""TABLEDATA rows transcoded from PostgreSQL's COPY text with bytes operations.

PostgreSQL writes the rows in its text COPY format (a tab between fields, a
newline after each row, ``\\N`` for NULL, backslash escapes for backslash, tab,
newline, CR, backspace, form feed and vertical tab). :class:`CopyTranscoder`
turns whole chunks of complete lines into the ``<TR>`` elements that
:func:`taprunner.formats.cells.tabledata` writes for the same rows, with a few
C-speed passes over each chunk (``bytes.replace``) instead of Python objects
per value: XML-escape ``&``, ``<``, ``>``; tab becomes ``</TD><TD>``, newline
``</TD></TR>`` and the next ``<TR><TD>``; a ``<TD>\\N</TD>`` becomes ``<TD/>``.
The rarer cases take slower passes only in the chunks that hold them: COPY's
backslash escapes are undone (a CR written ``&#13;``, the control characters
XML 1.0 does not allow as U+FFFD, as :func:`~taprunner.formats.cells.xml_text`
does), raw disallowed control characters and U+FFFE/U+FFFF replaced, and the
float infinities spelt ``+Inf``/``-Inf`` (in a chunk that also holds text
columns, field by field, so that a text ``Infinity`` stays as it is).

:func:`copy_columns` says whether a result's columns may take this path: only
types whose PostgreSQL text is the one the TABLEDATA encoder writes, or
parses to the same value (PostgreSQL's shortest float text ``1`` where Python
writes ``1.0``); booleans (``T``/``F``), timestamps and dates (as Python's
``isoformat`` writes them) and one-dimensional arrays of numbers and booleans
(the DALI geometries among them) are spelt by the query (see
:func:`copy_select`). The other types keep the encoder's path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from taprunner.formats.fields import FieldSpec, field_for_pg_type
from taprunner.formats.pgtypes import PLAIN_TYPES, TEXT_TYPES

__all__ = [
    "CopyTranscoder",
    "copy_columns",
    "copy_select",
    "text_columns",
    "value_lengths",
]

#: PostgreSQL types (asyncpg's names) whose COPY text TABLEDATA takes, with the
#: datatype of their FIELD (a column declared wider keeps the encoder's path).
#: PostgreSQL types transcoded from text COPY, and the datatype of their FIELD.
_TYPES = {
    name: field_for_pg_type(name, name).datatype
    for name, facts in PLAIN_TYPES.items()
    if facts.copy_text
}
_STRING = ("char", "unicodeChar")
_FLOATS = ("float", "double")
#: The text types among them (values a catalogue may declare char too).
_TEXTS = frozenset(_TYPES) & TEXT_TYPES
#: Time types: written by the query as the encoder writes asyncpg's datetime
#: and date values (``isoformat``, UTC without an offset; infinities as
#: asyncpg's ``max`` and ``min``), with the infinity, -infinity, in-range and
#: out-of-range texts; the encoder cannot write a year outside 1-9999 (asyncpg
#: fails on it): the query fails on it too.
_TIMES = {
    "timestamp": (
        "{c}",
        "'9999-12-31T23:59:59.999999'",
        "'0001-01-01T00:00:00'",
        """replace(to_char({v}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')""",
        "timestamp",
    ),
    "timestamptz": (
        "({c} AT TIME ZONE 'UTC')",
        "'9999-12-31T23:59:59.999999'",
        "'0001-01-01T00:00:00'",
        """replace(to_char({v}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')""",
        "timestamp",
    ),
    "date": (
        "{c}",
        "'9999-12-31'",
        "'0001-01-01'",
        "to_char({v}, 'YYYY-MM-DD')",
        "date",
    ),
}

_ESCAPES = {
    b"\\": b"\\",
    b"t": b"\t",
    b"n": b"\n",
    b"r": b"&#13;",
    b"b": "\ufffd".encode(),  # backspace, form feed and vertical tab are not
    b"f": "\ufffd".encode(),  # allowed in XML 1.0: the encoder writes U+FFFD
    b"v": "\ufffd".encode(),
}
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
#: Raw control characters COPY does not escape, U+FFFE and U+FFFF (UTF-8).
_BAD_XML = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")
#: The bytes that start what :data:`_BAD_XML` finds (one ``translate`` pass
#: tells whether a chunk holds any: far faster than the regular expression).
_SUSPECT = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xEF])
_REPLACEMENT = "\ufffd".encode()
_INFINITIES = {b"Infinity": b"+Inf", b"-Infinity": b"-Inf"}


def copy_columns(
    fields: Sequence[FieldSpec], pg_types: Sequence[str], names: Sequence[str]
) -> bool:
    """Whether the TABLEDATA of these columns (PostgreSQL's ``pg_types`` and
    column ``names``) may be transcoded from COPY text; booleans, times and
    arrays, spelt by the query (:func:`copy_select`), need a name of their
    own."""
    spelt = any(_spelt(f, t) for f, t in zip(fields, pg_types, strict=True))
    if spelt and len(set(names)) < len(names):
        return False
    return all(_takes(f, t) for f, t in zip(fields, pg_types, strict=True))


def _takes(field: FieldSpec, pg_type: str) -> bool:
    if pg_type.endswith("[]"):  # asyncpg's name of an array type
        element = _TYPES.get(pg_type[:-2])
        numbers = field.datatype not in _STRING
        return field.arraysize is not None and element == field.datatype and numbers
    if pg_type in _TEXTS:
        return field.datatype in _STRING
    if pg_type in _TIMES:
        return field.datatype == "char"
    return field.arraysize is None and _TYPES.get(pg_type) == field.datatype


def text_columns(fields: Sequence[FieldSpec], pg_types: Sequence[str]) -> list[int]:
    """Indices of the columns of text values (those ``tap_value_bytes`` counts
    by their characters; times are written as text too, but are no texts)."""
    return [
        i
        for i, (f, t) in enumerate(zip(fields, pg_types, strict=True))
        if f.datatype in _STRING and t not in _TIMES
    ]


def _spelt(field: FieldSpec, pg_type: str) -> bool:
    return field.datatype == "boolean" or pg_type in _TIMES or pg_type.endswith("[]")


def copy_select(
    sql: str,
    fields: Sequence[FieldSpec],
    names: Sequence[str],
    limit: int,
    pg_types: Sequence[str] = (),
) -> str:
    """The query COPY runs: ``sql`` capped at ``limit`` rows, booleans as T/F,
    times (``pg_types``) as the encoder writes them (the query's column
    ``names`` unique, see :func:`copy_columns`)."""
    inner = sql.strip().rstrip(";")
    types = list(pg_types) or [""] * len(fields)
    if not any(_spelt(f, t) for f, t in zip(fields, types, strict=True)):
        return f"SELECT * FROM ({inner}) AS q LIMIT {limit}"
    columns = []
    for field, name, pg_type in zip(fields, names, types, strict=True):
        column = 'q."' + name.replace('"', '""') + '"'
        if pg_type in _TIMES:
            column = _time_sql(column, pg_type)
        elif pg_type.endswith("[]"):
            column = _array_sql(column, field.datatype)
        elif field.datatype == "boolean":
            column = f"CASE WHEN {column} THEN 'T' WHEN NOT {column} THEN 'F' END"
        columns.append(column)
    return f"SELECT {', '.join(columns)} FROM ({inner}) AS q LIMIT {limit}"


def _time_sql(column: str, pg_type: str) -> str:
    """SQL writing a time ``column`` of ``pg_type`` as the encoder does; a
    year outside 1-9999 fails the query (a cast of a text naming the value,
    not foldable into a constant: the planner would raise it for every query)."""
    value, infinity, minus_infinity, text, kind = _TIMES[pg_type]
    v = value.format(c=column)
    return (
        f"CASE WHEN {v} >= '0001-01-01' AND {v} < '10000-01-01'"
        f" THEN {text.format(v=v)}"
        f" WHEN {v} = 'infinity' THEN {infinity}"
        f" WHEN {v} = '-infinity' THEN {minus_infinity}"
        f" ELSE CAST(CAST('year out of range for TABLEDATA: ' || {v} AS {kind})"
        " AS text) END"
    )


def _array_sql(column: str, datatype: str) -> str:
    """SQL writing an array ``column`` of ``datatype`` elements as the encoder
    does: space-separated, a NULL element NaN (floats) or empty, infinities
    DALI-spelt, booleans T/F. A multidimensional array fails the query (the
    encoder writes Python's lists, which no client parses)."""
    if datatype in _FLOATS:
        text = (
            f"replace(replace(array_to_string({column}, ' ', 'NaN'),"
            " '-Infinity', '-Inf'), 'Infinity', '+Inf')"
        )
    elif datatype == "boolean":
        text = f"translate(array_to_string({column}, ' ', ''), 'tf', 'TF')"
    else:
        text = f"array_to_string({column}, ' ', '')"
    return (
        f"CASE WHEN array_ndims({column}) > 1 THEN CAST(CAST("
        f"'TABLEDATA has no multidimensional arrays: ' || CAST({column} AS text)"
        " AS integer)"
        f" AS text) ELSE {text} END"
    )


class CopyTranscoder:
    """COPY text lines of ``fields`` to TABLEDATA ``<TR>`` elements."""

    def __init__(
        self, fields: Sequence[FieldSpec], pg_types: Sequence[str] = ()
    ) -> None:
        self.fields = list(fields)
        self._floats = [
            i
            for i, f in enumerate(fields)
            if f.datatype in _FLOATS and f.arraysize is None
        ]
        types = list(pg_types) or [""] * len(fields)
        #: Columns of text values (times are spelt by the query: no texts).
        self.texts = text_columns(fields, types)
        #: Columns of arrays of any length (the value limit counts their
        #: elements).
        self.arrays = [
            i
            for i, (f, t) in enumerate(zip(fields, types, strict=True))
            if t.endswith("[]") and f.arraysize is not None and "*" in f.arraysize
        ]
        self._strings = bool(self.texts)

    def rows(self, lines: bytes) -> bytes:
        """TR elements of ``lines``: complete COPY text lines, each ending
        with a newline (``b""`` for none)."""
        if not lines:
            return b""
        suspect = len(lines.translate(None, _SUSPECT)) != len(lines)
        if b"&" in lines:
            lines = lines.replace(b"&", b"&amp;")
        if b"<" in lines:
            lines = lines.replace(b"<", b"&lt;")
        if b">" in lines:
            lines = lines.replace(b">", b"&gt;")
        if self._floats and b"Infinity" in lines:
            lines = self._infinities(lines)
        data = b"".join(
            (
                b"<TR><TD>",
                lines[:-1]
                .replace(b"\t", b"</TD><TD>")
                .replace(b"\n", b"</TD></TR>\n<TR><TD>"),
                b"</TD></TR>\n",
            )
        )
        if b"\\" in data:
            data = data.replace(b"<TD>\\N</TD>", b"<TD/>")
            if b"\\" in data:
                data = _ESCAPE.sub(_unescape, data)
        if suspect and _BAD_XML.search(data) is not None:
            data = _BAD_XML.sub(_REPLACEMENT, data)
        return data

    def _infinities(self, lines: bytes) -> bytes:
        """Infinities of the float columns spelt as TABLEDATA spells them."""
        if not self._strings:  # only numbers: every "Infinity" field is a float
            for text, spelt in _INFINITIES.items():
                lines = re.sub(rb"(?<![^\t\n])" + text + rb"(?=[\t\n])", spelt, lines)
            return lines
        out = []
        for line in lines.split(b"\n")[:-1]:
            if b"Infinity" in line:
                cells = line.split(b"\t")
                for i in self._floats:
                    cells[i] = _INFINITIES.get(bytes(cells[i]), cells[i])
                line = b"\t".join(cells)
            out.append(line)
        out.append(b"")
        return b"\n".join(out)


_PLAIN = {b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r"}


def value_lengths(cells: Sequence[bytes]) -> list[int]:
    """UTF-8 bytes of the text values of COPY text ``cells`` (0 for NULL), as
    ``tap_value_bytes`` counts them on every path."""
    lengths = []
    for cell in cells:
        if cell == b"\\N":
            lengths.append(0)
            continue
        if b"\\" in cell:
            cell = _ESCAPE.sub(lambda m: _PLAIN.get(m.group(1), b"\x01"), cell)
        lengths.append(len(cell))
    return lengths


def _unescape(match: re.Match[bytes]) -> bytes:
    """A COPY text escape undone (as TABLEDATA writes the character)."""
    char = match.group(1)
    return _ESCAPES.get(char, char)
