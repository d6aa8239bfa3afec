"""The SQL of the job table: fixed statements and builders of the dynamic ones.

No I/O happens here: :class:`.store.JobStore` runs these statements and
turns their rows into :class:`~aiouws.models.Job` objects. Leases are here too;
the claims (the global limits) are :mod:`.claims`, whose :class:`Claim` is
re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiouws.models import JobFilter, NewJob
from aiouws.phases import Phase
from aiouws.storage.claims import NO_CAP, Claim, claimed_insert_sql
from aiouws.storage.rows import encode_column, params_json

__all__ = [
    "LIST_COLUMNS",
    "NO_CAP",
    "OWNER_ACTIVE",
    "OWNER_LOCK",
    "RENEW_LEASES",
    "Claim",
    "fail_executing_sql",
    "insert_sql",
    "list_sql",
    "update_sql",
]

#: Columns a caller may set besides the phase, with their SQL cast.
_SETTABLE: Mapping[str, str] = {
    "queued_time": "timestamptz",
    "start_time": "timestamptz",
    "end_time": "timestamptz",
    "execution_duration": "integer",
    "destruction_time": "timestamptz",
    "quote": "timestamptz",
    "parameters": "jsonb",
    "results": "jsonb",
    "job_info": "jsonb",
    "error_type": "text",
    "error_message": "text",
    "error_has_detail": "boolean",
    "runner_pid": "integer",
    "backend_pid": "integer",
    "backend_pids": "integer[]",
    "backend_starts": "timestamptz[]",
    "claimed_by": "text",
    "lease_until": "timestamptz",
}

LIST_COLUMNS = "job_id, kind, phase, run_id, owner, creation_time"

#: Serialises the admissions of owner ``$1`` (NULL: anonymous) until the end of
#: the transaction: the owner's jobs are counted and the new one stored while
#: no other admission of that owner runs, so per-owner caps hold exactly. The
#: two-key form keeps these locks apart from the single-key ones (migrations).
OWNER_LOCK = (
    "SELECT pg_advisory_xact_lock(1970763891, hashtext(coalesce($1::text, '')))"
)

#: Owner ``$1``'s (NULL: anonymous) QUEUED/HELD and EXECUTING job counts.
OWNER_ACTIVE = (
    "SELECT count(*) FILTER (WHERE phase IN ('QUEUED', 'HELD')) AS queued,"
    " count(*) FILTER (WHERE phase = 'EXECUTING') AS executing"
    " FROM uws.job WHERE owner IS NOT DISTINCT FROM $1"
    " AND phase IN ('QUEUED', 'HELD', 'EXECUTING', 'SUSPENDED')"
)


#: Extend by ``$2`` seconds the leases of jobs ``$3`` that ``$1`` runs.
RENEW_LEASES = (
    "UPDATE uws.job SET lease_until = now() + make_interval(secs => $2)"
    " WHERE phase = 'EXECUTING' AND claimed_by = $1 AND job_id = ANY($3)"
)


def fail_executing_sql(condition: str) -> str:
    """EXECUTING jobs matching ``condition`` → ERROR with message ``$1``; returns
    their ids and recorded backends."""
    return (
        "UPDATE uws.job SET phase = 'ERROR',"
        " end_time = greatest(now(), start_time),"
        " error_type = 'fatal', error_message = $1, error_has_detail = false"
        f" WHERE phase = 'EXECUTING' AND {condition}"
        " RETURNING job_id, backend_pids, backend_starts"
    )


def insert_sql(
    new: NewJob, phase: Phase, max_queued: int, claim: Claim | None
) -> tuple[str, list[Any]]:
    """The admission of a job, one statement: a call of ``uws.admit_job`` (or,
    with ``claim``, ``uws.admit_claimed_job``; migration 005), which returns
    no row when its owner is at the queued cap.

    The function takes the owner's lock (:data:`OWNER_LOCK`'s) and counts the
    owner's QUEUED/HELD jobs under it (a fresh snapshot per statement of the
    function: it sees every admission that held the lock before). With
    ``claim`` (a fast lane's) it also takes
    :data:`~aiouws.storage.claims.CLAIM_LOCK`'s lock and creates the job
    EXECUTING, claimed as given, when the global caps leave room, else QUEUED.
    The owner's executing cap never refuses a job: it holds back its claim.
    """
    args: list[Any] = [
        new.job_id,
        new.kind,
        new.owner,
        new.run_id,
        new.execution_duration,
        new.destruction_time,
        params_json(new.parameters),
    ]
    if claim is not None:
        extra = [claim.claimed_by, claim.lease_seconds, claim.runner_pid]
        caps = [claim.max_owner, claim.max_lane]
        args += [Phase.QUEUED.value, max_queued, *extra, *caps]
        return claimed_insert_sql(), args
    sql = "SELECT * FROM uws.admit_job($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    return sql, [*args, phase.value, max_queued]


def list_sql(flt: JobFilter) -> tuple[str, list[Any]]:
    """The job list of UWS 1.1 (``LIST_COLUMNS``), newest first."""
    clauses: list[str] = []
    args: list[Any] = []
    if not flt.all_owners:
        if flt.owner is None:
            clauses.append("owner IS NULL")
        else:
            args.append(flt.owner)
            clauses.append(f"owner = ${len(args)}")
    if flt.phases:
        args.append(sorted(p.value for p in flt.phases))
        clauses.append(f"phase = ANY(${len(args)}::uws.phase[])")
    elif not flt.include_archived:
        clauses.append("phase <> 'ARCHIVED'")
    if flt.after is not None:
        args.append(flt.after)
        clauses.append(f"creation_time > ${len(args)}")
    if flt.kind is not None:
        args.append(flt.kind)
        clauses.append(f"kind = ${len(args)}")
    where = " AND ".join(clauses) or "true"
    sql = (
        f"SELECT {LIST_COLUMNS} FROM uws.job WHERE {where} "
        "ORDER BY creation_time DESC, job_id"
    )
    if flt.last is not None:
        args.append(flt.last)
        sql += f" LIMIT ${len(args)}"
    return sql, args


def update_sql(
    job_id: str,
    sources: frozenset[Phase],
    set_now: Sequence[str],
    columns: Mapping[str, Any],
) -> tuple[str, list[Any]]:
    """The guarded UPDATE of a job whose phase is in ``sources``.

    Raises
    ------
    ValueError
        A column that cannot be set, a ``set_now`` column that is not a
        timestamp, or nothing to set.
    """
    assignments: list[str] = []
    args: list[Any] = [job_id, sorted(p.value for p in sources)]
    for name, value in columns.items():
        if name == "phase":
            args.append(value.value)
            assignments.append(f"phase = ${len(args)}::uws.phase")
            continue
        cast = _SETTABLE.get(name)
        if cast is None:
            raise ValueError(f"column {name!r} cannot be set")
        args.append(encode_column(name, value))
        assignments.append(f"{name} = ${len(args)}::{cast}")
    for name in set_now:
        if _SETTABLE.get(name) != "timestamptz":
            raise ValueError(f"column {name!r} is not a timestamp")
        assignments.append(f"{name} = now()")
    if not assignments:
        raise ValueError("nothing to update")
    sql = (
        f"UPDATE uws.job SET {', '.join(assignments)} WHERE job_id = $1"
        " AND phase = ANY($2::uws.phase[]) RETURNING *"
    )
    return sql, args
