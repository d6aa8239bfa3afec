"""Parse ADQL text into a sqlglot tree: a PostgreSQL-based dialect taught ``TOP``.

The dialect keeps only what ADQL's lexical rules allow (plain ``'...'`` strings
with ``''`` as the only escape, ``"..."`` delimited identifiers) and turns every
function call into ``exp.Anonymous`` so that the translator sees the name the
client wrote and decides alone which functions exist.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokenizer_core import TokenType

from taprunner.adql.model import AdqlError


class AdqlDialect(Postgres):
    """PostgreSQL's grammar with ADQL's lexical rules and ``SELECT TOP n``."""

    class Tokenizer(Postgres.Tokenizer):
        BIT_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        HEX_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        BYTE_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        UNICODE_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        HEREDOC_STRINGS: ClassVar[list[str | tuple[str, str]]] = []
        STRING_ESCAPES: ClassVar[list[str]] = ["'"]
        # POINT is a plain name in ADQL; as PostgreSQL's type keyword it would
        # send every POINT(...) call through the (slow) type parser first.
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            **{k: v for k, v in Postgres.Tokenizer.KEYWORDS.items() if k != "POINT"},
            "TOP": TokenType.TOP,
        }

    class Parser(PostgresParser):
        # Every call becomes exp.Anonymous(name, args): no function is known to
        # the parser, CAST and friends with special syntax aside.
        FUNCTIONS: ClassVar[dict[str, Any]] = {}
        NO_PAREN_FUNCTIONS: ClassVar[dict[Any, Any]] = {}
        FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
            "CAST": PostgresParser.FUNCTION_PARSERS["CAST"]
        }
        NO_PAREN_FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
            "CASE": PostgresParser.NO_PAREN_FUNCTION_PARSERS["CASE"]
        }


_DIALECT = AdqlDialect()
_TOKEN_ERROR = re.compile(r"Error tokenizing '(?P<context>.*)'", re.DOTALL)


def parse_statement(adql: str) -> exp.Expr:
    """Parse ``adql``, which must hold exactly one statement.

    Raises
    ------
    AdqlError
        On a syntax error (with line and column) or more than one statement.
    """
    if "\x00" in adql:
        raise AdqlError("the query contains a NUL character")
    try:
        statements = [s for s in _DIALECT.parse(adql) if s is not None]
    except ParseError as exc:
        raise _syntax_error(exc) from None
    except TokenError as exc:
        raise _token_error(adql, exc) from None
    if not statements:
        raise AdqlError("the query is empty")
    if len(statements) > 1:
        raise AdqlError("only a single SELECT statement is allowed")
    return statements[0]


def _syntax_error(exc: ParseError) -> AdqlError:
    """Turn sqlglot's first recorded error into a located AdqlError."""
    if not exc.errors:
        return AdqlError(f"syntax error: {exc}")
    first = exc.errors[0]
    near = str(first.get("highlight") or "")
    line = int(first.get("line") or 1)
    # sqlglot reports the column of the highlighted token's last character.
    column = max(1, int(first.get("col") or 1) - len(near) + 1)
    where = f"near '{near}'" if near else "at end of query"
    detail = str(first.get("description") or "")
    return AdqlError(
        f"syntax error at line {line}, column {column} {where}: {detail}",
        line,
        column,
    )


def _token_error(adql: str, exc: TokenError) -> AdqlError:
    """Locate an unterminated string or identifier, sqlglot's usual TokenError."""
    match = _TOKEN_ERROR.match(str(exc))
    offset = len(match.group("context")) if match else len(adql)
    quote = max(adql.rfind("'", 0, offset), adql.rfind('"', 0, offset))
    offset = quote if quote >= 0 else offset
    line = adql.count("\n", 0, offset) + 1
    column = offset - (adql.rfind("\n", 0, offset) + 1) + 1
    return AdqlError(
        f"syntax error at line {line}, column {column}: unterminated string "
        "or delimited identifier",
        line,
        column,
    )
