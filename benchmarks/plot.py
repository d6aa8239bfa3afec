"""The charts of ``scripts/bench --curves``: each :class:`report.Curve` drawn with
matplotlib into ``<name>.svg`` (or ``.png``).

Every series is a line through the medians with error bars (and a light band)
from the smallest to the largest sample, on the axes the curve asks for (log
or linear). matplotlib is the ``bench`` extra; only its object API is used
(``matplotlib.figure.Figure``, no pyplot), on the Agg backend: no display.

Run by itself it redraws the charts from a results JSON without measuring again::

    python benchmarks/plot.py benchmarks/results/<time>.json [--out docs/curves]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure as Chart
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Curve, Point  # noqa: E402

__all__ = [
    "chart",
    "compact",
    "curve_from_dict",
    "curve_to_dict",
    "draw",
    "draw_all",
    "print_curves",
]

matplotlib.use("Agg")
#: Text stays text in the SVG (small files, searchable); no random ids or dates,
#: so redrawing the same points gives the same file.
SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "aiouws-curves"}
MAX_TICKS = 12  # up to this many distinct x values, each gets a labelled tick
LEGEND_INSIDE = 4  # more series than this: the legend goes beside the plot


def compact(value: float) -> str:
    """10000 -> 10k, 1000000 -> 1M, 64 -> 64, 0.5 -> 0.5 (tick labels)."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _finite(points: Iterable[Point]) -> list[Point]:
    return sorted(
        (p for p in points if not any(map(math.isnan, (p.x, p.median)))),
        key=lambda p: p.x,
    )


def chart(curve: Curve, *, footer: str = "") -> Chart:
    """The matplotlib figure of ``curve`` (not yet saved)."""
    figure = Chart(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    xs_seen: set[float] = set()
    for label, raw in curve.series.items():
        points = _finite(raw)
        if not points:
            continue
        xs = [p.x for p in points]
        mid = [p.median for p in points]
        low = [p.low for p in points]
        high = [p.high for p in points]
        xs_seen.update(xs)
        bars = axes.errorbar(
            xs,
            mid,
            yerr=[
                [max(0.0, m - lo) for m, lo in zip(mid, low, strict=True)],
                [max(0.0, hi - m) for m, hi in zip(mid, high, strict=True)],
            ],
            label=label,
            marker="o",
            markersize=4,
            capsize=3,
            linewidth=1.5,
        )
        if len(points) > 1:
            colour = bars.lines[0].get_color()
            axes.fill_between(xs, low, high, color=colour, alpha=0.12, linewidth=0)
    if curve.xlog:
        axes.set_xscale("log")
    if curve.ylog:
        axes.set_yscale("log")
    if 0 < len(xs_seen) <= MAX_TICKS:
        axes.xaxis.set_major_locator(FixedLocator(sorted(xs_seen)))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    if not curve.ylog:
        axes.set_ylim(bottom=0)
    axes.set_title(curve.title)
    axes.set_xlabel(curve.xlabel)
    axes.set_ylabel(curve.ylabel)
    axes.grid(True, which="major", alpha=0.35)
    axes.grid(True, which="minor", alpha=0.12)
    labels = axes.get_legend_handles_labels()[1]
    if len(labels) > LEGEND_INSIDE:  # beside the plot: it would hide points
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    elif labels:
        axes.legend(fontsize="small")
    text = "\n".join(t for t in (curve.note, footer) if t)
    if text:
        figure.text(0.01, 0.0, text, fontsize="x-small", va="bottom", wrap=True)
        bottom = 0.04 * (text.count("\n") + 1)
        figure.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return figure


def draw(curve: Curve, directory: Path, *, fmt: str = "svg", footer: str = "") -> Path:
    """Write ``<directory>/<curve.name>.<fmt>`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{curve.name}.{fmt}"
    with matplotlib.rc_context(SVG_STYLE):
        figure = chart(curve, footer=footer)
        metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
        figure.savefig(path, format=fmt, metadata=metadata, dpi=110)
    return path


def draw_all(
    curves: Sequence[Curve],
    directory: Path,
    *,
    fmt: str = "svg",
    footers: dict[str, str] | None = None,
) -> list[Path]:
    return [
        draw(c, directory, fmt=fmt, footer=(footers or {}).get(c.name, ""))
        for c in curves
    ]


def curve_to_dict(curve: Curve) -> dict[str, Any]:
    """The curve for the results JSON (points as {x, median, low, high})."""
    return asdict(curve)


def curve_from_dict(data: dict[str, Any]) -> Curve:
    known = {"name", "title", "xlabel", "ylabel", "xlog", "ylog", "note"}
    return Curve(
        **{k: v for k, v in data.items() if k in known},
        series={
            label: [Point(**p) for p in points]
            for label, points in data.get("series", {}).items()
        },
    )


def _value(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3g}"


def print_curves(curves: Sequence[Curve]) -> None:
    """The points on stdout: ``x: median (low-high)`` per series."""
    for curve in curves:
        print(f"\n{curve.title} [{curve.ylabel} against {curve.xlabel}]")
        width = max((len(label) for label in curve.series), default=0)
        for label, points in curve.series.items():
            cells = [
                f"{compact(p.x)}: {_value(p.median)} ({_value(p.low)}-{_value(p.high)})"
                for p in sorted(points, key=lambda p: p.x)
            ]
            print(f"  {label.ljust(width)}  " + "  ".join(cells))
        if curve.note:
            print(f"  ({curve.note})")


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(
        prog="benchmarks/plot.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results", type=Path, help="a benchmarks/results/*.json")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "curves",
        help="directory of the charts (default benchmarks/results/curves)",
    )
    parser.add_argument("--format", choices=("svg", "png"), default="svg")
    args = parser.parse_args(argv)
    doc = json.loads(args.results.read_text())
    curves = [curve_from_dict(c) for c in doc.get("curves", [])]
    if not curves:
        parser.error(f"{args.results} holds no curves (run scripts/bench --curves)")
    footers = {c["name"]: c.get("footer", "") for c in doc["curves"]}
    for path in draw_all(curves, args.out, fmt=args.format, footers=footers):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
