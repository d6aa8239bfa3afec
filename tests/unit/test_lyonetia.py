"""The IVOA's ADQL validation queries (lyonetia ``adql/ivoa/*.xml``) through the
translator: every valid one translates, every invalid one is a syntax error.

The queries are GPL-3, so they are read from where they are kept, never copied
here: ``$LYONETIA_DIR``, else ``../shared/lyonetia`` next to the repository
(the checkout's parent holds ``shared/``). Without them the tests are skipped,
saying where they looked. No database: the tables the queries name do not exist,
so each query gets a catalogue holding every table it names, with every name it
uses as columns (or, for set operations over ``SELECT *``, the one column ``a``);
a refusal can then never be "unknown table".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from sqlglot import exp

from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.parse import parse_statement
from taprunner.adql.translate import translate

REPO = Path(__file__).resolve().parents[2]
LYONETIA = Path(os.environ.get("LYONETIA_DIR") or REPO.parent / "shared" / "lyonetia")
QUERIES = LYONETIA / "adql" / "ivoa"

#: Valid queries no service can translate, each with what it is told. Marked
#: valid because they are grammatical (lyonetia checks parsers), this one
#: qualifies columns by tables its FROM clause does not have (usnob.data, a):
#: SQL has no meaning for it, PostgreSQL would say "missing FROM-clause entry".
EXPECTED_REFUSALS = {
    "usnob.data.raj2000": "unknown table usnob.data in usnob.data.raj2000: no FROM"
    " item of this query is named so",
}


@dataclass(frozen=True, slots=True)
class Query:
    source: str
    valid: bool
    adql: str


def _queries() -> list[Query]:
    if not QUERIES.is_dir():
        return []
    found = []
    for path in sorted(QUERIES.glob("*.xml")):
        for node in etree.parse(str(path)).iter("adql"):
            found.append(Query(path.name, node.get("valid") == "true", node.text or ""))
    return found


ALL = _queries()
skip_without = pytest.mark.skipif(
    not ALL,
    reason=f"the lyonetia ADQL queries are not at {QUERIES} (set LYONETIA_DIR to "
    "the copy of lyonetia's src/adql parent)",
)


class QueryCatalog:
    """Every table has every name the query uses (and ``a``) as its columns; a
    column is in ``mas/yr`` if its name starts with ``pm``, else in ``deg``."""

    def __init__(self, statement: exp.Expr) -> None:
        names = {"a"}
        for ident in statement.find_all(exp.Identifier):
            names.add(str(ident.this) if ident.quoted else str(ident.this).lower())
        self._columns = tuple(sorted(names))

    def columns_of(self, table: str) -> Sequence[str] | None:
        return self._columns

    def column_unit(self, table: str, column: str) -> str | None:
        return "mas/yr" if column.startswith("pm") else "deg"


class OneColumnCatalog(QueryCatalog):
    """Every table has the one column ``a``: for set operations over ``SELECT *``,
    whose sides need as many columns."""

    def __init__(self) -> None:
        self._columns = ("a",)


def _translate(adql: str) -> None:
    """Translate ``adql`` with a catalogue that has its tables: every name it
    uses as their columns, or else (``SELECT *`` in set operations) one column."""
    statement = parse_statement(adql)
    try:
        translate(adql, QueryCatalog(statement), statement=statement)
    except AdqlSyntaxError:
        raise
    except AdqlError as error:
        if "they need as many" not in error.message:
            raise
        translate(adql, OneColumnCatalog(), statement=statement)


def _expected_refusal(adql: str) -> str | None:
    for marker, message in EXPECTED_REFUSALS.items():
        if marker.lower() in adql.lower():
            return message
    return None


@skip_without
def test_the_queries_are_all_there() -> None:
    assert len(ALL) == 196
    assert sum(q.valid for q in ALL) == 172


@skip_without
@pytest.mark.parametrize("query", [q for q in ALL if q.valid], ids=lambda q: q.source)
def test_valid_query_translates(query: Query) -> None:
    refusal = _expected_refusal(query.adql)
    if refusal is None:
        _translate(query.adql)
        return
    with pytest.raises(AdqlError) as caught:
        _translate(query.adql)
    assert refusal in caught.value.message


@skip_without
@pytest.mark.parametrize(
    "query", [q for q in ALL if not q.valid], ids=lambda q: q.source
)
def test_invalid_query_is_a_syntax_error(query: Query) -> None:
    with pytest.raises(AdqlSyntaxError) as caught:
        _translate(query.adql)
    assert caught.value.message.startswith("syntax error")
    assert "unknown table" not in caught.value.message


@skip_without
def test_counts() -> None:
    """171 of 172 valid translate (REGION in FK4, of a Union, of a Not; ESO's
    UDFs ESO_INTERSECTION and eso_dateadd_sec among them); the one left names
    tables missing from its FROM clause."""
    valid = [q for q in ALL if q.valid]
    translated = 0
    for query in valid:
        try:
            _translate(query.adql)
        except AdqlError:
            assert _expected_refusal(query.adql) is not None, query.adql
        else:
            translated += 1
    assert translated == len(valid) - 1 == 171
