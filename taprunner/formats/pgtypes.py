"""The plain PostgreSQL types: one table of what the fast data paths know of them.

Fixed-width integers, floats, booleans and text are the types whose values the
fast paths read without asyncpg's records. Each fact is read from here:

- ``width``: bytes of a value in binary COPY, None for any length (text):
  :data:`taprunner.formats.pgbinary.COPY_WIDTHS`, the binary COPY path;
- ``arrow``: the Arrow formats the ADBC driver gives its values:
  :data:`taprunner.formats.arrow.ARROW_FORMATS`, the columnar path;
- ``text``: a text type, whose values a catalogue may declare ``char`` (ASCII)
  as well as ``unicodeChar``: :data:`TEXT_TYPES` (result FIELDs in
  taprunner.query.execute, metadata checks in taprunner.schema.columns);
- ``copy_text``: TABLEDATA is transcoded from its text COPY
  (taprunner.formats.tdcopy; ``bpchar`` is not, as it was not before).

Names are asyncpg's (``Attribute.type.name``, which is ``pg_type.typname`` for
these). The VOTable datatype of each is not here: it is
:func:`taprunner.formats.fields.field_for_pg_type`'s, the one mapping of a
result column's type, which the text COPY path compares with its FIELD's.
Tables that mean something else stay apart: ``fields._SCALARS`` (every type a
result column may have), ``schema.columns._SCALAR_TYPES`` (the type TAP_SCHEMA
publishes, with typmods and pg_sphere's types), and the upload tables
(``query.uploadparse``, ``query.uploadcopy``: VOTable datatypes to PostgreSQL's,
the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PLAIN_TYPES", "TEXT_TYPES", "PlainType"]


@dataclass(frozen=True, slots=True)
class PlainType:
    """What the fast data paths know of one plain PostgreSQL type."""

    #: Bytes of a value in binary COPY (None: any length).
    width: int | None
    #: Arrow formats (C data interface) the ADBC driver gives its values.
    arrow: tuple[str, ...]
    #: A text type: its values may be declared ``char`` or ``unicodeChar``.
    text: bool = False
    #: TABLEDATA may be transcoded from its text COPY.
    copy_text: bool = True


_TEXT = PlainType(None, ("u", "U"), text=True)

PLAIN_TYPES: Mapping[str, PlainType] = {
    "int2": PlainType(2, ("s",)),
    "int4": PlainType(4, ("i",)),
    "int8": PlainType(8, ("l",)),
    "float4": PlainType(4, ("f",)),
    "float8": PlainType(8, ("g",)),
    "bool": PlainType(1, ("b",)),
    "text": _TEXT,
    "varchar": _TEXT,
    "bpchar": PlainType(None, ("u", "U"), text=True, copy_text=False),
}

#: PostgreSQL text types: given as unicodeChar unless a catalogue declares the
#: column char (ASCII).
TEXT_TYPES = frozenset(name for name, facts in PLAIN_TYPES.items() if facts.text)
