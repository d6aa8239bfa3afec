"""CONTAINS and INTERSECTS of shapes and of REGION's Union, Intersection and Not.

pg_sphere has points, circles and polygons, no region made of others; so a
predicate on such a region is rewritten into predicates on its shapes where
that is exact (``x`` in a Union: in one of them; ``x`` within an Intersection:
within each; within ``Not a``: not meeting ``a``; meeting ``Not a``: not within
``a``; a point meeting an Intersection: in each). Where no such rewriting is
exact (a circle within a Union, an Intersection within a circle, a polygon
meeting an Intersection), both sides become their HEALPix coverages (pg_sphere
MOCs at order :data:`MOC_ORDER`, 12.9 arcsec pixels) and the coverages are
compared: exact to a pixel. A Not there is refused (a MOC has no complement).
"""

from __future__ import annotations

from collections.abc import Callable

from taprunner.adql.model import AdqlError
from taprunner.adql.sqltext import Fragment
from taprunner.adql.stcs import Compound, Region, Shape

__all__ = ["MOC_ORDER", "Side", "contains_sql", "intersects_sql", "predicate"]

#: The HEALPix order of the coverages compared where no rewriting is exact.
MOC_ORDER = 14
#: One side of a predicate: a translated geometry or a parsed REGION.
Side = Fragment | Region
Build = Callable[[Shape], Fragment]


def contains_sql(inner: Fragment, outer: Fragment) -> str:
    """``inner`` lies within ``outer`` (both pg_sphere values)."""
    return f"({inner.sql} <@ {outer.sql})"


def intersects_sql(first: Fragment, second: Fragment) -> str:
    """``first`` and ``second`` share a point (both pg_sphere values)."""
    if second.geom == "point":  # a point intersects a region iff it is inside
        first, second = second, first
    operator = "<@" if first.geom == "point" else "&&"
    return f"({first.sql} {operator} {second.sql})"


def predicate(name: str, left: Side, right: Side, build: Build) -> str:
    """Boolean SQL of CONTAINS (``name`` ``contains``: left within right) or
    INTERSECTS of two sides; ``build`` makes a shape a pg_sphere value."""
    if name == "contains":
        return _contains(left, right, build)
    return _intersects(left, right, build)


def _leaf(side: Side, build: Build) -> Fragment | None:
    if isinstance(side, Fragment):
        return side
    return build(side) if isinstance(side, Shape) else None


def _is_point(side: Side, build: Build) -> bool:
    leaf = _leaf(side, build)
    return leaf is not None and leaf.geom == "point"


def _join(word: str, parts: list[str]) -> str:
    return "(" + f" {word} ".join(parts) + ")"


def _contains(inner: Side, outer: Side, build: Build) -> str:
    first, second = _leaf(inner, build), _leaf(outer, build)
    if first is not None and second is not None:
        return contains_sql(first, second)
    if isinstance(inner, Compound) and inner.kind == "UNION":
        return _join("AND", [_contains(p, outer, build) for p in inner.parts])
    if isinstance(outer, Compound):
        if outer.kind == "INTERSECTION":
            return _join("AND", [_contains(inner, p, build) for p in outer.parts])
        if outer.kind == "NOT":
            return f"(NOT {_intersects(inner, outer.parts[0], build)})"
        if _is_point(inner, build):
            return _join("OR", [_contains(inner, p, build) for p in outer.parts])
    return f"({_moc(inner, build)} <@ {_moc(outer, build)})"


def _intersects(first: Side, second: Side, build: Build) -> str:
    one, two = _leaf(first, build), _leaf(second, build)
    if one is not None and two is not None:
        return intersects_sql(one, two)
    for this, other in ((first, second), (second, first)):
        if not isinstance(this, Compound):
            continue
        if this.kind == "UNION":
            return _join("OR", [_intersects(p, other, build) for p in this.parts])
        if this.kind == "NOT":
            return f"(NOT {_contains(other, this.parts[0], build)})"
        if _is_point(other, build):  # a point meets an Intersection: in each
            return _join("AND", [_contains(other, p, build) for p in this.parts])
    return f"({_moc(first, build)} && {_moc(second, build)})"


def _moc(side: Side, build: Build) -> str:
    """The HEALPix coverage (pg_sphere ``smoc``) of ``side``."""
    leaf = _leaf(side, build)
    if leaf is not None:
        return f"smoc({MOC_ORDER}, {leaf.sql})"
    assert isinstance(side, Compound)
    if side.kind == "NOT":
        raise AdqlError(
            "REGION: this Not cannot be evaluated here (its complement has no"
            " pg_sphere value); CONTAINS(x, Not a) and INTERSECTS(x, Not a) work"
        )
    function = "smoc_union" if side.kind == "UNION" else "smoc_intersection"
    return _balanced(function, [_moc(p, build) for p in side.parts])


def _balanced(function: str, parts: list[str]) -> str:
    """``function`` of all ``parts`` as a balanced tree of calls: nested about
    log2(len(parts)) deep, built in linear time (a chain is quadratic to build
    and too deep for PostgreSQL's stack)."""
    while len(parts) > 1:
        pairs = [
            f"{function}({a}, {b})"
            for a, b in zip(parts[::2], parts[1::2], strict=False)
        ]
        parts = pairs + parts[len(pairs) * 2 :]
    return parts[0]
