"""A real ``aiouws serve`` (uvloop, the guarded site) closes connections whose
request head does not come within ``header_timeout`` and serves the others;
``max_connections_per_address`` does not cap loopback clients (a local proxy)."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from liveserver import start_server


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (reading what it sends)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(4096):
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return False


def test_slow_heads_are_closed_and_loopback_is_not_capped(
    fresh_dsn: str, tmp_path: Path
) -> None:
    server = start_server(
        fresh_dsn,
        tmp_path,
        env={"AIOUWS_HEADER_TIMEOUT": "1", "AIOUWS_MAX_CONNECTIONS_PER_ADDRESS": "4"},
    )
    try:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        for sock in held:
            sock.sendall(b"GET /tap/availability HTTP/1.1\r\nHost: t\r\n")  # no end
        assert not closed_within(held[-1], 0.3)  # twice the cap: loopback is not capped
        start = time.monotonic()
        assert all(closed_within(sock, 5.0) for sock in held)  # 408 and closed
        assert time.monotonic() - start < 4.0
        for sock in held:
            sock.close()
        with urllib.request.urlopen(server.tap_url + "/availability", timeout=10) as r:
            assert r.status == 200
    finally:
        server.stop()
