"""ADQL 2.1 → PostgreSQL (pg_sphere) translation: the one entry point ``translate``.

Parsing is sqlglot's (:mod:`.parse`); the emitted SQL is written by the
translator itself (:mod:`.emit`, :mod:`.expr`, and the function table of
:mod:`.functions` and :mod:`.geometry`), which doubles as the whitelist of what
ADQL allows.
"""

from __future__ import annotations

from sqlglot import exp

from taprunner.adql.emit import QueryEmitter, clause_count
from taprunner.adql.limits import DEFAULT_LIMITS, QueryLimits, parse_limited, too_deep
from taprunner.adql.model import AdqlError, Catalog, OutputColumn, Translation

__all__ = ["row_bound", "translate"]


def translate(
    adql: str,
    catalog: Catalog,
    *,
    limit: int | None = None,
    statement: exp.Expr | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> Translation:
    """Translate one ADQL query into a PostgreSQL SELECT.

    Parameters
    ----------
    adql
        The client's query.
    catalog
        The tables (and their columns) the query may reference.
    limit
        Row cap wanted by the caller (e.g. MAXREC + 1): the SQL returns at most
        ``min(TOP, limit)`` rows. 0 returns none (metadata only).
    statement
        ``adql`` as :func:`~taprunner.adql.parse.parse_statement` parsed it, if
        the caller has it already (it is read, never changed); else parsed here.
    limits
        The bounds of the query's text and tree (:mod:`.limits`), checked when
        it is parsed here.

    Raises
    ------
    AdqlError
        If the query is not valid ADQL or uses tables, columns or functions that
        are not allowed; a :class:`~taprunner.adql.limits.QueryLimitError` if
        it exceeds ``limits``.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    tree = parse_limited(adql, limits) if statement is None else statement
    emitter = QueryEmitter(catalog)
    try:
        sql, columns = emitter.query(tree, None, dali=True, cap=limit)
    except RecursionError:
        raise too_deep() from None
    return Translation(
        sql=sql,
        columns=tuple(
            OutputColumn(c.name, c.table, c.column, c.xtype) for c in columns
        ),
        tables=frozenset(emitter.tables),
    )


def row_bound(adql: str | exp.Expr) -> int | None:
    """The most rows ``adql`` can return by its own TOP, if it says (else None).

    ``adql``: the query's text, or the statement parsed from it. Only a plain
    SELECT's TOP counts; set operations and invalid queries give None (no bound
    known). Cheap enough to ask before running a query.
    """
    try:
        tree = parse_limited(adql) if isinstance(adql, str) else adql
        if not isinstance(tree, exp.Select):
            return None
        return clause_count(tree.args.get("limit"), "TOP")
    except AdqlError:
        return None
