"""Job rows and frozen Job objects: the explicit conversion both ways.

The internal representation is kept separate from the table, so that the
conversion is visible in one place (parameters, results and jobInfo are JSONB).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from aiouws.models import Job, JobError, JobParameter, JobResult
from aiouws.phases import ErrorType, Phase

__all__ = ["encode_column", "job_from_row", "params_json"]


def params_json(params: Iterable[JobParameter]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "value": p.value, "by_reference": p.by_reference}
        for p in params
    ]


def _results_json(results: Iterable[JobResult]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "file_name": r.file_name,
            "href": r.href,
            "media_type": r.media_type,
            "size": r.size,
            "rows": r.rows,
        }
        for r in results
    ]


def job_from_row(row: asyncpg.Record | Mapping[str, Any]) -> Job:
    error = None
    if row["error_type"] is not None:
        error = JobError(
            type=ErrorType(row["error_type"]),
            message=row["error_message"],
            has_detail=row["error_has_detail"],
        )
    return Job(
        job_id=row["job_id"],
        kind=row["kind"],
        phase=Phase(row["phase"]),
        owner=row["owner"],
        run_id=row["run_id"],
        creation_time=row["creation_time"],
        queued_time=row["queued_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        execution_duration=row["execution_duration"],
        destruction_time=row["destruction_time"],
        quote=row["quote"],
        parameters=tuple(
            JobParameter(
                name=p["name"],
                value=p["value"],
                by_reference=p.get("by_reference", False),
            )
            for p in row["parameters"]
        ),
        results=tuple(JobResult(**r) for r in row["results"]),
        error=error,
        job_info=tuple((str(k), str(v)) for k, v in row["job_info"]),
        runner_pid=row["runner_pid"],
        backend_pid=row["backend_pid"],
        claimed_by=row["claimed_by"],
        lease_until=row["lease_until"],
    )


def _without_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL characters: replace them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    return value


def encode_column(name: str, value: Any) -> Any:
    """A column value as the database takes it (job code may send any text)."""
    if name == "parameters":
        return params_json(value)
    if name == "results":
        return _without_nul(_results_json(value))
    if name == "job_info":
        return _without_nul([list(pair) for pair in value])
    if isinstance(value, ErrorType):
        return value.value
    return _without_nul(value)
