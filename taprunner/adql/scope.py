"""Name resolution: which tables a SELECT sees, and which column a reference means.

Regular identifiers match case-insensitively, delimited ones exactly. A scope
also keeps the column list ``SELECT *`` expands to, merging the columns of
NATURAL and USING joins as PostgreSQL does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from taprunner.adql.model import AdqlError
from taprunner.adql.sqltext import quote_identifier


@dataclass(frozen=True, slots=True)
class SourceColumn:
    """A column a relation exposes, with where it ultimately comes from."""

    name: str
    table: str | None = None
    column: str | None = None
    xtype: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """One FROM item: its correlation name, emitted qualifier and columns."""

    alias: str
    alias_quoted: bool
    schema: str | None
    qualifier_sql: str
    columns: tuple[SourceColumn, ...]


@dataclass(frozen=True, slots=True)
class StarItem:
    """One column of ``SELECT *``: its SQL and what it is."""

    sql: str
    column: SourceColumn


@dataclass(slots=True)
class Scope:
    """The FROM items of one SELECT, inside the scopes of enclosing queries."""

    parent: Scope | None = None
    sources: list[Source] = field(default_factory=list)
    star: list[StarItem] = field(default_factory=list)

    def add(self, source: Source) -> None:
        """Add a FROM item that is joined without merging columns."""
        self.sources.append(source)
        self.star.extend(_star_items(source))

    def add_merging(self, source: Source, common: list[str] | None) -> None:
        """Add a NATURAL (``common`` None) or USING join's right-hand item."""
        left_names = [item.column.name for item in self.star]
        if common is None:
            right = {c.name for c in source.columns}
            common = [name for name in left_names if name in right]
        merged = [
            StarItem(quote_identifier(name), self._left_column(name)) for name in common
        ]
        rest_left = [item for item in self.star if item.column.name not in common]
        rest_right = [i for i in _star_items(source) if i.column.name not in common]
        self.sources.append(source)
        self.star = merged + rest_left + rest_right

    def _left_column(self, name: str) -> SourceColumn:
        for item in self.star:
            if item.column.name == name:
                return item.column
        raise AdqlError(f"join column {name} is not in the left-hand table")

    def source_named(self, ident: exp.Identifier) -> Source | None:
        """The FROM item of this SELECT whose correlation name is ``ident``."""
        for source in self.sources:
            if _same(ident, source.alias, source.alias_quoted):
                return source
        return None

    def resolve(self, ref: exp.Column) -> tuple[str, SourceColumn] | None:
        """Emitted SQL and meaning of column reference ``ref``, None if unknown.

        Raises
        ------
        AdqlError
            If the reference names a known table but a column it does not have.
        """
        ident = ref.args["this"]
        qualifier = ref.args.get("table")
        schema = ref.args.get("db")
        if ref.args.get("catalog") is not None:
            raise _located(f"unsupported column reference {ref.sql()}", ident)
        scope: Scope | None = self
        while scope is not None:
            found = scope._resolve_here(ident, qualifier, schema)
            if found is not None:
                return found
            scope = scope.parent
        if qualifier is not None:
            table = f"{schema.name}.{qualifier.name}" if schema else qualifier.name
            raise _located(
                f"unknown table {table} in {ref.sql()}: no FROM item of this query"
                " is named so (a column is qualified by its table's alias, if it"
                " has one, else by the table's name as written in FROM)",
                ident,
            )
        return None

    def _resolve_here(
        self,
        ident: exp.Identifier,
        qualifier: exp.Identifier | None,
        schema: exp.Identifier | None,
    ) -> tuple[str, SourceColumn] | None:
        for source in self.sources:
            if qualifier is not None and not (
                _same(qualifier, source.alias, source.alias_quoted)
                and (schema is None or _same(schema, source.schema or "", False))
            ):
                continue
            for column in source.columns:
                if _same(ident, column.name, True):
                    name = quote_identifier(column.name)
                    if qualifier is None:
                        return name, column
                    return f"{source.qualifier_sql}.{name}", column
            if qualifier is not None:
                raise _located(
                    f"unknown column {ident.name} in table {qualifier.name}", ident
                )
        return None


def check_compatible(
    word: str, left: Sequence[SourceColumn], right: Sequence[SourceColumn]
) -> None:
    """The two sides of a set operation have as many columns, of kinds that mix
    (a POINT and a CIRCLE do not: no client could read the column).

    Raises
    ------
    AdqlError
        Naming the set operation ``word`` and the column.
    """
    if len(left) != len(right):
        raise AdqlError(
            f"the queries of {word} have {len(left)} and {len(right)} columns: "
            "they need as many"
        )
    for position, (first, second) in enumerate(zip(left, right, strict=True), 1):
        kinds = (first.xtype, second.xtype)
        if None not in kinds and kinds[0] != kinds[1]:
            raise AdqlError(
                f"column {position} of {word} is a {kinds[0]} on one side and a "
                f"{kinds[1]} on the other: {word} needs compatible types"
            )


def set_columns(
    left: Sequence[SourceColumn],
    right: Sequence[SourceColumn],
    integer: Callable[[SourceColumn], bool],
) -> tuple[SourceColumn, ...]:
    """The columns of a set operation: the left side's, except that a column
    that is an integer only on the left loses its origin (its values need not
    be integers: ROUND and TRUNCATE must not make them so)."""
    return tuple(
        first if integer(second) or not integer(first)
        else SourceColumn(first.name, xtype=first.xtype)
        for first, second in zip(left, right, strict=True)
    )  # fmt: skip


def identifier_name(ident: exp.Identifier) -> str:
    """The name an identifier denotes: folded to lowercase unless delimited."""
    name = str(ident.this)
    return name if ident.quoted else name.lower()


def located_error(message: str, node: exp.Expr) -> AdqlError:
    """An AdqlError placed at ``node`` when the parser recorded where it was."""
    return _located(message, node)


def _same(ident: exp.Identifier, name: str, name_exact: bool) -> bool:
    """Whether ``ident`` as written denotes ``name``."""
    if ident.quoted:
        return str(ident.this) == name
    written = str(ident.this).lower()
    return written == (name.lower() if name_exact else name)


def _star_items(source: Source) -> list[StarItem]:
    return [
        StarItem(f"{source.qualifier_sql}.{quote_identifier(c.name)}", c)
        for c in source.columns
    ]


def _located(message: str, node: exp.Expr) -> AdqlError:
    meta = node.meta if isinstance(node, exp.Identifier) else {}
    if "line" in meta and "col" in meta:
        width = int(meta.get("end", 0)) - int(meta.get("start", 0))
        return AdqlError(message, int(meta["line"]), int(meta["col"]) - width)
    return AdqlError(message)
