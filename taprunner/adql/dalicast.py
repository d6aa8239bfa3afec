"""The DALI strings a CAST to POINT, CIRCLE or POLYGON takes, checked before
the database sees them: a literal that is no DALI shape is a syntax error, one
out of range (a latitude beyond 90 degrees, which pg_sphere silently makes
another point, or a circle's radius beyond 0 to 90) a usage error."""

from __future__ import annotations

import math
from collections.abc import Sequence

from taprunner.adql.model import AdqlError, AdqlSyntaxError

__all__ = ["GEOMETRY_COUNTS", "check_dali", "range_problem"]

#: Numbers in a DALI shape's string (None: a polygon's, 6 or more, even).
GEOMETRY_COUNTS: dict[str, int | None] = {"POINT": 2, "CIRCLE": 3, "POLYGON": None}


def check_dali(shape: str, text: str) -> None:
    """Refuse a string literal that is not a DALI ``shape`` (numbers in degrees
    separated by blanks)."""
    words = text.split()
    wanted = GEOMETRY_COUNTS[shape]
    if wanted is None:
        counted = len(words) >= 6 and len(words) % 2 == 0
    else:
        counted = len(words) == wanted
    numbers = True
    for word in words:
        try:
            numbers = numbers and math.isfinite(float(word))
        except ValueError:
            numbers = False
    if not (counted and numbers):
        need = f"{wanted} numbers" if wanted else "an even count (6 or more) of numbers"
        raise AdqlSyntaxError(
            f"'{text[:40]}' is not a DALI {shape.lower()}: CAST to {shape} takes"
            f" a string of {need} (degrees) separated by blanks"
        )
    _check_ranges(shape, [float(word) for word in words])


def _check_ranges(shape: str, values: list[float]) -> None:
    """Refuse a DALI ``shape`` out of range (:func:`range_problem`), as the
    CIRCLE constructor does."""
    problem = range_problem(shape, values)
    if problem is not None:
        raise AdqlError(f"CAST to {shape}: the {problem}")


def range_problem(shape: str, values: Sequence[float]) -> str | None:
    """What is out of range in the finite numbers ``values`` of a DALI
    ``shape`` (point, circle or polygon, any case), if anything: a latitude
    out of -90 to 90 degrees (pg_sphere would silently make it another point)
    or a circle's radius out of 0 to 90 (pg_sphere's error)."""
    shape = shape.lower()
    for latitude in values[1::2] if shape == "polygon" else values[1:2]:
        if not -90 <= latitude <= 90:
            return f"latitude must be -90 to 90 degrees, not {latitude:g}"
    if shape == "circle" and not 0 <= values[2] <= 90:
        return f"radius must be 0 to 90 degrees, not {values[2]:g}"
    return None
