"""QueueNews: what the supervisor knows about its queues, so as to claim less.

A claim statement is made only when jobs of a kind may be waiting. Per kind,
one counter counts the signals that jobs may be queued (``job_queued``, NOTIFY,
the safety poll), another the signal count at the last claim that found fewer
jobs than free slots. A job's QUEUED NOTIFY and ``job_queued`` are two signals
for one job: whichever comes second is no news when the job was announced or
claimed here. A claim the global caps held back (jobs wait, but not for this
host's slots) waits for a job to end anywhere instead (:meth:`held_back`,
:meth:`room_made`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["QueueNews", "RecentIds"]


class RecentIds:
    """The most recent job ids of some kind, a bounded set (oldest dropped first)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, job_id: str) -> None:
        self._ids[job_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def pop(self, job_id: str) -> bool:
        """Remove ``job_id``; whether it was there."""
        return self._ids.pop(job_id, False) is None

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ids


class QueueNews:
    """Per kind: may jobs be waiting? Per job: was it announced or claimed here?"""

    def __init__(self, kinds: Iterable[str]) -> None:
        self._queued_gen = {kind: 1 for kind in kinds}
        self._empty_gen = {kind: 0 for kind in self._queued_gen}
        self.announced = RecentIds()  # queued through job_queued()
        self.claimed = RecentIds()  # claimed by this process
        self._held: set[str] = set()

    def maybe_queued(self, kind: str) -> None:
        """Jobs of ``kind`` may be waiting."""
        self._queued_gen[kind] += 1

    def generation(self, kind: str) -> int | None:
        """The signal count to claim under, or None while the queue is known empty."""
        generation = self._queued_gen[kind]
        return None if generation == self._empty_gen[kind] else generation

    def found_empty(self, kind: str, generation: int) -> None:
        """A claim made at ``generation`` found fewer jobs than free slots."""
        self._empty_gen[kind] = generation

    def held_back(self, kind: str) -> None:
        """Jobs of ``kind`` wait that the global caps hold back."""
        self._held.add(kind)

    def room_made(self) -> set[str]:
        """A job ended (or was deleted) on some host: the kinds whose held-back
        jobs may now be claimed, each marked as maybe queued."""
        held, self._held = self._held, set()
        for kind in held:
            self.maybe_queued(kind)
        return held

    def notified(self, job_id: str) -> bool:
        """A QUEUED NOTIFY for ``job_id`` came: whether it is news to this process."""
        return not (self.announced.pop(job_id) or job_id in self.claimed)
