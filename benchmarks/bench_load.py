"""``aiouws tap load`` against ``psql \\copy``: rows per second and peak memory.

Run by hand: ``python benchmarks/bench_load.py [--dsn DSN] [--rows N]
[--small N] [--repeat K] [--index] [--fits] [--fits-rows N]``. Without ``--dsn`` a
throwaway cluster is started (port 5545) and stopped at the end. A CSV of
``--rows`` stars shaped like demo.stars (id, ra, dec, mag, name) is generated
by PostgreSQL, then loaded ``--repeat`` times alternately by the command (a
subprocess: ``python -m taprunner tap load FILE bench.stars --replace``) and by
``psql -c "\\copy ..."`` into a fresh table of the same columns, the floor.
Each loader run reports its wall time and peak RSS (``wait4``); a run on a
``--small``-row file shows that the peak does not grow with the file. ``--index``
adds a load with ``--primary-key id --position ra,dec`` (index builds). ``--fits``
repeats the memory check with FITS files of ``--small`` and ``--fits-rows``
rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = "bench.stars"
COLUMNS = "id bigint, ra double precision, dec double precision, mag double precision,"
COLUMNS += " name text"
GENERATE = (
    "COPY (SELECT i AS id, random() * 360 AS ra,"
    " degrees(asin(2 * random() - 1)) AS dec, round((6 + 14 * random())::numeric, 3)"
    " AS mag, 'DEMO ' || i AS name FROM generate_series(1, {rows}) AS i)"
    " TO STDOUT WITH (FORMAT csv, HEADER)"
)


def psql(dsn: str, *args: str, stdout: object = None) -> None:
    subprocess.run(["psql", "-X", "-q", dsn, *args], check=True, stdout=stdout)


def generate_csv(dsn: str, rows: int, path: Path) -> None:
    with path.open("wb") as out:
        psql(dsn, "-c", GENERATE.format(rows=rows), stdout=out)


def run_loader(dsn: str, path: Path, *extra: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and output of one ``tap load`` subprocess."""
    argv = [sys.executable, "-m", "taprunner", "--dsn", dsn, "tap", "load"]
    argv += [str(path), TABLE, "--replace", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    took = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"tap load failed ({process.returncode}): {output}")
    return took, usage.ru_maxrss / 1024, output.strip().splitlines()[0]


def run_psql_copy(dsn: str, path: Path) -> float:
    fresh = f"DROP TABLE IF EXISTS bench.plain; CREATE TABLE bench.plain ({COLUMNS})"
    psql(dsn, "-c", fresh)
    start = time.perf_counter()
    psql(dsn, "-c", f"\\copy bench.plain FROM '{path}' WITH (FORMAT csv, HEADER)")
    return time.perf_counter() - start


def _rate(took: float, rows: int) -> str:
    return f"{took:7.1f} s {rows / took:10,.0f} rows/s"


def write_fits(path: Path, rows: int) -> None:
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(1)
    ids = np.arange(1, rows + 1).astype("U10")
    columns = [
        fits.Column(name="id", format="K", array=np.arange(1, rows + 1)),
        fits.Column(name="ra", format="D", array=rng.uniform(0, 360, rows)),
        fits.Column(name="dec", format="D", array=rng.uniform(-90, 90, rows)),
        fits.Column(name="mag", format="E", array=rng.uniform(6, 20, rows)),
        fits.Column(name="name", format="16A", array=np.char.add("DEMO ", ids)),
    ]
    fits.BinTableHDU.from_columns(columns).writeto(path)


def main(dsn: str, args: argparse.Namespace, work: Path) -> None:
    psql(dsn, "-c", "CREATE SCHEMA IF NOT EXISTS bench")
    big, small = work / "big.csv", work / "small.csv"
    start = time.perf_counter()
    generate_csv(dsn, args.rows, big)
    generate_csv(dsn, args.small, small)
    size = big.stat().st_size / 1e6
    took = time.perf_counter() - start
    print(f"generated {args.rows:,} rows ({size:.0f} MB) in {took:.0f} s")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    loads, copies = [], []
    for _ in range(args.repeat):
        took, rss, line = run_loader(dsn, big)
        loads.append(took)
        print(f"tap load    {_rate(took, args.rows)}  peak RSS {rss:5.0f} MB  ({line})")
        took = run_psql_copy(dsn, big)
        copies.append(took)
        print(f"psql \\copy  {_rate(took, args.rows)}")
    took, rss, _ = run_loader(dsn, small)
    print(f"tap load of {args.small:,} rows: peak RSS {rss:.0f} MB (flat: the same)")
    load, copy = statistics.median(loads), statistics.median(copies)
    print(
        f"median of {args.repeat}: tap load {args.rows / load:,.0f} rows/s"
        f" (spread {min(loads):.1f}-{max(loads):.1f} s), psql \\copy"
        f" {args.rows / copy:,.0f} rows/s"
        f" (spread {min(copies):.1f}-{max(copies):.1f} s),"
        f" ratio {load / copy:.2f}"
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.index:
        took, _, _ = run_loader(dsn, big, "--primary-key", "id", "--position", "ra,dec")
        print(f"tap load + primary key + position index {_rate(took, args.rows)}")
    if args.fits:
        for rows in (args.small, args.fits_rows):
            path = work / f"stars{rows}.fits"
            # In a process of its own: a child's peak RSS counts the memory of
            # the parent it was forked from, which writing the file would swell.
            subprocess.run(
                [sys.executable, __file__, "--write-fits", str(path), str(rows)],
                check=True,
            )
            took, rss, _ = run_loader(dsn, path)
            print(f"FITS {rows:>11,} rows {_rate(took, rows)}  peak RSS {rss:5.0f} MB")
            path.unlink()


if __name__ == "__main__" and sys.argv[1:2] == ["--write-fits"]:
    write_fits(Path(sys.argv[2]), int(sys.argv[3]))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--index", action="store_true")
    parser.add_argument("--fits", action="store_true")
    parser.add_argument("--fits-rows", type=int, default=2_000_000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.chmod(
        work, 0o755
    )  # the server's psql \copy reads as this user; COPY as postgres
    try:
        if options.dsn:
            main(options.dsn, options, work)
        else:
            from aiouws.storage.pgcluster import EmbeddedCluster

            root = work / "cluster"
            root.mkdir()
            cluster = EmbeddedCluster(root, port=5545, fast_unsafe=True)
            try:
                main(cluster.ensure_running(), options, work)
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
