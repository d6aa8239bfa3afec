"""RunnerSlots: every slot of the supervisor's kinds and the runner it holds.

Per kind, ``kind.slots`` (or the service default) slots hold warm runner
processes fed from the queue, and the kind's inline lane, if any, adds slots
holding in-process runners. All are started together; a runner that dies idle
is replaced in the background (a busy one is replaced by its job run), retrying
with back-off while starting fails.

A runner whose resident memory after a job exceeds ``max_rss`` (the
``runner_max_rss`` setting: e.g. one that imported pyarrow for a VOParquet
result keeps it) is retired: a fresh runner is started in the background and
takes the slot between jobs, and the old one is closed. Meanwhile the old
runner still takes jobs, but only when no fresh runner of its kind is free, so
no job waits for a runner's start while one is warm. A kind whose fresh
runners are past the bound already is left alone (with a warning), rather than
started again after every job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiouws.execution.inline import InlineRunner
from aiouws.execution.runnerpool import (
    Runner,
    RunnerProcess,
    RunnerStartError,
    Slot,
    resident_bytes,
)
from aiouws.kinds import JobKind

__all__ = ["RunnerSlots"]

log = logging.getLogger(__name__)
#: Seconds an idle runner being replaced gets to exit before it is killed.
_CLOSE_WAIT = 5.0


class RunnerSlots:
    """The slots of some kinds; ``on_ready(kind)`` says a slot got a fresh runner."""

    def __init__(
        self,
        kinds: Mapping[str, JobKind],
        default_slots: int,
        *,
        on_ready: Callable[[str], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        stopping: Callable[[], bool],
        max_rss: int = 0,
    ) -> None:
        #: Each kind's slots fed from the queue (runner processes).
        self.queue = {
            name: [Slot(kind=kind, index=i) for i in range(kind.slots or default_slots)]
            for name, kind in kinds.items()
        }
        #: Each kind's inline lane slots (in-process runners for small jobs), if any.
        self.inline = {
            name: [
                Slot(kind=kind, index=i, inline=True) for i in range(kind.inline.slots)
            ]
            for name, kind in kinds.items()
            if kind.inline is not None
        }
        self._on_ready = on_ready
        self._spawn = spawn
        self._stopping = stopping
        #: Bytes of resident memory past which a runner is retired (0: never).
        self.max_rss = max_rss
        self._warned: set[str] = set()

    async def start(self) -> int:
        """Start every slot's runner; return the number of runner processes.

        Raises
        ------
        RunnerStartError
            If a runner cannot be started (all started ones are closed again).
        """
        slots = [slot for slots in self.queue.values() for slot in slots]
        spawned = await asyncio.gather(
            *(RunnerProcess.spawn(slot.kind) for slot in slots), return_exceptions=True
        )
        failures = [r for r in spawned if isinstance(r, BaseException)]
        for slot, runner in zip(slots, spawned, strict=True):
            if isinstance(runner, RunnerProcess):
                self._install(slot, runner)
        if failures:
            await asyncio.gather(*(s.runner.close(1.0) for s in slots if s.runner))
            raise failures[0]
        for inline in self.inline.values():
            for slot in inline:
                self._install(slot, InlineRunner(slot.kind))
        return len(slots)

    def free(self, kind: str) -> list[Slot]:
        """The kind's queue slots whose runner waits for a job, retiring ones last."""
        free = [s for s in self.queue[kind] if s.free and s.runner is not None]
        return sorted(free, key=lambda s: s.retiring)

    def job_ended(self, slot: Slot) -> None:
        """A job left the slot: its waiting successor takes over, or its runner
        is retired if it has grown past :attr:`max_rss`."""
        runner = slot.runner
        if slot.inline or runner is None or not runner.alive or self._stopping():
            return
        if self.take_successor(slot):
            return
        if slot.retiring or self.max_rss <= 0:
            return
        rss = resident_bytes(runner.pid)
        if rss is None or rss <= self.max_rss:
            return
        if slot.fresh_rss is None or slot.fresh_rss >= self.max_rss:
            self._warn_fresh(slot.kind.name, slot.fresh_rss)
            return  # a fresh runner would be past the bound as well
        slot.retiring = True
        log.info(
            "runner retired",
            extra={
                "kind": slot.kind.name,
                "pid": runner.pid,
                "rss_mb": rss >> 20,
                "bound_mb": self.max_rss >> 20,
            },
        )
        self._spawn(self._succeed(slot, runner))

    def take_successor(self, slot: Slot) -> bool:
        """The idle slot's waiting successor, if any, takes the slot's place."""
        new, old = slot.successor, slot.runner
        if new is None or old is None or slot.job_id is not None or slot.claiming:
            return False
        if not new.alive:
            slot.successor, slot.retiring = None, False  # died waiting: again
            return False
        self._swap(slot, old, new)
        return True

    async def refill(self, slot: Slot) -> None:
        """Give the slot a fresh runner, retrying with back-off while it fails."""
        if self._stopping():
            return
        if slot.inline:
            self._install(slot, InlineRunner(slot.kind))
        elif slot.successor is not None and slot.successor.alive:
            self._install(slot, slot.successor)  # started already (retirement)
        else:
            runner = await self._start_runner(slot.kind)
            if runner is None:
                return
            self._install(slot, runner)
        self._on_ready(slot.kind.name)

    async def close(self, wait: float) -> None:
        """Close every runner, waiting up to ``wait`` s for each."""
        await asyncio.gather(
            *(
                runner.close(wait)
                for slots in [*self.queue.values(), *self.inline.values()]
                for slot in slots
                for runner in (slot.runner, slot.successor)
                if runner is not None
            )
        )

    async def _succeed(self, slot: Slot, old: Runner) -> None:
        """Start the retiring ``old`` runner's successor; it takes the slot now
        if the slot is idle, else when its job ends (:meth:`job_ended`)."""
        new = await self._start_runner(slot.kind)
        if new is None:
            return
        if self._stopping() or slot.runner is not old or not old.alive:
            await new.close(_CLOSE_WAIT)  # old died meanwhile: replaced already
        else:
            slot.successor = new
            self.take_successor(slot)  # now if idle, else when its job ends

    async def _start_runner(self, kind: JobKind) -> RunnerProcess | None:
        """A new runner, retrying with back-off while starting fails; None if
        the supervisor stops meanwhile."""
        delay = 0.5
        while not self._stopping():
            try:
                return await RunnerProcess.spawn(kind)
            except (RunnerStartError, OSError) as exc:
                log.error("cannot start runner: %s", exc, extra={"kind": kind.name})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        return None

    def _swap(self, slot: Slot, old: Runner, new: Runner) -> None:
        """``new`` takes the idle slot; ``old`` is closed in the background."""
        self._install(slot, new)
        self._spawn(old.close(_CLOSE_WAIT))
        log.debug(
            "runner replaced",
            extra={"kind": slot.kind.name, "pid": old.pid, "successor": new.pid},
        )
        self._on_ready(slot.kind.name)

    def _warn_fresh(self, kind: str, fresh: int | None) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(
                "runner_max_rss is below a fresh runner's memory: not replacing",
                extra={
                    "kind": kind,
                    "fresh_mb": None if fresh is None else fresh >> 20,
                },
            )

    def _install(self, slot: Slot, runner: Runner) -> None:
        slot.runner = runner
        slot.fresh_rss = None if slot.inline else resident_bytes(runner.pid)
        slot.retiring = False
        slot.successor = None
        runner.on_exit = lambda r: self._runner_exited(slot, r)

    def _runner_exited(self, slot: Slot, runner: Runner) -> None:
        """An idle runner died: replace it in the background (busy ones: JobRun)."""
        if slot.job_id is None and slot.runner is runner and not self._stopping():
            log.error(
                "idle runner died", extra={"kind": slot.kind.name, "pid": runner.pid}
            )
            self._spawn(self.refill(slot))
