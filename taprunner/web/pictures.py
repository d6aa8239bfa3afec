"""The pictures block of a completed TAP job's page: a sky plot and histograms
of the preview's rows (:mod:`taprunner.web.plots` draws them as SVG).

The page embeds them as they are: no script, no style sheet, no request. One
histogram per numeric column, each in a ``<details>`` (the first one open), so
that a reader chooses the column with a click, script or not. Template:
``taprunner/web/templates/tappictures.html``; ``section#pictures`` holds
``figure#sky-plot`` (``svg.sky-plot``, one ``circle`` per row drawn) and
``details.histogram[data-column]`` (``svg.histogram``, one ``rect.bar`` per bin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from markupsafe import Markup

from aiouws.http.pages import render_fragment
from taprunner.web.plots import PlotColumn, pictures
from taprunner.web.plotscale import finite
from taprunner.web.preview import PreviewColumn

__all__ = ["Histogram", "pictures_block", "plot_columns"]


@dataclass(frozen=True)
class Histogram:
    """One column's histogram, and whether it is shown open."""

    column: str
    svg: Markup
    open: bool


def plot_columns(
    columns: Sequence[PreviewColumn], rows: Sequence[Sequence[str]]
) -> list[PlotColumn]:
    """The preview's columns for the plots. A column of no declared type (CSV,
    TSV) is numeric when every one of its non-empty cells is a number."""
    found = []
    for index, column in enumerate(columns):
        datatype = column.datatype
        if not datatype:
            cells = [row[index] for row in rows if row[index].strip()]
            numeric = bool(cells) and len(finite(cells)) == len(cells)
            datatype = "double" if numeric else "char"
        found.append(
            PlotColumn(
                name=column.name,
                datatype=datatype,
                ucd=column.ucd or None,
                xtype=column.xtype or None,
            )
        )
    return found


def pictures_block(
    request: web.Request,
    columns: Sequence[PreviewColumn],
    rows: Sequence[Sequence[str]],
) -> Markup | None:
    """The pictures of a preview's ``rows`` as an HTML fragment, or None when
    there is nothing to draw (no rows, no positions, no numbers)."""
    drawn = pictures(plot_columns(columns, rows), rows)
    if not drawn:
        return None
    histograms = [
        Histogram(column=name, svg=Markup(svg), open=name == drawn.first)  # noqa: S704
        for name, svg in drawn.histograms
    ]
    sky = Markup(drawn.sky) if drawn.sky is not None else None  # noqa: S704
    # (plots.py escapes everything it writes into the SVG.)
    return render_fragment(
        request, "tappictures.html", sky=sky, histograms=histograms, rows=len(rows)
    )
