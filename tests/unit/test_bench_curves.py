"""The charts of ``scripts/bench --curves`` (benchmarks/plot.py): a fake curve is
drawn and read back (the figure's axes, lines and error bars, and the SVG file),
kept in and redrawn from the results JSON; and the ``--curves`` option."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

pytest.importorskip("matplotlib", reason="the bench extra (scripts/bench installs it)")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import plot  # noqa: E402
from report import Curve, Point  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def cone_curve() -> Curve:
    """What the bigtable helper's producer returns: latency against table size."""
    return Curve(
        name="cone_latency_by_table",
        title="Cone search latency against table size",
        xlabel="table rows",
        ylabel="ms",
        series={
            "median": [
                Point.of(1e6, [1.0, 1.5, 2.0]),
                Point.of(1e8, [2.0, 3.0, 7.0]),
                Point.of(1e7, [1.5, 2.0, 4.0]),  # out of order: drawn sorted
            ],
            "p99 & <other>": [
                Point(1e6, 4.0, 3.0, 5.0),
                Point(1e7, math.nan, math.nan, math.nan),  # not measured: left out
                Point(1e8, 9.0, 8.0, 12.0),
            ],
        },
        xlog=True,
        ylog=True,
        note="20 clients; bars: smallest..largest",
    )


def test_point_of_is_median_and_extremes() -> None:
    assert Point.of(3, [5.0, 1.0, 2.0, 9.0]) == Point(3, 3.5, 1.0, 9.0)


def test_the_chart_has_log_axes_medians_error_bars_and_legend() -> None:
    figure = plot.chart(cone_curve(), footer="measured somewhere")
    (axes,) = figure.axes
    assert (axes.get_xscale(), axes.get_yscale()) == ("log", "log")
    assert axes.get_title() == "Cone search latency against table size"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("table rows", "ms")
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == ["median", "p99 & <other>"]
    bars = {c.get_label(): c for c in axes.containers}
    median = bars["median"].lines[0]
    assert list(median.get_xdata()) == [1e6, 1e7, 1e8]
    assert list(median.get_ydata()) == [1.5, 2.0, 3.0]
    p99 = bars["p99 & <other>"].lines[0]
    assert list(p99.get_xdata()) == [1e6, 1e8]  # NaN left out
    # The error bars reach from the smallest to the largest sample.
    (segments,) = [c.get_segments() for c in bars["median"].lines[2]]
    assert [(s[0][1], s[1][1]) for s in segments] == [
        (1.0, 2.0),
        (1.5, 4.0),
        (2.0, 7.0),
    ]
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert ticks == ["1M", "10M", "100M"]
    texts = [t.get_text() for t in figure.texts]
    assert texts == ["20 clients; bars: smallest..largest\nmeasured somewhere"]


def test_linear_axes_start_at_zero() -> None:
    curve = Curve(
        "tput", "t", "clients", "jobs/s", {"lean": [Point(1, 50, 40, 60)]}, xlog=False
    )
    (axes,) = plot.chart(curve).axes
    assert (axes.get_xscale(), axes.get_yscale()) == ("linear", "linear")
    assert axes.get_ylim()[0] == 0


def test_draw_writes_an_svg_of_text_that_redraws_identically(tmp_path: Path) -> None:
    path = plot.draw(cone_curve(), tmp_path, footer="f")
    assert path == tmp_path / "cone_latency_by_table.svg"
    root = etree.parse(str(path)).getroot()
    assert root.tag == f"{SVG}svg"
    text = "".join(root.itertext())
    for expected in ("Cone search latency", "table rows", "p99 & <other>", "100M"):
        assert expected in text
    first = path.read_bytes()
    assert plot.draw(cone_curve(), tmp_path, footer="f").read_bytes() == first
    png = plot.draw(cone_curve(), tmp_path, fmt="png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_survive_the_json_and_redraw_from_it(tmp_path: Path) -> None:
    curve = cone_curve()
    doc = {"curves": [{**plot.curve_to_dict(curve), "footer": "then"}]}
    results = tmp_path / "20261207T000000Z.json"
    results.write_text(json.dumps(doc))
    back = plot.curve_from_dict(json.loads(results.read_text())["curves"][0])
    assert back.series["median"] == curve.series["median"]
    assert back.title == curve.title and back.ylog and back.note == curve.note
    assert plot.main([str(results), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "cone_latency_by_table.svg").is_file()


def test_compact_tick_labels() -> None:
    labels = [plot.compact(v) for v in (1, 64, 10_000, 2_500_000, 1e8)]
    assert labels == ["1", "64", "10k", "2.5M", "100M"]


def test_the_curves_option_selects_curves_and_groups() -> None:
    run = pytest.importorskip("run")
    alone = run._arguments(["--curves"])
    assert alone.curves == list(run.CURVES) and alone.groups == []
    some = run._arguments(["--curves", "rows", "--only", "sync"])
    assert some.curves == ["rows"] and some.groups == ["floors", "sync"]
    assert run._arguments([]).curves == []
    assert run._arguments([]).groups == list(run.GROUPS)
    with pytest.raises(SystemExit):
        run._arguments(["--curves", "nonsense"])
