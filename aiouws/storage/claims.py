"""The SQL of claims: a job becomes EXECUTING only within the global limits.

Every statement that makes a job EXECUTING (a claim for runners, an inline
lane's claim by id, a job created EXECUTING in the fast lane) runs in a
transaction that first takes :data:`CLAIM_LOCK`, one advisory lock for the whole
database: the counts it makes of the EXECUTING jobs of its kind and of each
owner, wherever they run, are then exact, whichever host claims. One lock for
every kind rather than one per kind, because the per-owner cap spans the kinds:
two claims of different kinds for the same owner must not both see room for
one. A claim is one short statement, so the lock is held for a round trip;
phase changes out of EXECUTING (ending, ABORT, recovery) never take it.

Each host's own slots stay the ceiling of what it claims (the runner pids it
passes); the caps here bound the sum over all hosts. A job over its owner's
cap stays QUEUED (it is skipped, never refused) until one of the owner's jobs
ends.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLAIM_FOR_RUNNERS",
    "CLAIM_JOB",
    "CLAIM_LOCK",
    "NO_CAP",
    "QUEUE_WAITING",
    "Claim",
    "claimed_insert_sql",
]

#: A cap that is never reached.
NO_CAP = 2**31 - 1

#: Taken (until the end of the transaction) before every claim; the two-key
#: form with its own first key keeps it apart from the owners' locks.
CLAIM_LOCK = "SELECT pg_advisory_xact_lock(1970763892, 0)"


@dataclass(frozen=True, slots=True)
class Claim:
    """Who runs a job: the claiming process, its lease and the runner's pid.

    ``inline``: the job runs in a kind's fast lane (counted apart from the
    runner lane); ``max_owner``: the owner's executing cap across all hosts;
    ``max_lane``: the cap on the fast lane's executing jobs of the kind across
    all hosts.
    """

    claimed_by: str
    lease_seconds: float
    runner_pid: int
    inline: bool = False
    max_owner: int = NO_CAP
    max_lane: int = NO_CAP


#: The SET list of a claim: EXECUTING by ``$2`` under a lease of ``$3`` seconds.
_CLAIM = (
    "phase = 'EXECUTING', start_time = now(), claimed_by = $2,"
    " lease_until = now() + make_interval(secs => $3)"
)

#: Claim up to ``cardinality($4)`` QUEUED jobs of kind ``$1`` in queue order for
#: the runner lane, the n-th for runner pid ``$4[n]`` (returned as column ``n``),
#: while fewer than ``$5`` jobs of the kind run in runner lanes across all hosts
#: and skipping the jobs of owners who would then have more than ``$6``
#: executing. Run it under :data:`CLAIM_LOCK`. The head of the queue is read
#: without its owners at the cap, a little more of it than there are runners
#: (an owner with room for fewer jobs than it has there leaves the rest); the
#: final guard on the phase lets a concurrent ABORT or DELETE win.
CLAIM_FOR_RUNNERS = (
    "WITH busy AS MATERIALIZED (SELECT owner, count(*) AS n FROM uws.job"
    " WHERE phase = 'EXECUTING' GROUP BY owner),"
    " room AS (SELECT greatest($5::integer - count(*), 0) AS n FROM uws.job"
    " WHERE phase = 'EXECUTING' AND kind = $1 AND NOT inline_lane),"
    " head AS (SELECT j.job_id, j.owner, j.queued_time FROM uws.job AS j"
    " WHERE j.phase = 'QUEUED' AND j.kind = $1 AND NOT EXISTS (SELECT 1 FROM busy"
    " WHERE busy.owner IS NOT DISTINCT FROM j.owner AND busy.n >= $6)"
    " ORDER BY j.queued_time, j.job_id LIMIT cardinality($4::integer[]) + 32),"
    " ranked AS (SELECT job_id, queued_time, coalesce((SELECT busy.n FROM busy"
    " WHERE busy.owner IS NOT DISTINCT FROM head.owner), 0) + row_number() OVER"
    " (PARTITION BY owner ORDER BY queued_time, job_id) AS after FROM head),"
    " numbered AS (SELECT job_id, row_number() OVER"
    " (ORDER BY queued_time, job_id) AS n FROM ranked WHERE after <= $6"
    " ORDER BY queued_time, job_id"
    " LIMIT least(cardinality($4::integer[]), (SELECT n FROM room)))"
    f" UPDATE uws.job AS j SET {_CLAIM}, inline_lane = false,"
    " runner_pid = ($4::integer[])[numbered.n]"
    " FROM numbered WHERE j.job_id = numbered.job_id AND j.phase = 'QUEUED'"
    " RETURNING j.*, numbered.n"
)

#: Claim QUEUED job ``$1`` for pid ``$4`` in the fast lane (``$7``) or not, if
#: its owner has fewer than ``$5`` jobs executing and its kind's lane fewer
#: than ``$6`` across all hosts. Run it under :data:`CLAIM_LOCK`.
CLAIM_JOB = (
    "WITH me AS (SELECT owner, kind FROM uws.job WHERE job_id = $1),"
    " busy AS (SELECT count(*) AS n FROM uws.job, me"
    " WHERE phase = 'EXECUTING' AND uws.job.owner IS NOT DISTINCT FROM me.owner),"
    " lane AS (SELECT count(*) AS n FROM uws.job, me WHERE phase = 'EXECUTING'"
    " AND uws.job.kind = me.kind AND inline_lane = $7)"
    f" UPDATE uws.job SET {_CLAIM}, runner_pid = $4, inline_lane = $7"
    " WHERE job_id = $1 AND phase = 'QUEUED'"
    " AND (SELECT n FROM busy) < $5 AND (SELECT n FROM lane) < $6 RETURNING *"
)

#: Whether QUEUED jobs of kind ``$1`` wait (a claim found fewer than it could
#: take: an empty queue, or one the caps hold back).
QUEUE_WAITING = (
    "SELECT EXISTS (SELECT 1 FROM uws.job WHERE phase = 'QUEUED' AND kind = $1)"
)


def claimed_insert_sql() -> str:
    """The admission of a job the fast lane takes at once, one statement
    (``uws.admit_claimed_job``, migration 005): under its owner's lock and then
    :data:`CLAIM_LOCK`'s, created EXECUTING with the claim (``$10`` claimed
    by, ``$11`` lease seconds, ``$12`` pid) while its owner has fewer than
    ``$13`` jobs executing and the kind's fast lane fewer than ``$14`` across
    all hosts, else created QUEUED (``$8``) unless the owner has ``$9`` queued
    already (then no row returns).
    """
    return (
        "SELECT * FROM uws.admit_claimed_job($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14)"
    )
