"""The corners of an ADQL BOX, as SQL of their coordinates (degrees).

ADQL 2.0 defines BOX as a cross of arms width/2 and height/2 (arcs) along the
axes at its centre, its sides great circles meeting the arms' ends at right
angles. In the gnomonic projection at the centre those sides are straight
lines, so the corners are those of the rectangle +-tan(width/2),
+-tan(height/2), projected back.
"""

from __future__ import annotations

__all__ = ["box_corners"]

#: Below this a BOX's factors tan(width / 2), tan(height / 2) and sin(dec) are
#: 0: PostgreSQL raises "value out of range: underflow" for a product of
#: numbers not 0 that is 0 (below 5e-324), as BOX(10, 10, 1e-300, 1e-300)'s
#: corners were; from 1e-150 on the products stay above 1e-300, and what lies
#: below is 0 at any precision pg_sphere has (1e-9 rad). Written into the SQL
#: whatever the value: the translation of a literal must not depend on it
#: (taprunner.query.shapes fills numbers into a template).
_TINY = "1e-150"


def box_corners(ra: str, dec: str, width: str, height: str) -> list[str]:
    """SQL of the four corners' coordinates, ra and dec in turn (eight), of
    the BOX of centre ``ra``, ``dec`` and sides ``width``, ``height`` (SQL of
    degrees, the sizes checked)."""
    half_width = _not_tiny(f"tand(({width}) / 2.0)")
    half_height = _not_tiny(f"tand(({height}) / 2.0)")
    sin_dec = _not_tiny(f"sind({dec})")
    corners: list[str] = []
    for sx, sy in (("-", "-"), ("", "-"), ("", ""), ("-", "")):
        xi, eta = f"({sx}{half_width})", f"({sy}{half_height})"
        den = f"(cosd({dec}) - {eta} * {sin_dec})"
        corners.append(f"({ra} + atan2d({xi}, {den}))")
        corners.append(
            f"atan2d({sin_dec} + {eta} * cosd({dec}),"
            f" sqrt({xi} * {xi} + {den} * {den}))"
        )
    return corners


def _not_tiny(sql: str) -> str:
    """SQL of ``sql``'s value, or 0 where its magnitude is below :data:`_TINY`."""
    return f"(CASE WHEN abs({sql}) < {_TINY} THEN 0 ELSE {sql} END)"
