"""Hostile results and uploads (issue 10, items 1 and 2): the server's event-loop
stall and peak memory while they run.

Starts a server (``benchmarks/live.py``, 5,000 demo stars, a fresh embedded
cluster) per case and, while the hostile request runs, sends a tiny request
(``GET /tap/capabilities``, no database) every 20 ms. Prints one JSON line per
case: the hostile request's status and seconds, the slowest tiny request, the
server's RSS before and its VmHWM (peak, reset before the case) after.

    python benchmarks/bench_hostile.py [sync] [fast] [upload]

Cases: ``sync``, a /tap/sync query of 1,000 values of about 90 KB (a CTE chain
concatenating strings); ``fast``, the same as an async job with MAXREC=1000 (the
fast lane); ``upload``, a 262-byte sync upload declaring five million doubles.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
from live import LiveServer, proc_status

_TEN = "||".join(["s"] * 10)
QUERY = (
    "WITH a0 AS (SELECT TOP 1000 "
    + "||".join(["name"] * 10)
    + " AS s FROM demo.stars),"
    f" a1 AS (SELECT {_TEN} AS s FROM a0), a2 AS (SELECT {_TEN} AS s FROM a1),"
    f" a3 AS (SELECT {_TEN} AS s FROM a2) SELECT s FROM a3"
)
UPLOAD = (
    b'<?xml version="1.0"?><VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="a" datatype="double" arraysize="5000000"/>'
    b"<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"
    b"</RESOURCE></VOTABLE>"
)
MB = 1024 * 1024


async def _hostile(session: aiohttp.ClientSession, tap: str, case: str) -> str:
    """Run one hostile request to its end; its status (or final phase)."""
    if case == "sync":
        async with session.post(
            f"{tap}/sync", data={"LANG": "ADQL", "QUERY": QUERY}
        ) as r:
            async for _ in r.content.iter_chunked(MB):
                pass
            return str(r.status)
    if case == "fast":
        form = {"LANG": "ADQL", "QUERY": QUERY, "MAXREC": "1000", "PHASE": "RUN"}
        async with session.post(f"{tap}/async", data=form) as r:
            job = str(r.url)
        phase = ""
        while phase not in ("COMPLETED", "ERROR"):
            async with session.get(f"{job}/phase") as r:
                phase = await r.text()
            await asyncio.sleep(0.05)
        return phase
    form_data = aiohttp.FormData()
    for key, value in (
        ("LANG", "ADQL"),
        ("QUERY", "SELECT * FROM TAP_UPLOAD.t"),
        ("UPLOAD", "t,param:t"),
    ):
        form_data.add_field(key, value)
    form_data.add_field("t", UPLOAD, filename="t.vot", content_type="text/xml")
    async with session.post(f"{tap}/sync", data=form_data) as r:
        await r.read()
        return str(r.status)


async def _case(case: str) -> dict[str, object]:
    server = LiveServer(rows=5000, log_level="WARNING")
    server.start()
    try:
        await server.wait_ready(180)
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM
        before = proc_status(server.pid)["VmRSS"]
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            start = time.perf_counter()
            hostile = asyncio.ensure_future(_hostile(session, server.tap, case))
            slowest = 0.0
            while not hostile.done():
                sent = time.perf_counter()
                async with session.get(f"{server.tap}/capabilities") as r:
                    await r.read()
                slowest = max(slowest, time.perf_counter() - sent)
                await asyncio.sleep(0.02)
            status = await hostile
            seconds = time.perf_counter() - start
        return {
            "case": case,
            "status": status,
            "seconds": round(seconds, 2),
            "slowest_tiny_s": round(slowest, 3),
            "rss_before_mb": before // MB,
            "peak_mb": proc_status(server.pid)["VmHWM"] // MB,
        }
    finally:
        server.stop()


def main(argv: list[str]) -> None:
    for case in argv or ["sync", "fast", "upload"]:
        print(json.dumps(asyncio.run(_case(case))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
