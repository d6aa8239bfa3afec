"""The result pictures (taprunner/web/plots.py, plotscale.py): which columns
hold positions and numbers, the frames and bins, and the SVG drawn from them
(parsed back as XML: points, bars, axis ranges, escaping)."""

from __future__ import annotations

import math
import random

import pytest
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from taprunner.web import plots
from taprunner.web.plots import PlotColumn, SkyColumns
from taprunner.web.plotscale import (
    finite,
    histogram_bins,
    nice_ticks,
    sky_frame,
)

SVG = "{http://www.w3.org/2000/svg}"
DEMO_COLUMNS = (
    PlotColumn("id", "long", "meta.id;meta.main"),
    PlotColumn("ra", "double", "pos.eq.ra;meta.main"),
    PlotColumn("dec", "double", "pos.eq.dec;meta.main"),
    PlotColumn("mag", "double", "phot.mag"),
    PlotColumn("name", "char", "meta.id", arraysize="*"),
)


def parse(svg: str) -> etree._Element:
    return etree.fromstring(svg.encode())


def circles(svg: str) -> list[tuple[float, float]]:
    return [
        (float(c.get("cx")), float(c.get("cy")))
        for c in parse(svg).iter(f"{SVG}circle")
    ]


def bars(svg: str) -> list[etree._Element]:
    return [r for r in parse(svg).iter(f"{SVG}rect") if r.get("class") == "bar"]


# -- columns -----------------------------------------------------------------


def test_positions_are_found_by_ucd_the_main_ones_first() -> None:
    columns = (
        PlotColumn("ra2", "double", "pos.eq.ra"),
        PlotColumn("dec2", "double", "pos.eq.dec"),
        *DEMO_COLUMNS,
    )
    assert plots.sky_columns(columns) == SkyColumns(ra=3, dec=4)
    assert plots.sky_columns(columns[:2]) == SkyColumns(ra=0, dec=1)


def test_a_point_column_holds_positions_too() -> None:
    columns = (
        PlotColumn("id", "long"),
        PlotColumn("pos", "double", "pos.eq", xtype="point", arraysize="2"),
    )
    assert plots.sky_columns(columns) == SkyColumns(point=1)
    assert plots.sky_columns(columns[:1]) is None
    # RA alone is not a position.
    assert plots.sky_columns(DEMO_COLUMNS[:2]) is None


def test_numeric_columns_and_the_default_histogram_is_not_an_id_nor_a_position() -> (
    None
):
    assert plots.numeric_columns(DEMO_COLUMNS) == [0, 1, 2, 3]
    assert plots.default_histogram_column(DEMO_COLUMNS) == 3
    only_ids = (PlotColumn("id", "int", "meta.id"), PlotColumn("s", "char"))
    assert plots.default_histogram_column(only_ids) == 0
    assert plots.default_histogram_column(only_ids[1:]) is None
    arrays = (PlotColumn("v", "double", arraysize="3"),)
    assert plots.numeric_columns(arrays) == []


@pytest.mark.parametrize(
    "value",
    [
        (10.5, -20.25),
        [10.5, -20.25],
        "POINT('ICRS', 10.5, -20.25)",
        b"Position ICRS 10.5 -20.25",
        "10.5 -20.25",
    ],
)
def test_point_values_in_their_usual_shapes(value: object) -> None:
    assert plots.sky_points([(value,)], SkyColumns(point=0)) == [(10.5, -20.25)]


def test_rows_without_a_valid_position_are_left_out() -> None:
    rows = [(1, 10.0, 20.0), (2, None, 5.0), (3, 1.0, float("nan")), (4, 5.0, 95.0)]
    assert plots.sky_points(rows, SkyColumns(ra=1, dec=2)) == [(10.0, 20.0)]
    assert plots.sky_points([("x",), (None,)], SkyColumns(point=0)) == []


def test_finite_keeps_numbers_and_numeric_text_only() -> None:
    assert finite([1, 2.5, "3", None, True, float("inf"), "x", float("nan")]) == [
        1.0,
        2.5,
        3.0,
    ]


# -- frames and ticks --------------------------------------------------------


def test_a_cone_gets_a_frame_around_it_with_a_margin() -> None:
    points = [(10.0, 20.0), (11.0, 21.0), (10.5, 20.5)]
    frame = sky_frame(points)
    assert 9.9 < frame.ra_min < 10.0 and 11.0 < frame.ra_max < 11.1
    assert 19.9 < frame.dec_min < 20.0 and 21.0 < frame.dec_max < 21.1
    assert not frame.whole_sky


def test_a_frame_across_ra_zero_is_the_short_way_round() -> None:
    frame = sky_frame([(359.0, 0.0), (1.0, 1.0), (0.0, 0.5)])
    assert frame.ra_max - frame.ra_min < 3
    assert frame.ra_min < 359.0 and frame.ra_max > 361.0
    assert frame.unwrap(1.0) == 361.0 and frame.unwrap(359.0) == 359.0


def test_points_all_over_the_sky_get_the_whole_sky() -> None:
    frame = sky_frame([(0.0, 0.0), (120.0, 10.0), (240.0, -10.0)])
    assert (frame.ra_min, frame.ra_max, frame.dec_min, frame.dec_max) == (
        0.0,
        360.0,
        -90.0,
        90.0,
    )
    assert sky_frame([]).whole_sky


def test_the_sky_layout_keeps_degrees_square_and_holds_every_point() -> None:
    rng = random.Random(3)
    points = [(200 + rng.random() * 4, 60 + rng.random()) for _ in range(100)]
    frame = plots.sky_layout(points)
    inner = sky_frame(points)
    assert frame.ra_min <= inner.ra_min and frame.ra_max >= inner.ra_max
    assert frame.dec_min <= inner.dec_min and frame.dec_max >= inner.dec_max
    dec_mid = (frame.dec_min + frame.dec_max) / 2
    shape = (frame.ra_max - frame.ra_min) * math.cos(math.radians(dec_mid))
    shape /= frame.dec_max - frame.dec_min
    width, height = plots._area()
    assert shape == pytest.approx(width / height, rel=1e-6)


def test_a_cap_near_the_pole_stays_inside_the_sky() -> None:
    frame = plots.sky_layout([(10.0, 89.5), (12.0, 89.9)])
    assert -90.0 <= frame.dec_min < frame.dec_max <= 90.0


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (9.3, 21.7, [10, 15, 20]),
        (-90, 90, [-50, 0, 50]),
        (-3, 3, [-2, 0, 2]),
        (0.1, 0.3, [0.1, 0.15, 0.2, 0.25, 0.3]),
    ],
)
def test_nice_ticks(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == ticks


def test_nice_ticks_of_nothing() -> None:
    assert nice_ticks(3, 3) == [3]
    assert nice_ticks(float("nan"), 1) == []


# -- bins --------------------------------------------------------------------


def test_histogram_bins_count_every_value_once() -> None:
    values = [float(v) for v in range(100)]
    bins = histogram_bins(values)
    assert len(bins.counts) == 8  # Sturges: ceil(log2 100) + 1
    assert len(bins.edges) == 9
    assert bins.edges[0] == 0.0 and bins.edges[-1] == 99.0
    assert bins.total == 100
    assert histogram_bins(values, 4).counts == (25, 25, 25, 25)


def test_histogram_bins_of_one_value_and_of_none() -> None:
    assert histogram_bins([7.0, 7.0]).counts == (2,)
    assert histogram_bins([7.0, 7.0]).edges == (6.5, 7.5)
    assert histogram_bins([]).total == 0


# -- the SVG -----------------------------------------------------------------


def test_the_sky_plot_draws_one_point_per_position_inside_its_frame() -> None:
    rng = random.Random(1)
    points = [(rng.uniform(0, 360), rng.uniform(-90, 90)) for _ in range(500)]
    svg = plots.sky_plot_svg(points)
    root = parse(svg)
    assert root.get("class") == "sky-plot"
    assert root.get("data-points") == "500"
    assert (root.get("data-ra-min"), root.get("data-ra-max")) == ("0", "360")
    drawn = circles(svg)
    assert len(drawn) == 500
    width, height = plots._area()
    for x, y in drawn:
        assert plots.LEFT <= x <= plots.LEFT + width
        assert plots.TOP <= y <= plots.TOP + height
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels[:7] == ["0", "60", "120", "180", "240", "300", "360"]
    assert "RA (deg)" in labels and "Dec (deg)" in labels


def test_ra_grows_to_the_left_and_dec_upwards() -> None:
    (east_x, east_y), (west_x, west_y) = circles(
        plots.sky_plot_svg([(11.0, 21.0), (10.0, 20.0)])
    )
    assert east_x < west_x and east_y < west_y


def test_a_cone_across_ra_zero_is_drawn_in_one_piece() -> None:
    svg = plots.sky_plot_svg([(359.9, 0.0), (0.1, 0.0)])
    (x_west, _), (x_east, _) = circles(svg)
    # 0.1 is east of 359.9 (to the left), a fifth of a degree away: drawn the
    # long way round, it would be on the right.
    assert x_east < x_west
    assert float(parse(svg).get("data-ra-max")) > 360.0


def test_at_most_max_points_are_drawn() -> None:
    points = [(float(i % 360), 0.0) for i in range(plots.MAX_POINTS + 50)]
    assert len(circles(plots.sky_plot_svg(points))) == plots.MAX_POINTS


def test_the_histogram_draws_one_bar_per_bin_as_high_as_its_count() -> None:
    values = [1.0] * 30 + [2.0] * 10 + [None, "x", float("nan")]
    svg = plots.histogram_svg(values, title="mag", bins=2)
    root = parse(svg)
    assert (root.get("data-bars"), root.get("data-values")) == ("2", "40")
    heights = [float(bar.get("height")) for bar in bars(svg)]
    assert len(heights) == 2
    assert heights[0] == pytest.approx(3 * heights[1], abs=0.2)
    _, height = plots._area()
    assert heights[0] == pytest.approx(height / 1.05, abs=0.2)
    assert "mag" in [t.text for t in root.iter(f"{SVG}text")]


def test_everything_written_into_the_svg_is_escaped() -> None:
    hostile = '<script>alert("x")</script>&'
    svg = plots.histogram_svg([1, 2, 3], title=hostile)
    svg += plots.sky_plot_svg([(1.0, 1.0)], ra_title=hostile)
    assert "<script" not in svg
    for part in svg.split("</svg>")[:-1]:
        assert hostile in "".join(parse(part + "</svg>").itertext())


# -- pictures ----------------------------------------------------------------


def test_pictures_of_a_demo_result() -> None:
    rows = [(i, i * 0.1, -i * 0.05, 10 + i % 7, f"S{i}") for i in range(200)]
    made = plots.pictures(DEMO_COLUMNS, rows)
    assert made.sky is not None and len(circles(made.sky)) == 200
    assert [name for name, _ in made.histograms] == ["id", "ra", "dec", "mag"]
    assert made.first == "mag"
    for _, svg in made.histograms:
        assert parse(svg).get("data-values") == "200"
    labels = [t.text for t in parse(made.sky).iter(f"{SVG}text")]
    assert "ra (deg)" in labels and "dec (deg)" in labels


def test_pictures_of_a_result_without_positions_or_rows() -> None:
    made = plots.pictures(DEMO_COLUMNS[3:], [(12.0, "a"), (13.0, "b")])
    assert made.sky is None and made.first == "mag" and made
    # One value makes no histogram; nothing at all is falsy.
    single = plots.pictures(DEMO_COLUMNS[3:], [(12.0, "a")])
    assert not single.histograms and single.first is None and not single
    assert not plots.pictures(DEMO_COLUMNS, [])
    # Positions that are all invalid make no sky plot.
    assert plots.pictures(DEMO_COLUMNS, [(1, None, None, 2, "x")]).sky is None


# -- the job page's columns ---------------------------------------------------


def test_preview_columns_of_csv_are_numeric_when_every_cell_is_a_number() -> None:
    from taprunner.web.pictures import plot_columns
    from taprunner.web.preview import PreviewColumn

    columns = (
        PreviewColumn("id"),
        PreviewColumn("name"),
        PreviewColumn("ra", "double", "deg", "pos.eq.ra"),
        PreviewColumn("empty"),
    )
    rows = [("1", "a", "10.5", ""), ("2", "3", "11", " ")]
    described = plot_columns(columns, rows)
    assert [c.datatype for c in described] == ["double", "char", "double", "char"]
    assert described[2].ucd == "pos.eq.ra" and described[0].ucd is None
    assert plots.numeric_columns(described) == [0, 2]
