"""``aiouws db start|dsn|stop`` with a configured DSN, and passwords kept out of
what ``db start`` prints (the embedded database itself: test_embedded_lockdown)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiouws.cli.problems import safe_dsn

REPO = Path(__file__).resolve().parents[2]


def aiouws(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a subprocess (it sets up logging for its process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "aiouws", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("dsn", "public"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u@h/db"),
        (
            "postgresql://u@/db?host=/run/x&port=5",
            "postgresql://u@/db?host=/run/x&port=5",
        ),
        (
            "postgresql://u@h/db?password=s3cret&sslmode=require",
            "postgresql://u@h/db?sslmode=require",
        ),
        (
            "postgres://h/db?sslmode=require&password=s3cret",
            "postgres://h/db?sslmode=require",
        ),
        ("host=h password='a b' user=u", "host=h user=u"),
        ("host=h user=u", "host=h user=u"),
        ("host=h sslpassword=k3y user=u", "host=h user=u"),
        ("postgresql://h/db?sslpassword=k3y", "postgresql://h/db"),
    ],
)
def test_passwords_are_removed(dsn: str, public: str) -> None:
    assert safe_dsn(dsn, mask=None) == public


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=s3cret&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("host=h password='a b' user=u", "host=h password=*** user=u"),
        ("host=h sslpassword = k3y", "host=h sslpassword = ***"),
        ("host=h user=u", "host=h user=u"),
    ],
)
def test_passwords_are_masked_in_messages(dsn: str, shown: str) -> None:
    assert safe_dsn(dsn) == shown


def test_db_dsn_prints_a_configured_dsn_and_says_it_is_secret() -> None:
    done = aiouws("--dsn", "postgresql://u:s3cret@h/db", "db", "dsn")
    assert done.returncode == 0
    assert done.stdout == "postgresql://u:s3cret@h/db\n"
    assert "secret" in done.stderr


def test_db_dsn_without_password_says_nothing_more() -> None:
    done = aiouws("--dsn", "postgresql://u@h/db", "db", "dsn")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "postgresql://u@h/db\n",
        "",
    )


@pytest.mark.parametrize("action", ["start", "stop"])
def test_db_start_and_stop_refuse_with_a_configured_dsn(action: str) -> None:
    done = aiouws("--dsn", "postgresql://u:s3cret@h/db", "db", action)
    assert done.returncode == 1
    assert done.stdout == "" and "s3cret" not in done.stderr
    assert f"no embedded database to {action}" in done.stderr
