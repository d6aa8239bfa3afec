"""RunnerSlots: every slot of the supervisor's kinds and the runner it holds.

Per kind, ``kind.slots`` (or the service default) slots hold warm runner
processes fed from the queue, and the kind's inline lane, if any, adds slots
holding in-process runners. All are started together; a runner that dies idle
is replaced in the background (a busy one is replaced by its job run), retrying
with back-off while starting fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiouws.execution.inline import InlineRunner
from aiouws.execution.runnerpool import Runner, RunnerProcess, RunnerStartError, Slot
from aiouws.kinds import JobKind

__all__ = ["RunnerSlots"]

log = logging.getLogger(__name__)


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
        """The kind's queue slots whose runner waits for a job."""
        return [s for s in self.queue[kind] if s.free and s.runner is not None]

    async def refill(self, slot: Slot) -> None:
        """Give the slot a fresh runner, retrying with back-off while it fails."""
        delay = 0.5
        while not self._stopping():
            try:
                if slot.inline:
                    self._install(slot, InlineRunner(slot.kind))
                else:
                    self._install(slot, await RunnerProcess.spawn(slot.kind))
            except (RunnerStartError, OSError) as exc:
                log.error(
                    "cannot start runner: %s", exc, extra={"kind": slot.kind.name}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self._on_ready(slot.kind.name)
                return

    async def close(self, wait: float) -> None:
        """Close every runner, waiting up to ``wait`` s for each."""
        await asyncio.gather(
            *(
                slot.runner.close(wait)
                for slots in [*self.queue.values(), *self.inline.values()]
                for slot in slots
                if slot.runner is not None
            )
        )

    def _install(self, slot: Slot, runner: Runner) -> None:
        slot.runner = runner
        runner.on_exit = lambda r: self._runner_exited(slot, r)

    def _runner_exited(self, slot: Slot, runner: Runner) -> None:
        """An idle runner died: replace it in the background (busy ones: JobRun)."""
        if slot.job_id is None and slot.runner is runner and not self._stopping():
            log.error(
                "idle runner died", extra={"kind": slot.kind.name, "pid": runner.pid}
            )
            self._spawn(self.refill(slot))
