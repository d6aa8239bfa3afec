"""Logging setup: constant event phrases, job context appended as ``key=value``."""

from __future__ import annotations

import logging

__all__ = ["setup_logging"]

_CONTEXT_KEYS = (
    "job_id",
    "phase",
    "was",
    "kind",
    "owner",
    "pid",
    "action",
    "reason",
    "path",
)


class ContextFormatter(logging.Formatter):
    """Appends the ``extra`` keys of :func:`aiouws.service.log_context` to lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{key}={getattr(record, key)}"
            for key in _CONTEXT_KEYS
            if getattr(record, key, None) is not None
        ]
        return f"{line} {' '.join(pairs)}" if pairs else line


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
