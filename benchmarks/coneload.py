"""The cone searches of the cone figures: queries, plans, and ways to send them.

A cone is a 1-arcminute circle around a centre drawn uniformly on the sky
(seeded), asked as ADQL through ``GET {tap}/sync`` or as the SQL the service
translates it to, straight through asyncpg (the floor). Closed loop: N clients
each send their next query when the last one is answered. Open loop: queries
are due at a fixed total rate and go out on whichever of N connections is free;
a query's latency counts from when it was due (no coordinated omission: time
spent waiting for a free connection counts).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import asyncpg
import numpy as np
from rawhttp import RawConnection

from aiouws.storage.database import SESSION_SETTINGS
from taprunner.adql.translate import translate
from taprunner.query.caches import TranslationCache
from taprunner.schema.catalog import TapCatalog
from taprunner.settings import TapSettings

__all__ = [
    "RADIUS_DEG",
    "Cones",
    "closed_loop",
    "open_loop",
    "p99",
    "plan_of",
]

RADIUS_DEG = 1 / 60
_ADQL = (
    "SELECT id, ra, dec, mag, name FROM {table} WHERE CONTAINS(POINT('ICRS', ra, dec),"
    " CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {radius:.8f})) = 1"
)


def p99(values: Sequence[float]) -> float:
    """The nearest-rank 99th percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class Cones:
    """Random cones on one table: the ADQL, the sync request targets, the SQL."""

    table: str
    adql: list[str]
    targets: list[str]  # path?query of GET {tap}/sync
    sql: list[str]  # as the service translates the ADQL
    _next: int = 0

    @classmethod
    async def make(cls, tap: str, dsn: str, table: str, count: int, seed: int) -> Cones:
        rng = np.random.default_rng(seed)
        ras = rng.uniform(0.0, 360.0, count)
        decs = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, count)))
        adql = [
            _ADQL.format(table=table, ra=ra, dec=dec, radius=RADIUS_DEG)
            for ra, dec in zip(ras.tolist(), decs.tolist(), strict=True)
        ]
        path = urlsplit(tap).path
        targets = [
            f"{path}/sync?"
            + urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": text})
            for text in adql
        ]
        conn = await asyncpg.connect(dsn)
        try:
            catalog = await TapCatalog.load(conn)
        finally:
            await conn.close()
        limit = TapSettings().maxrec_default + 1  # as the sync endpoint asks
        cache = TranslationCache()  # as the service's: templates after two
        sql = [(await cache.translate(text, catalog, limit)).sql for text in adql]
        assert sql[-1] == translate(adql[-1], catalog, limit=limit).sql
        return cls(table, adql, targets, sql)

    def take(self) -> int:
        """The index of the next cone (round robin)."""
        index = self._next % len(self.adql)
        self._next += 1
        return index


async def plan_of(conn: asyncpg.Connection, sql: str) -> str:
    """EXPLAIN of ``sql``; AssertionError unless it scans the position index."""
    plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql))
    if "_pos_idx" not in plan or "Seq Scan" in plan:
        raise AssertionError(f"the cone search does not use the spatial index:\n{plan}")
    return plan


Send = Callable[[int], Awaitable[int]]  # cone index -> rows (or bytes) answered


async def raw_sender(
    tap: str, cones: Cones
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """A GET {tap}/sync sender on one keep-alive connection, and its closer."""
    conn = RawConnection.to(tap)

    async def send(index: int) -> int:
        reply = await conn.get(cones.targets[index])
        if reply.status != 200:
            raise RuntimeError(
                f"cone search answered {reply.status}: {reply.body[:300]!r}"
            )
        return len(reply.body)

    return send, conn.close


async def sql_sender(
    dsn: str, cones: Cones
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """The same SQL through asyncpg (one connection with the service's session
    settings: no JIT, as its queries), and its closer."""
    conn = await asyncpg.connect(dsn, server_settings=SESSION_SETTINGS)

    async def send(index: int) -> int:
        return len(await conn.fetch(cones.sql[index]))

    return send, conn.close


async def closed_loop(
    senders: Sequence[Send], cones: Cones, total: int
) -> tuple[list[float], float]:
    """``total`` cones from ``len(senders)`` clients, each waiting for its
    answer before the next: (latencies in s, cones per s)."""
    left = total
    latencies: list[float] = []

    async def client(send: Send) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            index = cones.take()
            start = time.perf_counter()
            await send(index)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client(send) for send in senders))
    return latencies, total / (time.perf_counter() - start)


async def open_loop(
    senders: Sequence[Send], cones: Cones, total: int, rate: float
) -> tuple[list[float], float]:
    """``total`` cones due at ``rate`` per second, each sent on a free sender;
    latency from when it was due: (latencies in s, achieved cones per s)."""
    free: asyncio.Queue[Send] = asyncio.Queue()
    for send in senders:
        free.put_nowait(send)
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float, index: int) -> None:
        send = await free.get()
        try:
            await send(index)
        finally:
            free.put_nowait(send)
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter()
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, cones.take()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    return latencies, total / (time.perf_counter() - start)
