"""The arithmetic of the result pictures (``plots.py`` draws them): which part
of the sky a set of positions covers, a histogram's bins, round tick values.

Pure functions of plain numbers, no I/O: unit-tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Bins",
    "SkyFrame",
    "finite",
    "histogram_bins",
    "nice_ticks",
    "sky_frame",
]

#: Beyond this RA extent (degrees) the picture shows the whole sky.
WHOLE_SKY_RA_SPAN = 180.0
#: Margin around the points, as a fraction of their extent.
MARGIN = 0.05
#: The smallest extent shown (degrees): a single star gets a 1' square.
MIN_SPAN = 1.0 / 60.0
#: Bins of a histogram when not asked for: Sturges' rule, at most this many.
MAX_BINS = 40


@dataclass(frozen=True)
class SkyFrame:
    """A part of the sky in degrees. ``ra_min`` may be negative and ``ra_max``
    over 360 when the points straddle RA 0 (shown mod 360); RA grows to the
    left, as on the sky."""

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    @property
    def whole_sky(self) -> bool:
        return self.ra_max - self.ra_min >= 360.0

    def unwrap(self, ra: float) -> float:
        """``ra`` (any turn) moved into this frame's turn of RA."""
        ra = ra % 360.0
        if ra < self.ra_min:
            ra += 360.0
        elif ra > self.ra_max and ra - 360.0 >= self.ra_min:
            ra -= 360.0
        return ra


@dataclass(frozen=True)
class Bins:
    """A histogram: ``len(edges) == len(counts) + 1``; the last bin is closed."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def finite(values: Iterable[object]) -> list[float]:
    """The values that are finite numbers, or text of one (None, NaN, booleans,
    other text left out)."""
    kept: list[float] = []
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            kept.append(number)
    return kept


def _ra_interval(ras: Sequence[float]) -> tuple[float, float]:
    """The shortest RA interval holding all ``ras``: it starts after the widest
    empty gap between neighbours on the circle."""
    ordered = sorted(ra % 360.0 for ra in ras)
    widest, start = 360.0 - ordered[-1] + ordered[0], ordered[0]
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after - before > widest:
            widest, start = after - before, after
    return start, start + (360.0 - widest)


def sky_frame(points: Sequence[tuple[float, float]]) -> SkyFrame:
    """The frame that shows all ``points`` ((ra, dec) in degrees) with a margin:
    the whole sky (0-360, -90-90) when they spread over more than half of RA."""
    if not points:
        return SkyFrame(0.0, 360.0, -90.0, 90.0)
    ra_low, ra_high = _ra_interval([ra for ra, _ in points])
    if ra_high - ra_low > WHOLE_SKY_RA_SPAN:
        return SkyFrame(0.0, 360.0, -90.0, 90.0)
    decs = [dec for _, dec in points]
    dec_low, dec_high = min(decs), max(decs)
    dec_pad = max((dec_high - dec_low) * MARGIN, MIN_SPAN / 2)
    ra_pad = max((ra_high - ra_low) * MARGIN, MIN_SPAN / 2)
    return SkyFrame(
        ra_min=ra_low - ra_pad,
        ra_max=ra_high + ra_pad,
        dec_min=max(-90.0, dec_low - dec_pad),
        dec_max=min(90.0, dec_high + dec_pad),
    )


def histogram_bins(values: Sequence[float], bins: int | None = None) -> Bins:
    """Equal-width bins over the range of ``values`` (finite numbers): ``bins``
    of them, or Sturges' number (at most :data:`MAX_BINS`); one bin of width 1
    around a single value."""
    if not values:
        return Bins(edges=(0.0, 1.0), counts=(0,))
    low, high = min(values), max(values)
    if bins is None:
        bins = min(MAX_BINS, math.ceil(math.log2(len(values))) + 1)
    bins = max(1, bins)
    # In halves: the span of two doubles may exceed the largest double.
    half = (high / 2 - low / 2) / bins
    if half == 0.0:  # one value, or values closer than a bin can be narrow
        return Bins(edges=(low - 0.5, high + 0.5), counts=(len(values),))
    counts = [0] * bins
    for value in values:
        index = min(bins - 1, int((value / 2 - low / 2) / half))
        counts[index] += 1
    edges = tuple(low + i * half + i * half for i in range(bins)) + (high,)
    return Bins(edges=edges, counts=tuple(counts))


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) within
    ``[low, high]``, about ``target`` of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    if not math.isfinite(high - low):  # wider than the largest double
        return []
    raw = (high - low) / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [_round(i * step, step) for i in range(first, last + 1)]


def _round(value: float, step: float) -> float:
    """``value`` without the binary noise of ``i * step`` (0.30000000000000004)."""
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return round(value, digits)
