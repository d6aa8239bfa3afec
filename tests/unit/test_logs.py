"""Log lines in both formats, the access log's redaction and the new settings."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from aiouws.config import ConfigError, Settings
from aiouws.http.access import redact_query
from aiouws.logs import LOG_ENV, setup_logging


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger's handler and level restored after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for name in LOG_ENV:  # restored (or removed) after the test
        monkeypatch.setenv(name, "")
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def _log(stream: io.StringIO, fmt: str) -> str:
    setup_logging("INFO", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("aiouws.test").info(
        "job claimed", extra={"job_id": "abc", "owner": "alice", "adql": "SELECT 1"}
    )
    return stream.getvalue().strip()


def test_text_lines_carry_the_context(captured: io.StringIO) -> None:
    line = _log(captured, "text")
    assert " INFO aiouws.test: job claimed " in line
    assert "job_id=abc" in line
    assert "owner=alice" in line
    assert 'adql="SELECT 1"' in line  # values with blanks are quoted


def test_json_lines_are_one_object_each(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _log(captured, "json")
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "aiouws.test"
    assert entry["message"] == "job claimed"
    assert entry["job_id"] == "abc"
    assert entry["adql"] == "SELECT 1"
    assert entry["time"].endswith("+00:00")
    assert os.environ[LOG_ENV[1]] == "json"  # what runners inherit


def test_json_lines_hold_the_traceback(captured: io.StringIO) -> None:
    setup_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(captured)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logging.getLogger("x").exception("failed")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: boom" in json.loads(lines[0])["exception"]


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/tap/sync", "/tap/sync"),
        ("/tap/sync?QUERY=x&password=s3cret", "/tap/sync?QUERY=x&password=***"),
        ("/a?token=t&Api_Key=k&n=1", "/a?token=***&Api_Key=***&n=1"),
        ("/a?flag&PWD=", "/a?flag&PWD=***"),
    ],
)
def test_access_log_redacts_secret_values(path: str, logged: str) -> None:
    assert redact_query(path) == logged


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("LOG_FORMAT", "xml", "log_format"),
        ("CORS_ORIGINS", "https://(", "cors_origins"),
        ("METRICS_NETWORKS", "10.0.0.0/8,nonsense", "metrics_networks"),
    ],
)
def test_bad_operations_settings_name_the_key(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(env={"AIOUWS_" + key: value})


def test_operations_settings_load() -> None:
    settings = Settings.load(
        env={
            "AIOUWS_LOG_FORMAT": "json",
            "AIOUWS_METRICS": "false",
            "AIOUWS_CORS_ORIGINS": r"https://.*\.example\.org",
        }
    )
    assert settings.log_format == "json"
    assert settings.metrics is False
    assert settings.cors_origins == r"https://.*\.example\.org"
