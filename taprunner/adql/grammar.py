"""ADQL's grammar where it is stricter than the PostgreSQL grammar sqlglot parses.

Checked on the parsed tree (and, for CAST targets, on the tokens, since sqlglot
maps FLOAT and DOUBLE PRECISION to one type) before any name is looked up, so an
invalid query is refused as a syntax error, never as naming an unknown table:
a statement must be a SELECT (or a set operation of them) with a select list,
WHERE/GROUP BY/HAVING need a FROM, WITH only starts the whole query, search
conditions are predicates (``CONTAINS(...) = 1``, not a bare value), TOP and
OFFSET take unsigned integers, CAST only ADQL 2.1's types, and regular
identifiers start with a letter and are no ADQL reserved word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokenizer_core import Token, TokenType

from taprunner.adql.model import AdqlSyntaxError

__all__ = [
    "ADQL_RESERVED",
    "CAST_TARGETS",
    "CLAUSE_WORDS",
    "check_grammar",
    "needs_delimiting",
]

#: ADQL 2.1's own reserved words (section 2.1.3) besides SQL's: a regular
#: identifier may not be one of them (a delimited one, ``"distance"``, may).
ADQL_RESERVED = frozenset(
    "ABS ACOS AREA ASIN ATAN ATAN2 BIT_AND BIT_NOT BIT_OR BIT_XOR BOX CEILING "
    "CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS COS COT DEGREES DISTANCE EXP "
    "FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD PI POINT POLYGON POWER RADIANS "
    "REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE".split()
)
#: Words that begin or join clauses. sqlglot takes a stray one for a name ("FROM t
#: ORDER" aliases t as "order"); in ADQL they are reserved (refused in parse.py).
CLAUSE_WORDS = frozenset(
    "SELECT FROM WHERE GROUP ORDER BY HAVING OFFSET JOIN ON USING AS UNION EXCEPT "
    "INTERSECT TOP AND OR NOT".split()
)


def needs_delimiting(name: str) -> bool:
    """Whether ``name`` must be written delimited (``"area"``) to be accepted:
    not a regular identifier, or a reserved word the translator refuses bare."""
    return not _REGULAR.match(name) or name.upper() in ADQL_RESERVED | CLAUSE_WORDS


#: The types CAST may convert to in ADQL 2.1 (section 2.10.3), as written.
CAST_TARGETS = (
    "SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR(n), VARCHAR(n), "
    "TIMESTAMP, POINT, CIRCLE, POLYGON"
)
_CAST_TARGET = re.compile(
    r"(SMALLINT|INTEGER|BIGINT|REAL|DOUBLE PRECISION|TIMESTAMP|POINT|CIRCLE|POLYGON"
    r"|(CHAR|VARCHAR)( \( \d+ \))?)\Z"
)
_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PREDICATES = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike,
    exp.Between, exp.In, exp.Exists, exp.Is,
)  # fmt: skip
_NEEDS_FROM = (("where", "WHERE"), ("group", "GROUP BY"), ("having", "HAVING"))


def check_grammar(statement: exp.Expr, tokens: Sequence[Token]) -> None:
    """Refuse what ADQL's grammar does not allow in a parsed statement.

    Raises
    ------
    AdqlSyntaxError
        At the first violation, located where the parser recorded it.
    """
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise AdqlSyntaxError("expected SELECT at the start of the query", 1, 1)
    for node in statement.walk():
        if isinstance(node, exp.Select | exp.SetOperation):
            if node is not statement and node.args.get("with_") is not None:
                raise AdqlSyntaxError(
                    "WITH may only begin the whole query, not a nested one"
                )
            _check_clauses(node)
        elif isinstance(node, exp.Identifier) and not isinstance(
            node.parent, exp.DataType
        ):
            _check_identifier(node)
        elif isinstance(node, exp.Join) and node.args.get("on") is not None:
            _check_condition(node.args["on"], "ON")
        elif isinstance(node, exp.Case) and node.args.get("this") is None:
            for branch in node.args.get("ifs") or ():
                _check_condition(branch.this, "WHEN")
    _check_tokens(tokens)
    _check_casts(tokens)


#: PostgreSQL's syntax that sqlglot parses into ADQL-looking trees: ``x::type``
#: (a CAST past the type check) and LIMIT (ADQL has TOP).
_NOT_ADQL_TOKENS = {TokenType.DCOLON: "'::'", TokenType.LIMIT: "LIMIT"}


#: Type names that PostgreSQL lets prefix a string (``TIMESTAMP '2020-01-01'``,
#: a typed literal): ADQL 2.1 has no typed literals, only CAST.
_TYPE_WORDS = PostgresParser.TYPE_TOKENS - {TokenType.NULL, TokenType.UNION}


def _check_tokens(tokens: Sequence[Token]) -> None:
    for token, after in zip(tokens, [*tokens[1:], None], strict=True):
        word = _NOT_ADQL_TOKENS.get(token.token_type)
        if word is not None:
            hint = "CAST(x AS type)" if word == "'::'" else "TOP n"
            raise AdqlSyntaxError(
                f"unexpected {word}: not ADQL (write {hint})", *_where(token)
            )
        if after is None:
            continue
        if token.token_type in _TYPE_WORDS and after.token_type == TokenType.STRING:
            written = token.text.upper()
            hint = f" (write CAST('{after.text}' AS TIMESTAMP))"
            raise AdqlSyntaxError(
                f"unexpected {written} '{after.text}': ADQL has no typed literals"
                + (hint if written == "TIMESTAMP" else ""),
                *_where(token),
            )
        if (
            token.token_type == TokenType.VAR
            and token.text.upper() == "NULLS"
            and after.text.upper() in ("FIRST", "LAST")
        ):
            raise AdqlSyntaxError(
                f"unexpected NULLS {after.text.upper()}: not ADQL (an ORDER BY"
                " item takes only ASC or DESC)",
                *_where(token),
            )


def _where(token: Token) -> tuple[int, int]:
    """The line and column where ``token`` starts."""
    return token.line, max(1, token.col - len(token.text) + 1)


def _check_clauses(node: exp.Select | exp.SetOperation) -> None:
    if isinstance(node, exp.Select):
        if not node.expressions:
            raise AdqlSyntaxError("expected a select list after SELECT")
        if node.args.get("from_") is None:
            for key, word in _NEEDS_FROM:
                if node.args.get(key) is not None:
                    raise AdqlSyntaxError(f"expected FROM before {word}")
        for key in ("where", "having"):
            clause = node.args.get(key)
            if clause is not None:
                _check_condition(clause.this, key.upper())
    for key, word in (("limit", "TOP"), ("offset", "OFFSET")):
        clause = node.args.get(key)
        if clause is None:
            continue
        value = clause.args.get("expression")
        if not (
            isinstance(value, exp.Literal)
            and not value.is_string
            and str(value.this).isdigit()
        ):
            shown = value.sql() if isinstance(value, exp.Expr) else ""
            raise AdqlSyntaxError(
                f"expected an unsigned integer after {word}, not {shown}"
            )


def _check_condition(node: exp.Expr, clause: str) -> None:
    """A search condition is predicates joined by AND, OR, NOT and parentheses."""
    if isinstance(node, exp.And | exp.Or):
        _check_condition(node.this, clause)
        _check_condition(node.expression, clause)
    elif isinstance(node, exp.Not | exp.Paren):
        _check_condition(node.this, clause)
    elif not isinstance(node, _PREDICATES):
        hint = ""
        if isinstance(node, exp.Anonymous):
            hint = f" (a function gives a value: write e.g. {node.this}(...) = 1)"
        raise AdqlSyntaxError(
            f"expected a search condition (a comparison, LIKE, BETWEEN, IN, EXISTS "
            f"or IS NULL) after {clause}, not {_shown(node)}{hint}"
        )


def _check_identifier(ident: exp.Identifier) -> None:
    if ident.quoted:
        return
    word = str(ident.this)
    if _REGULAR.match(word) and word.upper() not in ADQL_RESERVED:
        return
    why = (
        "a regular identifier starts with a letter and has only letters, digits and '_'"
        if not _REGULAR.match(word)
        else "a reserved word of ADQL"
    )
    meta = ident.meta
    line, column = meta.get("line"), meta.get("col")
    location = (int(line), int(column) - len(word) + 1) if line and column else None
    raise AdqlSyntaxError(
        f"unexpected '{word}' ({why}; as a name write \"{word}\")",
        *(location or (None, None)),
    )


def _check_casts(tokens: Sequence[Token]) -> None:
    """The type of every CAST, as written: sqlglot's tree cannot tell FLOAT from
    DOUBLE PRECISION."""
    for start, token in enumerate(tokens):
        if (
            # CAST, or "CAST" (which sqlglot takes for CAST too), not 'CAST'
            token.token_type not in (TokenType.VAR, TokenType.IDENTIFIER)
            or token.text.upper() != "CAST"
            or start + 1 >= len(tokens)
        ):
            continue
        if tokens[start + 1].token_type != TokenType.L_PAREN:
            continue
        target = _cast_target(tokens, start + 2)
        if target is None:
            continue
        written = " ".join(t.text.upper() for t in target)
        written = re.sub(r"\s+", " ", written)
        if not _CAST_TARGET.match(written):
            first = target[0] if target else tokens[start]
            raise AdqlSyntaxError(
                f"CAST to {written or 'nothing'} is not ADQL: the types are "
                f"{CAST_TARGETS}",
                first.line,
                max(1, first.col - len(first.text) + 1),
            )


def _cast_target(tokens: Sequence[Token], begin: int) -> list[Token] | None:
    """The tokens after the top-level AS of a CAST's parentheses."""
    depth, as_at = 1, None
    for index in range(begin, len(tokens)):
        kind = tokens[index].token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return None if as_at is None else list(tokens[as_at + 1 : index])
        elif kind == TokenType.ALIAS and depth == 1:
            as_at = index
    cast = tokens[begin - 2]
    raise AdqlSyntaxError("expected ')' closing CAST(", *_where(cast))


def _shown(node: exp.Expr) -> str:
    text = node.sql()
    return text if len(text) <= 40 else text[:37] + "..."
