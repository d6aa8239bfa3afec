"""The big catalogues of the cone figures: generated once, loaded with ``tap load``.

``bench.stars_1m``, ``bench.stars_10m``, ``bench.stars_100m`` (any size: the table
is ``bench.stars_<size>``) have demo.stars' columns (id bigint, ra, dec double
precision, mag real, name text), stars uniform on the sphere in HEALPix nested
order (order 10), so a cone's rows share a page or two of the heap, and the
loader's GiST index on ``spoint(radians(ra), radians(dec))`` (``--position``).

The rows are drawn by numpy chunk by chunk (a chunk is a range of HEALPix pixels
and its share of the rows, drawn uniformly inside those pixels: the HEALPix
projection is equal-area, so uniform face coordinates are uniform on the sky)
and written as ECSV files of about 10,000,000 rows (types from the header: mag
stays ``real``), which ``python -m taprunner tap load FILES bench.stars_N
--replace --position ra,dec`` copies to PostgreSQL unparsed, then indexes, in
one transaction. The files are removed afterwards. The table appears under its
name only when complete (the loader swaps it in at the end), so a table present
is a table done: :func:`ensure_table` skips it.

Run by hand to build them into a persistent benchmark data directory (the
embedded cluster of ``run.py --data-dir DIR``)::

    python benchmarks/bigtables.py --data-dir /work/benchdata 100m 10m 1m
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np

REPO = Path(__file__).resolve().parents[1]
ORDER = 10  # HEALPix order of the sort: 12,582,912 pixels, ~8 stars each at 100M
PIXELS = 12 * 4**ORDER
CHUNKS = 192  # pixel ranges drawn at a time (~520,000 rows each at 100M)
FILE_ROWS = 10_000_000
SEED = 4242
# face -> ring index of its lowest corner and its longitude, as in healpix_base.
_JRLL = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.float64)
_JPLL = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.float64)

_COLUMNS = (  # name, ECSV datatype, unit, description, UCD
    ("id", "int64", None, "Star identifier", "meta.id;meta.main"),
    ("ra", "float64", "deg", "Right ascension (ICRS)", "pos.eq.ra;meta.main"),
    ("dec", "float64", "deg", "Declination (ICRS)", "pos.eq.dec;meta.main"),
    ("mag", "float32", "mag", "Apparent magnitude", "phot.mag"),
    ("name", "string", None, "Star designation", "meta.id"),
)
_ECSV_HEADER = "".join(
    [
        "# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n",
        *(
            f"# - {{name: {name}, datatype: {kind},"
            + (f" unit: {unit}," if unit else "")
            + f" description: {text}, meta: {{ucd: {ucd}}}}}\n"
            for name, kind, unit, text, ucd in _COLUMNS
        ),
        "# meta: {description: 'Simulated stars uniform on the sky in HEALPix"
        " order (benchmark catalogue)'}\n# schema: astropy-2.0\n",
        ",".join(c[0] for c in _COLUMNS) + "\n",
    ]
)


def parse_rows(text: str) -> int:
    """``1m`` -> 1,000,000; ``100k``, ``2500000`` as well."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    factor = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    return int(float(number) * factor)


def table_name(rows: int) -> str:
    """``bench.stars_1m`` for 1,000,000 rows (``bench.stars_250k``, ``..._1234``)."""
    for suffix, factor in (("m", 1_000_000), ("k", 1_000)):
        if rows % factor == 0:
            return f"bench.stars_{rows // factor}{suffix}"
    return f"bench.stars_{rows}"


def _compact(bits: np.ndarray) -> np.ndarray:
    """The even bits of ``bits`` packed together (HEALPix nested -> x or y)."""
    bits = bits & 0x5555555555555555
    bits = (bits | (bits >> 1)) & 0x3333333333333333
    bits = (bits | (bits >> 2)) & 0x0F0F0F0F0F0F0F0F
    bits = (bits | (bits >> 4)) & 0x00FF00FF00FF00FF
    bits = (bits | (bits >> 8)) & 0x0000FFFF0000FFFF
    return (bits | (bits >> 16)) & 0x00000000FFFFFFFF


def positions(
    pixels: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of the points at fractions ``u``, ``v`` of nested
    pixels ``pixels`` of order :data:`ORDER` (healpix_base's xyf2loc)."""
    nside = 1 << ORDER
    face = (pixels >> (2 * ORDER)).astype(np.intp)
    local = pixels & (nside * nside - 1)
    x = (_compact(local) + u) / nside
    y = (_compact(local >> 1) + v) / nside
    jr = _JRLL[face] - x - y
    nr = np.where(jr < 1, jr, np.where(jr > 3, 4 - jr, 1.0))
    z = np.where(
        jr < 1, 1 - nr * nr / 3, np.where(jr > 3, nr * nr / 3 - 1, (2 - jr) * 2 / 3)
    )
    turn = np.mod(_JPLL[face] * nr + x - y, 8.0)
    phi = np.where(nr < 1e-15, 0.0, (np.pi / 4) * turn / np.maximum(nr, 1e-15))
    ra = np.degrees(phi)
    return np.where(ra >= 360.0, ra - 360.0, ra), np.degrees(
        np.arcsin(np.clip(z, -1, 1))
    )


def chunks(rows: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(first id, columns) of each chunk, in HEALPix order, ids 1..rows."""
    first = 1
    for index in range(CHUNKS):
        count = (index + 1) * rows // CHUNKS - index * rows // CHUNKS
        low, high = index * PIXELS // CHUNKS, (index + 1) * PIXELS // CHUNKS
        rng = np.random.default_rng([SEED, rows, index])
        pixels = np.sort(rng.integers(low, high, size=count, dtype=np.int64))
        ra, dec = positions(pixels, rng.random(count), rng.random(count))
        mag = (6.0 + 14.0 * rng.random(count) ** 0.3).astype(np.float32)
        ids = np.arange(first, first + count, dtype=np.int64)
        yield first, {"id": ids, "ra": ra, "dec": dec, "mag": mag}
        first += count


def write_files(rows: int, directory: Path) -> list[Path]:
    """The ECSV files of a ``rows``-star catalogue in ``directory``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    paths: list[Path] = []
    out = None
    in_file = 0
    try:
        for _, columns in chunks(rows):
            if out is None or in_file >= FILE_ROWS:
                if out is not None:
                    out.close()
                paths.append(directory / f"stars_{len(paths):03d}.ecsv")
                out = paths[-1].open("wb")
                out.write(_ECSV_HEADER.encode())
                in_file = 0
            ids = pa.array(columns["id"])
            names = pc.binary_join_element_wise("DEMO", pc.cast(ids, pa.string()), " ")
            batch = pa.record_batch(
                [ids, columns["ra"], columns["dec"], columns["mag"], names],
                names=["id", "ra", "dec", "mag", "name"],
            )
            pacsv.write_csv(batch, out, options)
            in_file += len(ids)
    finally:
        if out is not None:
            out.close()
    return paths


async def table_present(dsn: str, table: str) -> bool:
    """Whether ``table`` exists with its position index (the loader swaps a
    table in complete, so it then holds all its rows)."""
    conn = await asyncpg.connect(dsn)
    try:
        indexes = await conn.fetchval(
            "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1)"
            " AND pg_get_indexdef(indexrelid) LIKE '%gist (spoint%'",
            table,
        )
        return bool(indexes)
    finally:
        await conn.close()


class _Progress(threading.Thread):
    """Polls pg_stat_progress_copy / _create_index: when the index build began."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.index_started: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._poll())

    async def _poll(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self.stop.wait(2.0):
                row = await conn.fetchrow(
                    "SELECT phase, blocks_done, blocks_total"
                    " FROM pg_stat_progress_create_index LIMIT 1"
                )
                if row is not None and self.index_started is None:
                    self.index_started = time.monotonic()
                    print(f"  index build began: {row['phase']}", flush=True)
        finally:
            await conn.close()


def load(dsn: str, rows: int, work: Path) -> dict[str, float]:
    """Generate and load ``rows`` stars; seconds of each step."""
    table = table_name(rows)
    directory = work / f"generated-{table}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    took: dict[str, float] = {}
    try:
        started = time.monotonic()
        paths = write_files(rows, directory)
        took["generate"] = time.monotonic() - started
        size = sum(p.stat().st_size for p in paths) / 1e9
        print(
            f"{table}: generated {rows:,} rows in {len(paths)} ECSV file(s),"
            f" {size:.1f} GB, in {took['generate']:.0f} s",
            flush=True,
        )
        argv = [sys.executable, "-m", "taprunner", "--dsn", dsn, "tap", "load"]
        argv += [*map(str, paths), table, "--replace", "--position", "ra,dec"]
        progress = _Progress(dsn)
        progress.start()
        started = time.monotonic()
        subprocess.run(
            argv, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        ended = time.monotonic()
        progress.stop.set()
        progress.join()
        took["load"] = ended - started
        if progress.index_started is not None:
            took["copy"] = progress.index_started - started
            took["index"] = ended - progress.index_started
        print(
            f"{table}: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()),
            flush=True,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return took


def ensure_table(dsn: str, rows: int, work: Path) -> dict[str, float]:
    """Build ``bench.stars_<rows>`` unless present; seconds per step (empty: kept)."""
    if asyncio.run(table_present(dsn, table_name(rows))):
        return {}
    return load(dsn, rows, work)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, help="persistent benchmark data dir")
    parser.add_argument("--dsn", help="or this database")
    parser.add_argument("rows", nargs="+", type=parse_rows, help="sizes: 1m 10m 100m")
    args = parser.parse_args()
    if (args.data_dir is None) == (args.dsn is None):
        parser.error("give --data-dir or --dsn")
    cluster = None
    if args.dsn is None:
        sys.path.insert(0, str(REPO))  # aiouws, for live.py
        from live import persistent_cluster

        cluster = persistent_cluster(args.data_dir)
        args.dsn = cluster.ensure_running()
    work = args.data_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        for rows in args.rows:
            took = ensure_table(args.dsn, rows, work)
            if not took:
                print(f"{table_name(rows)}: present, kept", flush=True)
    finally:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
