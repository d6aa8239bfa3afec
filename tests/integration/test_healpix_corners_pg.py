"""ivo_healpix_index where pixels meet: at exact pixel corners (and on the
boundaries of the base pixels) the index is one of the pixels touching the
point, as HEALPix's formula gives a hair away on each side. pg_sphere's
healpix_nest answered a pixel 180 degrees away there (order 0: (45, 0) gave 7)."""

from __future__ import annotations

import math

import asyncpg
import pytest
from test_adql21_pg import _healpix_nest
from testkit import DbSetup

from taprunner.adql.model import StaticCatalog
from taprunner.adql.translate import translate

CATALOG = StaticCatalog({})
#: How far from the corner the neighbours are looked at (degrees).
HAIR = 1e-7


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup()


def _corners(order: int) -> list[tuple[float, float]]:
    """Pixel corners: equatorial ones (where both HEALPix line families cross),
    the base pixels' corners and points on the cap boundaries and meridians."""
    nside = 1 << order
    points = []
    for a in range(-2 * nside, 6 * nside + 1):
        for b in range(0, 6 * nside + 1):
            tt, z = (a + b) / 2 / nside - 0.5, (b - a) / 2 / (0.75 * nside)
            if abs(z) <= 2 / 3 and 0 <= tt < 4:
                points.append((tt * 90, math.degrees(math.asin(z))))
    for i in range(8 * nside):
        for dec in (math.degrees(math.asin(2 / 3)), 0.0, 45.0, -60.0):
            points.append((i * 45 / nside, dec))
    return points


def _touching(order: int, ra: float, dec: float) -> set[int]:
    """The pixels a hair away from (ra, dec) in eight directions and at it."""
    found = {_healpix_nest(order, ra, dec)}
    for dra in (-HAIR, 0.0, HAIR):
        for ddec in (-HAIR, 0.0, HAIR):
            lat = max(-90.0, min(90.0, dec + ddec))
            found.add(_healpix_nest(order, (ra + dra) % 360, lat))
    return found


@pytest.mark.parametrize("order", [0, 1, 2, 4])
async def test_healpix_index_at_pixel_corners(
    conn: asyncpg.Connection, order: int
) -> None:
    points = _corners(order)
    sql = translate(
        f"SELECT ivo_healpix_index({order}, x, y) FROM t",
        StaticCatalog({"t": ["x", "y"]}),
    ).sql.replace(
        "FROM t",
        "FROM unnest($1::float8[], $2::float8[]) AS t(x, y)",
    )
    rows = await conn.fetch(sql, [p[0] for p in points], [p[1] for p in points])
    wrong = [
        (point, row[0])
        for point, row in zip(points, rows, strict=True)
        if row[0] not in _touching(order, *point)
    ]
    assert not wrong, wrong[:5]
    # where the formula is unambiguous (z and ra exact), exactly its pixel
    exact = await conn.fetchval(
        translate("SELECT ivo_healpix_index(0, 45, 0)", CATALOG).sql
    )
    assert exact == _healpix_nest(0, 45.0, 0.0) == 5
    beyond = translate("SELECT ivo_healpix_index(30, 1, 2)", CATALOG).sql
    with pytest.raises(asyncpg.PostgresError, match="order is 0 to 29, not 30"):
        await conn.fetchval(beyond)


def _polar_nest(order: int, ra: float, dec: float) -> int:
    """The NESTED index of a polar-cap point as HEALPix's loc2pix computes it
    with sin(theta) given (healpix_base does near the poles): 1 - |z| there
    cancels to nothing in double precision at high orders."""
    nside = 1 << order
    za, sth = abs(math.sin(math.radians(dec))), math.cos(math.radians(dec))
    assert za > 2 / 3
    tt = (ra % 360) / 90
    ntt = min(3, int(tt))
    tp = tt - ntt
    tmp = nside * sth / math.sqrt((1 + za) / 3)
    jp, jm = min(nside - 1, int(tp * tmp)), min(nside - 1, int((1 - tp) * tmp))
    if dec >= 0:
        face, ix, iy = ntt, nside - jm - 1, nside - jp - 1
    else:
        face, ix, iy = ntt + 8, jp, jm
    interleaved = 0
    for bit in range(order):
        interleaved |= ((ix >> bit) & 1) << (2 * bit)
        interleaved |= ((iy >> bit) & 1) << (2 * bit + 1)
    return face * nside * nside + interleaved


async def test_healpix_index_near_the_poles_at_order_29(
    conn: asyncpg.Connection,
) -> None:
    """Order 29's pixels are 0.4 mas across: a point 1 mas from a pole has its
    pixel, not one found from 1 - sin(dec) (which keeps a few digits there)."""
    points = [
        (ra, sign * (90 - offset))
        for offset in (3e-7, 1e-6, 3e-6, 1e-5)
        for ra in (12.5, 128.4, 205.2, 344.6)
        for sign in (1, -1)
    ]
    sql = translate(
        "SELECT ivo_healpix_index(29, x, y) FROM t",
        StaticCatalog({"t": ["x", "y"]}),
    ).sql.replace("FROM t", "FROM unnest($1::float8[], $2::float8[]) AS t(x, y)")
    rows = await conn.fetch(sql, [p[0] for p in points], [p[1] for p in points])
    wrong = [
        (point, row[0], _polar_nest(29, *point))
        for point, row in zip(points, rows, strict=True)
        if row[0] != _polar_nest(29, *point)
    ]
    assert not wrong, wrong[:5]
