"""Emit PostgreSQL for ADQL value expressions and conditions.

Every operator is parenthesised in the output, so PostgreSQL's precedence
never has to agree with sqlglot's. Node types without a rule are rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlglot import exp

from taprunner.adql.dalicast import check_dali
from taprunner.adql.functions import (
    AGGREGATES,
    call_function,
    check_known,
    is_geometry,
)
from taprunner.adql.geometry import within_distance
from taprunner.adql.model import AdqlError
from taprunner.adql.scope import Scope, SourceColumn, identifier_name, located_error
from taprunner.adql.sqltext import (
    Fragment,
    number_literal,
    quote_identifier,
    string_literal,
)
from taprunner.adql.units import compose, power

#: Functions whose value has their first argument's unit.
_SAME_UNIT = frozenset(
    {"ABS", "CEILING", "FLOOR", "ROUND", "TRUNCATE", "MIN", "MAX", "SUM", "AVG"}
)

_BINARY: dict[type[exp.Expr], str] = {
    exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.DPipe: "||",
    exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<",
    exp.LTE: "<=",
}  # fmt: skip
_LOGICAL: dict[type[exp.Expr], str] = {exp.And: "AND", exp.Or: "OR"}
_CAST_TYPES = {
    exp.DataType.Type.SMALLINT: "smallint",
    exp.DataType.Type.INT: "integer",
    exp.DataType.Type.BIGINT: "bigint",
    exp.DataType.Type.FLOAT: "real",
    exp.DataType.Type.DOUBLE: "double precision",
    exp.DataType.Type.CHAR: "char",
    exp.DataType.Type.VARCHAR: "varchar",
    exp.DataType.Type.TIMESTAMP: "timestamp",
}
_PREDICATES = frozenset({"CONTAINS", "INTERSECTS"})
#: TAP_SCHEMA datatypes of integer columns (TAP 1.1's VOTable names, 1.0's ADQL).
_INTEGER_DATATYPES = frozenset("short int long smallint integer bigint".split())
# CAST(text AS POINT/CIRCLE/POLYGON): the text is DALI's, numbers in degrees
# separated by blanks ('12.3 45.6' for a point).
_WORDS = "(SELECT regexp_split_to_array(btrim({0}), '[[:space:]]+') AS a) AS v"
_NUMBER = "radians(CAST(v.a[{0}] AS double precision))"
# A value with the wrong count of numbers fails in the database with its text
# in the message (a number made of the complaint), never a silently cut shape;
# NULL stays NULL.
_BAD = (
    "CAST(CAST(CAST('CAST to {0}: not {1}: ' || array_to_string(v.a, ' ')"
    " AS double precision) AS text) AS {2})"
)


def _geometry_cast(shape: str, count: str, need: str, sphere: str, build: str) -> str:
    bad = _BAD.format(shape, need, sphere)
    return f"(SELECT CASE WHEN {count} THEN {build} ELSE {bad} END FROM {_WORDS})"


_GEOMETRY_CASTS = {
    "POINT": _geometry_cast(
        "POINT", "cardinality(v.a) = 2", "2 numbers", "spoint",
        f"spoint({_NUMBER.format(1)}, {_NUMBER.format(2)})",
    ),
    "CIRCLE": _geometry_cast(
        "CIRCLE", "cardinality(v.a) = 3", "3 numbers", "scircle",
        f"scircle(spoint({_NUMBER.format(1)}, {_NUMBER.format(2)}), "
        f"{_NUMBER.format(3)})",
    ),
    "POLYGON": _geometry_cast(
        "POLYGON", "cardinality(v.a) % 2 = 0 AND cardinality(v.a) >= 6",
        "an even count (6 or more) of numbers", "spoly",
        f"(SELECT spoly(spoint({_NUMBER.format('2 * i - 1')}, "
        f"{_NUMBER.format('2 * i')}) ORDER BY i) "
        "FROM generate_series(1, cardinality(v.a) / 2) AS i)",
    ),
}  # fmt: skip
#: How many numbers a DALI value of each shape has (None: even, 6 or more).
Columns = tuple[SourceColumn, ...]
_Rule = Callable[["ExpressionEmitter", exp.Expr, Scope], Fragment]


class ExpressionEmitter:
    """Value expressions; subclasses provide ``subquery`` for nested queries."""

    geometry_off: str | None = None
    """Why the geometry functions are refused (the database lacks pg_sphere)."""

    def subquery(self, node: exp.Expr, scope: Scope) -> tuple[str, Columns]:
        """SQL and columns of a nested query seeing ``scope``."""
        raise NotImplementedError

    def column_unit(self, column: SourceColumn) -> str | None:
        """The unit of a catalogue column (None: unknown; subclasses ask the
        catalogue)."""
        return None

    def column_datatype(self, column: SourceColumn) -> str | None:
        """The TAP_SCHEMA datatype of a catalogue column (None: unknown)."""
        return None

    def integer_column(self, column: SourceColumn) -> bool:
        """Whether a column is declared an integer in TAP_SCHEMA."""
        return self.column_datatype(column) in _INTEGER_DATATYPES

    def expression(
        self, node: exp.Expr, scope: Scope, outputs: Columns = ()
    ) -> Fragment:
        """Translate a value expression (``outputs``: select-list names it may use)."""
        if isinstance(node, exp.Column):
            sql, column = self.resolve_column(node, scope, outputs)
            return Fragment(sql, geom=column.xtype, name=column.name,
                            unit=self.column_unit(column),
                            integer=self.integer_column(column))  # fmt: skip
        rule = _RULES.get(type(node))
        if rule is None:
            raise AdqlError(_describe(node))
        return rule(self, node, scope)

    def condition(self, node: exp.Expr, scope: Scope) -> str:
        """Translate a search condition (a bare CONTAINS counts as ``= 1``)."""
        if type(node) in _LOGICAL:
            op = _LOGICAL[type(node)]
            left = self.condition(node.this, scope)
            return f"({left} {op} {self.condition(node.expression, scope)})"
        if isinstance(node, exp.Not):
            return f"(NOT {self.condition(node.this, scope)})"
        if isinstance(node, exp.Paren):
            return f"({self.condition(node.this, scope)})"
        fragment = self.expression(node, scope)
        return fragment.predicate or fragment.sql

    def resolve_column(
        self, node: exp.Column, scope: Scope, outputs: Columns
    ) -> tuple[str, SourceColumn]:
        """SQL and meaning of a column reference (or of an output name)."""
        if isinstance(node.this, exp.Star):
            raise AdqlError(f"{node.sql()} is only allowed in the select list")
        found = scope.resolve(node)
        if found is not None:
            return found
        name = identifier_name(node.this)
        for column in outputs:
            if column.name == name or (
                not node.this.quoted and column.name.lower() == name
            ):
                return quote_identifier(column.name), column
        raise located_error(f"unknown column {node.this.name}", node.this)

    def order_key(
        self, node: exp.Expr, scope: Scope, outputs: Columns, outputs_only: bool
    ) -> str:
        """One ORDER BY key: an output name or position, or an expression."""
        if not isinstance(node, exp.Ordered):
            raise AdqlError(f"unsupported ORDER BY item {node.sql()}")
        value = node.this
        descending = bool(node.args.get("desc"))
        direction = " DESC" if descending else ""
        # sqlglot fills in PostgreSQL's default null order; emit only a deviation.
        if bool(node.args.get("nulls_first")) != descending:
            direction += " NULLS LAST" if descending else " NULLS FIRST"
        if isinstance(value, exp.Literal) and not value.is_string:
            position = str(value.this)
            if not position.isdigit() or not 1 <= int(position) <= len(outputs):
                raise AdqlError(f"ORDER BY position {position} is out of range")
            return position + direction
        if isinstance(value, exp.Column) and value.args.get("table") is None:
            for column in outputs:
                if column.name == identifier_name(value.this):
                    return quote_identifier(column.name) + direction
        if outputs_only:
            raise AdqlError(
                "ORDER BY of a UNION, EXCEPT or INTERSECT may only name output "
                "columns or positions"
            )
        return self.expression(value, scope, outputs).sql + direction

    # -- rules -------------------------------------------------------------------

    def _binary(self, node: exp.Expr, scope: Scope) -> Fragment:
        folded = self._predicate_comparison(node, scope) or within_distance(
            node, lambda value: self.expression(value, scope)
        )
        if folded is not None:
            return folded
        left = self.expression(node.this, scope)
        right = self.expression(node.expression, scope)
        operator = _BINARY[type(node)]
        return Fragment(
            f"({left.sql} {operator} {right.sql})",
            unit=_binary_unit(operator, (node.this, left), (node.expression, right)),
            integer=left.integer and right.integer and operator in ("+", "-", "*"),
        )

    def _predicate_comparison(self, node: exp.Expr, scope: Scope) -> Fragment | None:
        """``CONTAINS(a, b) = 1`` and friends become the bare (indexable) operator."""
        sides = (node.this, node.expression)
        for call, other in (sides, sides[::-1]):
            if (
                isinstance(node, exp.EQ | exp.NEQ)
                and isinstance(call, exp.Anonymous)
                and str(call.this).upper() in _PREDICATES
                and isinstance(other, exp.Literal)
                and not other.is_string
                and str(other.this) in ("0", "1")
            ):
                predicate = self.expression(call, scope).predicate
                assert predicate is not None
                wanted = (str(other.this) == "1") == isinstance(node, exp.EQ)
                return Fragment(predicate if wanted else f"(NOT {predicate})")
        return None

    def _logical(self, node: exp.Expr, scope: Scope) -> Fragment:
        return Fragment(self.condition(node, scope))

    def _neg(self, node: exp.Expr, scope: Scope) -> Fragment:
        value = self.expression(node.this, scope)
        return Fragment(f"(-{value.sql})", unit=value.unit, integer=value.integer)

    def _paren(self, node: exp.Expr, scope: Scope) -> Fragment:
        inner = self.expression(node.this, scope)
        predicate = f"({inner.predicate})" if inner.predicate else None
        return Fragment(f"({inner.sql})", inner.geom, inner.coords, predicate,
                        inner.name, inner.unit, inner.integer)  # fmt: skip

    def _literal(self, node: exp.Expr, scope: Scope) -> Fragment:
        if node.is_string:
            return Fragment(string_literal(str(node.this)))
        text = number_literal(str(node.this))
        return Fragment(text, integer=text.isdigit())

    def _null(self, node: exp.Expr, scope: Scope) -> Fragment:
        return Fragment("NULL")

    def _like(self, node: exp.Expr, scope: Scope) -> Fragment:
        word = "ILIKE" if isinstance(node, exp.ILike) else "LIKE"
        if node.args.get("negate"):
            word = "NOT " + word
        left = self.expression(node.this, scope).sql
        return Fragment(
            f"({left} {word} {self.expression(node.expression, scope).sql})"
        )

    def _between(self, node: exp.Expr, scope: Scope) -> Fragment:
        if node.args.get("symmetric"):
            raise AdqlError("BETWEEN SYMMETRIC is not ADQL")
        value, low, high = (
            self.expression(node.args[key], scope).sql
            for key in ("this", "low", "high")
        )
        return Fragment(f"({value} BETWEEN {low} AND {high})")

    def _in(self, node: exp.Expr, scope: Scope) -> Fragment:
        if node.args.get("unnest") or node.args.get("field"):
            raise AdqlError("unsupported IN predicate")
        value = self.expression(node.this, scope).sql
        query = node.args.get("query")
        if query is not None:
            return Fragment(f"({value} IN ({self.subquery(query, scope)[0]}))")
        if not node.expressions:
            raise AdqlError("IN needs at least one value")
        items = ", ".join(self.expression(e, scope).sql for e in node.expressions)
        return Fragment(f"({value} IN ({items}))")

    def _exists(self, node: exp.Expr, scope: Scope) -> Fragment:
        if node.args.get("expression") is not None:
            raise AdqlError("unsupported EXISTS predicate")
        return Fragment(f"(EXISTS ({self.subquery(node.this, scope)[0]}))")

    def _is(self, node: exp.Expr, scope: Scope) -> Fragment:
        if not isinstance(node.expression, exp.Null):
            raise AdqlError("only IS NULL and IS NOT NULL are ADQL")
        word = "IS NOT NULL" if node.args.get("negate") else "IS NULL"
        return Fragment(f"({self.expression(node.this, scope).sql} {word})")

    def _scalar_subquery(self, node: exp.Expr, scope: Scope) -> Fragment:
        sql, columns = self.subquery(node, scope)
        geom = columns[0].xtype if len(columns) == 1 else None
        return Fragment(f"({sql})", geom=geom)

    def _case(self, node: exp.Expr, scope: Scope) -> Fragment:
        parts = ["CASE"]
        operand = node.args.get("this")
        if operand is not None:
            parts.append(self.expression(operand, scope).sql)
        for branch in node.args.get("ifs") or ():
            when = (
                self.expression(branch.this, scope).sql
                if operand is not None
                else self.condition(branch.this, scope)
            )
            then = self.expression(branch.args["true"], scope).sql
            parts.append(f"WHEN {when} THEN {then}")
        default = node.args.get("default")
        if default is not None:
            parts.append(f"ELSE {self.expression(default, scope).sql}")
        parts.append("END")
        return Fragment("(" + " ".join(parts) + ")")

    def _cast(self, node: exp.Expr, scope: Scope) -> Fragment:
        extra = {k for k, v in node.args.items() if v and k not in ("this", "to")}
        to = node.args["to"]
        kind = to.args.get("kind") if isinstance(to, exp.DataType) else None
        shape = str(kind.this).upper() if isinstance(kind, exp.Identifier) else ""
        if shape in _GEOMETRY_CASTS and not extra:
            text = self.expression(node.this, scope)
            if text.geom is not None:
                raise AdqlError(f"CAST to {shape} takes a string, not a {text.geom}")
            if isinstance(node.this, exp.Literal) and node.this.is_string:
                check_dali(shape, str(node.this.this))
            sql = _GEOMETRY_CASTS[shape].format(text.sql)
            return Fragment(sql, geom=shape.lower(), name="cast")
        target = _CAST_TYPES.get(to.this) if isinstance(to, exp.DataType) else None
        if extra or target is None:
            raise AdqlError(f"unsupported CAST to {to.sql()}")
        sizes = [str(p.this.this) for p in to.expressions or ()]
        if sizes and target in ("char", "varchar"):
            target += f"({number_literal(sizes[0])})"
        elif sizes:
            raise AdqlError(f"unsupported CAST to {to.sql()}")
        value = self.expression(node.this, scope)
        if value.geom is not None:  # pg_sphere's own text (radians) otherwise
            raise AdqlError(f"CAST of a {value.geom} to {to.sql()} is not ADQL")
        integer = target in ("smallint", "integer", "bigint")
        return Fragment(f"CAST({value.sql} AS {target})", name="cast", integer=integer)

    def _function(self, node: exp.Expr, scope: Scope) -> Fragment:
        name = str(node.this).upper()
        raw: Sequence[exp.Expr] = node.expressions
        if name in AGGREGATES:
            return self._aggregate(name, raw, scope)
        check_known(str(node.this))
        if self.geometry_off is not None and is_geometry(name):
            raise AdqlError(f"{name} is not available: {self.geometry_off}")
        args = [self.expression(arg, scope) for arg in raw]
        result = call_function(str(node.this), args, raw)
        unit = None
        if name in _SAME_UNIT and args:
            unit = args[0].unit
        elif name == "SQRT" and args:
            unit = power(args[0].unit, 0.5)
        elif name == "POWER" and len(raw) == 2 and _is_number(raw[1]):
            unit = power(args[0].unit, float(str(raw[1].this)))
        return replace(result, unit=unit) if unit is not None else result

    def _aggregate(self, name: str, raw: Sequence[exp.Expr], scope: Scope) -> Fragment:
        if len(raw) != 1:
            raise AdqlError(f"{name} takes one argument")
        arg, distinct = raw[0], ""
        if isinstance(arg, exp.Star) and name == "COUNT":
            return Fragment("count(*)", name="count")
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1 or arg.args.get("on") is not None:
                raise AdqlError(f"{name}(DISTINCT ...) takes one argument")
            arg, distinct = arg.expressions[0], "DISTINCT "
        value = self.expression(arg, scope)
        unit = value.unit if name in _SAME_UNIT else None
        return Fragment(f"{name.lower()}({distinct}{value.sql})", name=name.lower(),
                        unit=unit)  # fmt: skip


_RULES: dict[type[exp.Expr], _Rule] = {
    **{kind: ExpressionEmitter._binary for kind in _BINARY},
    **{kind: ExpressionEmitter._logical for kind in _LOGICAL},
    exp.Not: ExpressionEmitter._logical,
    exp.Neg: ExpressionEmitter._neg,
    exp.Paren: ExpressionEmitter._paren,
    exp.Literal: ExpressionEmitter._literal,
    exp.Null: ExpressionEmitter._null,
    exp.Like: ExpressionEmitter._like,
    exp.ILike: ExpressionEmitter._like,
    exp.Between: ExpressionEmitter._between,
    exp.In: ExpressionEmitter._in,
    exp.Exists: ExpressionEmitter._exists,
    exp.Is: ExpressionEmitter._is,
    exp.Subquery: ExpressionEmitter._scalar_subquery,
    exp.Select: ExpressionEmitter._scalar_subquery,
    exp.Case: ExpressionEmitter._case,
    exp.Cast: ExpressionEmitter._cast,
    exp.Anonymous: ExpressionEmitter._function,
}


def _is_number(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string


def _binary_unit(
    operator: str, left: tuple[exp.Expr, Fragment], right: tuple[exp.Expr, Fragment]
) -> str | None:
    """The unit of ``left operator right``, if known (numbers are dimensionless)."""
    units = [
        "" if _is_number(node) and fragment.unit is None else fragment.unit
        for node, fragment in (left, right)
    ]
    if operator in ("+", "-"):
        return units[0] if units[0] == units[1] else None
    if operator in ("*", "/"):
        return compose(units[0], units[1], operator)
    return None


def _describe(node: exp.Expr) -> str:
    """Name an unsupported node for the client: function name or SQL text."""
    if isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
        return f"unknown function {node.sql_name()}"
    text = node.sql(dialect="postgres")
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"unsupported expression: {text}"
