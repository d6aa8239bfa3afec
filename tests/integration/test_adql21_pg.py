"""ADQL 2.1's additions and the IVOA UDFs on a real PostgreSQL with pg_sphere,
each value checked against one computed independently (numpy/Decimal, astropy,
HEALPix's own formulas, published geometry)."""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import asyncpg
import numpy as np
import pytest
from testkit import DbSetup

from taprunner.adql.model import AdqlError, StaticCatalog
from taprunner.adql.translate import translate
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.metadata import ColumnMetadata, TableMetadata

SETUP = """
CREATE SCHEMA tst;
CREATE TABLE tst.obj (
    id integer PRIMARY KEY, ra double precision, dec double precision,
    pmra double precision, mag real, bands text, name text,
    logg double precision DEFAULT 4.5);
INSERT INTO tst.obj VALUES
    (1, 10.0, 20.0, 3600.0, 15.5634994506835938, 'Optical#UV#radio', 'alpha'),
    (2, 200.0, -45.0, -7.5, 2.675, 'X-ray', 'beta'),
    (3, 300.0, 60.0, NULL, NULL, NULL, NULL);
CREATE TABLE tst.floats (id integer, x real);
CREATE TABLE tst.big (id integer, n bigint, s smallint);
INSERT INTO tst.big VALUES (1, 9007199254740993, 25), (2, -9007199254740993, -25),
    (3, 123456789012345675, 15), (4, NULL, NULL);
"""
UNITS = TableMetadata(
    columns=(
        ColumnMetadata(name="ra", unit="deg"),
        ColumnMetadata(name="dec", unit="deg"),
        ColumnMetadata(name="pmra", unit="mas/yr"),
        ColumnMetadata(name="mag", unit="mag"),
        ColumnMetadata(name="logg", unit="[cm/s2]"),  # VizieR's, not a VOUnit
    )
)


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True,
        sql=SETUP,
        published={"tst.obj": UNITS, "tst.big": TableMetadata(columns=())},
    )


async def _row(conn: asyncpg.Connection, catalog: TapCatalog, adql: str) -> tuple:
    row = await conn.fetchrow(translate(adql, catalog).sql)
    assert row is not None
    return tuple(row)


async def test_round_and_truncate_of_real_are_exact(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """ROUND/TRUNCATE of float32 values agree with Decimal on the exact stored
    binary value (where the value's shortest text would round otherwise)."""
    assert await _row(
        conn, catalog, "SELECT ROUND(mag, 3) FROM tst.obj WHERE id = 1"
    ) == (15.563,)
    generator = random.Random(13)
    values = np.array(
        [generator.uniform(-1000, 1000) for _ in range(300)]
        + [2.675, 0.125, 15.5634994506835938, -2.5, 1.005, 0.0455],
        dtype=np.float32,
    )
    await conn.executemany(
        "INSERT INTO tst.floats VALUES ($1, $2)",
        [(i, float(v)) for i, v in enumerate(values)],
    )
    static = StaticCatalog({"tst.floats": ["id", "x"]})
    for digits in (0, 1, 2, 3, 4):
        sql = translate(
            f"SELECT id, ROUND(x, {digits}), TRUNCATE(x, {digits}) FROM tst.floats",
            static,
        ).sql
        rows = {r[0]: (r[1], r[2]) for r in await conn.fetch(sql)}
        quantum = Decimal(1).scaleb(-digits)
        for index, value in enumerate(values):
            exact = Decimal(float(value))  # the stored float32, exactly
            rounded = float(exact.quantize(quantum, rounding=ROUND_HALF_UP))
            truncated = float(exact.quantize(quantum, rounding=ROUND_DOWN))
            assert rows[index] == (rounded, truncated), (float(value), digits)


async def test_round_truncate_and_mod_of_integers_are_exact(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """Integers (bigint beyond 2**53, where a double loses digits) stay exact
    and integral; ties round away from zero (Decimal computes the expected)."""
    adql = (
        "SELECT id, ROUND(n), ROUND(n, -1), TRUNCATE(n, -1), MOD(n, 10),"
        " ROUND(s, -1), TRUNCATE(s, -1), ROUND(n + 2, 2), TRUNCATE(9007199254740993)"
        " FROM tst.big ORDER BY id"
    )
    rows = [tuple(r) for r in await conn.fetch(translate(adql, catalog).sql)]
    stored = {1: (9007199254740993, 25), 2: (-9007199254740993, -25),
              3: (123456789012345675, 15), 4: (None, None)}  # fmt: skip
    tens = Decimal("1E1")
    for row in rows:
        n, s = stored[row[0]]
        if n is None:
            assert row[1:8] == (None,) * 7
            continue
        assert row[1:] == (
            n,
            int(Decimal(n).quantize(tens, ROUND_HALF_UP)),
            int(Decimal(n).quantize(tens, ROUND_DOWN)),
            int(Decimal(n) % 10),  # the sign of n, as SQL's mod
            int(Decimal(s).quantize(tens, ROUND_HALF_UP)),
            int(Decimal(s).quantize(tens, ROUND_DOWN)),
            n + 2,
            9007199254740993,
        )
        assert all(isinstance(v, int) for v in row[1:])
    assert rows[0][1:4] == (9007199254740993, 9007199254740990, 9007199254740990)
    assert rows[1][5:7] == (-30, -20)  # -25: half away from zero; truncated to -20
    assert rows[2][2] == 123456789012345680


def _healpix_nest(order: int, ra: float, dec: float) -> int:
    """HEALPix NESTED index of (ra, dec) in degrees: Gorski et al. 2005's
    ang2pix, as in HEALPix's healpix_base loc2pix (no pg_sphere involved)."""
    nside = 1 << order
    z = math.sin(math.radians(dec))
    za = abs(z)
    tt = (math.radians(ra) % (2 * math.pi)) * 2 / math.pi
    if za <= 2 / 3:
        temp1, temp2 = nside * (0.5 + tt), nside * z * 0.75
        jp, jm = int(temp1 - temp2), int(temp1 + temp2)
        ifp, ifm = jp >> order, jm >> order
        face = (ifp | 4) if ifp == ifm else (ifp if ifp < ifm else ifm + 8)
        ix, iy = jm & (nside - 1), nside - (jp & (nside - 1)) - 1
    else:
        ntt = min(3, int(tt))
        tp = tt - ntt
        tmp = nside * math.sqrt(3 * (1 - za))
        jp, jm = min(nside - 1, int(tp * tmp)), min(nside - 1, int((1 - tp) * tmp))
        if z >= 0:
            face, ix, iy = ntt, nside - jm - 1, nside - jp - 1
        else:
            face, ix, iy = ntt + 8, jp, jm
    interleaved = 0
    for bit in range(order):
        interleaved |= ((ix >> bit) & 1) << (2 * bit)
        interleaved |= ((iy >> bit) & 1) << (2 * bit + 1)
    return face * nside * nside + interleaved


async def test_healpix_index_agrees_with_the_healpix_formulas(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    generator = random.Random(5)
    points = [
        (generator.uniform(0, 360), math.degrees(math.asin(generator.uniform(-1, 1))))
        for _ in range(200)
    ]
    for order in (0, 3, 6, 10):
        values = ", ".join(f"({ra!r}, {dec!r})" for ra, dec in points)
        adql = " UNION ALL ".join(
            f"SELECT {i} AS n, ivo_healpix_index({order}, {ra!r}, {dec!r}) AS h"
            for i, (ra, dec) in enumerate(points)
        )
        del values
        got = {r["n"]: r["h"] for r in await conn.fetch(translate(adql, catalog).sql)}
        expected = {
            i: _healpix_nest(order, ra, dec) for i, (ra, dec) in enumerate(points)
        }
        assert got == expected, order
    # The POINT form gives the same; a row's columns work too.
    assert (
        await _row(
            conn,
            catalog,
            "SELECT ivo_healpix_index(6, POINT(ra, dec)), ivo_healpix_index(6, ra, dec)"
            " FROM tst.obj WHERE id = 2",
        )
        == (_healpix_nest(6, 200.0, -45.0),) * 2
    )


async def test_healpix_center_is_the_published_base_pixel_centre(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """Base pixel 0 is centred at (45, asin(2/3)), 4 at (0, 0), 8 at (45, -asin(2/3))
    (Gorski et al. 2005, fig. 4); a centre's index is its pixel's."""
    row = await _row(
        conn,
        catalog,
        "SELECT ivo_healpix_center(0, 0), ivo_healpix_center(0, 4),"
        " ivo_healpix_center(0, 8),"
        " ivo_healpix_index(8, ivo_healpix_center(8, 123456))",
    )
    north = math.degrees(math.asin(2 / 3))
    assert row[0] == pytest.approx([45.0, north], abs=1e-9)
    assert [row[1][0] % 360, row[1][1]] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert row[2] == pytest.approx([45.0, -north], abs=1e-9)
    assert row[3] == 123456


async def test_string_udfs_and_interval_overlaps(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    row = await _row(
        conn,
        catalog,
        "SELECT ivo_hashlist_has(bands, 'uv'), ivo_hashlist_has(bands, 'UV#'),"
        " ivo_hashlist_has(bands, 'Optic'), ivo_interval_overlaps(1, 3, 2, 5),"
        " ivo_interval_overlaps(1, 2, 2, 3), ivo_interval_overlaps(1, 2, 2.5, 3),"
        " ivo_interval_overlaps(4, 5, 1, 2)"
        " FROM tst.obj WHERE id = 1",
    )
    assert row == (1, 0, 0, 1, 1, 0, 0)
    (joined,) = await _row(
        conn, catalog, "SELECT ivo_string_agg(name, '|') FROM tst.obj"
    )
    assert sorted(joined.split("|")) == ["alpha", "beta"]  # the NULL left out


async def test_in_unit_converts_with_tap_schema_units(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    import astropy.units as u

    row = await _row(
        conn,
        catalog,
        "SELECT IN_UNIT(ra, 'rad'), IN_UNIT(pmra, 'arcsec/yr'),"
        " IN_UNIT(SQRT(POWER(pmra, 2) + POWER(pmra, 2)), 'deg/yr'),"
        " IN_UNIT(2 * dec, 'arcmin') FROM tst.obj WHERE id = 1",
    )
    assert row[0] == pytest.approx(math.radians(10.0), rel=1e-12)
    assert row[1] == pytest.approx((3600.0 * u.mas / u.yr).to_value("arcsec/yr"))
    assert row[2] == pytest.approx(math.sqrt(2) * 3600.0 / 3.6e6, rel=1e-12)
    assert row[3] == pytest.approx(40.0 * 60, rel=1e-12)
    for adql, message in (
        ("SELECT IN_UNIT(ra, 'm') FROM tst.obj", "incompatible units"),
        ("SELECT IN_UNIT(name, 'm') FROM tst.obj", "name has no known unit"),
        ("SELECT IN_UNIT(ra, 'furlongs') FROM tst.obj", "unknown unit 'furlongs'"),
        ("SELECT IN_UNIT(ra + pmra, 'deg') FROM tst.obj", "has no known unit"),
    ):
        with pytest.raises(AdqlError, match=message):
            translate(adql, catalog)


async def test_adql21_literals_box_rand_and_geometry_casts(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    row = await _row(
        conn,
        catalog,
        "SELECT 0x1F, 0xff + 1, RAND(7), RAND(7), RAND(8),"
        " CONTAINS(POINT(10.9, 20.4), BOX('ICRS', 10, 20, 2, 1)),"
        " CONTAINS(POINT(11.5, 20), BOX(POINT(10, 20), 2, 1)),"
        " BOX(10, 20, 2, 1),"
        " CAST('12.3 45.6' AS POINT), CAST(' 12.3  45.6 1.5 ' AS CIRCLE),"
        " CAST('1 0.5 2 0.5 2 1.5' AS POLYGON),"
        " CONTAINS(POINT(1.5, 1), CAST('1 0.5 2 0.5 2 1.5 1 1.5' AS POLYGON))"
        " FROM tst.obj WHERE id = 1",
    )
    assert row[:2] == (31, 256)
    assert row[2] == row[3] != row[4]
    assert 0 <= row[2] < 1 and 0 <= row[4] < 1
    assert row[5:7] == (1, 0)
    # corners SW, SE, NE, NW of the cross of arms 1 and 0.5 deg at (10, 20)
    ras, decs = np.array(row[7][0::2]), np.array(row[7][1::2])
    assert list(np.sign(ras - 10)) == [-1, 1, 1, -1]
    assert list(np.sign(decs - 20)) == [-1, -1, 1, 1]
    cos_sep = np.sin(np.radians(decs)) * math.sin(math.radians(20)) + np.cos(
        np.radians(decs)
    ) * math.cos(math.radians(20)) * np.cos(np.radians(ras - 10))
    half_diagonal = math.atan(
        math.hypot(math.tan(math.radians(1)), math.tan(math.radians(0.5)))
    )
    assert np.arccos(cos_sep) == pytest.approx([half_diagonal] * 4)
    assert row[8] == pytest.approx([12.3, 45.6])
    assert row[9] == pytest.approx([12.3, 45.6, 1.5])
    assert row[10] == pytest.approx([1, 0.5, 2, 0.5, 2, 1.5])
    assert row[11] == 1


async def test_epoch_propagation_agrees_with_astropy(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """Barnard's star (Gaia DR3-like values) and a slow distant star moved by a
    century both ways, against astropy's apply_space_motion (ERFA's pmsafe:
    uniform space motion too, but with a light-time correction, which moves
    Barnard's star by 1.2 mas in a century, 1e-6 of its motion)."""
    import astropy.units as u
    from astropy.coordinates import Distance, SkyCoord
    from astropy.time import Time

    stars = [
        (269.448502, 4.739420, 548.31, -801.551, 10362.394, -110.46),
        (10.0, -60.0, 2.0, 5.0, -3.0, 20.0),
    ]
    for star in stars:
        for out_epoch in (2116.0, 1916.0):
            args = ", ".join(repr(v) for v in (*star, 2016.0, out_epoch))
            got, position = await _row(
                conn,
                catalog,
                f"SELECT ivo_epoch_prop({args}), ivo_epoch_prop_pos({args})",
            )
            ra, dec, plx, pmra, pmdec, rv = star
            moved = SkyCoord(
                ra=ra * u.deg,
                dec=dec * u.deg,
                distance=Distance(parallax=plx * u.mas),
                pm_ra_cosdec=pmra * u.mas / u.yr,
                pm_dec=pmdec * u.mas / u.yr,
                radial_velocity=rv * u.km / u.s,
                obstime=Time(2016.0, format="jyear"),
            ).apply_space_motion(new_obstime=Time(out_epoch, format="jyear"))
            there = SkyCoord(got[0] * u.deg, got[1] * u.deg)
            travel = 100 * math.hypot(star[3], star[4])
            off = there.separation(moved).to_value(u.mas)
            assert off < 2e-6 * travel + 1e-3, (star, out_epoch, off)
            expected = (
                moved.distance.parallax.to_value(u.mas),
                moved.pm_ra_cosdec.to_value(u.mas / u.yr),
                moved.pm_dec.to_value(u.mas / u.yr),
                moved.radial_velocity.to_value(u.km / u.s),
            )
            assert got[2:] == pytest.approx(expected, rel=1e-5, abs=1e-6), star
            assert position == pytest.approx(got[:2], abs=1e-9)


async def test_box_is_the_cross_of_adql_and_stc_far_from_the_equator(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """ADQL 2.0 section 2.4.4 (and 2.1): BOX is "a cross centred on the center
    position and with arms extending, parallel to the coordinate axes at the
    center position, for half the respective sizes on either side", its sides
    great circles meeting the arms' ends at right angles. At dec 60 a box 2 deg
    wide reaches 1 deg of arc east and west of its centre (about 2 deg of RA),
    not 1 deg of RA (0.5 deg of arc). The arms' ends, from astropy, are just
    inside the box at 0.99 of their length and just outside at 1.01."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    center = SkyCoord(180 * u.deg, 60 * u.deg)
    box = "BOX('ICRS', 180, 60, 2, 3)"
    probes = []
    for angle, half in ((0, 1.5), (90, 1.0), (180, 1.5), (270, 1.0)):
        for scale in (0.99, 1.01):
            end = center.directional_offset_by(angle * u.deg, half * scale * u.deg)
            probes.append(
                f"CONTAINS(POINT({float(end.ra.deg)!r}, {float(end.dec.deg)!r}), {box})"
            )
    row = await _row(
        conn, catalog, f"SELECT {', '.join(probes)}, {box} FROM tst.obj WHERE id = 1"
    )
    assert row[:-1] == (1, 0) * 4
    corners = SkyCoord(row[-1][0::2] * u.deg, row[-1][1::2] * u.deg)
    half_diagonal = math.degrees(
        math.atan(math.hypot(math.tan(math.radians(1.0)), math.tan(math.radians(1.5))))
    )
    assert corners.separation(center).deg == pytest.approx([half_diagonal] * 4)


async def test_units_that_astropy_cannot_make_leave_the_value_unitless(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """The unit carried for IN_UNIT must not break the query itself: deg**400
    has a scale (pi/180)**400 that underflows to 0 (astropy's UnitScaleError),
    so POWER(ra, 400) of a column with a unit was a 500, IN_UNIT or not; and
    arithmetic on a column whose TAP_SCHEMA unit is no VOUnit ('[cm/s2]') was
    refused ("unknown unit"). Now such a value has no known unit: the query
    runs, IN_UNIT of it is refused."""
    row = await _row(
        conn,
        catalog,
        "SELECT POWER(dec / 20, 400), POWER(dec / 20, 1e308), ra * POWER(dec / 20, 400)"
        ", logg * 2, logg / ra, POWER(logg, 2), SQRT(logg * logg)"
        " FROM tst.obj WHERE id = 1",
    )
    assert row == (1.0, 1.0, 10.0, 9.0, 0.45, 20.25, 4.5)
    for adql in (
        "SELECT IN_UNIT(POWER(ra, 400), 'rad') FROM tst.obj",
        "SELECT IN_UNIT(POWER(ra, 1e308), 'rad') FROM tst.obj",
    ):
        with pytest.raises(AdqlError, match="no known unit"):
            translate(adql, catalog)


def test_cast_of_a_geometry_to_a_scalar_type_is_refused(catalog: TapCatalog) -> None:
    """ADQL 2.1's CAST makes geometries from strings, never strings (or numbers)
    from geometries. Before: CAST(POINT(ra, dec) AS VARCHAR(20)) gave pg_sphere's
    own text in radians, "(0.17453292519943 , 0.349065850398866)", cut to 20."""
    for target in ("VARCHAR(20)", "CHAR(40)", "INTEGER", "DOUBLE PRECISION"):
        for shape in ("POINT(ra, dec)", "CIRCLE(ra, dec, 1)", "BOX(ra, dec, 1, 1)"):
            with pytest.raises(AdqlError, match="CAST"):
                translate(f"SELECT CAST({shape} AS {target}) FROM tst.obj", catalog)


async def test_region_shapes_select_the_rows_inside(
    conn: asyncpg.Connection, catalog: TapCatalog
) -> None:
    """REGION's STC-S shapes on the real pg_sphere: which of the rows at (10, 20),
    (200, -45), (300, 60) each contains, and DISTANCE to a REGION Position."""

    async def ids(region: str) -> list[int]:
        adql = (
            f"SELECT id FROM tst.obj WHERE 1 = CONTAINS(POINT(ra, dec), {region})"
            " ORDER BY id"
        )
        return [r["id"] for r in await conn.fetch(translate(adql, catalog).sql)]

    assert await ids("REGION('Circle ICRS 10 20.5 1')") == [1]
    assert await ids("REGION('circle 10 22 1')") == []  # 2 deg off: outside
    assert await ids("REGION('CIRCLE ICRS GEOCENTER 200 -44 1.5')") == [2]
    assert await ids("REGION('Polygon ICRS 9 19 11 19 11 21 9 21')") == [1]
    assert await ids("REGION('polygon 11 19 12 19 12 21')") == []
    assert await ids("REGION('Box ICRS 300 60 1 1')") == [3]
    # the box's half-width is 0.5 deg of arc: at dec 60 that is ~1 deg of ra
    assert await ids("REGION('Box ICRS 300.9 60 1 1')") == [3]
    assert await ids("REGION('Box ICRS 301.1 60 1 1')") == []
    (distance,) = await _row(
        conn,
        catalog,
        "SELECT DISTANCE(REGION('Position ICRS 10 21'), POINT(ra, dec))"
        " FROM tst.obj WHERE id = 1",
    )
    assert distance == pytest.approx(1.0)
    (far,) = await _row(
        conn, catalog, "SELECT DISTANCE(REGION('position 0 0'), POINT(90, 0))"
    )
    assert far == pytest.approx(90.0)
