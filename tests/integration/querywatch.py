"""Watching user queries in PostgreSQL from TAP execution tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

__all__ = ["eventually", "running_queries"]


async def running_queries(dsn: str) -> int:
    """Active queries that join ``demo.stars AS a`` (the tests' slow query)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%demo.stars AS a%' AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (bounded: about 10 s) until it holds."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")
