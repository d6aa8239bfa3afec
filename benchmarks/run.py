"""The aiouws benchmark suite against a live server (run it as ``scripts/bench``).

Starts ``python -m taprunner serve`` (the ``aiouws`` command) on a free 127.0.0.1
port with a fresh embedded database in a temporary directory (or on ``--dsn``),
loads ``--rows`` demo stars,
measures the figures of the performance issue (median and p95 over repeated
runs, each with the floor it is compared against, measured in the same run),
stops the server, prints a table and writes ``benchmarks/results/<time>.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from bigtables import parse_rows  # noqa: E402
from curves_clients import client_curves  # noqa: E402
from curves_rows import row_curves  # noqa: E402
from figures_bulk import (  # noqa: E402
    _make_big_table,
    big_figures,
    waiter_figures,
)
from figures_concurrent import together_figure  # noqa: E402
from figures_cone import cone_curves, cone_figures  # noqa: E402
from figures_latency import (  # noqa: E402
    Bench,
    async_figures,
    floors,
    joblist_figures,
    pyvo_figures,
    sync_figures,
    wakeup_figures,
)
from figures_store import store_figures  # noqa: E402
from figures_throughput import throughput_figures  # noqa: E402
from figures_upload import upload_figures  # noqa: E402
from live import ForeignLoad, LiveServer  # noqa: E402
from report import Curve, Figure, load_average, print_table, write_json  # noqa: E402

Group = Callable[[Bench, aiohttp.ClientSession], Awaitable[list[Figure]]]
# In running order; the job list comes last because it leaves 10,000 jobs behind.
GROUPS: dict[str, Group] = {
    "floors": floors,
    "sync": sync_figures,
    "async": async_figures,
    "pyvo": pyvo_figures,
    "throughput": throughput_figures,
    "wakeup": wakeup_figures,
    "big": big_figures,
    "concurrent": together_figure,
    "store": store_figures,
    "upload": upload_figures,
    "cone": cone_figures,
    "waiters": waiter_figures,
    "joblist": joblist_figures,
}
#: Producers of the charts of ``--curves`` (each returns report.Curve objects),
#: in running order: ``rows`` leaves the longest jobs to the end.
CURVES: dict[str, Callable[[Bench, aiohttp.ClientSession], Awaitable[list[Curve]]]] = {
    "clients": client_curves,
    "cone": cone_curves,
    "rows": row_curves,
}
RESULTS = Path(__file__).resolve().parent / "results"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: fewer repetitions, 100,000 rows",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these groups (repeatable or comma-separated): "
        f"{', '.join(GROUPS)}",
    )
    parser.add_argument(
        "--curves",
        nargs="?",
        const=",".join(CURVES),
        metavar="NAMES",
        help="draw the charts (comma-separated; alone: all of "
        f"{', '.join(CURVES)}) into --curves-out as SVG, points in the JSON too. "
        "Instead of the figure groups, or after those named by --only. About "
        "1 min with --quick (up to 100,000 rows), 7 min in full (up to 1,000,000), "
        "18 min with --big (the 10,000,000-row point needs a table that large), "
        "on the busy 2-CPU development machine",
    )
    parser.add_argument(
        "--curves-out",
        type=Path,
        default=RESULTS / "curves",
        metavar="DIR",
        help="directory of the charts (default benchmarks/results/curves; "
        "docs/curves redraws the README's)",
    )
    parser.add_argument(
        "--curves-format", choices=("svg", "png"), default="svg", help="(default svg)"
    )
    parser.add_argument("--rows", type=int, help="demo rows (default 1,000,000)")
    parser.add_argument("--dsn", help="use this database instead of an embedded one")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep the server's data directory and embedded database in DIR "
        "between runs (big tables are generated once; default: a fresh "
        "temporary one)",
    )
    parser.add_argument(
        "--cone-rows",
        metavar="SIZES",
        help="sizes of the cone group's tables, e.g. 1m,10m,100m (default: those "
        "three with --data-dir or --dsn, else 1m; 100k with --quick)",
    )
    parser.add_argument(
        "--big", action="store_true", help="also 10,000,000 rows (table bench.big)"
    )
    parser.add_argument(
        "--waiters",
        type=int,
        default=1000,
        help="simultaneous WAIT clients (default 1000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server processes (serve --workers); default 0: one per CPU core, "
        "as recommended for production",
    )
    parser.add_argument("--log-level", help="server log level (default: the server's)")
    parser.add_argument(
        "--busy-load",
        type=float,
        default=1.5,
        help="flag figures taken while other processes kept more than this many "
        "threads runnable on average (default 1.5)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before starting, wait up to this long for the load "
        "average to fall below --busy-load",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the server's data directory (logs) afterwards",
    )
    args = parser.parse_args(argv)
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    default = [] if args.curves and not args.only else list(GROUPS)
    names = [n for item in args.only or default for n in item.split(",") if n]
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        parser.error(
            f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}"
        )
    args.groups = [g for g in GROUPS if names and (g in names or g == "floors")]
    wanted = [n for n in (args.curves or "").split(",") if n]
    unknown = sorted(set(wanted) - set(CURVES))
    if unknown:
        parser.error(
            f"unknown curve(s) {', '.join(unknown)}; choose from {', '.join(CURVES)}"
        )
    args.curves = [c for c in CURVES if c in wanted]
    if args.data_dir is not None and args.dsn is not None:
        parser.error("--data-dir and --dsn exclude each other")
    keeps = args.data_dir is not None or args.dsn is not None
    default = "100k" if args.quick else "1m,10m,100m" if keeps else "1m"
    try:
        args.cone_rows = tuple(
            sorted({parse_rows(s) for s in (args.cone_rows or default).split(",") if s})
        )
    except ValueError:
        parser.error(f"--cone-rows: not sizes: {args.cone_rows!r}")
    return args


def _raise_open_files(want: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by the server) for the waiter figure."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _wait_quiet(limit: float, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while load_average() > limit and time.monotonic() < deadline:
        print(
            f"bench: load average {load_average():.2f} > {limit}; waiting",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))


async def _measure(
    args: argparse.Namespace, server: LiveServer
) -> tuple[list[Figure], list[Curve], dict[str, str]]:
    """The figure groups, then the curves; the curves' footers (when, how busy)."""
    assert server.dsn is not None
    bench = Bench(
        tap=server.tap,
        dsn=server.dsn,
        server_pid=server.pid,
        quick=args.quick,
        rows=args.rows,
        big=args.big,
        waiters=args.waiters,
        postmaster_pid=server.postmaster_pid(),
        workers=args.workers or os.cpu_count() or 1,
        data_dir=args.data_dir,
        cone_rows=args.cone_rows,
    )
    figures: list[Figure] = []
    curves: list[Curve] = []
    footers: dict[str, str] = {}
    foreign = ForeignLoad(server.postmaster_pid())
    foreign.start()
    try:
        async with aiohttp.ClientSession() as session:  # one keep-alive client
            for name in args.groups:
                load_before, start, mark = (
                    load_average(),
                    time.monotonic(),
                    foreign.mark(),
                )
                group = await GROUPS[name](bench, session)
                others = foreign.mean_since(mark)
                print(
                    f"bench: {name} done (others' runnable threads {others:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
                for figure in group:
                    figure.load = (load_before, load_average())
                    figure.foreign = others
                    figure.details["group_seconds"] = round(time.monotonic() - start, 1)
                figures += group
            if "rows" in args.curves and args.big:
                await _make_big_table(bench.dsn, 10_000_000)  # the 10M-row point
            for name in args.curves:
                start, mark = time.monotonic(), foreign.mark()
                drawn = await CURVES[name](bench, session)
                others = foreign.mean_since(mark)
                footer = _footer(args, others, time.monotonic() - start)
                print(f"bench: curves {name} done ({footer})", file=sys.stderr)
                footers.update((curve.name, footer) for curve in drawn)
                curves += drawn
    finally:
        foreign.stop()
    return figures, curves, footers


def _footer(args: argparse.Namespace, others: float, seconds: float) -> str:
    """Under each chart: when and where it was measured, and how busy it was."""
    busy = " (busy)" if others > args.busy_load else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    flags = "".join(f" --{f}" for f in ("quick", "big") if getattr(args, f))
    return (
        f"scripts/bench --curves{flags}, {stamp}, "
        f"{os.cpu_count()} CPUs, {args.workers or os.cpu_count()} server workers, "
        f"{seconds:.0f} s; other processes' runnable threads {others:.1f}{busy}"
    )


async def _run(
    args: argparse.Namespace,
) -> tuple[list[Figure], list[Curve], dict[str, str], dict[str, object]]:
    kept = {} if args.data_dir is None else {"data_dir": args.data_dir.resolve()}
    server = LiveServer(
        rows=args.rows,
        dsn=args.dsn,
        log_level=args.log_level,
        workers=args.workers,
        persistent=args.data_dir is not None,
        **kept,  # type: ignore[arg-type]
    )
    started = time.monotonic()
    server.start()
    try:
        await server.wait_ready(timeout=1800)
        ready = time.monotonic() - started
        print(
            f"bench: server pid {server.pid} ready on {server.url} after {ready:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        figures, curves, footers = await _measure(args, server)
    finally:
        server.stop(keep=args.keep)
    meta = {
        "rows": args.rows,
        "workers": args.workers or os.cpu_count(),
        "quick": args.quick,
        "groups": args.groups,
        "embedded": args.dsn is None,
        "data_dir": None if args.data_dir is None else str(args.data_dir),
        "startup_seconds": round(ready, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    return figures, curves, footers, meta


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # SIGTERM unwinds like Ctrl-C, so the server and its database are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    nofile = _raise_open_files(args.waiters * 2 + 1024)
    _wait_quiet(args.busy_load, args.wait_quiet)
    load_start = load_average()
    # The clients run on uvloop, as the server does: less of the two cores for them.
    figures, curves, footers, meta = uvloop.run(_run(args))
    meta.update(load_start=load_start, load_end=load_average(), nofile=nofile)
    meta["curves"] = [{**asdict(c), "footer": footers[c.name]} for c in curves]
    if figures:
        print()
        print_table(figures, busy_load=args.busy_load)
    # Written before drawing: benchmarks/plot.py can redraw from it.
    path = write_json(RESULTS, figures, meta)
    if curves:
        # matplotlib (the bench extra) only when there is something to draw.
        from plot import draw_all, print_curves

        print_curves(curves)
        drawn = draw_all(
            curves, args.curves_out, fmt=args.curves_format, footers=footers
        )
        print(f"\ndrawn {len(drawn)} charts into {args.curves_out}")
    print(f"\nwritten {path} ({meta['wall_seconds']} s)")
    failed = [f.name for f in figures if f.passed is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
