"""Malformed ADQL and what its syntax error must say (line, column, words), shared
by tests/unit/test_adql_syntax.py and tests/integration/test_adql_syntax_http.py."""

from __future__ import annotations

#: Words of parser internals no message may show.
INTERNALS = ("sqlglot", "<class", "Expression", "Token", "Required keyword")

# (ADQL, line, column, what the message must say)
MALFORMED: list[tuple[str, int, int, str]] = [
    # a missing WHERE condition
    ("SELECT ra FROM gaia.src WHERE", 1, 25, "expected a search condition after WHERE"),
    ("SELECT ra\nFROM gaia.src\nWHERE\n", 3, 1, "search condition after WHERE"),
    ("SELECT ra FROM gaia.src WHERE ra > 1 AND", 1, 38, "condition after AND"),
    ("SELECT ra FROM gaia.src WHERE ra >", 1, 34, "expected a value after '>'"),
    # unbalanced parentheses
    ("SELECT ra FROM gaia.src WHERE (ra > 1", 1, 37, "expected ')'"),
    ("SELECT ra FROM gaia.src WHERE ra > 1)", 1, 37, "unbalanced parentheses"),
    ("SELECT COUNT(* FROM gaia.src", 1, 16, "expected ')'"),
    # trailing commas
    ("SELECT ra, FROM gaia.src", 1, 10, "no trailing comma"),
    ("SELECT ra,\n  dec,\nFROM gaia.src", 2, 6, "no trailing comma"),
    ("SELECT ra FROM gaia.src ORDER BY ra,", 1, 36, "no trailing comma"),
    ("SELECT ra FROM gaia.src WHERE id IN (1, 2,)", 1, 42, "no trailing comma"),
    ("SELECT ra FROM gaia.src,", 1, 24, "no trailing comma"),
    # bad keywords
    ("SELEC ra FROM gaia.src", 1, 1, "expected SELECT at the start"),
    ("SELECT ra FORM gaia.src", 1, 16, "did you mean FROM?"),
    ("SELECT ra FROM gaia.src WHERE ra > 1 ANDD dec > 1", 1, 38, "did you mean AND?"),
    ("SELECT TOP ra FROM gaia.src", 1, 12, "row count"),
    ("SELECT ra FROM gaia.src WHERE ra BETWEEN 1", 1, 42, "BETWEEN ... AND"),
    ("SELECT CAST(ra AS) FROM gaia.src", 1, 18, "data type"),
    ("SELECT ra FROM", 1, 11, "expected a table name"),
    ("SELECT ra FROM gaia.src UNION", 1, 25, "a SELECT after UNION"),
    ("SELECT ra FROM gaia.src ORDER", 1, 25, "unexpected ORDER (a reserved word"),
    ("SELECT ra FROM gaia.src OFFSET", 1, 25, "unexpected OFFSET"),
    ("SELECT ra FROM gaia.src\nGROUP BY", 2, 1, "expected a column after GROUP BY"),
    ("SELECT ra FROM gaia.src AS a JOIN gaia.src AS b", 1, 47, "expected ON"),
    # what PostgreSQL reads and ADQL 2.1's grammar does not have
    ("SELECT 0xZZ FROM gaia.src", 1, 8, "0x followed by the digits 0-9, A-F"),
    ("SELECT 0x FROM gaia.src", 1, 8, "hexadecimal literal"),
    ("SELECT 1a FROM gaia.src", 1, 8, "separated from the word after it"),
    (
        "SELECT ra FROM gaia.src WHERE ra > TIMESTAMP '2020-01-01'",
        1,
        36,
        "ADQL has no typed literals (write CAST('2020-01-01' AS TIMESTAMP))",
    ),
    ("SELECT DATE '2020-01-01' FROM gaia.src", 1, 8, "no typed literals"),
    ("SELECT ra FROM gaia.src ORDER BY ra NULLS FIRST", 1, 37, "only ASC or DESC"),
    ("SELECT ra FROM gaia.src ORDER BY ra DESC NULLS LAST", 1, 42, "NULLS LAST"),
    ("SELECT CAST(ra AS INTEGER FROM gaia.src", 1, 8, "expected ')' closing CAST("),
    # unterminated strings and delimited identifiers
    ("SELECT ra FROM gaia.src WHERE dec = 'abc", 1, 37, "unterminated string"),
    ('SELECT "ra FROM gaia.src', 1, 8, "unterminated string"),
    # the empty query
    ("", 1, 1, "the query is empty"),
    ("  \n ", 1, 1, "the query is empty"),
]
