"""Plain HTTP to a live server (redirects not followed) and its log lines, parsed.

``call`` answers (status, headers, body) for any method and headers;
``run_tap_job`` runs an async TAP job to its end; ``log_entries`` reads the
server's log in either format (``log_format`` text or json) as dicts with
``logger``, ``message`` and the context fields.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message

from liveserver import NO_REDIRECT, LiveServer

__all__ = ["call", "log_entries", "run_tap_job", "wait_for_entry"]


def call(
    url: str,
    *,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, Message, bytes]:
    """One request; any status is an answer (no exception, no redirect)."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(
        url, data=body, headers=dict(headers or {}), method=method
    )
    try:
        with NO_REDIRECT.open(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def run_tap_job(
    base: str, query: str, *, headers: Mapping[str, str] | None = None, **params: str
) -> tuple[str, str]:
    """Create and run an async TAP job under ``base`` (…/tap); (job id, phase)."""
    status, answer, body = call(
        base + "/async",
        data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN", **params},
        headers=headers,
    )
    assert status == 303, body
    job_url = answer["Location"]
    job_id = job_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, _, phase = call(base + f"/async/{job_id}/phase", headers=headers)
        current = phase.decode()
        if current in ("COMPLETED", "ERROR", "ABORTED"):
            return job_id, current
        call(base + f"/async/{job_id}?WAIT=5&PHASE={current}", headers=headers)
    raise AssertionError(f"job {job_id} did not finish")


_TEXT = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<rest>.*)$")
_RUNNER = re.compile(r"^\S+ \S+ runner\[\d+\] (?P<level>[A-Z]+) (?P<rest>.*)$")
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def _text_entry(line: str) -> dict[str, object] | None:
    match = _TEXT.match(line) or _RUNNER.match(line)
    if match is None:
        return None
    rest = match["rest"]
    first = _PAIR.search(rest)
    message = rest[: first.start()].strip() if first else rest
    entry: dict[str, object] = {
        "level": match["level"],
        "logger": match.groupdict().get("logger", "runner"),
        "message": message,
    }
    if first:
        for key, value in _PAIR.findall(rest[first.start() :]):
            entry[key] = json.loads(value) if value.startswith('"') else value
    return entry


def log_entries(server: LiveServer, fmt: str) -> list[dict[str, object]]:
    """The server's log lines in format ``fmt`` as dicts (others skipped)."""
    entries = []
    for line in server.log().splitlines():
        if fmt == "json":
            if line.startswith("{"):
                entries.append(json.loads(line))
        else:
            entry = _text_entry(line)
            if entry is not None:
                entries.append(entry)
    return entries


def wait_for_entry(
    server: LiveServer, fmt: str, message: str, **fields: str
) -> dict[str, object]:
    """The first log entry with ``message`` and these fields (as text), waiting
    up to 10 s for it to be written."""
    deadline = time.monotonic() + 10
    while True:
        for entry in log_entries(server, fmt):
            if entry.get("message") == message and all(
                str(entry.get(k)) == v for k, v in fields.items()
            ):
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no {message} line with {fields}:\n{server.log()}")
        time.sleep(0.1)
