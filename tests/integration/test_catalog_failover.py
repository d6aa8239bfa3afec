"""A catalogue replica that is down is passed over: the connection goes to the
next server (here the primary), at once, and the replica is skipped a while."""

from __future__ import annotations

import time

from aiouws.storage import database
from aiouws.storage.database import Database

#: Nothing listens on port 1 of the loopback: refused at once.
DOWN = "postgresql://nobody@127.0.0.1:1/nothing"


async def test_a_replica_that_is_down_fails_over_to_the_primary(db_dsn: str) -> None:
    database._down_until.pop(DOWN, None)
    queries = Database(db_dsn, replicas=(DOWN,))
    started = time.monotonic()
    conn = await queries.connect(name="test")
    try:
        assert conn.server_dsn == db_dsn
        assert await conn.fetchval("SELECT 1") == 1
        assert queries.server_of(conn).servers == (db_dsn,)
        name = await conn.fetchval("SHOW application_name")
        assert name.startswith("aiouws test ")
    finally:
        await conn.close()
    assert time.monotonic() - started < 5.0
    assert DOWN in database._down_until  # passed over for a while now
    assert queries._in_turn() == [db_dsn]
    database._down_until.pop(DOWN, None)
