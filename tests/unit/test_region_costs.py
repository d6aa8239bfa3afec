"""What a REGION of many parts costs to translate: its HEALPix coverage (the
comparison no rewriting makes exact) is a balanced tree of smoc_union calls,
built in time linear in the parts, nested about log2(parts) deep (a chain was
quadratic to build: 20,000 circles took half a minute, the 1 MiB a query may
have minutes; and PostgreSQL's stack would not follow its nesting)."""

from __future__ import annotations

import time

from taprunner.adql.model import StaticCatalog
from taprunner.adql.translate import translate

CATALOG = StaticCatalog({"t": ["ra", "dec"]})


def _depth(sql: str) -> int:
    deepest = depth = 0
    for char in sql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def test_a_union_of_many_circles_is_a_shallow_coverage_built_quickly() -> None:
    parts = " ".join(f"Circle {i % 360} {i % 80} 1" for i in range(20_000))
    started = time.monotonic()
    sql = translate(
        "SELECT ra FROM t WHERE 1 = CONTAINS(CIRCLE(ra, dec, 1),"
        f" REGION('Union ({parts})'))",
        CATALOG,
    ).sql
    assert time.monotonic() - started < 10
    assert sql.count("smoc_union(") == 19_999
    assert sql.count("smoc(14, scircle(") == 20_001
    assert _depth(sql) < 40
    small = translate(
        "SELECT ra FROM t WHERE 1 = CONTAINS(REGION('Intersection (Circle 1 2 3"
        " Circle 2 2 3 Circle 3 2 3)'), CIRCLE(ra, dec, 1))",
        CATALOG,
    ).sql
    assert small.count("smoc_intersection(") == 2
    assert (
        "(smoc_intersection(smoc_intersection(smoc(14, scircle(spoint(radians(1.0)"
        in small
    )


def test_shapes_in_other_frames_are_transformed_together() -> None:
    """One astropy transformation per frame, not per shape (milliseconds each:
    the 60,000 circles 1 MiB holds took minutes); each shape as astropy moves
    it alone, whatever the frames around it."""
    from astropy import units
    from astropy.coordinates import SkyCoord

    from taprunner.adql.stcs import Compound, Shape, box_corners, parse_region

    parts = " ".join(f"Circle FK4 {i % 360} {i % 80} 1" for i in range(5_000))
    started = time.monotonic()
    region = parse_region(
        f"Union ({parts} Box GALACTIC 10 20 2 1 Position ICRS 5 6"
        " Polygon GALACTIC 1 1 2 1 2 2)"
    )
    assert time.monotonic() - started < 10
    assert isinstance(region, Compound) and len(region.parts) == 5_003

    def icrs(frame: str, numbers: tuple[float, ...], **options: str) -> list[float]:
        coords = SkyCoord(
            numbers[0::2] * units.deg, numbers[1::2] * units.deg, frame=frame,
            **options,
        ).icrs  # fmt: skip
        return [
            v for pair in zip(coords.ra.deg, coords.dec.deg, strict=True) for v in pair
        ]

    circle = region.parts[4_321]
    assert isinstance(circle, Shape) and circle.kind == "CIRCLE"
    assert list(circle.numbers[:2]) == icrs("fk4", (4_321 % 360, 4_321 % 80),
                                            equinox="B1950")  # fmt: skip
    assert circle.numbers[2] == 1
    box, point, polygon = region.parts[5_000:]
    assert isinstance(box, Shape) and box.kind == "POLYGON"
    assert list(box.numbers) == icrs("galactic", box_corners(10, 20, 2, 1))
    assert point == Shape("POSITION", (5.0, 6.0))
    assert isinstance(polygon, Shape)
    assert list(polygon.numbers) == icrs("galactic", (1, 1, 2, 1, 2, 2))
