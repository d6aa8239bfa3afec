"""The SQL of the job table: fixed statements and builders of the dynamic ones.

No I/O happens here: :class:`.store.JobStore` runs these statements and
turns their rows into :class:`~aiouws.models.Job` objects. Claims and leases (the
execution side's statements) are here too, with the :class:`Claim` they carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiouws.models import JobFilter, NewJob
from aiouws.phases import Phase
from aiouws.storage.rows import encode_column, params_json

__all__ = [
    "CLAIM_FOR_RUNNERS",
    "CLAIM_JOB",
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

#: A cap that is never reached.
NO_CAP = 2**31 - 1

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


@dataclass(frozen=True, slots=True)
class Claim:
    """Who runs a job: the claiming process, its lease and the runner's pid."""

    claimed_by: str
    lease_seconds: float
    runner_pid: int


#: The SET list of a claim: EXECUTING by ``$2`` under a lease of ``$3`` seconds.
_CLAIM = (
    "phase = 'EXECUTING', start_time = now(), claimed_by = $2,"
    " lease_until = now() + make_interval(secs => $3)"
)

#: Claim up to ``cardinality($4)`` QUEUED jobs of kind ``$1`` in queue order, the
#: n-th for runner pid ``$4[n]`` (returned as column ``n``).
CLAIM_FOR_RUNNERS = (
    "WITH picked AS (SELECT job_id, queued_time FROM uws.job"
    " WHERE phase = 'QUEUED' AND kind = $1 ORDER BY queued_time, job_id"
    " LIMIT cardinality($4::integer[]) FOR UPDATE SKIP LOCKED),"
    " numbered AS (SELECT job_id, row_number() OVER"
    " (ORDER BY queued_time, job_id) AS n FROM picked)"
    f" UPDATE uws.job AS j SET {_CLAIM},"
    " runner_pid = ($4::integer[])[numbered.n]"
    " FROM numbered WHERE j.job_id = numbered.job_id"
    " RETURNING j.*, numbered.n"
)

#: Claim QUEUED job ``$1`` for runner pid ``$4``.
CLAIM_JOB = (
    f"UPDATE uws.job SET {_CLAIM}, runner_pid = $4"
    " WHERE job_id = $1 AND phase = 'QUEUED' RETURNING *"
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
    new: NewJob,
    phase: Phase,
    max_queued: int,
    max_executing: int,
    claim: Claim | None,
) -> tuple[str, list[Any]]:
    """The INSERT of a job unless its owner is at a cap (then no row returns).

    The owner's QUEUED/HELD and EXECUTING jobs are counted in the same statement
    (run it under :data:`OWNER_LOCK`: concurrent statements do not see each
    other's rows). With ``claim`` the job is created EXECUTING, claimed as
    given, and not counted against the queue cap.
    """
    owner = "owner IS NULL" if new.owner is None else "owner = $3"
    extra: list[Any] = []
    if claim is None:
        claimed = "NULL, NULL, NULL, NULL"
    else:
        phase = Phase.EXECUTING
        max_queued = NO_CAP  # created running, not queued: no queue cap
        claimed = "now(), $11, now() + make_interval(secs => $12), $13"
        extra = [claim.claimed_by, claim.lease_seconds, claim.runner_pid]
    queued = "NULL" if phase is Phase.PENDING else "now()"
    sql = (
        "WITH active AS (SELECT"
        " count(*) FILTER (WHERE phase IN ('QUEUED', 'HELD')) AS queued,"
        " count(*) FILTER (WHERE phase = 'EXECUTING') AS executing"
        f" FROM uws.job WHERE {owner}"
        " AND phase IN ('QUEUED', 'HELD', 'EXECUTING', 'SUSPENDED'))"
        " INSERT INTO uws.job (job_id, kind, owner, run_id, execution_duration,"
        " destruction_time, parameters, phase, queued_time, start_time,"
        " claimed_by, lease_until, runner_pid)"
        f" SELECT $1, $2, $3, $4, $5, $6, $7, $8, {queued}, {claimed} FROM active"
        " WHERE active.queued < $9 AND active.executing < $10 RETURNING *"
    )
    args = [
        new.job_id,
        new.kind,
        new.owner,
        new.run_id,
        new.execution_duration,
        new.destruction_time,
        params_json(new.parameters),
        phase.value,
        max_queued,
        max_executing,
        *extra,
    ]
    return sql, args


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
