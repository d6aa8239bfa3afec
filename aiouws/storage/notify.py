"""PhaseListener: one LISTEN connection per process, fanned out to asyncio waiters.

The job table's trigger sends ``'<job_id> <PHASE|DELETED> <kind>'`` on channel
``aiouws_job`` for every phase change, from any process. WAIT requests and the
queue supervisor wait on it, always with a timeout as well, because
notifications are lost while the connection is down (it reconnects by itself).
Any other payload (such as the four-word ``updated`` notice that migration 005
sent and 006 removed) is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from aiouws.phases import Phase

__all__ = ["CHANNEL", "PhaseEvent", "PhaseListener", "PhaseWatch"]

CHANNEL = "aiouws_job"
#: Seconds between two probes of the LISTEN connection, and how long one may
#: take: a connection that hangs without closing (a dead peer, a stalled
#: network) hears nothing, and WAITs would sleep on until their safety re-read
#: while ``connected`` stays set. A probe that fails ends the connection:
#: the listener then reports the loss and reconnects.
PROBE_SECONDS = 10.0
PROBE_TIMEOUT = 5.0
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PhaseEvent:
    """A job changed phase (``phase`` is None when the job was deleted)."""

    job_id: str
    phase: Phase | None
    kind: str

    @classmethod
    def parse(cls, payload: str) -> PhaseEvent | None:
        parts = payload.split(" ")
        if len(parts) != 3:
            return None
        job_id, phase, kind = parts
        if phase == "DELETED":
            return cls(job_id, None, kind)
        try:
            return cls(job_id, Phase(phase), kind)
        except ValueError:
            return None


Subscriber = Callable[[PhaseEvent], None]


class PhaseWatch(asyncio.Event):
    """Set when the watched job changes phase.

    ``phase`` is the phase of the latest change seen, or None when the job was
    deleted or the change is not known (woken after a reconnect).
    """

    def __init__(self) -> None:
        super().__init__()
        self.phase: Phase | None = None

    def wake(self, phase: Phase | None) -> None:
        self.phase = phase
        self.set()


class PhaseListener:
    """Listens on :data:`CHANNEL` and wakes waiters and subscribers."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        probe_seconds: float = PROBE_SECONDS,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._connect = connect
        self._probe_seconds = probe_seconds
        self._probe_timeout = probe_timeout
        self._probe_task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._waiters: dict[str, set[PhaseWatch]] = {}
        self._subscribers: list[Subscriber] = []
        self._lost_callbacks: list[Callable[[], None]] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        await self._open()
        self._probe_task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> None:
        self._closing = True
        for task in (self._reconnect_task, self._probe_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._wake_all()

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` (synchronously, in the loop) for every event."""
        self._subscribers.append(callback)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever events may have been missed: when the
        connection is lost, and again once a new one listens (whatever happened
        in between was not announced)."""
        self._lost_callbacks.append(callback)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[PhaseWatch]:
        """An event set when ``job_id`` changes phase; register before reading state.

        Registering first and then reading the job closes the gap in which a change
        between the read and the wait would be missed.
        """
        event = PhaseWatch()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]

    def publish(self, event: PhaseEvent) -> None:
        """Deliver an event as if it had come from the database (in-process)."""
        for waiter in self._waiters.get(event.job_id, ()):
            waiter.wake(event.phase)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not stop the listener
                log.exception("phase subscriber failed", extra={"job_id": event.job_id})

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- internals ----------------------------------------------------------------

    async def _open(self) -> None:
        conn = await self._connect()
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self._missed()  # listening from here on: what came before was not heard
        self.connected.set()

    def _on_notify(
        self, _conn: object, _pid: int, _channel: str, payload: object
    ) -> None:
        event = PhaseEvent.parse(str(payload))
        if event is not None:
            self.publish(event)

    def _on_terminated(self, _conn: object) -> None:
        self.connected.clear()
        if self._closing:
            return
        log.warning("listener connection lost; reconnecting")
        self._missed()
        # Waiters re-read the database on wake-up, so waking them all is safe and
        # covers any change we may have missed.
        self._wake_all()
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                await self._open()
                log.info("listener reconnected")
                self._wake_all()
                return
            except Exception as exc:  # whatever it is, keep trying: never die
                log.warning("listener reconnect failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _probe(self) -> None:
        """Forever: every ``probe_seconds``, a ``SELECT 1`` on the connection;
        one that fails or takes longer than ``probe_timeout`` ends it."""
        while not self._closing:
            await asyncio.sleep(self._probe_seconds)
            conn = self._conn
            if conn is None or conn.is_closed() or not self.connected.is_set():
                continue  # the reconnect is under way
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self._probe_timeout)
            except (
                TimeoutError,
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ):
                if not self._closing and not conn.is_closed():
                    log.warning("listener connection does not answer; reconnecting")
                    conn.terminate()  # the termination listener reconnects

    def _missed(self) -> None:
        for callback in self._lost_callbacks:
            try:
                callback()
            except Exception:
                log.exception("listener-lost callback failed")

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.wake(None)
