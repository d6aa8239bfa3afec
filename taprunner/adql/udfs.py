"""The user-defined functions: the IVOA UDF catalogue's ``ivo_*`` that PostgreSQL
with pg_sphere can run (and ESO's two, :mod:`.esoudfs`), each with its TAPRegExt
signature and description.

Part of :data:`taprunner.adql.functions.FUNCTIONS`. HEALPix indexes are NESTED
(the catalogue's convention), computed by HEALPix's own ring formula in SQL
and pg_sphere's ``ring2nest`` (not pg_sphere's ``healpix_nest``, wrong at exact
pixel corners); pixel centres by pg_sphere's ``center_of_healpix_nest``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from taprunner.adql.epochprop import EPOCH_FUNCTIONS
from taprunner.adql.esoudfs import ESO_FUNCTIONS
from taprunner.adql.features import FEATURES_UDF, FunctionDef, Translate
from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.sqltext import Fragment

__all__ = ["SPHERE_UDFS", "USER_DEFINED_FUNCTIONS"]

#: The UDFs that need pg_sphere (refused, and not advertised, without it).
SPHERE_UDFS = frozenset(
    {
        "ivo_healpix_index",
        "ivo_healpix_center",
        "ivo_epoch_prop_pos",
        "ESO_INTERSECTION",
    }
)


def _arity(name: str, args: Sequence[Fragment], count: int) -> None:
    if len(args) != count:
        raise AdqlSyntaxError(f"{name} takes {count} arguments, {len(args)} given")


def _no_geometry(name: str, args: Sequence[Fragment]) -> None:
    for arg in args:
        if arg.geom is not None:
            raise AdqlError(f"{name} cannot take a {arg.geom}")


def _template(name: str, count: int, sql: str, geom: str | None = None) -> Translate:
    """SQL with ``{0}``, ``{1}``... standing for the translated arguments."""

    def translate(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
        _arity(name, args, count)
        _no_geometry(name, args)
        return Fragment(sql.format(*(a.sql for a in args)), geom=geom, name=name)

    return translate


# HEALPix's ang2pix_ring (Gorski et al. 2005; healpix_base's loc2pix) in SQL, in
# degrees, then pg_sphere's ring2nest: pg_sphere's own healpix_nest answers a
# pixel 180 degrees away at exact pixel corners (order 0: (45, 0) gives 7, not
# 5). One flat expression (no per-row subplan chains: those cost 0.5 ms a row).
# i: the order k, nside, z and tt = ra / 90 in [0, 4); j: the equatorial
# line numbers jp, jm and the polar ring number pir.
_D = "double precision"
_EQUATORIAL = "abs(i.z) <= CAST(2 AS double precision) / 3"
_TP = "(i.tt - floor(i.tt))"
# ns * sqrt(3 * (1 - |z|)) as HEALPix computes it near the poles (from sin(theta)
# = cos(dec)): 1 - |z| keeps few digits there, wrong pixels at high orders.
_TMP = "(i.ns * i.c * sqrt(3 / (1 + abs(i.z))))"
_RING = (
    "CASE WHEN j.eq THEN 2 * j.ns * (j.ns - 1) + (j.ns + j.jp - j.jm) * 4 * j.ns"
    " + ((j.jp + j.jm - j.ns + 2 - ((j.ns + 1 + j.jp - j.jm) & 1)) / 2) % (4 * j.ns)"
    " WHEN j.z > 0 THEN 2 * j.pir * (j.pir - 1)"
    " + CAST(floor(j.tt * j.pir) AS bigint) % (4 * j.pir)"
    " ELSE 12 * j.ns * j.ns - 2 * j.pir * (j.pir + 1)"
    " + CAST(floor(j.tt * j.pir) AS bigint) % (4 * j.pir) END"
)
_HEALPIX_NEST = (
    f"(SELECT CASE WHEN j.k BETWEEN 0 AND 29 THEN ring2nest(j.k, {_RING})"
    " ELSE CAST(CAST('ivo_healpix_index: the order is 0 to 29, not ' || j.k AS text)"
    " AS bigint) END FROM (SELECT i.k, i.ns, i.z, i.tt,"
    f" {_EQUATORIAL} AS eq,"
    " CAST(floor(i.ns * (0.5 + i.tt) - i.ns * i.z * 0.75) AS bigint) AS jp,"
    " CAST(floor(i.ns * (0.5 + i.tt) + i.ns * i.z * 0.75) AS bigint) AS jm,"
    f" CAST(floor({_TP} * {_TMP}) AS bigint)"
    f" + CAST(floor((1 - {_TP}) * {_TMP}) AS bigint) + 1 AS pir"
    " FROM (SELECT CAST({0} AS integer) AS k,"
    " CAST(1 AS bigint) << LEAST(GREATEST(CAST({0} AS integer), 0), 29) AS ns,"
    f" sind(CAST({{2}} AS {_D})) AS z, cosd(CAST({{2}} AS {_D})) AS c,"
    f" (CAST({{1}} AS {_D}) - 360"
    f" * floor(CAST({{1}} AS {_D}) / 360)) / 90 AS tt) AS i) AS j)"
)


def _healpix_index(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    """``ivo_healpix_index(order, ra, dec)`` or ``(order, point)``."""
    name = "ivo_healpix_index"
    if len(args) == 3:
        _no_geometry(name, args)
        order, ra, dec = (a.sql for a in args)
    else:
        _arity(name, args, 2)
        if args[1].geom not in (None, "point") or args[0].geom is not None:
            raise AdqlError(f"{name} takes an order and a point (or ra, dec)")
        order, point = args[0].sql, args[1].sql
        ra, dec = f"degrees(long({point}))", f"degrees(lat({point}))"
    return Fragment(_HEALPIX_NEST.format(order, ra, dec), name=name, integer=True)


_HASHLIST = "CAST((lower({1}) = ANY(string_to_array(lower({0}), '#'))) AS integer)"
_OVERLAPS = "CAST((({0}) <= ({3}) AND ({2}) <= ({1})) AS integer)"
_HEALPIX_CENTER = "center_of_healpix_nest(CAST({0} AS integer), CAST({1} AS bigint))"

USER_DEFINED_FUNCTIONS: tuple[FunctionDef, ...] = (
    FunctionDef(
        "ivo_hasword",
        _template(
            "ivo_hasword",
            2,
            "CAST((to_tsvector('simple', {0}) @@ plainto_tsquery('simple', {1}))"
            " AS integer)",
        ),
        "ivo_hasword('the quick fox', 'quick')",
        FEATURES_UDF,
        signature="ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER",
        description="1 if the words of needle occur in haystack, else 0"
        " (case-insensitive; PostgreSQL's 'simple' text search, no stemming)",
    ),
    FunctionDef(
        "ivo_nocasematch",
        _template("ivo_nocasematch", 2, "CAST(({0} ILIKE {1}) AS integer)"),
        "ivo_nocasematch('Beta Star', 'beta%')",
        FEATURES_UDF,
        signature="ivo_nocasematch(value VARCHAR(*), pattern VARCHAR(*)) -> INTEGER",
        description="1 if the case-folded value matches the case-folded pattern"
        " (LIKE semantics), else 0",
    ),
    FunctionDef(
        "ivo_hashlist_has",
        _template("ivo_hashlist_has", 2, _HASHLIST),
        "ivo_hashlist_has('Optical#UV#radio', 'uv')",
        FEATURES_UDF,
        signature="ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
        description="1 if item is one of the '#'-separated words of hashlist"
        " (compared case-insensitively), else 0",
    ),
    FunctionDef(
        "ivo_interval_overlaps",
        _template("ivo_interval_overlaps", 4, _OVERLAPS),
        "ivo_interval_overlaps(1, 3, 2, 5)",
        FEATURES_UDF,
        signature="ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC,"
        " h2 NUMERIC) -> INTEGER",
        description="1 if the closed intervals [l1, h1] and [l2, h2] share a"
        " point, else 0 (NULL if a bound is NULL)",
    ),
    FunctionDef(
        "ivo_string_agg",
        _template("ivo_string_agg", 2, "string_agg(CAST({0} AS text), {1})"),
        "ivo_string_agg(CAST(a AS VARCHAR(10)), ',')",
        FEATURES_UDF,
        signature="ivo_string_agg(expr TEXT, delim TEXT) -> TEXT",
        description="An aggregate: the values of expr in the group, joined by"
        " delim (NULLs left out)",
    ),
    FunctionDef(
        "ivo_healpix_index",
        _healpix_index,
        "ivo_healpix_index(6, 10.0, 20.0)",
        FEATURES_UDF,
        signature="ivo_healpix_index(hpxOrder INTEGER, ra DOUBLE PRECISION,"
        " dec DOUBLE PRECISION) -> BIGINT",
        description="The NESTED HEALPix index at order hpxOrder (0..29) of the"
        " position ra, dec (ICRS degrees); ivo_healpix_index(hpxOrder, POINT)"
        " works too",
    ),
    FunctionDef(
        "ivo_healpix_center",
        _template("ivo_healpix_center", 2, _HEALPIX_CENTER, geom="point"),
        "ivo_healpix_center(6, 12345)",
        FEATURES_UDF,
        signature="ivo_healpix_center(hpxOrder INTEGER, hpxIndex BIGINT) -> POINT",
        description="The centre of the NESTED HEALPix pixel hpxIndex at order"
        " hpxOrder, as a POINT (ICRS degrees)",
    ),
    *EPOCH_FUNCTIONS,
    *ESO_FUNCTIONS,
)
"""The user-defined functions (``ivo_*`` of the IVOA UDF catalogue)."""
