"""Basic authentication under attack, against a live server (issue 10, item 4).

Runs on its own (``python benchmarks/bench_auth_flood.py [--tree DIR]``): starts a
server with ``auth = "basic"`` and an embedded database (``live.LiveServer``; its
code from ``--tree``, e.g. another checkout for a before/after comparison), then
measures, with passwords hashed at the default PBKDF2 cost:

- ``known-wrong`` vs ``unknown``: one request with a wrong password for a user
  of the password file, and one for a user who is not in it (each its own user
  name and X-Forwarded-For address, so that no back-off engages); medians of
  ``--n`` each. Similar times: user names cannot be told by timing.
- the valid user's latency (``GET /tap/async?LAST=1``, credentials already
  verified once) alone, then while ``--flood`` clients send wrong passwords as
  fast as they are answered: for one known user from one address; for known
  users from one address each (X-Forwarded-For through the trusted loopback
  proxy); for a new unknown name each time from one address each.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

from aiouws.http.auth import hash_password  # noqa: E402

USERS = 10


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _timed(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        await resp.read()
        return time.perf_counter() - started, resp.status


async def enumeration(url: str, n: int) -> dict[str, float]:
    known: list[float] = []
    unknown: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            for user, into in ((f"user{i % USERS}", known), (f"ghost{i}", unknown)):
                headers = _basic(user, "wrong") | {
                    "X-Forwarded-For": f"10.1.{i}.{len(into)}"
                }
                seconds, status = await _timed(session, url, headers)
                assert status == 401, status
                into.append(seconds)
    return {
        "known_wrong_ms": statistics.median(known) * 1000,
        "unknown_ms": statistics.median(unknown) * 1000,
    }


async def _flood(
    url: str,
    clients: int,
    stop: asyncio.Event,
    statuses: collections.Counter[int],
    *,
    spread: str,
) -> None:
    async def one(index: int) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                user = {
                    "": "user0",
                    "known": f"user{index % USERS}",
                    "unknown": f"rnd{secrets.token_hex(4)}",
                }[spread]
                headers = _basic(user, secrets.token_hex(4))
                if spread:
                    headers["X-Forwarded-For"] = f"10.2.0.{index}"
                try:
                    async with session.get(url, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1

    await asyncio.gather(*(one(i) for i in range(clients)))


async def valid_latency(
    url: str, n: int, flood: int, *, spread: str
) -> dict[str, object]:
    good = _basic("valid", "correct horse")
    stop = asyncio.Event()
    statuses: collections.Counter[int] = collections.Counter()
    async with aiohttp.ClientSession() as session:
        _, status = await _timed(session, url, good)  # verified once
        assert status == 200, status
        flooding = None
        if flood:
            flooding = asyncio.create_task(
                _flood(url, flood, stop, statuses, spread=spread)
            )
            await asyncio.sleep(1.0)
        samples, codes = [], collections.Counter[int]()
        for _ in range(n):
            seconds, status = await _timed(session, url, good)
            samples.append(seconds)
            codes[status] += 1
            await asyncio.sleep(0.02)
        stop.set()
        if flooding is not None:
            await flooding
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(sorted(samples)[int(0.95 * (len(samples) - 1))] * 1000, 1),
        "valid_statuses": dict(codes),
        "flood_statuses": dict(statuses),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=live.ROOT)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--flood", type=int, default=30)
    args = parser.parse_args()
    live.ROOT = args.tree.resolve()  # the server's code (PYTHONPATH, cwd)
    server = live.LiveServer(rows=100)
    passwd = server.data_dir / "passwd"
    lines = [f"user{i}:{hash_password(secrets.token_hex(8))}" for i in range(USERS)]
    lines.append(f"valid:{hash_password('correct horse')}")
    passwd.write_text("\n".join(lines) + "\n")
    import os

    os.environ.update(AIOUWS_AUTH="basic", AIOUWS_PASSWD_FILE=str(passwd))
    server.start()
    try:
        await server.wait_ready(120)
        url = f"{server.tap}/async?LAST=1"
        print("tree", live.ROOT)
        print("enumeration", await enumeration(url, args.n))
        print("valid alone", await valid_latency(url, args.n, 0, spread=""))
        for spread, what in (
            ("", "one known user, one address"),
            ("known", "known users, one address each"),
            ("unknown", "new unknown names, one address each"),
        ):
            print(
                f"valid, {args.flood} clients, {what}",
                await valid_latency(url, args.n, args.flood, spread=spread),
            )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
