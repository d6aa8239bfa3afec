"""Logging setup: text or JSON lines, for the server and its runner processes.

Messages are constant event phrases; their context (``extra``) is appended as
``key=value`` in text lines and as fields of the object in JSON lines. Runner
processes inherit the server's stderr and, through :data:`LOG_ENV`, its format.
Stdlib only (runners import it); the access log is :mod:`aiouws.http.access`.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "LOG_ENV",
    "ContextFormatter",
    "JsonFormatter",
    "runner_logging",
    "setup_logging",
]

#: Environment variables passing the server's log level and format to runners.
LOG_ENV = ("AIOUWS_LOG_LEVEL", "AIOUWS_LOG_FORMAT")

_CONTEXT_KEYS = (
    "job_id",
    "phase",
    "was",
    "kind",
    "owner",
    "pid",
    "action",
    "reason",
    "method",
    "path",
    "status",
    "bytes",
    "seconds",
    "remote",
    "adql_sha256",
    "adql",
    "rows",
    "format",
    "outcome",
)
#: Attributes every LogRecord has: anything else on a record came as ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ContextFormatter(logging.Formatter):
    """Appends the ``extra`` keys of :func:`aiouws.service.log_context` to lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{key}={_text_value(getattr(record, key))}"
            for key in _CONTEXT_KEYS
            if getattr(record, key, None) is not None
        ]
        return f"{line} {' '.join(pairs)}" if pairs else line


def _text_value(value: object) -> str:
    """``value`` for a ``key=value`` pair: quoted (JSON) if it has blanks or quotes."""
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the extra fields
    (and ``exception`` with the traceback text, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _formatter(fmt: str, text_format: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return ContextFormatter(text_format)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr at ``level`` in ``fmt`` ("text" or "json"), access log on.

    The choice is also put in the environment (:data:`LOG_ENV`), which the
    runner processes inherit, so their lines (e.g. the query log) look the same.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(
        _formatter(fmt, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    os.environ.update(dict(zip(LOG_ENV, (level.upper(), fmt), strict=True)))


def runner_logging() -> None:
    """A runner process's logging: the server's format (:data:`LOG_ENV`) to
    stderr, which is the server's; WARNING and up, except the query log, which
    follows the server's level."""
    level = os.environ.get(LOG_ENV[0], "INFO").upper()
    fmt = os.environ.get(LOG_ENV[1], "text")
    handler = logging.StreamHandler()
    handler.setFormatter(
        _formatter(fmt, "%(asctime)s runner[%(process)d] %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("taprunner.query.querylog").setLevel(level)
