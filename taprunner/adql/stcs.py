"""The STC-S that ADQL's REGION accepts, read into shapes in ICRS degrees.

Shapes: ``Position lon lat``, ``Circle lon lat radius``, ``Box lon lat width
height`` and ``Polygon lon1 lat1 lon2 lat2 ...`` (three vertices or more), in
degrees, keywords in any case. A frame, a reference position (GEOCENTER,
BARYCENTER, UNKNOWNRefPos) and the flavour SPHERICAL2 may follow the shape's
name, ``unit deg`` its numbers. Frames: ICRS (or UNKNOWNFrame, or none) as it
is; FK4 (B1950), FK5 (J2000), B1950, J2000, GALACTIC and SUPER_GALACTIC
transformed to ICRS with astropy (a Box becomes the Polygon of its corners,
whose sides are great circles in any frame). Operations: ``Union (r1 r2 ...)``,
``Intersection (r1 r2 ...)`` and ``Not (r)``, nested at will, a frame after
Union or Intersection being that of the regions inside without one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from taprunner.adql.model import AdqlError

__all__ = ["SUPPORTED", "Compound", "Region", "Shape", "parse_region", "parse_stcs"]

SUPPORTED = (
    "REGION supports Position, Circle, Box and Polygon (ICRS, FK4, FK5, GALACTIC,"
    " SUPER_GALACTIC) and their Union, Intersection and Not"
)

#: Shape -> how many numbers it takes (None: an even number, six or more).
_SHAPES: dict[str, int | None] = {"POSITION": 2, "CIRCLE": 3, "BOX": 4, "POLYGON": None}
_OPERATIONS = frozenset({"UNION", "INTERSECTION", "NOT"})
_ICRS = frozenset({"ICRS", "UNKNOWNFRAME"})
#: STC-S frame -> astropy frame name and equinox.
_TRANSFORMED = {
    "FK4": ("fk4", "B1950"),
    "B1950": ("fk4", "B1950"),
    "FK5": ("fk5", "J2000"),
    "J2000": ("fk5", "J2000"),
    "GALACTIC": ("galactic", None),
    "GALACTIC_II": ("galactic", None),
    "SUPER_GALACTIC": ("supergalactic", None),
}
_OTHER_FRAMES = frozenset(
    {"ECLIPTIC", "GEO_C", "GEO_D", "MAG", "GSE", "GSM", "SM", "HGC", "HGS", "HEEQ",
     "HRTN", "HPC", "HPR", "HCC", "HGI", "MERCURY_C", "VENUS_C", "LUNA_C", "MARS_C",
     "JUPITER_C_III", "SATURN_C_III", "URANUS_C_III", "NEPTUNE_C_III", "PLUTO_C"}
)  # fmt: skip
_REFPOS = frozenset({"GEOCENTER", "BARYCENTER", "UNKNOWNREFPOS"})
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


@dataclass(frozen=True, slots=True)
class Shape:
    """One shape in ICRS degrees: POSITION, CIRCLE, BOX or POLYGON and its numbers."""

    kind: str
    numbers: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Compound:
    """UNION, INTERSECTION (two regions or more) or NOT (one) of regions."""

    kind: str
    parts: tuple[Shape | Compound, ...]


Region = Shape | Compound


def parse_stcs(text: str) -> tuple[str, tuple[float, ...]]:
    """The one shape ``text`` describes (kind, ICRS degrees).

    Raises
    ------
    AdqlError
        If ``text`` is malformed, or a Union, Intersection or Not.
    """
    region = parse_region(text)
    if isinstance(region, Compound):
        raise AdqlError(
            f"REGION: a {region.kind.capitalize()} is only supported inside"
            " CONTAINS and INTERSECTS (there is no value of it to give)"
        )
    return region.kind, region.numbers


def parse_region(text: str) -> Region:
    """The region ``text`` describes, shapes in ICRS degrees.

    Raises
    ------
    AdqlError
        If ``text`` is not STC-S this module reads.
    """
    reader = _Reader(_TOKEN.findall(text), text)
    region = reader.region(None)
    if reader.position != len(reader.tokens):
        raise AdqlError(f"REGION: unexpected {reader.tokens[reader.position]!r}")
    if not reader.pending:
        return region
    return _replaced(region, _moved(reader.pending))


class _Reader:
    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0
        #: Shapes in another frame than ICRS, to transform all at once.
        self.pending: list[tuple[str, Shape]] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise AdqlError(f"REGION: {self.text.strip()[:40]!r} ends too early")
        self.position += 1
        return token

    def region(self, frame: str | None) -> Region:
        word = self.take().upper()
        if word in _OPERATIONS:
            return self.compound(word, frame)
        if word not in _SHAPES:
            raise AdqlError(f"{SUPPORTED}, not {self.text.strip()[:40]!r}")
        frame = self.frame(frame)
        numbers: list[float] = []
        while (token := self.peek()) is not None and _is_number(token):
            numbers.append(_number(self.take()))
        if (token := self.peek()) is not None and token.upper() == "UNIT":
            self.take()
            unit = self.take()
            if unit.lower() not in ("deg", "degrees"):
                raise AdqlError(f"REGION: unit {unit} is not supported; use deg")
        shape = _shape(word, tuple(numbers), frame)
        if frame is not None and frame not in _ICRS:
            self.pending.append((frame, shape))
        return shape

    def compound(self, kind: str, frame: str | None) -> Compound:
        if kind != "NOT":
            frame = self.frame(frame)
        if self.take() != "(":
            raise AdqlError(f"REGION: {kind.capitalize()} needs '(' before its regions")
        parts: list[Region] = []
        while self.peek() not in (")", None):
            parts.append(self.region(frame))
        self.take()
        wanted = 1 if kind == "NOT" else 2
        if len(parts) < wanted or (kind == "NOT" and len(parts) > 1):
            count = "one region" if kind == "NOT" else "two regions or more"
            raise AdqlError(f"REGION: {kind.capitalize()} takes {count}")
        return Compound(kind, tuple(parts))

    def frame(self, inherited: str | None) -> str | None:
        """The frame, reference position and flavour after a shape's name."""
        frame = inherited
        token = (self.peek() or "").upper()
        if token in _OTHER_FRAMES:
            raise AdqlError(
                f"REGION: frame {self.peek()} is not supported (it cannot be"
                f" transformed to ICRS here); {SUPPORTED}"
            )
        if token in _ICRS or token in _TRANSFORMED:
            frame = token
            self.take()
        for allowed in (_REFPOS, {"SPHERICAL2"}):
            if (self.peek() or "").upper() in allowed:
                self.take()
        return frame


def _shape(kind: str, numbers: tuple[float, ...], frame: str | None) -> Shape:
    wanted = _SHAPES[kind]
    if wanted is None:
        if len(numbers) < 6 or len(numbers) % 2:
            raise AdqlError(
                "REGION: Polygon needs three vertices or more (pairs of numbers)"
            )
    elif len(numbers) != wanted:
        raise AdqlError(
            f"REGION: {kind.capitalize()} takes {wanted} numbers, not {len(numbers)}"
        )
    _check_ranges(kind, numbers)
    if frame is None or frame in _ICRS:
        return Shape(kind, numbers)
    if kind == "BOX":  # in its own frame: transformed later (_moved)
        kind, numbers = "POLYGON", box_corners(*numbers)
    return Shape(kind, numbers)


def _moved(pending: list[tuple[str, Shape]]) -> dict[int, Shape]:
    """The shapes of ``pending`` (frame, shape in it) in ICRS, by their id: one
    transformation per frame (astropy takes milliseconds per call, whatever
    the number of points)."""
    moved: dict[int, Shape] = {}
    for frame in {frame for frame, _ in pending}:
        shapes = [shape for name, shape in pending if name == frame]
        points = [_points(shape) for shape in shapes]
        flat = _to_icrs(frame, tuple(n for p in points for n in p))
        start = 0
        for shape, own in zip(shapes, points, strict=True):
            icrs = flat[start : start + len(own)]
            start += len(own)
            moved[id(shape)] = Shape(shape.kind, icrs + shape.numbers[len(own) :])
    return moved


def _points(shape: Shape) -> tuple[float, ...]:
    """The (lon, lat) pairs among a shape's numbers (a circle's radius is not)."""
    return shape.numbers[:2] if shape.kind == "CIRCLE" else shape.numbers


def _replaced(region: Region, moved: dict[int, Shape]) -> Region:
    """``region`` with its shapes replaced by those ``moved`` has for them."""
    if isinstance(region, Shape):
        return moved.get(id(region), region)
    return Compound(region.kind, tuple(_replaced(p, moved) for p in region.parts))


def box_corners(
    lon: float, lat: float, width: float, height: float
) -> tuple[float, ...]:
    """The corners of ADQL's BOX (degrees): the rectangle of +-tan(width/2),
    +-tan(height/2) in the gnomonic projection at the centre."""
    corners: list[float] = []
    sin_lat, cos_lat = math.sin(math.radians(lat)), math.cos(math.radians(lat))
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        xi = sx * math.tan(math.radians(width) / 2)
        eta = sy * math.tan(math.radians(height) / 2)
        den = cos_lat - eta * sin_lat
        corners.append(lon + math.degrees(math.atan2(xi, den)))
        corners.append(
            math.degrees(math.atan2(sin_lat + eta * cos_lat, math.hypot(xi, den)))
        )
    return tuple(corners)


def _to_icrs(frame: str, numbers: tuple[float, ...]) -> tuple[float, ...]:
    """The (lon, lat) pairs of ``numbers`` in ``frame``, in ICRS (degrees)."""
    # Imported here: slow, and only such regions need it.
    from astropy import units  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    from astropy.coordinates import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
        SkyCoord,
    )

    name, equinox = _TRANSFORMED[frame]
    options = {"equinox": equinox} if equinox else {}
    coords = SkyCoord(
        numbers[0::2] * units.deg, numbers[1::2] * units.deg, frame=name, **options
    ).icrs
    moved: list[float] = []
    for ra, dec in zip(coords.ra.deg.tolist(), coords.dec.deg.tolist(), strict=True):
        moved += [float(ra), float(dec)]
    return tuple(moved)


def _check_ranges(kind: str, numbers: tuple[float, ...]) -> None:
    """Latitudes within [-90, 90]; sizes not negative, a Circle's radius at
    most 90 (pg_sphere's circles), a Box's width and height below 180 (there
    the sides meeting its cross's arm ends coincide: no quadrilateral)."""
    sizes = numbers[2:] if kind in ("CIRCLE", "BOX") else ()
    if any(size < 0 for size in sizes):
        raise AdqlError(f"REGION: {kind.capitalize()} sizes cannot be negative")
    if kind == "CIRCLE" and sizes[0] > 90:
        raise AdqlError("REGION: a Circle's radius must be 0 to 90 degrees")
    if kind == "BOX" and max(sizes) >= 180:
        raise AdqlError("REGION: a Box's width and height must be below 180 degrees")
    latitudes = numbers[1:2] if sizes else numbers[1::2]
    if any(abs(lat) > 90 for lat in latitudes):
        raise AdqlError("REGION: a latitude is outside [-90, 90]")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _number(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise AdqlError(f"REGION: {token[:40]!r} is not a finite number")
    return value
