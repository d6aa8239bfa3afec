"""The job page's preview of a result file: bounded in rows and in bytes read,
for VOTable (BINARY2, BINARY, TABLEDATA, cut inside the data when long) and
CSV/TSV."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import votable
from astropy.table import Table

from taprunner.web.preview import PREVIEW_BYTES, PREVIEW_ROWS, read_preview

VOT = "application/x-votable+xml"


def _votable(path: Path, rows: int, serialization: str) -> Path:
    table = Table(
        {
            "id": np.arange(rows),
            "ra": np.linspace(0, 359, rows),
            "name": [f"star <{i}>" for i in range(rows)],
        }
    )
    table["ra"].unit = "deg"
    document = votable.from_table(table)
    document.get_first_table().get_field_by_id("ra").ucd = "pos.eq.ra"
    out = io.BytesIO()
    document.to_xml(out, tabledata_format=serialization)
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize("serialization", ["binary2", "binary", "tabledata"])
def test_a_long_votable_is_read_from_its_first_bytes(
    tmp_path: Path, serialization: str
) -> None:
    path = _votable(tmp_path / "r.vot", 60_000, serialization)
    assert path.stat().st_size > 2 * PREVIEW_BYTES
    preview = read_preview(path, VOT)
    assert len(preview.rows) == PREVIEW_ROWS and preview.partial
    assert [c.name for c in preview.columns] == ["id", "ra", "name"]
    assert preview.columns[1].ucd == "pos.eq.ra" and preview.columns[1].unit == "deg"
    assert preview.rows[0] == ("0", "0.0", "star <0>")
    assert preview.rows[-1][0] == str(PREVIEW_ROWS - 1)


def test_a_short_votable_is_shown_whole(tmp_path: Path) -> None:
    preview = read_preview(_votable(tmp_path / "r.vot", 7, "binary2"), VOT)
    assert len(preview.rows) == 7 and not preview.partial


def test_csv_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n" + "".join(f'{i},"x,{i}"\n' for i in range(500)))
    preview = read_preview(path, "text/csv")
    assert [c.name for c in preview.columns] == ["a", "b"]
    assert len(preview.rows) == PREVIEW_ROWS and preview.partial
    assert preview.rows[3] == ("3", "x,3")
    tsv = tmp_path / "r.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    preview = read_preview(tsv, "text/tab-separated-values")
    assert preview.rows == (("1", "2"),) and not preview.partial


def test_an_unknown_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="no preview"):
        read_preview(path, "application/octet-stream")
