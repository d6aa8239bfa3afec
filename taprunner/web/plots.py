"""Pictures of a TAP result for its job page, as SVG text: a sky plot of the
rows when the result has positions (columns with the ``pos.eq.ra`` and
``pos.eq.dec`` UCDs, or a DALI ``point``), and a histogram of each numeric
column.

Pure Python, no plotting library and nothing fetched: the page embeds the SVG
as it is (it needs no script and no style sheet, so the page's
Content-Security-Policy stays strict). Drawn from the first rows only
(:data:`MAX_POINTS`); everything written into the SVG is escaped. The page
calls :func:`pictures` with the result's columns and its first rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from taprunner.web.plotscale import (
    SkyFrame,
    finite,
    histogram_bins,
    nice_ticks,
    sky_frame,
)

__all__ = [
    "MAX_POINTS",
    "PlotColumn",
    "Pictures",
    "SkyColumns",
    "default_histogram_column",
    "histogram_svg",
    "numeric_columns",
    "pictures",
    "sky_columns",
    "sky_layout",
    "sky_plot_svg",
    "sky_points",
]

#: Rows drawn at most (about 35 bytes of SVG each).
MAX_POINTS = 2000
#: The pictures' size (CSS pixels; they scale down to the page's width).
WIDTH, HEIGHT = 480, 360
#: The plot area inside the picture: left, top, right, bottom margins.
LEFT, TOP, RIGHT, BOTTOM = 58, 14, 14, 46
NUMERIC_TYPES = frozenset(
    {"short", "int", "long", "float", "double", "unsignedbyte", "smallint"}
)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class PlotColumn:
    """What the pictures need to know of a result column (VOTable terms)."""

    name: str
    datatype: str = "char"
    ucd: str | None = None
    xtype: str | None = None
    arraysize: str | None = None


@dataclass(frozen=True)
class SkyColumns:
    """Where a result's positions are: ``ra`` and ``dec`` column indexes, or
    the index of a ``point`` column."""

    ra: int | None = None
    dec: int | None = None
    point: int | None = None


@dataclass(frozen=True)
class Pictures:
    """The SVG pictures of one result: the sky plot (None: no positions), and
    a histogram per numeric column of two values or more (column name, SVG),
    ``first`` the column to show first (None: no histogram)."""

    sky: str | None
    histograms: tuple[tuple[str, str], ...]
    first: str | None

    def __bool__(self) -> bool:
        return self.sky is not None or bool(self.histograms)


def _ucd_words(column: PlotColumn) -> list[str]:
    return [w.strip().lower() for w in (column.ucd or "").split(";") if w.strip()]


def _with_ucd(columns: Sequence[PlotColumn], word: str) -> int | None:
    """The column whose UCD has ``word``, the ``meta.main`` one first."""
    found = [i for i, c in enumerate(columns) if word in _ucd_words(c)]
    main = [i for i in found if "meta.main" in _ucd_words(columns[i])]
    chosen = main or found
    return chosen[0] if chosen else None


def sky_columns(columns: Sequence[PlotColumn]) -> SkyColumns | None:
    """The columns holding positions, or None when the result has none."""
    ra, dec = _with_ucd(columns, "pos.eq.ra"), _with_ucd(columns, "pos.eq.dec")
    if ra is not None and dec is not None:
        return SkyColumns(ra=ra, dec=dec)
    for index, column in enumerate(columns):
        if (column.xtype or "").lower() in ("point", "adql:point"):
            return SkyColumns(point=index)
    return None


def numeric_columns(columns: Sequence[PlotColumn]) -> list[int]:
    """The columns holding one number per row."""
    return [
        i
        for i, c in enumerate(columns)
        if c.datatype.lower() in NUMERIC_TYPES
        and (c.arraysize or "1") == "1"
        and not c.xtype
    ]


def default_histogram_column(columns: Sequence[PlotColumn]) -> int | None:
    """The numeric column to show first: one that is neither an identifier nor
    a position (a magnitude, say), else the first numeric one."""
    numeric = numeric_columns(columns)
    for index in numeric:
        words = _ucd_words(columns[index])
        if not any(w.startswith(("meta.id", "pos.")) for w in words):
            return index
    return numeric[0] if numeric else None


def _point(value: object) -> tuple[float, float] | None:
    """(ra, dec) of a point value: two numbers, or text ending in two."""
    if isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        numbers = finite(_NUMBER.findall(text))
    else:
        try:
            numbers = finite(list(value))  # type: ignore[call-overload]
        except TypeError:
            return None
    return (numbers[-2], numbers[-1]) if len(numbers) >= 2 else None


def sky_points(
    rows: Sequence[Sequence[object]], where: SkyColumns
) -> list[tuple[float, float]]:
    """(ra, dec) of the first :data:`MAX_POINTS` rows with a valid position."""
    points: list[tuple[float, float]] = []
    for row in rows:
        if len(points) >= MAX_POINTS:
            break
        if where.point is not None:
            point = _point(row[where.point])
        else:
            assert where.ra is not None and where.dec is not None
            pair = finite((row[where.ra], row[where.dec]))
            point = (pair[0], pair[1]) if len(pair) == 2 else None
        if point is not None and -90.0 <= point[1] <= 90.0:
            points.append(point)
    return points


def _area() -> tuple[float, float]:
    return float(WIDTH - LEFT - RIGHT), float(HEIGHT - TOP - BOTTOM)


def sky_layout(points: Sequence[tuple[float, float]]) -> SkyFrame:
    """The frame the sky plot shows: the points' frame widened so that a degree
    of RA (times cos dec) and one of Dec are the same length on the picture."""
    frame = sky_frame(points)
    if frame.whole_sky:
        return frame
    width, height = _area()
    dec_mid = (frame.dec_min + frame.dec_max) / 2
    squeeze = max(math.cos(math.radians(dec_mid)), 0.05)
    ra_span = frame.ra_max - frame.ra_min
    dec_span = frame.dec_max - frame.dec_min
    scale = min(width / (ra_span * squeeze), height / dec_span)
    ra_half = width / scale / squeeze / 2
    dec_half = min(90.0, height / scale / 2)
    ra_mid = (frame.ra_min + frame.ra_max) / 2
    dec_mid = min(90.0 - dec_half, max(-90.0 + dec_half, dec_mid))
    if 2 * ra_half >= 360.0:
        return SkyFrame(0.0, 360.0, dec_mid - dec_half, dec_mid + dec_half)
    return SkyFrame(
        ra_mid - ra_half, ra_mid + ra_half, dec_mid - dec_half, dec_mid + dec_half
    )


def _number(value: float) -> str:
    """A tick label: no trailing zeros, no ``-0``."""
    text = f"{value:.6g}"
    return "0" if text in ("-0", "0") else text


def _svg_open(kind: str, label: str, extra: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{kind}" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' aria-label="{escape(label)}"{extra}>',
        f"<title>{escape(label)}</title>",
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{_area()[0]:g}"'
        f' height="{_area()[1]:g}" fill="none" stroke="currentColor"'
        ' stroke-opacity="0.5"/>',
    ]


def _axes(
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_title: str,
    y_title: str,
) -> list[str]:
    """Tick marks, their labels and the axis titles (positions in pixels)."""
    bottom = HEIGHT - BOTTOM
    parts = ['<g fill="currentColor" font-family="sans-serif" font-size="11">']
    for x, text in x_ticks:
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"'
            ' stroke="currentColor"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    for y, text in y_ticks:
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}"'
            ' stroke="currentColor"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(text)}</text>"
        )
    middle_x = LEFT + _area()[0] / 2
    middle_y = TOP + _area()[1] / 2
    parts.append(
        f'<text x="{middle_x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(x_title)}</text>"
        f'<text transform="translate(14 {middle_y:.1f}) rotate(-90)"'
        f' text-anchor="middle">{escape(y_title)}</text></g>'
    )
    return parts


def sky_plot_svg(
    points: Sequence[tuple[float, float]],
    *,
    ra_title: str = "RA (deg)",
    dec_title: str = "Dec (deg)",
) -> str:
    """The sky plot of ``points`` ((ra, dec) in degrees, at most
    :data:`MAX_POINTS` drawn): RA grows to the left, as on the sky."""
    points = list(points[:MAX_POINTS])
    frame = sky_layout(points)
    width, height = _area()

    def x_of(ra: float) -> float:
        return LEFT + (frame.ra_max - ra) / (frame.ra_max - frame.ra_min) * width

    def y_of(dec: float) -> float:
        return TOP + (frame.dec_max - dec) / (frame.dec_max - frame.dec_min) * height

    label = f"Sky plot of {len(points)} positions"
    extra = (
        f' data-points="{len(points)}" data-ra-min="{frame.ra_min:.6g}"'
        f' data-ra-max="{frame.ra_max:.6g}" data-dec-min="{frame.dec_min:.6g}"'
        f' data-dec-max="{frame.dec_max:.6g}"'
    )
    parts = _svg_open("sky-plot", label, extra)
    if frame.whole_sky:
        ra_ticks = [60.0 * i for i in range(7)]
        dec_ticks = [30.0 * i - 90.0 for i in range(7)]
    else:
        ra_ticks = nice_ticks(frame.ra_min, frame.ra_max, 6)
        dec_ticks = nice_ticks(frame.dec_min, frame.dec_max)
    # Whole sky: 360 on the left, 0 on the right; else RA taken mod 360.
    x_ticks = [
        (x_of(t), _number(t if frame.whole_sky else t % 360.0)) for t in ra_ticks
    ]
    y_ticks = [(y_of(t), _number(t)) for t in dec_ticks]
    parts += _axes(x_ticks, y_ticks, ra_title, dec_title)
    parts.append('<g class="points" fill="#1f6fb4" fill-opacity="0.7">')
    parts += [
        f'<circle cx="{x_of(frame.unwrap(ra)):.1f}" cy="{y_of(dec):.1f}" r="1.8"/>'
        for ra, dec in points
    ]
    parts.append("</g></svg>")
    return "".join(parts)


def histogram_svg(
    values: Sequence[object], *, title: str, bins: int | None = None
) -> str:
    """A histogram of the finite numbers among ``values`` (the first
    :data:`MAX_POINTS`), one bar per bin, titled ``title``."""
    numbers = finite(values[:MAX_POINTS])
    counted = histogram_bins(numbers, bins)
    width, height = _area()
    low, high = counted.edges[0], counted.edges[-1]
    # Headroom above the highest bar.
    top = max(max(counted.counts), 1) * 1.05

    # In halves: high - low may exceed the largest double (and be 0 where
    # the bin's half width of 0.5 is lost on a huge value).
    span = high / 2 - low / 2

    def x_of(value: float) -> float:
        return LEFT + ((value / 2 - low / 2) / span if span > 0 else 0.5) * width

    def y_of(count: float) -> float:
        return TOP + height - count / top * height

    label = f"Histogram of {title} ({len(numbers)} values)"
    extra = f' data-bars="{len(counted.counts)}" data-values="{len(numbers)}"'
    parts = _svg_open("histogram", label, extra)
    x_ticks = [(x_of(t), _number(t)) for t in nice_ticks(low, high)]
    y_ticks = [(y_of(t), _number(t)) for t in nice_ticks(0, top) if t == int(t)]
    parts += _axes(x_ticks, y_ticks, title, "rows")
    parts.append('<g fill="#1f6fb4" fill-opacity="0.8">')
    for index, count in enumerate(counted.counts):
        left, right = counted.edges[index], counted.edges[index + 1]
        x, y = x_of(left), y_of(count)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}"'
            f' width="{max(x_of(right) - x - 0.5, 0.5):.1f}"'
            f' height="{TOP + height - y:.1f}"><title>'
            f"{escape(_number(left))} to {escape(_number(right))}: {count}"
            "</title></rect>"
        )
    parts.append("</g></svg>")
    return "".join(parts)


def pictures(
    columns: Sequence[PlotColumn], rows: Sequence[Sequence[object]]
) -> Pictures:
    """The sky plot and the histograms of a result's first ``rows``."""
    sky = None
    where = sky_columns(columns)
    points = sky_points(rows, where) if where is not None else []
    if where is not None and points:
        titles = ("RA (deg)", "Dec (deg)")
        if where.ra is not None and where.dec is not None:
            titles = (
                f"{columns[where.ra].name} (deg)",
                f"{columns[where.dec].name} (deg)",
            )
        sky = sky_plot_svg(points, ra_title=titles[0], dec_title=titles[1])
    histograms = tuple(
        (columns[i].name, histogram_svg(values, title=columns[i].name))
        for i in numeric_columns(columns)
        # One value makes no histogram.
        if len(finite(values := [row[i] for row in rows])) >= 2
    )
    first = default_histogram_column(columns)
    names = [name for name, _ in histograms]
    chosen = columns[first].name if first is not None else None
    return Pictures(
        sky=sky,
        histograms=histograms,
        first=chosen if chosen in names else (names[0] if names else None),
    )
