"""How a client follows a job: the UWS 1.1 blocking WAIT and the quote.

A WAIT sleeps on the :class:`~aiouws.storage.notify.PhaseListener` (never polling the
table, but for a slow safety re-read); while the database is unavailable it
keeps waiting (:func:`wait_through_outage`) rather than answering at once, so that
polling clients do not spin. A quote is estimated from the queue and the kind's
recent run times.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiouws.errors import DatabaseUnavailable
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore

__all__ = [
    "QUOTE_STEP",
    "WAITABLE",
    "estimate_quote",
    "wait_for_change",
    "wait_through_outage",
]

#: The phases a WAIT waits in (a job in any other phase is returned at once).
WAITABLE = frozenset(
    {Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED}
)
#: How often a WAIT re-reads the job even without a notification (safety net).
_WAIT_POLL = 5.0
#: How often a WAIT tries the database again while it is unavailable.
OUTAGE_POLL = 1.0


async def wait_through_outage(
    wait: Callable[[float], Awaitable[Job]], timeout: float
) -> Job:
    """``wait(seconds_left)``, tried again every :data:`OUTAGE_POLL` seconds while
    the database is unavailable, until ``timeout`` has passed.

    Raises
    ------
    DatabaseUnavailable
        The database stayed unavailable for the whole ``timeout`` (503 with
        ``Retry-After``: the client has waited what it asked for).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await wait(max(deadline - time.monotonic(), 0.0))
        except DatabaseUnavailable:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            await asyncio.sleep(min(left, OUTAGE_POLL))


async def wait_for_change(
    listener: PhaseListener,
    job_id: str,
    *,
    timeout: float,
    phase: Phase | None,
    read: Callable[[], Awaitable[Job]],
) -> Job:
    """The job once its phase changed, or as it is after ``timeout`` seconds.

    Returns at once if the job is in a final phase or not in ``phase``. ``read``
    reads the job (with the caller's access checks). The watch is registered
    before the job is read, so a change between the read and the wait still
    wakes it; each wake-up (or :data:`_WAIT_POLL`, the safety net) reads the job
    again. Every answer is read after the request began: it shows every change
    committed before, on any host, whether or not its announcement has arrived.
    """
    deadline = time.monotonic() + timeout
    async with listener.watch(job_id) as changed:
        job = await read()
        start = job.phase
        while (
            job.phase is start
            and job.phase in WAITABLE
            and (phase is None or job.phase is phase)
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, _WAIT_POLL))
            changed.clear()
            job = await read()
    return job


#: The least step by which a quote that has passed moves on (see estimate_quote).
QUOTE_STEP = timedelta(minutes=1)


async def estimate_quote(
    store: JobStore, job: Job, cap: int | None = None
) -> datetime | None:
    """When the job will likely be done, from the queue and recent run times,
    with as many jobs of its kind running at a time as run now on all hosts
    (at least one; at most ``cap``, the kind's global cap, if any).

    A job waits only while every slot of its kind is busy, so the jobs
    executing now across all hosts are the rate at which the queue moves:
    the estimate needs no host's slot count.

    The estimate is anchored on the job's stored times (an EXECUTING job's
    start_time, a QUEUED job's queued_time, else its creation_time), never on
    the time of the read, so two reads give the same quote while the job's queue
    position (and the kind's run-time history) is unchanged. One that has passed
    moves on in whole steps of the typical run time (at least
    :data:`QUOTE_STEP`) from the anchor: it is never in the past and still
    stands still between reads.

    None when there is no history for the kind or the job is over.
    """
    runs = await store.recent_run_seconds(job.kind)
    if not runs:
        return None
    typical = timedelta(seconds=statistics.median(runs))
    if job.phase is Phase.EXECUTING and job.start_time is not None:
        quote = job.start_time + typical  # anchored on its start: stands still
        return _not_past(quote, typical)
    if job.phase is Phase.QUEUED and job.queued_time is not None:
        ahead = await store.queue_position(job) or 0
        anchor = job.queued_time
    elif job.phase in (Phase.PENDING, Phase.HELD):
        ahead = await store.count_queued(job.kind)
        anchor = job.creation_time
    else:
        return None
    slots = max(await store.count_executing(job.kind), 1)
    if cap is not None:
        slots = min(slots, cap)
    # Jobs run in rounds of ``slots``; the running round is half done on average.
    quote = anchor + typical * (ahead // slots + 1) + typical / 2
    return _not_past(quote, typical)


def _not_past(quote: datetime, typical: timedelta) -> datetime:
    """``quote``, or if it has passed, moved on in whole steps of ``typical`` (at
    least :data:`QUOTE_STEP`) to the first one after now."""
    now = datetime.now(UTC)
    if quote < now:
        step = max(typical, QUOTE_STEP)
        quote += step * -((quote - now) // step)  # whole steps, rounded up
    return quote
