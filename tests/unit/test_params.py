"""Parsing of UWS protocol parameters and DALI timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiouws.errors import UsageError
from aiouws.http.params import (
    parse_action,
    parse_after,
    parse_destruction,
    parse_duration,
    parse_last,
    parse_phases,
    parse_wait,
)
from aiouws.phases import Action, Phase
from aiouws.timefmt import format_iso, parse_iso


@pytest.mark.parametrize(
    ("text", "action"),
    [("RUN", Action.RUN), ("run", Action.RUN), (" Abort ", Action.ABORT)],
)
def test_action(text: str, action: Action) -> None:
    assert parse_action(text) is action


@pytest.mark.parametrize("text", [None, "", "GO", "RUNNING"])
def test_bad_action(text: str | None) -> None:
    with pytest.raises(UsageError):
        parse_action(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(None, None), ("0", 0.0), ("5", 5.0), ("-1", 50.0), ("1e9", 50.0), ("2.5", 2.5)],
)
def test_wait(text: str | None, seconds: float | None) -> None:
    assert parse_wait(text, 50.0) == seconds


@pytest.mark.parametrize("text", ["x", "-2", "nan", ""])
def test_bad_wait(text: str) -> None:
    with pytest.raises(UsageError):
        parse_wait(text, 50.0)


def test_phases_and_last() -> None:
    assert parse_phases(["queued", "EXECUTING"]) == {Phase.QUEUED, Phase.EXECUTING}
    assert parse_phases([]) == frozenset()
    assert parse_last("10") == 10
    for bad in ("0", "-1", "ten"):
        with pytest.raises(UsageError):
            parse_last(bad)
    with pytest.raises(UsageError):
        parse_phases(["RUN"])


def test_duration() -> None:
    assert parse_duration("600") == 600
    assert parse_duration("1.9") == 2
    assert parse_duration("0.5") == 1  # rounds up: 0 would mean unlimited
    assert parse_duration(None) is None
    for bad in ("-1", "soon", "1e20", "nan"):
        with pytest.raises(UsageError):
            parse_duration(bad)


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-02T03:04:05Z",
        "2030-01-02T03:04:05",
        "2030-01-02T03:04:05.000Z",
        "2030-01-02T04:04:05+01:00",
    ],
)
def test_timestamps_are_utc(text: str) -> None:
    assert parse_iso(text) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_destruction(text) == parse_after(text)


def test_bad_timestamps() -> None:
    for bad in ("", "tomorrow", "2030-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_iso(bad)
        with pytest.raises(UsageError):
            parse_destruction(bad or "x")


def test_format_iso_is_dali() -> None:
    dt = datetime(2026, 11, 25, 23, 50, 36, 123456, tzinfo=UTC)
    assert format_iso(dt) == "2026-11-25T23:50:36.123Z"
    assert parse_iso(format_iso(dt)) == dt.replace(microsecond=123000)
