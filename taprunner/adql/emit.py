"""Emit PostgreSQL for ADQL queries: statements, FROM items and output columns.

The emitter is also the whitelist: a sqlglot node, clause or argument it has
no rule for is rejected, so whatever sqlglot's PostgreSQL grammar accepts
beyond ADQL (locking clauses, INTO, LATERAL, window functions...) never
reaches the database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlglot import exp

from taprunner.adql.expr import ExpressionEmitter
from taprunner.adql.geometry import to_dali
from taprunner.adql.model import (
    AdqlError,
    Catalog,
    DatatypeCatalog,
    GeometryCatalog,
    GeometryColumnsCatalog,
    NamingCatalog,
    UnitCatalog,
)
from taprunner.adql.scope import (
    Scope,
    Source,
    SourceColumn,
    check_compatible,
    identifier_name,
    located_error,
    set_columns,
)
from taprunner.adql.sqltext import Fragment, quote_identifier

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_SELECT_ARGS = frozenset(
    {"with_", "expressions", "distinct", "from_", "joins", "where", "group",
     "having", "order", "limit", "offset"}
)  # fmt: skip
_SETOP_ARGS = frozenset({"with_", "this", "expression", "distinct", "order", "limit",
                         "offset"})  # fmt: skip
_SETOP_WORDS = {exp.Union: "UNION", exp.Except: "EXCEPT", exp.Intersect: "INTERSECT"}
_JOIN_SIDES = frozenset({"", "LEFT", "RIGHT", "FULL"})
_JOIN_KINDS = frozenset({"", "INNER", "OUTER", "CROSS"})
_CLAUSE_NAMES = {"into": "SELECT INTO", "locks": "locking clauses (FOR UPDATE...)",
                 "windows": "WINDOW", "laterals": "LATERAL"}  # fmt: skip

Columns = tuple[SourceColumn, ...]


class QueryEmitter(ExpressionEmitter):
    """Translates one ADQL query; ``tables`` collects the catalog tables used."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self._catalog = catalog
        if isinstance(catalog, GeometryCatalog):
            self.geometry_off = catalog.geometry_off()
        self._ctes: list[dict[str, Columns]] = []
        self.tables: set[str] = set()

    def query(
        self, node: exp.Expr, parent: Scope | None, *, dali: bool, cap: int | None
    ) -> tuple[str, Columns]:
        """SQL and output columns of a query expression.

        ``dali`` turns geometry outputs into DALI arrays (the outermost query);
        ``cap`` is an extra row limit combined with the query's own TOP.
        """
        if isinstance(node, exp.Subquery) and node.args.get("alias") is None:
            return self.query(node.this, parent, dali=dali, cap=cap)
        with_ = node.args.get("with_")
        prefix = self._with(with_, parent) if with_ is not None else ""
        try:
            if isinstance(node, exp.Select):
                sql, columns = self._select(node, parent, dali, cap)
            elif isinstance(node, exp.SetOperation):
                sql, columns = self._set_operation(node, parent, dali, cap)
            else:
                raise AdqlError(f"only SELECT statements are allowed, not {node.key}")
        finally:
            if with_ is not None:
                self._ctes.pop()
        return prefix + sql, columns

    def subquery(self, node: exp.Expr, scope: Scope) -> tuple[str, Columns]:
        """A nested query (scalar, IN, EXISTS) that may see ``scope``."""
        return self.query(node, scope, dali=False, cap=None)

    def column_unit(self, column: SourceColumn) -> str | None:
        """The catalogue's unit of a column read from a catalogue table."""
        if column.table is None or column.column is None:
            return None
        if not isinstance(self._catalog, UnitCatalog):
            return None
        return self._catalog.column_unit(column.table, column.column)

    def column_datatype(self, column: SourceColumn) -> str | None:
        """The catalogue's datatype of a column read from a catalogue table."""
        if column.table is None or column.column is None:
            return None
        if not isinstance(self._catalog, DatatypeCatalog):
            return None
        return self._catalog.column_datatype(column.table, column.column)

    # -- WITH, SELECT and set operations ---------------------------------------

    def _with(self, with_: exp.Expr, parent: Scope | None) -> str:
        _check_args(with_, {"expressions"})
        frame: dict[str, Columns] = {}
        self._ctes.append(frame)
        parts = []
        for cte in with_.expressions:
            _check_args(cte, {"this", "alias"})
            alias = cte.args["alias"]
            sql, columns = self.query(cte.this, parent, dali=False, cap=None)
            name = identifier_name(alias.this)
            columns = _renamed(columns, alias)
            frame[name] = columns
            names = ", ".join(quote_identifier(c.name) for c in columns)
            parts.append(f"{quote_identifier(name)} ({names}) AS ({sql})")
        return "WITH " + ", ".join(parts) + " "

    def _select(
        self, node: exp.Select, parent: Scope | None, dali: bool, cap: int | None
    ) -> tuple[str, Columns]:
        _check_args(node, _SELECT_ARGS)
        scope = Scope(parent)
        parts = ["SELECT"]
        distinct = node.args.get("distinct")
        if distinct is not None:
            _check_args(distinct, set())
            parts.append("DISTINCT")
        from_sql = self._from(node, scope)
        items, columns = self._projections(node.expressions, scope, dali)
        if not items:
            raise AdqlError("the select list is empty (SELECT * needs a FROM)")
        parts.append(", ".join(items))
        if from_sql:
            parts.append("FROM " + from_sql)
        if (where := node.args.get("where")) is not None:
            parts.append("WHERE " + self.condition(where.this, scope))
        if (group := node.args.get("group")) is not None:
            _check_args(group, {"expressions"})
            keys = [self.expression(e, scope, columns).sql for e in group.expressions]
            parts.append("GROUP BY " + ", ".join(keys))
        if (having := node.args.get("having")) is not None:
            parts.append("HAVING " + self.condition(having.this, scope))
        parts.extend(self._tail(node, scope, columns, cap))
        return " ".join(parts), columns

    def _set_operation(
        self, node: exp.SetOperation, parent: Scope | None, dali: bool, cap: int | None
    ) -> tuple[str, Columns]:
        _check_args(node, _SETOP_ARGS)
        word = _SETOP_WORDS.get(type(node))
        if word is None:
            raise AdqlError(f"unsupported set operation {node.key}")
        if not node.args.get("distinct"):
            word += " ALL"
        left, columns = self.query(node.this, parent, dali=dali, cap=None)
        right, others = self.query(node.expression, parent, dali=dali, cap=None)
        check_compatible(word.split()[0], columns, others)
        columns = set_columns(columns, others, self.integer_column)
        tail = self._tail(node, Scope(parent), columns, cap, outputs_only=True)
        return " ".join([f"({left}) {word} ({right})", *tail]), columns

    def _tail(
        self,
        node: exp.Expr,
        scope: Scope,
        columns: Columns,
        cap: int | None,
        outputs_only: bool = False,
    ) -> list[str]:
        """ORDER BY, LIMIT (TOP combined with ``cap``) and OFFSET."""
        parts = []
        if (order := node.args.get("order")) is not None:
            _check_args(order, {"expressions"})
            keys = [
                self.order_key(o, scope, columns, outputs_only)
                for o in order.expressions
            ]
            parts.append("ORDER BY " + ", ".join(keys))
        limit = clause_count(node.args.get("limit"), "TOP")
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
        if limit is not None:
            parts.append(f"LIMIT {limit}")
        offset = clause_count(node.args.get("offset"), "OFFSET")
        if offset is not None:
            parts.append(f"OFFSET {offset}")
        return parts

    def _projections(
        self, nodes: Sequence[exp.Expr], scope: Scope, dali: bool
    ) -> tuple[list[str], Columns]:
        items: list[str] = []
        columns: list[SourceColumn] = []
        taken: set[str] = set()
        for position, node in enumerate(nodes, start=1):
            for fragment, column in self._projection(node, scope, position):
                name = _unique(column.name, taken)
                sql = fragment.sql
                if dali and column.xtype is not None:
                    sql = to_dali(fragment)
                items.append(f"{sql} AS {quote_identifier(name)}")
                columns.append(SourceColumn(name, column.table, column.column,
                                            column.xtype))  # fmt: skip
        return items, tuple(columns)

    def _projection(
        self, node: exp.Expr, scope: Scope, position: int
    ) -> list[tuple[Fragment, SourceColumn]]:
        if isinstance(node, exp.Star):
            _check_args(node, set())
            return [(_plain(item.sql, item.column), item.column) for item in scope.star]
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            source = scope.source_named(node.args["table"])
            if source is None or node.args.get("db") is not None:
                raise located_error(f"unknown table in {node.sql()}", node.this)
            return [
                (_plain(f"{source.qualifier_sql}.{quote_identifier(c.name)}", c), c)
                for c in source.columns
            ]
        alias = None
        if isinstance(node, exp.Alias):
            alias = identifier_name(node.args["alias"])
            node = node.this
        fragment = self.expression(node, scope)
        if isinstance(node, exp.Column):
            _, origin = self.resolve_column(node, scope, ())
            column = SourceColumn(alias or origin.name, origin.table, origin.column,
                                  origin.xtype)  # fmt: skip
        else:
            name = alias or fragment.name or f"col_{position}"
            column = SourceColumn(name, xtype=fragment.geom)
        return [(fragment, column)]

    # -- FROM ------------------------------------------------------------------

    def _from(self, node: exp.Select, scope: Scope) -> str:
        from_ = node.args.get("from_")
        if from_ is None:
            if node.args.get("joins"):
                raise AdqlError("JOIN without FROM")
            return ""
        _check_args(from_, {"this"})
        sql = self._from_item(from_.this, scope)
        for join in node.args.get("joins") or ():
            piece = self._join(join, scope)
            sql += piece if piece.startswith(",") else " " + piece
        return sql

    def _join(self, join: exp.Join, scope: Scope) -> str:
        _check_args(join, {"this", "on", "using", "side", "kind", "method"})
        method = str(join.args.get("method") or "").upper()
        side = str(join.args.get("side") or "").upper()
        kind = str(join.args.get("kind") or "").upper()
        if (
            method not in ("", "NATURAL")
            or side not in _JOIN_SIDES
            or (kind not in _JOIN_KINDS)
        ):
            raise AdqlError(f"unsupported join {method} {side} {kind}".strip())
        on, using = join.args.get("on"), join.args.get("using")
        if not (method or side or kind or on or using):
            return ", " + self._from_item(join.this, scope)
        words = " ".join(w for w in (method, side, kind, "JOIN") if w)
        if not (method or using):
            item = self._from_item(join.this, scope)
            if on is None:
                return f"{words} {item}"
            return f"{words} {item} ON {self.condition(on, scope)}"
        probe = Scope(scope.parent)
        item = self._from_item(join.this, probe)
        names = [identifier_name(u) for u in using] if using else None
        scope.add_merging(probe.sources[0], names)
        if names is None:
            return f"{words} {item}"
        return f"{words} {item} USING ({', '.join(map(quote_identifier, names))})"

    def _from_item(self, node: exp.Expr, scope: Scope) -> str:
        if isinstance(node, exp.Table):
            sql, source = self._table(node)
        elif isinstance(node, exp.Subquery) and node.args.get("alias") is not None:
            _check_args(node, {"this", "alias"})
            inner, columns = self.query(node.this, scope.parent, dali=False, cap=None)
            alias = node.args["alias"]
            name = identifier_name(alias.this)
            qualifier = quote_identifier(name)
            columns = _renamed(columns, alias)
            source = Source(name, bool(alias.this.quoted), None, qualifier, columns)
            sql = f"({inner}) AS {qualifier}"
        elif isinstance(node, exp.Subquery) and _joined_table(node):
            return self._joined_table(node.this, scope)
        elif isinstance(node, exp.Subquery):
            raise AdqlError("a subquery in FROM needs a correlation name (AS name)")
        else:
            raise AdqlError(f"unsupported FROM item {node.key}")
        scope.add(source)
        return sql

    def _joined_table(self, node: exp.Table, scope: Scope) -> str:
        """A parenthesised joined table, ``(a JOIN b USING (x))``."""
        first = node.copy()
        first.set("joins", None)
        sql = self._from_item(first, scope)
        for join in node.args["joins"]:
            piece = self._join(join, scope)
            sql += piece if piece.startswith(",") else " " + piece
        return f"({sql})"

    def _table(self, node: exp.Table) -> tuple[str, Source]:
        _check_args(node, {"this", "db", "alias"})
        name_ident = node.this
        if not isinstance(name_ident, exp.Identifier):
            raise AdqlError(f"unsupported FROM item {node.sql()}")
        name = identifier_name(name_ident)
        schema_ident = node.args.get("db")
        schema = identifier_name(schema_ident) if schema_ident is not None else None
        columns = self._cte_columns(name) if schema is None else None
        table_sql = quote_identifier(name)
        if schema is not None:
            table_sql = f"{quote_identifier(schema)}.{table_sql}"
        if columns is None:
            qualified = _catalog_key(schema, name)
            known = self._catalog.columns_of(qualified)
            if known is None:
                raise located_error(f"unknown table {node.sql()}", name_ident)
            self.tables.add(qualified)
            columns = tuple(
                SourceColumn(c, qualified, c, self._column_xtype(qualified, c))
                for c in known
            )
            # The relation the catalogue checked, whatever search_path says.
            physical = self._sql_name(qualified)
            if physical not in (None, table_sql) and node.args.get("alias") is None:
                # Keep the ADQL name as the correlation name: references such
                # as t.col or TAP_UPLOAD.t.col then need no rewriting.
                qualifier = quote_identifier(name)
                source = Source(name, bool(name_ident.quoted), schema, qualifier,
                                columns)  # fmt: skip
                return f"{physical} AS {qualifier}", source
            table_sql = physical or table_sql
        alias = node.args.get("alias")
        if alias is None:
            return table_sql, Source(name, bool(name_ident.quoted), schema,
                                     table_sql, columns)  # fmt: skip
        alias_name = identifier_name(alias.this)
        qualifier = quote_identifier(alias_name)
        columns = _renamed(columns, alias)
        source = Source(alias_name, bool(alias.this.quoted), None, qualifier, columns)
        renames = ""
        if alias.args.get("columns"):
            renames = " (" + ", ".join(quote_identifier(c.name) for c in columns) + ")"
        return f"{table_sql} AS {qualifier}{renames}", source

    def _sql_name(self, qualified: str) -> str | None:
        if isinstance(self._catalog, NamingCatalog):
            return self._catalog.sql_name(qualified)
        return None

    def _column_xtype(self, qualified: str, column: str) -> str | None:
        if isinstance(self._catalog, GeometryColumnsCatalog):
            return self._catalog.column_xtype(qualified, column)
        return None

    def _cte_columns(self, name: str) -> Columns | None:
        for frame in reversed(self._ctes):
            if name in frame:
                return frame[name]
        return None


def _joined_table(node: exp.Subquery) -> bool:
    inner = node.this
    return (
        node.args.get("alias") is None
        and isinstance(inner, exp.Table)
        and bool(inner.args.get("joins"))
    )


def _catalog_key(schema: str | None, name: str) -> str:
    """The name a catalogue is asked about: ADQL spelling, quoted only if needed.

    ``schema`` and ``name`` are as denoted (regular identifiers already folded to
    lowercase); a part that is not a plain lowercase name keeps its double quotes,
    so a catalogue can tell ``"DEMO"`` (case-sensitive) from ``DEMO``.
    """
    parts = (name,) if schema is None else (schema, name)
    return ".".join(
        p if _PLAIN_NAME.match(p) else '"' + p.replace('"', '""') + '"' for p in parts
    )


def _plain(sql: str, column: SourceColumn) -> Fragment:
    return Fragment(sql, geom=column.xtype)


def _renamed(columns: Columns, alias: exp.Expr) -> Columns:
    """Apply a correlation name's column list ``AS t(a, b)`` to ``columns``."""
    _check_args(alias, {"this", "columns"})
    names = [identifier_name(i) for i in alias.args.get("columns") or ()]
    if not names:
        return columns
    if len(names) > len(columns):
        raise AdqlError(f"{alias.sql()} names more columns than the table has")
    renamed = [
        SourceColumn(new, old.table, old.column, old.xtype)
        for new, old in zip(names, columns, strict=False)
    ]
    return (*renamed, *columns[len(names) :])


def clause_count(node: exp.Expr | None, what: str) -> int | None:
    """The unsigned integer of a TOP or OFFSET clause."""
    if node is None:
        return None
    _check_args(node, {"expression"})
    value = node.args.get("expression")
    if not (isinstance(value, exp.Literal) and not value.is_string):
        raise AdqlError(f"{what} needs an unsigned integer")
    text = str(value.this)
    if not text.isdigit():
        raise AdqlError(f"{what} needs an unsigned integer, not {text}")
    return int(text)


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... if already taken."""
    candidate, suffix = name, 1
    while candidate.lower() in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    taken.add(candidate.lower())
    return candidate


def _check_args(node: exp.Expr, allowed: set[str] | frozenset[str]) -> None:
    """Reject ``node`` if sqlglot filled in an argument the translator ignores."""
    for key, value in node.args.items():
        if key in allowed or value is None or value is False or value == []:
            continue
        clause = _CLAUSE_NAMES.get(key, key.rstrip("_").upper())
        raise AdqlError(f"{clause} is not allowed in ADQL")
