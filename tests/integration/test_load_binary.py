"""``aiouws tap load`` of BINARY and BINARY2 VOTables, streamed: every datatype
written by astropy loads with the values (and NULLs) astropy itself reads; an
external STREAM is refused; the loader's peak memory does not grow with the
file (2,000,000 rows against 200,000)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from astropy.io.votable import from_table
from astropy.table import MaskedColumn, Table
from loadkit import big_binary2
from testkit import DbSetup

from taprunner.load import LoadError, LoadOptions, binary, load_files
from taprunner.load.votable import _parse_whole, open_votable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True)


def _every_type(path: Path, serialisation: str) -> Path:
    """Every VOTable datatype the loader takes, with NULLs, written by astropy."""
    table = Table()
    table["id"] = np.array([1, 2, 3], dtype=np.int64)
    table["i"] = MaskedColumn(np.array([7, 0, -7], np.int32), mask=[0, 1, 0])
    table["s"] = MaskedColumn(np.array([1, -2, 0], np.int16), mask=[0, 0, 1])
    table["ub"] = np.array([0, 255, 9], dtype=np.uint8)
    table["f"] = MaskedColumn(np.array([1.5, 0, -3], np.float32), mask=[0, 1, 0])
    table["d"] = np.array([1.25, np.nan, -3e300])
    table["b"] = MaskedColumn([True, False, True], mask=[0, 0, 1])
    table["cf"] = np.array([b"ab", b"xyzw", b""])  # char, fixed arraysize 4
    table["cv"] = ["one", "", "three"]  # char arraysize *
    table["u"] = ["héllo", "ω", ""]  # unicodeChar
    table["a"] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    table["la"] = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 2**40]], np.int64)
    variable = np.empty(3, dtype=object)  # double arraysize *
    for i, values in enumerate(([1.0, 2.0], [3.0], [])):
        variable[i] = np.ma.array(values, mask=np.zeros(len(values), bool))
    table["va"] = variable
    table["bt"] = np.array([True, False, True])  # bit
    table["ba"] = np.array([[True, False, True], [False] * 3, [True] * 3])  # bit[3]
    table["uf"] = ["ab", "ωωω", ""]  # unicodeChar, fixed arraysize 3
    table["ts"] = ["2024-01-02T03:04:05Z", "2024-06-30T23:59:59.5", ""]
    votable = from_table(table)
    fields = {f.name: f for f in votable.get_first_table().fields}
    fields["i"].values.null = -99
    fields["s"].values.null = -99
    fields["b"].datatype = "boolean"
    fields["cv"].datatype, fields["cv"].arraysize = "char", "*"
    fields["u"].datatype, fields["u"].arraysize = "unicodeChar", "*"
    fields["va"].arraysize = "*"
    fields["uf"].datatype, fields["uf"].arraysize = "unicodeChar", "3"
    fields["ts"].datatype, fields["ts"].arraysize = "char", "*"
    fields["ts"].xtype = "timestamp"
    votable.to_xml(str(path), tabledata_format=serialisation)
    text = path.read_text()
    assert f"<{serialisation.upper()}>" in text and 'arraysize="4"' in text
    return path


EXPECTED = [
    (1, 7, 1, 0, 1.5, 1.25, True, "ab", "one", "héllo", [1.0, 2.0], [1, 2, 3],
     [1.0, 2.0], True, [True, False, True], "ab", dt.datetime(2024, 1, 2, 3, 4, 5)),
    (2, None, -2, 255, None, None, False, "xyzw", "", "ω", [3.0, 4.0], [4, 5, 6],
     [3.0], False, [False, False, False], "ωωω",
     dt.datetime(2024, 6, 30, 23, 59, 59, 500000)),
    (3, -7, None, 9, -3.0, -3e300, None, "", "three", "", [5.0, 6.0],
     [7, 8, 2**40], None, True, [True, True, True], "", None),
]  # fmt: skip


@pytest.mark.parametrize("serialisation", ["binary", "binary2"])
async def test_every_datatype_loads(
    conn: asyncpg.Connection, tmp_path: Path, serialisation: str
) -> None:
    path = _every_type(tmp_path / "types.vot", serialisation)
    report = await load_files(conn, [path], "cat.types", LoadOptions(batch_rows=2))
    assert (report.loaded, report.total) == (3, 3)
    names = "id, i, s, ub, f, d, b, cf, cv, u, a, la, va, bt, ba, uf, ts"
    rows = await conn.fetch(f"SELECT {names} FROM cat.types ORDER BY id")
    assert [tuple(r) for r in rows] == EXPECTED
    # the same values astropy's own (whole-document) parser gives
    old = [r for b in _parse_whole(path).batches(10) for r in b]
    new = [r for b in open_votable(path).batches(2) for r in b]
    assert new == old


async def test_whitespace_anywhere_and_small_chunks(
    conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base64 quads split by whitespace and by the reader's chunk borders."""
    path = big_binary2(tmp_path / "spread.vot", 1000)
    head, rest = path.read_text().split('encoding="base64">', 1)
    text, tail = rest.split("</STREAM>", 1)
    spread = "".join(c + " \t\r\n"[i % 4] * (i % 3) for i, c in enumerate(text))
    path.write_text(f'{head}encoding="base64">{spread}</STREAM>{tail}')
    monkeypatch.setattr(binary, "_CHUNK", 7)
    report = await load_files(conn, [path], "cat.spread", LoadOptions(batch_rows=99))
    assert report.loaded == 1000
    rows = await conn.fetch("SELECT id, mag, name FROM cat.spread ORDER BY id")
    assert [tuple(r) for r in rows[8:11]] == [
        (9, 9.5, "S0000009"),
        (10, None, "S0000010"),
        (11, 11.5, "S0000011"),
    ]


async def test_external_stream_is_refused(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "external.vot"
    path.write_text(
        '<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE><TABLE>'
        '<FIELD name="x" datatype="int"/><DATA><BINARY2>'
        '<STREAM href="https://example.org/x.bin"/></BINARY2></DATA></TABLE>'
        "</RESOURCE></VOTABLE>"
    )
    with pytest.raises(LoadError, match="external.vot.*href"):
        await load_files(conn, [path], "cat.ext", LoadOptions())
    assert await conn.fetchval("SELECT to_regclass('cat.ext')") is None


async def test_bad_base64_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    path = big_binary2(tmp_path / "bad.vot", 1000)
    text = path.read_text()
    cut = text.index("<STREAM") + 200
    path.write_text(text[:cut] + "#" + text[cut + 1 :])
    with pytest.raises(LoadError, match="bad.vot.*base64"):
        await load_files(conn, [path], "cat.bad", LoadOptions())


_LOADER = """
import asyncio, json, sys
from pathlib import Path
import asyncpg
from taprunner.load import LoadOptions, load_files

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    report = await load_files(conn, [Path(sys.argv[2])], sys.argv[3], LoadOptions())
    await conn.close()
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
    peak = int(status.split()[0])  # kB; ru_maxrss keeps the parent's across exec
    print(json.dumps({"rows": report.loaded, "peak_kb": peak}))

asyncio.run(main())
"""


def _load_in_child(dsn: str, path: Path, table: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, dsn, str(path), table],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,  # python -c puts the working directory first on sys.path
        timeout=900,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_binary2_memory_stays_flat(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    """The loader child's peak RSS (its VmHWM) for 2,000,000 rows (110 MB of
    VOTable) is within 30 MB of its peak for 200,000: the rows are streamed a
    batch at a time (measured: 94 and 96 MB; read whole by astropy, as before,
    they were 179 and 1,118 MB)."""
    small = big_binary2(tmp_path / "small.vot", 200_000)
    large = big_binary2(tmp_path / "large.vot", 2_000_000)
    first = _load_in_child(db_dsn, small, "cat.small")
    second = _load_in_child(db_dsn, large, "cat.large")
    assert (first["rows"], second["rows"]) == (200_000, 2_000_000)
    growth_kb = second["peak_kb"] - first["peak_kb"]
    assert growth_kb < 30_000, (first, second)
    row = await conn.fetchrow("SELECT * FROM cat.large WHERE id = 1999990")
    assert tuple(row) == (1999990, 1999990 % 360, 1999990 % 180 - 90.0, None,
                          "S1999990")  # fmt: skip
