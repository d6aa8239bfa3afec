"""A fast-lane TAP job is parsed once in the server: its parameters and its ADQL.

The kind's prepare hook parses the parameters before the job is stored; the
lane's run gets that TapRequest (``ctx.prepared``) instead of parsing them again,
and the statement the lane's test parsed for the row bound goes on to the
translator. For a job created with RUN and for a PENDING job run later.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from querywatch import final, submit
from testkit import MakeClient

from aiouws.config import Settings
from taprunner.adql import limits as adql_limits
from taprunner.query import job as tap_job
from taprunner.settings import TapSettings
from taprunner.web import app as tap_app

_fresh = itertools.count(int.from_bytes(os.urandom(3)))


def fresh_query() -> str:
    """A tiny query no cache of this process has seen (TOP 3: the lane's)."""
    return f"SELECT TOP 3 id FROM demo.stars WHERE id <> {-next(_fresh)}"


class Parses:
    """Counts of the TAP parameter and ADQL parses in this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.params: list[Any] = []
        self.adql: list[str] = []
        self._spy(monkeypatch, tap_job, "parse_request", self.params)
        self._spy(monkeypatch, adql_limits, "parse_statement", self.adql)

    @staticmethod
    def _spy(
        monkeypatch: pytest.MonkeyPatch, module: Any, name: str, seen: list[Any]
    ) -> None:
        real: Callable[..., Any] = getattr(module, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            seen.append(args[0])
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Parses:
    return Parses(monkeypatch)


@pytest.fixture
async def client(settings: Settings, aiohttp_client: MakeClient) -> Any:
    return await aiohttp_client(
        tap_app.create_tap_app(
            settings, TapSettings.for_service(settings, slots=1), demo_rows=50
        )
    )


async def runner_pid(dsn: str, job: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval(
            "SELECT runner_pid FROM uws.job WHERE job_id = $1", job
        )
    finally:
        await conn.close()
    return int(pid)


@pytest.mark.parametrize("maxrec", [None, "10"])
async def test_a_job_created_with_run_is_parsed_once(
    client: Any, settings: Settings, parses: Parses, maxrec: str | None
) -> None:
    """Without MAXREC the lane's test parses the ADQL for its TOP, with a small
    one the translator does: once either way."""
    assert settings.dsn is not None
    query = fresh_query()
    extra = {} if maxrec is None else {"MAXREC": maxrec}
    job = await submit(client, QUERY=query, **extra)
    assert await final(client, job) == "COMPLETED"
    assert await runner_pid(settings.dsn, job) == os.getpid()  # the lane ran it
    assert len(parses.params) == 1
    assert parses.adql == [query]


async def test_a_pending_job_run_later_is_parsed_once(
    client: Any, settings: Settings, parses: Parses
) -> None:
    assert settings.dsn is not None
    query = fresh_query()
    resp = await client.post(
        "/tap/async", data={"LANG": "ADQL", "QUERY": query}, allow_redirects=False
    )
    assert resp.status == 303
    job = str(resp.headers["Location"]).rsplit("/", 1)[1]
    assert parses.params == [] and parses.adql == []  # PENDING: nothing parsed yet
    resp = await client.post(f"/tap/async/{job}/phase", data={"PHASE": "RUN"})
    assert resp.status in (200, 303)
    assert await final(client, job) == "COMPLETED"
    assert await runner_pid(settings.dsn, job) == os.getpid()
    assert len(parses.params) == 1
    assert parses.adql == [query]


async def test_a_repeated_query_is_not_parsed_again(
    client: Any, settings: Settings, parses: Parses
) -> None:
    """The row bound and the translation of a repeated query are remembered."""
    query = fresh_query()
    for _ in range(3):
        assert await final(client, await submit(client, QUERY=query)) == "COMPLETED"
    assert len(parses.params) == 3
    assert parses.adql == [query]
