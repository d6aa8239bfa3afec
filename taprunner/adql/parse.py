"""Parse ADQL text into a sqlglot tree: a PostgreSQL-based dialect taught ``TOP``.

The dialect keeps only what ADQL's lexical rules allow (plain ``'...'`` strings
with ``''`` as the only escape, ``"..."`` delimited identifiers) and turns every
function call into ``exp.Anonymous`` so that the translator sees the name the
client wrote and decides alone which functions exist. Syntax errors are said in
ADQL terms (line, column, what was expected), never in sqlglot's: its messages
name its classes and are only read here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokenizer_core import Token, TokenType

from taprunner.adql.grammar import CLAUSE_WORDS, check_grammar
from taprunner.adql.model import AdqlError, AdqlSyntaxError


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

        def _parse_csv(
            self, parse_method: Callable[[], Any], sep: TokenType = TokenType.COMMA
        ) -> list[Any]:
            # sqlglot's own drops an empty item after a separator: "SELECT a, FROM
            # t" would pass. ADQL has no trailing commas.
            item = parse_method()
            items = [item] if item is not None else []
            while self._match(sep):
                separator = self._prev
                if isinstance(item, exp.Expr):
                    self._add_comments(item)
                item = parse_method()
                if item is None:
                    self.raise_error(_TRAILING, separator)
                else:
                    items.append(item)
            return items

        def _parse_join(self, *args: Any, **kwargs: Any) -> exp.Join | None:
            # The same for a comma in FROM: "FROM a, " is no cross join.
            comma = (
                self._curr
                if self._curr and self._curr.token_type == TokenType.COMMA
                else None
            )
            join = super()._parse_join(*args, **kwargs)
            if join is None and comma is not None:
                self.raise_error(_TRAILING, comma)
            # And "a JOIN b" without a condition, which sqlglot reads as a, b.
            if join is not None and comma is None and not _conditioned(join):
                self.raise_error(_NO_JOIN_CONDITION, self._prev)
            return join


_DIALECT = AdqlDialect()
_HEX_DIGITS = re.compile(r"[xX][0-9A-Fa-f]+\Z")


def _tokenize(adql: str) -> list[Token]:
    """ADQL's tokens: ``0x1F`` (sqlglot's ``0`` then ``x1F``) is one integer.

    A number directly followed by a letter or ``_`` (``0xZZ``, ``1a``: sqlglot's
    number then a name, which would read as ``0 AS xZZ``) is a syntax error.
    """
    tokens: list[Token] = []
    for token in _DIALECT.tokenize(adql):
        previous = tokens[-1] if tokens else None
        if (
            previous is None
            or previous.token_type != TokenType.NUMBER
            or token.start != previous.end + 1
            or not (token.text[:1].isalpha() or token.text[:1] == "_")
        ):
            tokens.append(token)
        elif previous.text == "0" and _HEX_DIGITS.match(token.text):
            previous.text = str(int(token.text[1:], 16))
            previous.end = token.end
        else:
            raise _glued_number(previous, token)
    return tokens


def _glued_number(number: Token, word: Token) -> AdqlSyntaxError:
    line, column = number.line, max(1, number.col - len(number.text) + 1)
    written = f"{number.text}{word.text}"
    if number.text == "0" and word.text[:1] in "xX":
        why = "a hexadecimal literal is 0x followed by the digits 0-9, A-F only"
    else:
        why = "a number must be separated from the word after it"
    return AdqlSyntaxError(
        f"syntax error at line {line}, column {column} near '{written}': {why}",
        line,
        column,
    )


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
        tokens = _tokenize(adql)
        parsed = _DIALECT.parser().parse(tokens, adql)
    except ParseError as exc:
        raise _syntax_error(adql, exc) from None
    except TokenError as exc:
        raise _token_error(adql, exc) from None
    statements = [s for s in parsed if s is not None]
    if not statements:
        raise AdqlSyntaxError(
            "syntax error at line 1, column 1: the query is empty", 1, 1
        )
    if len(statements) > 1:
        raise AdqlSyntaxError("only a single SELECT statement is allowed")
    _check_clauses(adql, statements[0])
    check_grammar(statements[0], tokens)
    return statements[0]


def _check_clauses(adql: str, statement: exp.Expr) -> None:
    """What sqlglot lets pass and ADQL does not: clause words as names, an empty
    GROUP BY."""
    for ident in statement.find_all(exp.Identifier):
        word = str(ident.this)
        if not ident.quoted and word.upper() in CLAUSE_WORDS:
            meta = ident.meta
            line = int(meta.get("line", 1))
            column = int(meta.get("col", 1)) - len(word) + 1
            raise AdqlSyntaxError(
                f"syntax error at line {line}, column {column} near '{word}': "
                f"unexpected {word.upper()} (a reserved word; as a name write "
                f'"{word}")',
                line,
                column,
            )
    for group in statement.find_all(exp.Group):
        if not group.expressions:
            found = list(re.finditer(r"\bGROUP\s+BY\b", adql, re.IGNORECASE))
            offset = found[-1].start() if found else 0
            line, column = _line_column(adql, offset)
            raise AdqlSyntaxError(
                f"syntax error at line {line}, column {column} near 'GROUP BY': "
                "expected a column after GROUP BY",
                line,
                column,
            )


def _syntax_error(adql: str, exc: ParseError) -> AdqlSyntaxError:
    """Turn sqlglot's first recorded error into a located AdqlError in ADQL terms.

    sqlglot's descriptions name its own classes ("Required keyword: 'this' missing
    for <class 'sqlglot...Where'>"); they are read here, never shown.
    """
    first = exc.errors[0] if exc.errors else {}
    near = str(first.get("highlight") or "")
    line = int(first.get("line") or 1)
    # sqlglot reports the column of the highlighted token's last character.
    column = max(1, int(first.get("col") or 1) - len(near) + 1)
    expected = _expected(str(first.get("description") or ""), near)
    start = _first_word(adql)
    if start is not None and start.text.upper() not in _STATEMENT_STARTS:
        line, column = start.line, start.col - len(start.text) + 1
        near, expected = start.text, "expected SELECT at the start of the query"
    elif expected.startswith("unexpected"):
        expected += _did_you_mean(adql, near)
    where = f"near '{near}'" if near else "at end of query"
    return AdqlSyntaxError(
        f"syntax error at line {line}, column {column} {where}: {expected}",
        line,
        column,
    )


_TRAILING = "ADQL: trailing separator"
_NO_JOIN_CONDITION = "ADQL: join without a condition"
_STATEMENT_STARTS = frozenset({"SELECT", "WITH", "("})
_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>")
#: What a clause or operator sqlglot found incomplete still needs, in ADQL terms.
_NEEDS = {
    "Where": "a search condition after WHERE",
    "Having": "a search condition after HAVING",
    "Limit": "a row count (an unsigned integer) after TOP",
    "Offset": "a row count (an unsigned integer) after OFFSET",
    "Between": "AND and an upper bound in BETWEEN ... AND ...",
    "Not": "a condition after NOT",
    "And": "a condition after AND",
    "Or": "a condition after OR",
    "Union": "a SELECT after UNION",
    "Intersect": "a SELECT after INTERSECT",
    "Except": "a SELECT after EXCEPT",
}
_KEYWORDS = (
    "SELECT FROM WHERE GROUP BY HAVING ORDER OFFSET JOIN INNER LEFT RIGHT FULL "
    "OUTER NATURAL CROSS USING ON AND OR NOT BETWEEN LIKE ILIKE IN IS NULL EXISTS "
    "UNION INTERSECT EXCEPT DISTINCT TOP AS ASC DESC CASE WHEN THEN ELSE END CAST"
).split()


def _conditioned(join: exp.Join) -> bool:
    """Whether ``join`` has the condition ADQL needs (none for CROSS, NATURAL)."""
    if join.args.get("on") is not None or join.args.get("using"):
        return True
    return join.args.get("kind") == "CROSS" or join.args.get("method") == "NATURAL"


def _expected(description: str, near: str) -> str:
    """sqlglot's description of a syntax error, said in ADQL terms."""
    if description == _NO_JOIN_CONDITION:
        return "expected ON with a condition or USING (columns) after the joined table"
    if description == _TRAILING:
        why = " (ADQL allows no trailing comma)" if near == "," else ""
        return f"expected an item after '{near}'{why}"
    missing = _MISSING.match(description)
    if missing:
        need = _NEEDS.get(missing.group(1))
        if need is None:
            need = f"a value after '{near}'" if near else "more of the query"
        return f"expected {need}"
    if description.startswith("Expecting )"):
        return "expected ')': unbalanced parentheses"
    if description.startswith("Expected table name"):
        return "expected a table name"
    if description.startswith("Expected TYPE after CAST"):
        return "expected a data type after AS in CAST"
    if description.startswith(("Expected ", "Found ")) and not _internal(description):
        return description[0].lower() + description[1:].partition(" but got")[0]
    if near == ")":
        return "unexpected ')': unbalanced parentheses"
    return f"unexpected '{near}'" if near else "unexpected end of query"


def _internal(text: str) -> bool:
    """Whether ``text`` names parser internals (classes, tokens)."""
    return any(w in text for w in ("<", "sqlglot", "Token", "Expression", "class"))


def _tokens(adql: str) -> list[Token]:
    try:
        return _tokenize(adql)
    except TokenError:
        return []


def _first_word(adql: str) -> Token | None:
    tokens = _tokens(adql)
    return tokens[0] if tokens else None


def _did_you_mean(adql: str, near: str) -> str:
    """ " (did you mean FROM?)" when a word before ``near`` is a misspelt keyword."""
    words = [t.text for t in _tokens(adql)]
    for text in words[: words.index(near) + 1] if near in words else words:
        word = text.upper()
        if word.isalpha() and word not in _KEYWORDS:
            match = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.75)
            if match:
                return f" ('{text}' is not a keyword: did you mean {match[0]}?)"
    return ""


def _line_column(adql: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of character ``offset`` of ``adql``."""
    line = adql.count("\n", 0, offset) + 1
    return line, offset - (adql.rfind("\n", 0, offset) + 1) + 1


def _token_error(adql: str, exc: TokenError) -> AdqlSyntaxError:
    """Locate an unterminated string or identifier, sqlglot's usual TokenError."""
    match = _TOKEN_ERROR.match(str(exc))
    offset = len(match.group("context")) if match else len(adql)
    quote = max(adql.rfind("'", 0, offset), adql.rfind('"', 0, offset))
    offset = quote if quote >= 0 else offset
    line, column = _line_column(adql, offset)
    return AdqlSyntaxError(
        f"syntax error at line {line}, column {column}: unterminated string "
        "or delimited identifier",
        line,
        column,
    )
