"""ivo_epoch_prop and ivo_epoch_prop_pos: positions moved to another epoch.

Rigorous uniform space motion in the Hipparcos formulation (ESA 1997, The
Hipparcos and Tycho Catalogues, vol. 1, section 1.5.5), as the IVOA UDF
catalogue describes and DaCHS implements it: the star moves on a straight line
at constant velocity; no light-time correction. One scalar subquery, so no
function has to be installed in the database. A NULL parallax, proper motion or
radial velocity counts as 0 (with no parallax the radial velocity is not used
and comes back unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from taprunner.adql.features import FEATURES_UDF, FunctionDef
from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.sqltext import Fragment

__all__ = ["EPOCH_FUNCTIONS"]

_MAS = "4.84813681109536e-09"  # radians per milliarcsecond
_AU = "4.740470446"  # km/s per AU/yr: rv [km/s] * plx [mas] / A is in mas/yr
_D = "double precision"

# i: the inputs in radians and rad/yr (zeta: the radial proper motion);
# b: the position vector r0 and proper-motion vector pm0; m: the factor f;
# n: the moved vectors; s: the new angles; o: the outputs in the IVOA's units.
_FROM = (
    f" FROM (SELECT radians(CAST({{0}} AS {_D})) AS a,"
    f" radians(CAST({{1}} AS {_D})) AS d, COALESCE(CAST({{2}} AS {_D}), 0) AS plx,"
    f" COALESCE(CAST({{3}} AS {_D}), 0) * {_MAS} AS pma,"
    f" COALESCE(CAST({{4}} AS {_D}), 0) * {_MAS} AS pmd,"
    f" COALESCE(CAST({{5}} AS {_D}), 0) * COALESCE(CAST({{2}} AS {_D}), 0)"
    f" / {_AU} * {_MAS} AS zeta, CAST({{5}} AS {_D}) AS rv,"
    f" CAST({{7}} AS {_D}) - CAST({{6}} AS {_D}) AS t) AS i,"
    " LATERAL (SELECT cos(i.d) * cos(i.a) AS rx, cos(i.d) * sin(i.a) AS ry,"
    " sin(i.d) AS rz, -sin(i.a) * i.pma - sin(i.d) * cos(i.a) * i.pmd AS vx,"
    " cos(i.a) * i.pma - sin(i.d) * sin(i.a) * i.pmd AS vy,"
    " cos(i.d) * i.pmd AS vz, i.pma * i.pma + i.pmd * i.pmd AS pm2) AS b,"
    " LATERAL (SELECT 1 / sqrt(1 + 2 * i.zeta * i.t"
    " + (b.pm2 + i.zeta * i.zeta) * i.t * i.t) AS f, 1 + i.zeta * i.t AS g) AS m,"
    " LATERAL (SELECT (b.rx * m.g + b.vx * i.t) * m.f AS x,"
    " (b.ry * m.g + b.vy * i.t) * m.f AS y, (b.rz * m.g + b.vz * i.t) * m.f AS z,"
    " (b.vx * m.g - b.rx * b.pm2 * i.t) * m.f ^ 3 AS wx,"
    " (b.vy * m.g - b.ry * b.pm2 * i.t) * m.f ^ 3 AS wy,"
    " (b.vz * m.g - b.rz * b.pm2 * i.t) * m.f ^ 3 AS wz,"
    " (i.zeta + (b.pm2 + i.zeta * i.zeta) * i.t) * m.f ^ 2 AS zeta) AS n,"
    " LATERAL (SELECT atan2(n.y, n.x) AS a,"
    " atan2(n.z, sqrt(n.x * n.x + n.y * n.y)) AS d) AS s,"
    " LATERAL (SELECT degrees(s.a) - 360 * floor(degrees(s.a) / 360) AS ra,"
    " degrees(s.d) AS dec, i.plx * m.f AS plx,"
    f" (-sin(s.a) * n.wx + cos(s.a) * n.wy) / {_MAS} AS pmra,"
    " (-sin(s.d) * cos(s.a) * n.wx - sin(s.d) * sin(s.a) * n.wy"
    f" + cos(s.d) * n.wz) / {_MAS} AS pmdec,"
    " CASE WHEN i.plx = 0 THEN i.rv"
    f" ELSE n.zeta / {_MAS} * {_AU} / (i.plx * m.f) END AS rv) AS o)"
)
_ALL = "(SELECT ARRAY[o.ra, o.dec, o.plx, o.pmra, o.pmdec, o.rv]" + _FROM
_POSITION = "(SELECT spoint(radians(o.ra), radians(o.dec))" + _FROM
_ARGUMENTS = (
    "(ra DOUBLE PRECISION, dec DOUBLE PRECISION, parallax DOUBLE PRECISION,"
    " pmra DOUBLE PRECISION, pmdec DOUBLE PRECISION, radial_velocity DOUBLE"
    " PRECISION, ref_epoch DOUBLE PRECISION, out_epoch DOUBLE PRECISION)"
)
_UNITS = (
    " (degrees, mas, mas/yr with pmra times cos(dec), km/s, Julian years);"
    " rigorous uniform space motion (Hipparcos vol. 1, 1.5.5), NULLs count as 0"
)


def _propagation(name: str, template: str, geom: str | None) -> FunctionDef:
    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        if len(args) != 8:
            raise AdqlSyntaxError(f"{name} takes 8 arguments, {len(args)} given")
        for arg in args:
            if arg.geom is not None:
                raise AdqlError(f"{name} takes numbers, not a {arg.geom}")
        return Fragment(template.format(*(a.sql for a in args)), geom=geom, name=name)

    returns = "DOUBLE PRECISION[6]" if geom is None else "POINT"
    what = (
        "ra, dec, parallax, pmra, pmdec, radial_velocity at out_epoch"
        if geom is None
        else "The position at out_epoch"
    )
    return FunctionDef(
        name,
        translate,
        f"{name}(10.0, 20.0, 100.0, 1000.0, -500.0, 30.0, 2000.0, 2100.0)",
        FEATURES_UDF,
        signature=f"{name}{_ARGUMENTS} -> {returns}",
        description=f"{what} of a star given at ref_epoch{_UNITS}",
    )


EPOCH_FUNCTIONS: tuple[FunctionDef, ...] = (
    _propagation("ivo_epoch_prop", _ALL, None),
    _propagation("ivo_epoch_prop_pos", _POSITION, "point"),
)
"""The epoch propagation UDFs (ivo_epoch_prop_pos needs pg_sphere)."""
