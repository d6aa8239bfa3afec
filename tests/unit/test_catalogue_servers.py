"""Catalogue replicas that hang (a server that takes connections and never
answers: a stopped VM, a full accept queue): a new connection gives up on them
within the replica connect timeout, whichever driver makes it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from aiouws.storage.database import REPLICA_CONNECT_TIMEOUT, Database


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A port whose connections complete (the kernel's backlog) but are never
    served."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_an_arrow_connection_gives_up_on_a_hung_replica(hung_server: int) -> None:
    adbc = pytest.importorskip("adbc_driver_manager")
    database = Database(
        "postgresql://nobody@127.0.0.1:1/none",
        replicas=(f"postgresql://nobody@127.0.0.1:{hung_server}/none",),
    )
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            handle = database.arrow_database()
            conn = adbc.AdbcConnection(handle)
            conn.close()
            handle.close()
            outcome.append(None)
        except BaseException as exc:  # what the columnar session gets
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(REPLICA_CONNECT_TIMEOUT + 15)
    assert outcome, "the connection to a hung replica never gave up"
    assert isinstance(outcome[0], Exception)
    assert time.monotonic() - started < REPLICA_CONNECT_TIMEOUT + 10
