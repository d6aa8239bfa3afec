"""The service's limits on jobs: clamped durations and lifetimes, per-owner caps.

A client's EXECUTIONDURATION and DESTRUCTION are clamped to the configured
maximum (never refused, as UWS asks); an owner at the queued cap gets a 429
(:class:`~aiouws.errors.TooManyJobs`) saying which cap and why. The executing
cap refuses nothing: it holds an owner's jobs QUEUED at claim
time, across all hosts (:mod:`aiouws.storage.claims`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiouws.config import Settings
from aiouws.errors import TooManyJobs, UsageError
from aiouws.phases import Phase
from aiouws.storage.store import JobStore

__all__ = ["clamp_destruction", "clamp_duration", "too_many"]


def clamp_duration(settings: Settings, seconds: int | None) -> int:
    """The execution duration a job gets when ``seconds`` is asked (None: none).

    Raises
    ------
    UsageError
        ``seconds`` is negative.
    """
    if seconds is None:
        return settings.default_execution_duration
    if seconds < 0:
        raise UsageError("EXECUTIONDURATION must not be negative")
    if seconds == 0 or seconds > settings.max_execution_duration:
        return settings.max_execution_duration
    return seconds


def clamp_destruction(settings: Settings, when: datetime | None) -> datetime:
    """The destruction time a job gets when ``when`` is asked (None: none)."""
    now = datetime.now(UTC)
    latest = now + timedelta(days=settings.max_destruction_days)
    if when is None:
        return now + timedelta(days=settings.default_destruction_days)
    return min(when, latest)


async def too_many(
    store: JobStore, settings: Settings, owner: str | None
) -> TooManyJobs | None:
    """The 429 error for ``owner``'s queued cap, or None while under it."""
    counts = await store.count_active(owner)
    queued = counts.get(Phase.QUEUED, 0) + counts.get(Phase.HELD, 0)
    if queued >= settings.max_queued_per_owner:
        return TooManyJobs(
            f"you have {queued} queued jobs, the limit is "
            f"{settings.max_queued_per_owner}; retry when some have run"
        )
    return None
