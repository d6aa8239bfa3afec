"""Admission: how the service hands a job to the execution side, in one call.

:meth:`Dispatcher.admit` is asked before a job is stored as QUEUED (created with
RUN, or run later). It returns an :class:`Admission`: the service stores the
job through it (``admission.store(write)``; the write gets the claim when a
fast-lane slot takes the job at once, which is then created EXECUTING) and then
starts it (``admission.start(job)``). A store that fails or inserts nothing
gives the reservation back; nothing else is left for the service to clean up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiouws.models import Job
from aiouws.storage.queries import Claim

__all__ = ["Admission", "Dispatcher", "Queued"]

T = TypeVar("T")


class Admission(Protocol):
    """A job admitted for execution, to be stored through and then started."""

    async def store(self, write: Callable[[Claim | None], Awaitable[T]]) -> T:
        """Await ``write(claim)`` (``claim``: create the job EXECUTING with it;
        None: store it QUEUED); if it raises or returns None, undo the admission."""
        ...

    async def start(self, job: Job) -> None:
        """Run (or dispatch) the stored job."""
        ...


class Dispatcher(Protocol):
    """What the service needs from the execution side (the queue supervisor)."""

    def admit(
        self, kind: str, job_id: str, prepared: object, *, new_job: bool
    ) -> Admission:
        """Admit a job about to be queued. ``prepared``: what the kind's prepare
        hook made of its parameters (the parameters without one); ``new_job``:
        it is about to be created (a free fast-lane slot may take it at once)."""
        ...

    async def job_aborted(self, job_id: str) -> None: ...

    def destruction_changed(self) -> None: ...


class Queued:
    """The admission of a job that is stored as it is (QUEUED or PENDING);
    ``start`` dispatches it (nothing without ``dispatch``)."""

    def __init__(
        self, dispatch: Callable[[Job], Awaitable[None]] | None = None
    ) -> None:
        self._dispatch = dispatch

    async def store(self, write: Callable[[Claim | None], Awaitable[T]]) -> T:
        return await write(None)

    async def start(self, job: Job) -> None:
        if self._dispatch is not None:
            await self._dispatch(job)
