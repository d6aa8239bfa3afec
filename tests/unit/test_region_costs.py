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
