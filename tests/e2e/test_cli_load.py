"""``aiouws tap load`` as an operator runs it: files written by astropy loaded by
the command, then queried through the live service with pyvo (values, units,
UCDs, descriptions); a bad file fails cleanly and changes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pyvo
from liveserver import start_server
from test_cli_startup import assert_failed_cleanly, command, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from loadkit import DESCRIPTIONS, STARS, UCDS, UNITS, truncate, write  # noqa: E402


def _load(dsn: str, tmp_path: Path, *args: str) -> str:
    result = run(command(dsn, tmp_path, "tap", "load", *args))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".ecsv", ".parquet"])
def test_loaded_files_are_served(fresh_dsn: str, tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"stars{suffix}")
    curated = tmp_path / "m.toml"
    curated.write_text(
        'schema_description = "Loaded"\n[columns.name]\nucd = "meta.id"\n'
    )
    out = _load(
        fresh_dsn, tmp_path, str(path), "cat.stars", "--primary-key", "id",
        "--position", "ra,dec", "--metadata", str(curated),
    )  # fmt: skip
    assert "loaded 3 rows from 1 file(s) into cat.stars" in out
    assert out.endswith("published cat.stars\n")

    bad = truncate(write(tmp_path / f"bad{suffix}", STARS * 300))
    failed = run(
        command(fresh_dsn, tmp_path, "tap", "load", str(bad), "cat.stars", "--replace")
    )
    assert_failed_cleanly(failed, 1, str(bad))

    server = start_server(fresh_dsn, tmp_path / "server", demo_rows=0)
    try:
        tap = pyvo.dal.TAPService(server.tap_url)
        columns = {c.name: c for c in tap.tables["cat.stars"].columns}
        assert list(columns) == ["id", "ra", "dec", "mag", "name"]
        for name, column in columns.items():
            assert column.unit == UNITS.get(name)
            assert column.ucd == UCDS.get(name, "meta.id")
            assert column.description == DESCRIPTIONS[name]
        result = tap.search(
            "SELECT id, ra, dec, mag, name FROM cat.stars WHERE"
            " 1 = CONTAINS(POINT(ra, dec), CIRCLE(10.2, 20, 1)) ORDER BY id"
        )
        assert [(r["id"], r["ra"], r["name"]) for r in result] == [
            (1, 10.0, "alpha"),
            (2, 10.5, "beta"),
        ]
        assert result["mag"].tolist() == [5.5, 6.25]
        assert result.fieldname_with_ucd("phot.mag") == "mag"
    finally:
        server.stop()
