"""Figures of the benchmark suite: statistics, pass/fail, the printed table and JSON."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Curve",
    "Figure",
    "Point",
    "Target",
    "load_average",
    "median",
    "p95",
    "print_table",
    "summary",
    "write_json",
]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def p95(values: Sequence[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p95, min, max and count of a sample (for the JSON details)."""
    return {
        "n": len(values),
        "median": median(values),
        "p95": p95(values),
        "min": min(values, default=math.nan),
        "max": max(values, default=math.nan),
    }


def load_average() -> float:
    return os.getloadavg()[0]


@dataclass(frozen=True, slots=True)
class Target:
    """``value <= limit`` (``at_least``: ``>=``); ``of_floor``: compare value/floor."""

    limit: float
    at_least: bool = False
    of_floor: bool = False

    def describe(self, unit: str) -> str:
        sign = ">=" if self.at_least else "<="
        return (
            f"{sign} {self.limit:g}x floor"
            if self.of_floor
            else f"{sign} {self.limit:g} {unit}"
        )


@dataclass(slots=True)
class Figure:
    """One line of the table: a measured value, its floor and its target."""

    name: str
    value: float
    unit: str
    p95: float | None = None
    floor: float | None = None
    floor_name: str = ""
    target: Target | None = None
    note: str = ""
    load: tuple[float, float] = (0.0, 0.0)
    #: Mean runnable threads of other processes (not ours) while measured.
    foreign: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor <= 0:
            return None
        return self.value / self.floor

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.target.of_floor else self.value
        if measured is None or math.isnan(measured):
            return False
        if self.target.at_least:
            return measured >= self.target.limit
        return measured <= self.target.limit

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["passed"] = self.passed
        data["target"] = (
            None
            if self.target is None
            else {**asdict(self.target), "text": self.target.describe(self.unit)}
        )
        return data


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a curve: the median of repeated samples and their spread."""

    x: float
    median: float
    low: float  # the smallest sample
    high: float  # the largest sample

    @classmethod
    def of(cls, x: float, samples: Sequence[float]) -> Point:
        return cls(x, median(samples), min(samples), max(samples))


@dataclass(slots=True)
class Curve:
    """One chart of ``scripts/bench --curves``: named series over a common x axis.

    Producers (``CURVES`` in run.py) measure and return curves; the plotter
    draws each into ``benchmarks/results/curves/<name>.svg`` and the JSON keeps
    the points. ``series`` maps a legend label to its points.
    """

    name: str  # file stem, e.g. "result_time_by_rows"
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[Point]] = field(default_factory=dict)
    xlog: bool = True
    ylog: bool = False
    note: str = ""


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def print_table(figures: Sequence[Figure], *, busy_load: float) -> None:
    """The figures as a fixed-width table on stdout."""
    header = ("figure", "median", "p95", "unit", "floor", "ratio", "target", "result")
    rows = []
    for f in figures:
        verdict = {None: "", True: "PASS", False: "FAIL"}[f.passed]
        if f.foreign > busy_load:
            verdict += " (busy)"
        floor = (
            f"{_num(f.floor)} {f.floor_name}".strip() if f.floor is not None else "-"
        )
        rows.append(
            (
                f.name,
                _num(f.value),
                _num(f.p95),
                f.unit,
                floor,
                _num(f.ratio),
                f.target.describe(f.unit) if f.target else "-",
                verdict,
            )
        )
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for i, row in enumerate((header, *rows)):
        print(
            "  ".join(
                str(c).ljust(w) for c, w in zip(row, widths, strict=True)
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if any(f.foreign > busy_load for f in figures):
        print(
            f"\n(busy) = other processes kept more than {busy_load} threads runnable "
            f"on average while measured ({os.cpu_count()} CPUs): taken under load"
        )
    notes = [(f.name, f.note) for f in figures if f.note]
    for name, note in notes:
        print(f"  {name}: {note}")


def write_json(
    directory: Path, figures: Sequence[Figure], meta: dict[str, Any]
) -> Path:
    """Write ``<directory>/<UTC timestamp>.json`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}.json"
    doc = {
        "time": stamp,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **meta,
        "figures": [f.as_dict() for f in figures],
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path
