"""ADQL syntax errors say line, column and what was expected, in ADQL terms.

Never sqlglot's internals (its class names, tokens); the same messages reach
clients of /tap/sync (tests/integration/test_adql_syntax_http.py); the cases are in
tests/adqlsyntax.py.
"""

from __future__ import annotations

import pytest
from adqlsyntax import INTERNALS, MALFORMED

from taprunner.adql.model import AdqlError, AdqlSyntaxError, StaticCatalog
from taprunner.adql.translate import translate

CATALOG = StaticCatalog({"gaia.src": ["id", "ra", "dec", "mag"]})


@pytest.mark.parametrize(("adql", "line", "column", "says"), MALFORMED)
def test_syntax_error_says_where_and_what_in_adql_terms(
    adql: str, line: int, column: int, says: str
) -> None:
    with pytest.raises(AdqlError) as caught:
        translate(adql, CATALOG)
    message = str(caught.value)
    assert says in message
    assert f"line {line}, column {column}" in message
    assert (caught.value.line, caught.value.column) == (line, column)
    for word in INTERNALS:
        assert word not in message


def test_well_formed_neighbours_still_translate() -> None:
    """What the stricter rules must not catch: commas that separate items."""
    sql = translate(
        "SELECT ra, dec FROM gaia.src, gaia.src AS b WHERE id IN (1, 2)"
        " ORDER BY ra, dec",
        CATALOG,
    ).sql
    assert "IN (1, 2)" in sql and "ORDER BY ra, dec" in sql


@pytest.mark.parametrize(
    ("adql", "says"),
    [
        ("SELECT CAST('1 2 3' AS POINT) FROM gaia.src", "'1 2 3' is not a DALI point"),
        ("SELECT CAST('1 x' AS POINT) FROM gaia.src", "2 numbers"),
        ("SELECT CAST('1 2' AS CIRCLE) FROM gaia.src", "not a DALI circle"),
        ("SELECT CAST('1 2 3 4 5' AS POLYGON) FROM gaia.src", "6 or more"),
    ],
)
def test_geometry_cast_of_a_literal_needs_its_dali_numbers(
    adql: str, says: str
) -> None:
    with pytest.raises(AdqlSyntaxError) as caught:
        translate(adql, CATALOG)
    assert caught.value.message.startswith("syntax error")
    assert says in caught.value.message


def test_hex_and_exponent_literals_still_translate() -> None:
    sql = translate("SELECT 0x1F, 0XfF, 1e5, 2.5E-3 FROM gaia.src", CATALOG).sql
    assert "31 AS" in sql and "255 AS" in sql and "1e5" in sql and "2.5E-3" in sql
    sql = translate("SELECT CAST('1 2' AS POINT) FROM gaia.src", CATALOG).sql
    assert "cardinality(v.a) = 2" in sql
