"""The wire protocol between the queue supervisor and its runner processes.

Stdlib only: runner processes import this module and :mod:`aiouws.jobapi`, never
the web stack or the database driver. Messages are JSON objects, one per line
(UTF-8, ``\\n``-terminated), each with a ``"type"`` key. Never pickle.

Supervisor → runner (the runner's stdin)::

    {"type": "run", "job_id": str, "workdir": str,
     "parameters": [[name, value, by_reference], ...],
     "execution_duration": int, "owner": str | null,
     "store": {"kind": str, "bucket": str, ...} | null}
    {"type": "cancel", "job_id": str}

Closing stdin (EOF) asks the runner to exit once its job, if any, has stopped.

Runner → supervisor (the runner's stdout, which job code never writes to)::

    {"type": "ready", "pid": int}              once, after importing the entry point
    {"type": "started", "job_id": str}
    {"type": "backend", "job_id": str, "pid": int, "started": str}
        the database backend running the job's query (pg_stat_activity's pid
        and ISO backend_start): terminated if the runner dies under the job
    {"type": "info", "job_id": str, "key": str, "value": str}   → the job's jobInfo
    {"type": "result", "job_id": str, "id": str, "file_name": str,
     "media_type": str, "size": int, "rows": int | null}
    {"type": "done", "job_id": str, "status": "completed" | "error" | "aborted",
     "message": str | null, "detail_file": str | null}

A runner handles one job at a time and sends exactly one ``done`` per ``run``.
Error details: on ``status: error`` the runner has written :data:`ERROR_TEXT`
(``text/plain``: the exception's type and message, never its
traceback, which goes to the log) in the job directory, unless the job code wrote
:data:`ERROR_VOTABLE` (a DALI VOTable error document) itself; ``detail_file``
names the one that exists, or is null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

__all__ = [
    "ERROR_TEXT",
    "ERROR_VOTABLE",
    "Backend",
    "Cancel",
    "Done",
    "DoneStatus",
    "Info",
    "ProtocolError",
    "Ready",
    "Result",
    "Run",
    "RunnerMessage",
    "Started",
    "SupervisorMessage",
    "encode",
    "parse_runner_message",
    "parse_supervisor_message",
]

#: Plain-text error detail (the failure's type and message) written by the runner.
ERROR_TEXT = "error.txt"
#: A DALI VOTable error document a job kind may write instead.
ERROR_VOTABLE = "error.vot"


class ProtocolError(ValueError):
    """A line that is not a well-formed message of this protocol."""


class DoneStatus(StrEnum):
    """How a job ended, as the runner saw it."""

    COMPLETED = "completed"
    ERROR = "error"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """Start a job (supervisor → runner)."""

    job_id: str
    workdir: str
    #: ``(name, value, by_reference)`` triples, names lowercase, in client order.
    parameters: tuple[tuple[str, str, bool], ...]
    execution_duration: int
    owner: str | None
    #: The results store the job's files go to (a
    #: :class:`~aiouws.results.store.StoreSpec` as a dict, no secrets); None:
    #: the job directory ``workdir`` itself.
    store: Mapping[str, str] | None = None

    type = "run"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    """Stop the job (supervisor → runner); the runner answers with ``done``."""

    job_id: str

    type = "cancel"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The runner imported its entry point and waits for jobs."""

    pid: int

    type = "ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    job_id: str

    type = "started"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """The PostgreSQL backend that runs the job's query: its ``pid`` and its
    ``backend_start`` (ISO 8601), which tells it from a later backend that got
    the same pid."""

    job_id: str
    pid: int
    started: str

    type = "backend"


@dataclass(frozen=True, slots=True, kw_only=True)
class Info:
    """A progress note for the job's jobInfo."""

    job_id: str
    key: str
    value: str

    type = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """A result file the job published (atomically) in its directory."""

    job_id: str
    id: str
    file_name: str
    media_type: str
    size: int
    rows: int | None = None

    type = "result"


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """The job ended; the runner is free for the next one."""

    job_id: str
    status: DoneStatus
    message: str | None = None
    detail_file: str | None = None

    type = "done"


SupervisorMessage = Run | Cancel
RunnerMessage = Ready | Started | Backend | Info | Result | Done


def encode(message: SupervisorMessage | RunnerMessage) -> bytes:
    """One message as a JSON line."""
    body: dict[str, Any] = {"type": message.type}
    for f in fields(message):
        value = getattr(message, f.name)
        body[f.name] = [list(p) for p in value] if f.name == "parameters" else value
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def parse_supervisor_message(line: bytes | str) -> SupervisorMessage:
    """Decode a line the supervisor sent. Raises :class:`ProtocolError`."""
    body = _load(line)
    try:
        if body["type"] == "run":
            return Run(
                job_id=str(body["job_id"]),
                workdir=str(body["workdir"]),
                parameters=_parameters(body["parameters"]),
                execution_duration=int(body["execution_duration"]),
                owner=_opt_str(body.get("owner")),
                store=_opt_mapping(body.get("store")),
            )
        if body["type"] == "cancel":
            return Cancel(job_id=str(body["job_id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed {body.get('type')!r} message: {exc}") from exc
    raise ProtocolError(f"unknown message type {body.get('type')!r}")


def parse_runner_message(line: bytes | str) -> RunnerMessage:
    """Decode a line a runner sent. Raises :class:`ProtocolError`."""
    body = _load(line)
    kind = body.get("type")
    try:
        if kind == "ready":
            return Ready(pid=int(body["pid"]))
        if kind == "started":
            return Started(job_id=str(body["job_id"]))
        if kind == "backend":
            return Backend(
                job_id=str(body["job_id"]),
                pid=int(body["pid"]),
                started=str(body["started"]),
            )
        if kind == "info":
            return Info(
                job_id=str(body["job_id"]),
                key=str(body["key"]),
                value=str(body["value"]),
            )
        if kind == "result":
            rows = body.get("rows")
            return Result(
                job_id=str(body["job_id"]),
                id=str(body["id"]),
                file_name=str(body["file_name"]),
                media_type=str(body["media_type"]),
                size=int(body["size"]),
                rows=None if rows is None else int(rows),
            )
        if kind == "done":
            return Done(
                job_id=str(body["job_id"]),
                status=DoneStatus(body["status"]),
                message=_opt_str(body.get("message")),
                detail_file=_opt_str(body.get("detail_file")),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed {kind!r} message: {exc}") from exc
    raise ProtocolError(f"unknown message type {kind!r}")


def _load(line: bytes | str) -> dict[str, Any]:
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("a message must be a JSON object")
    return body


def _parameters(raw: Sequence[Sequence[Any]]) -> tuple[tuple[str, str, bool], ...]:
    return tuple((str(name), str(value), bool(by_ref)) for name, value, by_ref in raw)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_mapping(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("store must be an object")
    return {str(k): str(v) for k, v in value.items()}
