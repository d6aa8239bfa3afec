"""ESO's two user-defined functions that ADQL clients send (the IVOA validation
queries use them): ``ESO_INTERSECTION`` and ``eso_dateadd_sec``.

Part of :data:`taprunner.adql.udfs.USER_DEFINED_FUNCTIONS`, advertised with
their TAPRegExt signatures like the ``ivo_*`` ones. ``ESO_INTERSECTION`` is the
area (square degrees) of the intersection of two regions. pg_sphere cannot
intersect polygons, so the area is that of the intersection of the regions'
HEALPix coverages (pg_sphere's MOCs, ``smoc``), at an order where the smaller
region is about :data:`PIXELS_ACROSS` pixels across: a coverage holds every
pixel a region touches, so the area is over by about 4 / PIXELS_ACROSS of the
smaller region's (0.4 %; 0 when the regions do not overlap at all). A region
within the other gives its own area, exactly (pg_sphere's ``area``, which is 0
for polygons under about 1e-3 degrees: those take the coverages). pg_sphere's
``smoc`` cannot be cancelled (statement_timeout waits for it) and its cost
grows with the coverage's boundary pixels: the order is at most the one where
the regions' perimeters are :data:`MAX_BOUNDARY_PIXELS` pixels long, so a small
region partly overlapping a much larger one is measured more coarsely than that
(1e-4 degrees across, overlapping a 10 degree circle: one pixel of order 13).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from taprunner.adql.features import FEATURES_UDF, FunctionDef
from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.sqltext import Fragment

__all__ = ["ESO_FUNCTIONS", "MAX_BOUNDARY_PIXELS", "PIXELS_ACROSS"]

#: How many HEALPix pixels across the smaller region its coverage has.
PIXELS_ACROSS = 1000
#: The most pixels along both regions' perimeters (about 1 s of pg_sphere's).
MAX_BOUNDARY_PIXELS = 2**17
# Order k: a pixel (4 pi / (12 * 4**k) sr) is the smaller area / PIXELS_ACROSS**2,
# so 4**k = pi * N**2 / (3 * area); pg_sphere's orders are 0..29. A pixel is
# about sqrt(pi / 3) / 2**k radians across: at most MAX_BOUNDARY_PIXELS of them
# along the perimeters (radians) of both.
_ORDER = (
    "CAST(GREATEST(0, LEAST(29, CEIL(ln(pi() * {n}.0 * {n}.0 / (3 *"
    " GREATEST(LEAST(area(g.a), area(g.b)), 1e-30))) / ln(4)), FLOOR(ln({m}.0"
    " / GREATEST(circum(g.a) + circum(g.b), 1e-30)) / ln(2)))) AS integer)"
)
_INTERSECTION = (
    "(SELECT CASE WHEN g.a <@ g.b AND area(g.a) > 0 THEN degrees(degrees(area(g.a)))"
    " WHEN g.b <@ g.a AND area(g.b) > 0 THEN degrees(degrees(area(g.b)))"
    " WHEN g.a && g.b THEN degrees(degrees(area(smoc_intersection("
    "smoc(o.k, g.a), smoc(o.k, g.b))))) WHEN g.a IS NOT NULL AND g.b IS NOT NULL"
    " THEN 0.0 END FROM (SELECT {0} AS a, {1} AS b) AS g, LATERAL (SELECT"
    f" {_ORDER.format(n=PIXELS_ACROSS, m=MAX_BOUNDARY_PIXELS)} AS k) AS o)"
)
_DATEADD = (
    "(CAST({1} AS timestamp) + CAST({0} AS double precision) * interval '1 second')"
)


def _intersection(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    name = "ESO_INTERSECTION"
    if len(args) != 2:
        raise AdqlSyntaxError(f"{name} takes 2 arguments, {len(args)} given")
    for arg in args:
        if arg.geom == "point" or (arg.geom is None and arg.predicate is not None):
            raise AdqlError(f"{name} takes two regions (circles or polygons)")
    return Fragment(
        _INTERSECTION.format(args[0].sql, args[1].sql), name="eso_intersection"
    )


def _dateadd(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    name = "eso_dateadd_sec"
    if len(args) != 2:
        raise AdqlSyntaxError(f"{name} takes 2 arguments, {len(args)} given")
    if any(arg.geom is not None for arg in args):
        raise AdqlError(f"{name} takes seconds and a timestamp, not a geometry")
    return Fragment(_DATEADD.format(args[0].sql, args[1].sql), name=name)


ESO_FUNCTIONS: tuple[FunctionDef, ...] = (
    FunctionDef(
        "ESO_INTERSECTION",
        _intersection,
        "ESO_INTERSECTION(CIRCLE(0, 0, 1), CIRCLE(1, 0, 1))",
        FEATURES_UDF,
        signature="ESO_INTERSECTION(region1 REGION, region2 REGION)"
        " -> DOUBLE PRECISION",
        description="ESO's: the area (square degrees) of the intersection of two"
        " circles or polygons, 0 if they do not overlap; approximate, from their"
        f" HEALPix coverages at an order where the smaller is {PIXELS_ACROSS}"
        " pixels across (over by about 0.4 % of the smaller area; coarser for a"
        " small region partly overlapping a much larger one); exact when one"
        " lies within the other",
    ),
    FunctionDef(
        "eso_dateadd_sec",
        _dateadd,
        "eso_dateadd_sec(60, '2019-06-06T09:55:27')",
        FEATURES_UDF,
        signature="eso_dateadd_sec(seconds DOUBLE PRECISION, t TIMESTAMP) -> TIMESTAMP",
        description="ESO's: the timestamp t (or its ISO 8601 text) moved by"
        " seconds (negative: earlier)",
    ),
)
"""ESO's functions, in capabilities order."""
