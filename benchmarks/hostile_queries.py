"""Figures of issue 10, item 3: what hostile query texts cost the server.

Starts ``python -m taprunner serve`` from a source tree (with its own embedded
PostgreSQL in a temporary directory) and measures

- ``stall``: the slowest ``GET /tap/availability`` (one every 10 ms) while a
  1 MB IN list (150,000 ids) or a 15 MB comment is sent as a sync query and as
  an async job, and what the 60-nested-parentheses query gets;
- ``memory``: the server's RSS before and after 20 sync and 20 async queries of
  10 MB each (all different);
- ``bodies``: the slowest availability request while a 15 MB urlencoded body
  of escapes (utf-8, then latin-1) is posted to /tap/sync and /tap/async, and
  the RSS after 20 bodies of 15 MB (pass ``AIOUWS_MAX_REQUEST_BYTES=16777216``
  to have them decoded rather than refused).

Run by hand, e.g. to compare a tree before and after a change::

    python benchmarks/hostile_queries.py /path/to/tree stall
    python benchmarks/hostile_queries.py . memory AIOUWS_TAP_MAX_QUERY_BYTES=16777216
    python benchmarks/hostile_queries.py . bodies

Extra ``NAME=VALUE`` arguments go into the server's environment. Bodies over
``max_request_bytes`` (4 MiB) are refused before any query is read: ``memory``
(and ``stall``'s 15 MB comment) need ``AIOUWS_MAX_REQUEST_BYTES=16777216`` too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

IN_LIST = "SELECT id FROM demo.stars WHERE id IN ({})".format(
    ",".join(str(i) for i in range(150_000))
)
COMMENT = "SELECT TOP 1 id FROM demo.stars -- " + "x" * 15_000_000
NESTED = "SELECT " + "(" * 60 + "1" + ")" * 60 + " FROM demo.stars"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def probe(session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> float:
    """The slowest availability request until ``stop`` (sent every 10 ms)."""
    slowest = 0.0
    while not stop.is_set():
        start = time.perf_counter()
        async with session.get(url + "/tap/availability") as resp:
            await resp.read()
        await asyncio.sleep(0.01)
        slowest = max(slowest, time.perf_counter() - start - 0.01)
    return slowest


async def hostile(
    session: aiohttp.ClientSession, url: str, name: str, path: str, **form: str
) -> None:
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(session, url, stop))
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    async with session.post(
        url + path, data={"LANG": "ADQL", **form}, allow_redirects=False
    ) as resp:
        await resp.read()
        status = resp.status
    took = time.perf_counter() - start
    await asyncio.sleep(0.2)
    stop.set()
    slowest = await prober
    print(
        f"{name}: {status} in {took:.2f} s; "
        f"slowest availability {slowest * 1000:.0f} ms",
        flush=True,
    )


async def stall(session: aiohttp.ClientSession, url: str) -> None:
    await hostile(session, url, "sync 1 MB IN list", "/tap/sync", QUERY=IN_LIST)
    await hostile(session, url, "sync 15 MB comment", "/tap/sync", QUERY=COMMENT)
    top5 = IN_LIST.replace("SELECT", "SELECT TOP 5")
    await hostile(
        session, url, "async 1 MB IN list", "/tap/async", QUERY=top5, PHASE="RUN"
    )
    await hostile(
        session, url, "async 15 MB comment", "/tap/async", QUERY=COMMENT, PHASE="RUN"
    )
    form = {"LANG": "ADQL", "QUERY": NESTED}
    async with session.post(url + "/tap/sync", data=form) as resp:
        print(f"60 nested parentheses: {resp.status}", flush=True)


async def memory(session: aiohttp.ClientSession, url: str, pid: int) -> None:
    before = rss_mb(pid)
    for i in range(20):
        text = "x" * 10_000_000
        query = f"SELECT TOP 5 id FROM demo.stars WHERE id <> {i} AND name <> '{text}'"
        async with session.post(
            url + "/tap/sync", data={"LANG": "ADQL", "QUERY": query}
        ) as resp:
            await resp.read()
        query = query.replace(f"<> {i} ", f"<> {i + 100} ")
        async with session.post(
            url + "/tap/async",
            data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"},
            allow_redirects=False,
        ) as resp:
            await resp.read()
    await asyncio.sleep(3)
    after = rss_mb(pid)
    print(f"20 + 20 queries of 10 MB: server RSS {before:.0f} -> {after:.0f} MB")


async def bodies(session: aiohttp.ClientSession, url: str, pid: int) -> None:
    escapes = b"LANG=ADQL&QUERY=SELECT+1+--" + b"%41" * 5_000_000
    for charset in ("utf-8", "latin-1"):
        for path in ("/tap/sync", "/tap/async"):
            stop = asyncio.Event()
            prober = asyncio.create_task(probe(session, url, stop))
            await asyncio.sleep(0.2)
            ctype = f"application/x-www-form-urlencoded; charset={charset}"
            async with session.post(
                url + path,
                data=escapes,
                headers={"Content-Type": ctype},
                allow_redirects=False,
            ) as resp:
                await resp.read()
            await asyncio.sleep(0.2)
            stop.set()
            slowest = await prober
            print(
                f"15 MB of escapes ({charset}) to {path}: {resp.status}; "
                f"slowest availability {slowest * 1000:.0f} ms",
                flush=True,
            )
    before = rss_mb(pid)
    for i in range(20):
        body = f"LANG=ADQL&QUERY=SELECT+1+--{i}+".encode() + b"x" * 15_000_000
        async with session.post(
            url + ("/tap/sync" if i % 2 else "/tap/async"),
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        ) as resp:
            await resp.read()
    await asyncio.sleep(3)
    after = rss_mb(pid)
    print(f"20 urlencoded bodies of 15 MB: server RSS {before:.0f} -> {after:.0f} MB")


def start(tree: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The server of ``tree`` on a free port, its log in a new data directory."""
    port = free_port()
    data = tempfile.mkdtemp(prefix="hostile-")
    os.chmod(data, 0o755)  # the embedded cluster's user must reach it as root
    with Path(data, "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "taprunner", "--data-dir", data, "serve"]
            + ["--port", str(port), "--demo-rows", "2000"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": tree, "AIOUWS_LOG_LEVEL": "WARNING"} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    print(f"server log: {data}/server.log", flush=True)
    return server, f"http://127.0.0.1:{port}"


async def main(server: subprocess.Popen[bytes], url: str, what: str) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            assert server.poll() is None, "the server exited (see its log)"
            try:
                async with session.get(url + "/tap/availability") as resp:
                    if resp.status == 200 and b"true" in await resp.read():
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        if what == "stall":
            await stall(session, url)
        elif what == "bodies":
            await bodies(session, url, server.pid)
        else:
            await memory(session, url, server.pid)


if __name__ == "__main__":
    process, address = start(
        os.path.abspath(sys.argv[1]), dict(arg.split("=", 1) for arg in sys.argv[3:])
    )
    try:
        asyncio.run(main(process, address, sys.argv[2]))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
