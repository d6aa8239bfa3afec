"""The STC-S subset ADQL's REGION accepts: one ICRS shape, read into numbers.

``Position lon lat``, ``Circle lon lat radius``, ``Box lon lat width height``
and ``Polygon lon1 lat1 lon2 lat2 ...`` (three vertices or more), in degrees,
keywords in any case. The frame (ICRS or UNKNOWNFrame, or none), a reference
position (GEOCENTER, BARYCENTER, UNKNOWNRefPos) and the flavour SPHERICAL2 may
follow the shape's name, ``unit deg`` its numbers. Other frames are refused
(nothing is transformed), as are the region operations (Union, Intersection,
Not) and the shapes pg_sphere has no type for.
"""

from __future__ import annotations

import math

from taprunner.adql.model import AdqlError

SUPPORTED = "REGION supports Position, Circle, Box and Polygon in ICRS"

#: Shape -> how many numbers it takes (None: an even number, six or more).
_SHAPES: dict[str, int | None] = {"POSITION": 2, "CIRCLE": 3, "BOX": 4, "POLYGON": None}
_FRAMES = frozenset({"ICRS", "UNKNOWNFRAME"})
_OTHER_FRAMES = frozenset(
    {"FK4", "FK5", "J2000", "B1950", "ECLIPTIC", "GALACTIC", "GALACTIC_II",
     "SUPER_GALACTIC", "GEO_C", "GEO_D", "MAG", "GSE", "GSM", "SM", "HGC",
     "HGS", "HEEQ", "HRTN", "HPC", "HPR", "HCC", "HGI", "MERCURY_C", "VENUS_C",
     "LUNA_C", "MARS_C", "JUPITER_C_III", "SATURN_C_III", "URANUS_C_III",
     "NEPTUNE_C_III", "PLUTO_C"}
)  # fmt: skip
_REFPOS = frozenset({"GEOCENTER", "BARYCENTER", "UNKNOWNREFPOS"})


def parse_stcs(text: str) -> tuple[str, tuple[float, ...]]:
    """The shape (``POSITION``, ``CIRCLE``, ``BOX`` or ``POLYGON``) and its
    numbers (degrees) that the STC-S ``text`` describes.

    Raises
    ------
    AdqlError
        If ``text`` is not one of those shapes in ICRS, or is malformed.
    """
    tokens = text.split()
    if not tokens or tokens[0].upper() not in _SHAPES:
        raise AdqlError(f"{SUPPORTED}, not {text.strip()[:40]!r}")
    shape = tokens[0].upper()
    rest = tokens[1:]
    if rest and rest[0].upper() in _OTHER_FRAMES:
        raise AdqlError(
            f"REGION: frame {rest[0]} is not supported (coordinates are not "
            f"transformed); {SUPPORTED}"
        )
    for allowed in (_FRAMES, _REFPOS, {"SPHERICAL2"}):
        if rest and rest[0].upper() in allowed:
            rest = rest[1:]
    if len(rest) >= 2 and rest[-2].upper() == "UNIT":
        if rest[-1].lower() not in ("deg", "degrees"):
            raise AdqlError(f"REGION: unit {rest[-1]} is not supported; use deg")
        rest = rest[:-2]
    numbers = tuple(_number(token) for token in rest)
    wanted = _SHAPES[shape]
    if wanted is None:
        if len(numbers) < 6 or len(numbers) % 2:
            raise AdqlError(
                "REGION: Polygon needs three vertices or more (pairs of numbers)"
            )
    elif len(numbers) != wanted:
        raise AdqlError(
            f"REGION: {shape.capitalize()} takes {wanted} numbers, not {len(numbers)}"
        )
    _check_ranges(shape, numbers)
    return shape, numbers


def _check_ranges(shape: str, numbers: tuple[float, ...]) -> None:
    """Latitudes within [-90, 90]; sizes (radius, width, height) not negative."""
    sizes = numbers[2:] if shape in ("CIRCLE", "BOX") else ()
    if any(size < 0 for size in sizes):
        raise AdqlError(f"REGION: {shape.capitalize()} sizes cannot be negative")
    latitudes = numbers[1:2] if sizes else numbers[1::2]
    if any(abs(lat) > 90 for lat in latitudes):
        raise AdqlError("REGION: a latitude is outside [-90, 90]")


def _number(token: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise AdqlError(
            f"REGION: {token[:40]!r} is not a number; {SUPPORTED}"
        ) from None
    if not math.isfinite(value):
        raise AdqlError(f"REGION: {token[:40]!r} is not a finite number")
    return value
