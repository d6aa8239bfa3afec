"""A runner's report of its query's backend crosses the pipe intact."""

from __future__ import annotations

from aiouws.contract import Backend, encode, parse_runner_message
from aiouws.storage.backends import parse_identity, recorded_backends


def test_a_backend_message_round_trips() -> None:
    message = Backend(job_id="j1", pid=4242, started="2026-12-07T14:52:13.438023+00:00")
    assert parse_runner_message(encode(message)) == message


def test_identities_are_parsed_or_refused() -> None:
    assert parse_identity("17503 2026-12-07T14:52:13.438023+00:00") == (
        17503,
        "2026-12-07T14:52:13.438023+00:00",
    )
    assert parse_identity(None) is None  # pg_stat_activity hid backend_start
    assert parse_identity("17503") is None
    assert parse_identity("x 2026") is None


def test_recorded_backends_pair_pids_and_starts() -> None:
    rows = [
        {"backend_pids": [1, 2], "backend_starts": ["a", "b"]},
        {"backend_pids": None, "backend_starts": None},
    ]
    assert recorded_backends(rows) == [(1, "a"), (2, "b")]
