"""Compressed input: an upload is held to the byte limit once expanded, and
compressed input leaves nothing in the temporary directory (a bzip2 upload to
an async job, read by a real runner; ``tap load`` of a .bz2 VOTable).

astropy's ``get_readable_fileobj`` (8.0.2) copies a bzip2 document whole into
a ``NamedTemporaryFile(delete=False)`` it never removes: every such upload left
a file of its compressed size in the runner's temporary directory. The readers
now expand gzip, bzip2 and xz themselves (taprunner.load.expand), streaming.

An upload is expanded once (taprunner.query.uploadexpand): the pass that holds
it to the byte limit writes the expansion beside it, and the readers read that;
before, they expanded it again (twice bzip2's CPU).
"""

from __future__ import annotations

import asyncio
import bz2
import gzip
import lzma
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from aiohttp import FormData, web
from astropy.table import Table  # type: ignore[import-untyped]
from querywatch import final
from testkit import Client, DbSetup
from uploadkit import MB, physical, temp_tables, votable, write_parts

from aiouws.config import Settings
from taprunner.errors import TapUsageError
from taprunner.load import expand
from taprunner.query.uploadexpand import CHUNK, expanded_upload
from taprunner.query.uploadlimits import UploadLimits
from taprunner.query.uploads import load_uploads
from taprunner.query.uploadstream import open_upload
from taprunner.request import parse_uploads
from taprunner.schema.catalog import TapCatalog
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

ROOT = Path(__file__).resolve().parents[2]
PACK = {"bz2": bz2.compress, "gzip": gzip.compress, "xz": lzma.compress}


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of every process started from now (runners)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


@pytest.fixture
def app(app_settings: Settings, private_tmp: Path) -> web.Application:
    # no fast lane: the job is read by a runner (a process started with TMPDIR)
    tap = TapSettings.for_service(app_settings, inline_rows=0)
    return create_tap_app(app_settings, tap, demo_rows=10)


def _document(serialization: str, rows: int = 300) -> bytes:
    ids = np.arange(rows, dtype=np.int32)
    return votable(Table({"id": ids, "label": [f"l{i}" for i in ids]}), serialization)


def _form(upload: bytes) -> FormData:
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("PHASE", "RUN")
    data.add_field("QUERY", "SELECT COUNT(*) AS n, MAX(id) AS hi FROM TAP_UPLOAD.t")
    data.add_field("RESPONSEFORMAT", "csv")
    data.add_field("UPLOAD", "t,param:t")
    data.add_field("t", upload, filename="t.vot", content_type="application/x-bzip2")
    return data


@pytest.mark.parametrize("pack", ["bz2", "gzip", "xz"])
@pytest.mark.parametrize("serialization", ["tabledata", "binary2"])
async def test_a_compressed_upload_leaves_no_temporary_file(
    client: Client,
    app_settings: Settings,
    private_tmp: Path,
    serialization: str,
    pack: str,
) -> None:
    upload = PACK[pack](_document(serialization))
    for _ in range(2):
        resp = await client.post(
            "/tap/async",
            data=_form(upload),
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        job = str(resp.headers["Location"]).rsplit("/", 1)[1]
        phase = await final(client, job)
        error = await (await client.get(f"/tap/async/{job}/error")).text()
        assert phase == "COMPLETED", error
        result = await client.get(f"/tap/async/{job}/results/result")
        assert (await result.text()).split() == ["n,hi", "300,299"]
    assert sorted(os.listdir(private_tmp)) == []
    # the expansion, written beside the upload in the job's directory, is gone
    assert list(app_settings.resolved_jobs_dir.glob("**/.expanded-*")) == []


async def _load(dsn: str, tmp: Path, *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "taprunner", "--dsn", dsn, "tap", "load", *argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("serialization", ["tabledata", "binary2"])
async def test_tap_load_of_a_bzip2_votable_leaves_no_temporary_file(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path, serialization: str
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    path = tmp_path / "stars.vot.bz2"
    path.write_bytes(bz2.compress(_document(serialization)))
    code, out = await _load(db_dsn, tmp, "--format", "votable", str(path), "cat.t")
    assert code == 0, out
    assert await conn.fetchval("SELECT count(*) FROM cat.t") == 300
    assert await conn.fetchval("SELECT max(id) FROM cat.t") == 299
    assert sorted(os.listdir(tmp)) == []


@pytest.mark.parametrize("compress", ["gzip", "bz2", "xz"])
async def test_a_compressed_upload_is_held_to_the_byte_limit_once_expanded(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path, compress: str
) -> None:
    # The readers expand gzip, bzip2 and xz documents: a few KB on the wire
    # would otherwise be any number of bytes in memory (one "*" value).
    value = "x" * (2 * MB)
    data = (
        '<?xml version="1.0"?><VOTABLE version="1.4"'
        ' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA>'
        f"<TR><TD>{value}</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()
    packed = PACK[compress](data)
    assert len(packed) < MB // 8
    parts = write_parts(tmp_path, t=packed)
    with pytest.raises(TapUsageError, match=f"larger than the limit of {MB} bytes"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB
        ):
            raise AssertionError("not reached")
    # within the limit once expanded, it loads as before
    async with load_uploads(
        conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=4 * MB
    ) as full:
        table = physical(full, "t")
        assert await conn.fetchval(f"SELECT length(s) FROM {table}") == 2 * MB
    assert await temp_tables(conn) == []
    assert sorted(os.listdir(tmp_path)) == ["part-t"]  # the expansion removed


@pytest.mark.parametrize(
    "start",
    [b"<?xml", b"BZh not bzip2"],
    ids=["plain", "false-bzip2"],
)
async def test_what_the_readers_read_as_it_is_is_not_counted_again(
    tmp_path: Path, start: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # open_expanded says what is compressed (a start that only looks so is
    # read as it is, as astropy does); such a document was bounded on arrival.
    # Its readers leave no temporary file (astropy's bzip2 branch wrote one
    # for a false bzip2 start too).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    path = tmp_path / "t"
    path.write_bytes(start + b" " * (2 * MB))
    async with expanded_upload("t", path, MB) as read:  # over the limit: not refused
        assert read == path  # nor copied
        with pytest.raises(TapUsageError, match="not a valid VOTable"):
            open_upload("t", path, 10, UploadLimits(MB, 1000, MB))
    assert os.listdir(tmp) == []
    assert sorted(os.listdir(tmp_path)) == ["t", "tmp"]


class _Tally:
    """A decompressing stream whose reads add the bytes they expand to ``sizes``."""

    def __init__(self, stream: Any, sizes: list[int]) -> None:
        self._stream = stream
        self._sizes = sizes

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self._sizes.append(len(data))
        return data

    def __getattr__(self, name: str) -> Any:  # peek, seek, close...
        return getattr(self._stream, name)

    def __enter__(self) -> _Tally:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


def _tally(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of every read of expanded bytes from now on (a spy on
    taprunner.load.expand's decompressors, which every reader opens)."""
    sizes: list[int] = []

    def spy(opener: Any) -> Any:
        return lambda raw: _Tally(opener(raw), sizes)

    openers = tuple((magic, spy(opener)) for magic, opener in expand._OPENERS)
    monkeypatch.setattr(expand, "_OPENERS", openers)
    return sizes


@pytest.mark.parametrize("pack", ["bz2", "gzip", "xz"])
@pytest.mark.parametrize(
    "serialization",
    ["tabledata", "binary", "binary2", "binary2-numbers"],  # numbers: COPY BINARY
)
async def test_a_compressed_upload_is_expanded_once(
    conn: asyncpg.Connection,
    catalog: TapCatalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serialization: str,
    pack: str,
) -> None:
    # Before, the byte limit's pass expanded the whole document, then the
    # readers expanded it again (and its FIELDs twice more): twice the CPU.
    if serialization == "binary2-numbers":
        document = votable(Table({"id": np.arange(20_000, dtype=np.int32)}))
    else:
        document = _document(serialization, rows=20_000)
    parts = write_parts(tmp_path, t=PACK[pack](document))
    expanded = _tally(monkeypatch)
    async with load_uploads(
        conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=len(document)
    ) as full:
        table = physical(full, "t")
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 20_000
        assert await conn.fetchval(f"SELECT max(id) FROM {table}") == 19_999
    assert sum(expanded) == len(document)
    assert sorted(os.listdir(tmp_path)) == ["part-t"]  # the expansion removed


@pytest.mark.parametrize("pack", ["bz2", "gzip", "xz"])
async def test_a_compression_bomb_is_refused_within_a_chunk_of_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pack: str
) -> None:
    document = b'<?xml version="1.0"?><VOTABLE>' + b" " * (48 * MB)
    path = tmp_path / "t"
    path.write_bytes(PACK[pack](document))
    expanded = _tally(monkeypatch)
    with pytest.raises(TapUsageError, match=f"larger than the limit of {MB} bytes"):
        async with expanded_upload("t", path, MB):
            raise AssertionError("not reached")
    assert MB < sum(expanded) <= MB + CHUNK
    assert sorted(os.listdir(tmp_path)) == ["t"]


async def test_an_expansion_cancelled_midway_leaves_no_file(tmp_path: Path) -> None:
    # A request ended (or a job aborted) while its upload expands: the file is
    # removed at once, and the thread still writing does not make it again.
    path = tmp_path / "t"
    path.write_bytes(bz2.compress(b"<?xml?>" + b" " * (64 * MB)))

    async def expand_upload() -> None:
        async with expanded_upload("t", path, 128 * MB):
            raise AssertionError("not reached")

    task = asyncio.create_task(expand_upload())
    for _ in range(30_000):  # until the thread has written some
        if [f for f in tmp_path.glob(".expanded-*") if f.stat().st_size]:
            break
        await asyncio.sleep(0.001)
    else:
        raise AssertionError("nothing expanded")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(os.listdir(tmp_path)) == ["t"]
    await asyncio.get_running_loop().shutdown_default_executor()  # thread done
    assert sorted(os.listdir(tmp_path)) == ["t"]


@pytest.mark.parametrize("inner", ["gzip", "xz"])
async def test_an_upload_compressed_twice_is_refused(
    conn: asyncpg.Connection, catalog: TapCatalog, tmp_path: Path, inner: str
) -> None:
    # One layer is expanded, as before, when the readers read the inner
    # layer's bytes as XML (a syntax error); the refusal now says why.
    parts = write_parts(tmp_path, t=gzip.compress(PACK[inner](_document("binary2"))))
    with pytest.raises(TapUsageError, match="'t' is not a valid VOTable: it is compr"):
        async with load_uploads(
            conn, parse_uploads("t,param:t"), parts, catalog, max_bytes=MB
        ):
            raise AssertionError("not reached")
    assert await temp_tables(conn) == []
    assert sorted(os.listdir(tmp_path)) == ["part-t"]


def _damaged(pack: str, damage: str) -> bytes:
    packed = PACK[pack](_document("tabledata", rows=3000))
    if damage == "truncated":
        return packed[: len(packed) // 2]
    middle = len(packed) // 2  # the compressed stream's bytes garbled
    return (
        packed[:middle]
        + bytes(b ^ 0x5A for b in packed[middle : middle + 64])
        + (packed[middle + 64 :])
    )


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
@pytest.mark.parametrize("pack", ["bz2", "gzip", "xz"])
async def test_a_damaged_compressed_upload_is_a_clear_400(
    client: Client, pack: str, damage: str
) -> None:
    data = FormData()
    data.add_field("LANG", "ADQL")
    data.add_field("QUERY", "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t")
    data.add_field("RESPONSEFORMAT", "csv")
    data.add_field("UPLOAD", "t,param:t")
    data.add_field("t", _damaged(pack, damage), filename="t.vot")
    async with asyncio.timeout(60):
        resp = await client.post("/tap/sync", data=data)
        text = await resp.text()
    assert resp.status == 400, (resp.status, text)
    assert "upload 't'" in text, text
