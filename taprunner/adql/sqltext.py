"""Lexical pieces of the emitted PostgreSQL: identifiers, string and number literals."""

from __future__ import annotations

import re
from dataclasses import dataclass

from taprunner.adql.model import AdqlError

_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
_NUMBER = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")

# PostgreSQL's reserved key words (and those that cannot name a column).
_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both
    case cast check collate collation column concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time
    current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in
    initially inner intersect into is isnull join lateral leading left like limit
    localtime localtimestamp natural not notnull null offset on only or order outer
    overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true
    union unique user using variadic verbose when where window with""".split()
)


@dataclass(frozen=True, slots=True)
class Fragment:
    """A translated value expression and what the translator knows about it."""

    sql: str
    geom: str | None = None
    """``point``/``circle``/``polygon`` when the value is a pg_sphere geometry."""
    coords: tuple[str, ...] | None = None
    """SQL of the DALI coordinates (degrees), when known without pg_sphere."""
    predicate: str | None = None
    """Boolean SQL of CONTAINS/INTERSECTS, usable where a condition is expected."""
    name: str | None = None
    """The output name a select-list item of this value gets when unaliased."""
    unit: str | None = None
    """The value's VOUnit when known (a column's from TAP_SCHEMA; for IN_UNIT)."""
    integer: bool = False
    """Whether the value is known to be an integer (an integer literal, column
    or CAST, sums and products of them): ROUND and TRUNCATE keep it exact."""
    points: tuple[str, str] | None = None
    """The two pg_sphere points of a DISTANCE (for an indexable comparison)."""


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted unless plain lowercase."""
    if _PLAIN_IDENTIFIER.match(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def string_literal(value: str) -> str:
    """A literal PostgreSQL reads as exactly ``value``.

    Plain ``'...'`` literals depend on ``standard_conforming_strings`` when they
    hold a backslash; those are emitted as ``E'...'``, whose meaning is fixed.
    """
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def number_literal(text: str) -> str:
    """An unsigned numeric literal, checked against ADQL's number syntax."""
    if not _NUMBER.match(text):
        raise AdqlError(f"invalid number {text!r}")
    return text
