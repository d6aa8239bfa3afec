"""ADQL geometry (degrees) on pg_sphere 1.x (radians): constructors, predicates, DALI.

Points are ``spoint``, circles ``scircle`` and polygons ``spoly``. CONTAINS and
INTERSECTS carry both an integer value form and a boolean ``predicate`` form;
the emitter uses the latter for ``CONTAINS(...) = 1`` so that a GiST index on
``spoint(radians(ra), radians(dec))`` applies. :data:`GEOMETRY_FUNCTIONS` is the
table of them (part of :data:`taprunner.adql.functions.FUNCTIONS`). BOX
(deprecated in ADQL 2.1, kept for older clients) is the polygon of its four
corners: ADQL 2.0 defines it as "a special case of POLYGON", a cross of arms
width/2 and height/2 (arcs) along the axes at its centre, its sides great
circles meeting the arms' ends at right angles. REGION (deprecated in 2.1 too)
takes a string literal in the STC-S of :mod:`.stcs` (a Position, Circle, Box or
Polygon, transformed to ICRS from another frame) and builds the same shapes; a
Union, Intersection or Not of them is for CONTAINS and INTERSECTS only
(:mod:`.regions`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from sqlglot import exp

from taprunner.adql.boxcorners import box_corners
from taprunner.adql.features import FEATURES_GEO, FunctionDef, Translate
from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.regions import Side, contains_sql, intersects_sql, predicate
from taprunner.adql.sqltext import Fragment
from taprunner.adql.stcs import SUPPORTED, Compound, Shape, parse_region

#: Geometry functions ADQL declares that are known, refused with this message.
REFUSED_GEOMETRY: dict[str, str] = {}

_FLOAT8_ARRAY = "double precision[]"
# pg_sphere prints polygons as {(lon , lat),...} in radians (its default format).
_POLYGON_DALI = (
    "(SELECT array_agg(degrees(v.x[1]::double precision) ORDER BY v.n) "
    "FROM regexp_matches(CAST({0} AS text), '[-+0-9.eE]+', 'g') "
    "WITH ORDINALITY AS v(x, n))"
)


def to_dali(value: Fragment) -> str:
    """SQL giving ``value`` (a geometry) as a DALI ``double precision[]``.

    A NULL geometry (or one with a NULL coordinate, which pg_sphere makes NULL)
    is NULL, never an array of NULLs: DALI and VOTable have an empty cell for it.
    """
    if value.geom == "region":
        raise AdqlError(
            "REGION: a Union, Intersection or Not has no value to give (only"
            " CONTAINS and INTERSECTS can take it)"
        )
    if value.coords is not None:
        array = f"CAST(ARRAY[{', '.join(value.coords)}] AS {_FLOAT8_ARRAY})"
        if all(_is_number(c) for c in value.coords):
            return array
        return f"(CASE WHEN num_nulls({', '.join(value.coords)}) = 0 THEN {array} END)"
    if value.geom == "polygon":
        return _POLYGON_DALI.format(value.sql)
    parts = _point_coords(value) if value.geom == "point" else _circle_coords(value)
    return f"(CASE WHEN {value.sql} IS NOT NULL THEN ARRAY[{', '.join(parts)}] END)"


def _is_number(sql: str) -> bool:
    return bool(_NUMBER_SQL.match(sql))


_NUMBER_SQL = re.compile(r"\(?-?[0-9.eE+-]+\)?\Z")


def _point(args: list[Fragment]) -> Fragment:
    _arity("POINT", args, 2)
    ra, dec = _scalars("POINT", args)
    return Fragment(
        f"spoint(radians({ra}), radians({dec}))",
        geom="point",
        coords=(ra, dec),
        name="point",
    )


def _circle(args: list[Fragment]) -> Fragment:
    if len(args) == 3:
        center = _point(args[:2])
    else:
        _arity("CIRCLE", args, 2)
        center = _geometry("CIRCLE", args[0], "point")
    (radius,) = _scalars("CIRCLE", args[-1:])
    radius = _size("CIRCLE", "radius", radius, _MAX_RADIUS, closed=True)
    coords = (*_point_coords(center), radius)
    return Fragment(
        f"scircle({center.sql}, radians({radius}))",
        geom="circle",
        coords=coords if center.coords is not None else None,
        name="circle",
    )


def _polygon(args: list[Fragment]) -> Fragment:
    if len(args) % 2 == 1 or any(arg.geom is not None for arg in args):
        vertices = [_geometry("POLYGON", arg, "point") for arg in args]
    else:
        vertices = [_point(args[i : i + 2]) for i in range(0, len(args), 2)]
    if len(vertices) < 3:
        raise AdqlError("POLYGON needs at least three vertices")
    rows = ", ".join(f"({n}, {v.sql})" for n, v in enumerate(vertices))
    coords = tuple(c for v in vertices for c in _point_coords(v))
    # pg_sphere's spoly aggregate crashes its backend (the whole cluster
    # restarts) on a NULL first vertex and skips a later one: a polygon with a
    # NULL vertex is NULL, its aggregate never sees one.
    computed = [c for c in coords if not _is_number(c)]
    where = f" WHERE num_nulls({', '.join(computed)}) = 0" if computed else ""
    sql = f"(SELECT spoly(v.p ORDER BY v.n) FROM (VALUES {rows}) AS v(n, p){where})"
    return Fragment(sql, geom="polygon", coords=coords, name="polygon")


def _box(args: list[Fragment]) -> Fragment:
    if len(args) == 3:
        center = _geometry("BOX", args[0], "point")
        ra, dec = _point_coords(center)
        width, height = _scalars("BOX", args[1:])
    else:
        _arity("BOX", args, 4)
        ra, dec, width, height = _scalars("BOX", args)
    width = _size("BOX", "width", width, _MAX_BOX, closed=False)
    height = _size("BOX", "height", height, _MAX_BOX, closed=False)
    corners = [Fragment(sql) for sql in box_corners(ra, dec, width, height)]
    shape = _polygon(corners)
    return Fragment(shape.sql, geom="polygon", coords=shape.coords, name="box")


#: What a REGION of a Union, Intersection or Not is outside CONTAINS and
#: INTERSECTS (which read its text again): an error if it ever reaches the
#: database, the places that take a geometry refusing it before.
_COMPOUND = (
    "CAST('REGION: Union, Intersection and Not only inside CONTAINS or"
    " INTERSECTS' AS spoint)"
)


def _region(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    if len(raw) != 1 or not (isinstance(raw[0], exp.Literal) and raw[0].is_string):
        raise AdqlError(f"{SUPPORTED}, written as one string literal")
    region = parse_region(str(raw[0].this))
    if isinstance(region, Compound):
        return Fragment(_COMPOUND, geom="region", name="region")
    return _shape(region)


def _shape(shape: Shape) -> Fragment:
    """The pg_sphere value of one REGION shape."""
    values = [
        Fragment(f"({n!r})" if repr(n)[0] == "-" else repr(n)) for n in shape.numbers
    ]
    kinds = {"POSITION": _point, "CIRCLE": _circle, "BOX": _box}
    return kinds.get(shape.kind, _polygon)(values)


def _side(name: str, arg: Fragment, node: exp.Expr) -> Side:
    """A predicate's argument: a compound REGION as what its text says."""
    if arg.geom != "region":
        return _geometry(name, arg, None)
    assert isinstance(node, exp.Anonymous)
    return parse_region(str(node.expressions[0].this))


def _centroid(args: list[Fragment]) -> Fragment:
    _arity("CENTROID", args, 1)
    shape = _geometry("CENTROID", args[0], "circle")
    if shape.geom == "polygon":
        raise AdqlError("CENTROID of a polygon is not supported; use a circle")
    return Fragment(f"center({shape.sql})", geom="point", name="centroid")


def _spatial(name: str) -> Translate:
    """CONTAINS or INTERSECTS; of a REGION's Union, Intersection or Not too."""

    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        _arity(name, args, 2)
        if any(arg.geom == "region" for arg in args):
            left, right = (_side(name, a, n) for a, n in zip(args, raw, strict=True))
            sql = predicate(name.lower(), left, right, _shape)
            return _predicate(sql, name.lower())
        first, second = (_geometry(name, arg, None) for arg in args)
        if name == "CONTAINS":
            return _predicate(contains_sql(first, second), "contains")
        return _predicate(intersects_sql(first, second), "intersects")

    return translate


def _distance(args: list[Fragment]) -> Fragment:
    if len(args) == 4:
        args = [_point(args[:2]), _point(args[2:])]
    _arity("DISTANCE", args, 2)
    first, second = (_geometry("DISTANCE", arg, "point") for arg in args)
    return Fragment(
        f"degrees({first.sql} <-> {second.sql})",
        name="distance",
        points=(first.sql, second.sql),
    )


#: DISTANCE compared with a constant radius below this (degrees) gets the
#: indexable containments too (a pg_sphere circle's radius is at most 90).
_MAX_INDEXED_RADIUS = 90.0


def within_distance(
    node: exp.Expr, translate: Callable[[exp.Expr], Fragment]
) -> Fragment | None:
    """``DISTANCE(p, q) < r`` (or ``<=``, or ``r > DISTANCE(p, q)``) for a
    constant ``r`` of 0 to 90 degrees: the comparison as written AND ``p @
    scircle(q, r)`` AND ``q @ scircle(p, r)``, so that a GiST index on either
    point's expression applies (a crossmatch: one index probe per row of the
    other side). The same rows: a circle contains its edge (within pg_sphere's
    1e-9 rad), the comparison decides. None for any other comparison."""
    if isinstance(node, exp.LT | exp.LTE):
        call, radius = node.this, node.expression
    elif isinstance(node, exp.GT | exp.GTE):
        call, radius = node.expression, node.this
    else:
        return None
    if not (isinstance(call, exp.Anonymous) and str(call.this).upper() == "DISTANCE"):
        return None
    value = _constant(radius)
    if value is None or not 0 <= value < _MAX_INDEXED_RADIUS:
        return None
    distance, limit = translate(call), translate(radius)
    if distance.points is None:
        return None
    first, second = distance.points
    operator = "<" if isinstance(node, exp.LT | exp.GT) else "<="
    circle = "scircle({0}, radians(" + limit.sql + "))"
    return Fragment(
        f"({distance.sql} {operator} {limit.sql}"
        f" AND {first} @ {circle.format(second)}"
        f" AND {second} @ {circle.format(first)})"
    )


def _constant(node: exp.Expr) -> float | None:
    """The value of a numeric literal or arithmetic of them; None otherwise."""
    if isinstance(node, exp.Paren):
        return _constant(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(str(node.this))
        except ValueError:
            return None
    if isinstance(node, exp.Neg):
        value = _constant(node.this)
        return None if value is None else -value
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div):
        left, right = _constant(node.this), _constant(node.expression)
        if left is None or right is None:
            return None
        if isinstance(node, exp.Div):
            return None if right == 0 else left / right
        return (
            left + right
            if isinstance(node, exp.Add)
            else (left - right if isinstance(node, exp.Sub) else left * right)
        )
    return None


def _area(args: list[Fragment]) -> Fragment:
    _arity("AREA", args, 1)
    shape = _geometry("AREA", args[0], None)
    # area() is in steradians; degrees() twice multiplies by (180/pi)^2.
    return Fragment(f"degrees(degrees(area({shape.sql})))", name="area")


def _coord(which: str) -> Callable[[list[Fragment]], Fragment]:
    def build(args: list[Fragment]) -> Fragment:
        name = "COORD1" if which == "long" else "COORD2"
        _arity(name, args, 1)
        point = _geometry(name, args[0], "point")
        return Fragment(f"degrees({which}({point.sql}))", name=name.lower())

    return build


def _coordsys(args: list[Fragment]) -> Fragment:
    _arity("COORDSYS", args, 1)
    _geometry("COORDSYS", args[0], "point")
    return Fragment("'ICRS'", name="coordsys")


def _predicate(condition: str, name: str) -> Fragment:
    return Fragment(f"CAST({condition} AS integer)", predicate=condition, name=name)


def _point_coords(point: Fragment) -> tuple[str, ...]:
    if point.coords is not None:
        return point.coords
    return (f"degrees(long({point.sql}))", f"degrees(lat({point.sql}))")


def _circle_coords(circle: Fragment) -> tuple[str, ...]:
    center = Fragment(f"center({circle.sql})", geom="point")
    return (*_point_coords(center), f"degrees(radius({circle.sql}))")


def _arity(name: str, args: Sequence[Fragment], count: int) -> None:
    if len(args) != count:
        raise AdqlSyntaxError(f"{name} takes {count} arguments here, not {len(args)}")


def _scalars(name: str, args: Sequence[Fragment]) -> tuple[str, ...]:
    for arg in args:
        if arg.geom is not None:
            raise AdqlError(f"{name} expects numbers (degrees), not a {arg.geom}")
        value = _literal(arg.sql)
        if value is not None and not math.isfinite(value):
            raise AdqlError(f"{name}: {arg.sql[:40]} is not a finite number")
    return tuple(arg.sql for arg in args)


#: Largest CIRCLE radius (pg_sphere's circles; a larger one is the NOT of the
#: circle of 180 - r around the antipode) and the bound BOX sizes stay below
#: (at 180 the sides meeting a cross's arm ends coincide: no quadrilateral).
_MAX_RADIUS, _MAX_BOX = 90.0, 180.0


def _size(name: str, what: str, sql: str, upper: float, *, closed: bool) -> str:
    """A size in degrees, 0 to ``upper`` (``closed``: included): a literal out
    of it is refused; a computed one is NULL out of it (NaN too), so is the
    shape, as for a NULL size (no row's value can stop the query midway)."""
    value = _literal(sql)
    if value is not None:
        if not (0 <= value <= upper if closed else 0 <= value < upper):
            bound = f"0 to {upper:g}" if closed else f"at least 0 and below {upper:g}"
            raise AdqlError(f"{name}: the {what} must be {bound} degrees, not {sql}")
        return sql
    below = f"<= {upper:g}" if closed else f"< {upper:g}"
    return f"(CASE WHEN {sql} >= 0 AND {sql} {below} THEN {sql} END)"


def _literal(sql: str) -> float | None:
    """The value of a numeric literal as translated (``1.5``, ``(-2)``)."""
    if not _NUMBER_SQL.match(sql):
        return None
    try:
        return float(sql.strip("()"))
    except ValueError:
        return None


def _geometry(name: str, arg: Fragment, expected: str | None) -> Fragment:
    """Check that ``arg`` may be a geometry (columns of unknown type may be)."""
    if arg.geom == "region":
        raise AdqlError(
            f"{name} cannot take a REGION of a Union, Intersection or Not"
            " (only CONTAINS and INTERSECTS can)"
        )
    if arg.geom is None and arg.predicate is None and not arg.sql[:1].isdigit():
        return arg
    if arg.geom is not None and (expected is None or arg.geom == expected):
        return arg
    if expected == "circle" and arg.geom == "polygon":
        return arg
    wanted = f"a {expected}" if expected else "a geometry"
    got = f"a {arg.geom}" if arg.geom else "a number"
    raise AdqlSyntaxError(f"{name} expects {wanted}, not {got}")


def _is_coordsys(node: exp.Expr) -> bool:
    return isinstance(node, exp.Null) or (
        isinstance(node, exp.Literal) and node.is_string
    )


def _in_system(build: Callable[[list[Fragment]], Fragment]) -> Translate:
    """A constructor whose optional first argument, the coordinate system (a
    string or NULL, as ADQL 2.0 allowed), is ignored (everything is ICRS)."""

    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        if raw and _is_coordsys(raw[0]):
            args = args[1:]
        return build(args)

    return translate


def _plain(build: Callable[[list[Fragment]], Fragment]) -> Translate:
    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        return build(args)

    return translate


_P = "POINT('ICRS', 10, 20)"
_C = "CIRCLE('ICRS', 10, 20, 1)"
_BOX_NOTE = (
    "Deprecated in ADQL 2.1: the polygon whose sides are great circles meeting"
    " at right angles the ends of a cross of arms width/2, height/2 along the axes"
)
_REGION_NOTE = (
    "Deprecated in ADQL 2.1: a string literal in STC-S, a Position, Circle, Box"
    " or Polygon (degrees; ICRS, or FK4, FK5, GALACTIC, SUPER_GALACTIC"
    " transformed to ICRS); inside CONTAINS and INTERSECTS also their Union,"
    " Intersection and Not (exact where they rewrite into predicates on the"
    " shapes, else compared as HEALPix coverages of order 14, 12.9 arcsec)"
)
_CENTROID_NOTE = "The centre of a circle (of a polygon is not supported)"
GEOMETRY_FUNCTIONS: tuple[FunctionDef, ...] = tuple(
    FunctionDef(name, translate, example, FEATURES_GEO, description=description)
    for name, translate, example, description in (
        ("POINT", _in_system(_point), _P, None),
        ("CIRCLE", _in_system(_circle), _C, None),
        ("POLYGON", _in_system(_polygon), "POLYGON('ICRS', 1, 1, 2, 1, 2, 2)", None),
        ("BOX", _in_system(_box), "BOX('ICRS', 10, 20, 2, 1)", _BOX_NOTE),
        ("REGION", _region, "REGION('Circle ICRS 10 20 1')", _REGION_NOTE),
        ("CENTROID", _plain(_centroid), f"CENTROID({_C})", _CENTROID_NOTE),
        ("CONTAINS", _spatial("CONTAINS"), f"CONTAINS({_P}, {_C})", None),
        ("INTERSECTS", _spatial("INTERSECTS"), f"INTERSECTS({_C}, {_C})", None),
        ("DISTANCE", _plain(_distance), f"DISTANCE({_P}, {_P})", None),
        ("AREA", _plain(_area), f"AREA({_C})", None),
        ("COORD1", _plain(_coord("long")), f"COORD1({_P})", None),
        ("COORD2", _plain(_coord("lat")), f"COORD2({_P})", None),
        ("COORDSYS", _plain(_coordsys), f"COORDSYS({_P})", None),
    )
)
"""The geometry functions, in capabilities order."""
