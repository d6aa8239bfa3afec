"""SideTasks: the supervisor's monitored side tasks and its background tasks.

Side tasks (the dispatch loop, the heartbeat, the destruction timer) run for the
supervisor's lifetime; if one dies, the supervisor is stopped loudly rather than
running on half blind (procrastinate's ``_monitor_side_tasks``). Background
tasks (a runner refill, a final write) are only kept referenced until they end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["SideTasks"]

log = logging.getLogger(__name__)


class SideTasks:
    """Starts, watches and cancels the supervisor's tasks.

    ``on_death`` makes the coroutine run when a side task dies (stopping the
    supervisor); after :meth:`closing`, deaths are expected and ignored.
    """

    def __init__(self, on_death: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._on_death = on_death
        self._side: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a monitored side task called ``name``."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self._side.append(task)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background (kept referenced until it ends)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def closing(self, *, keep: str) -> None:
        """Shutdown begins: cancel every side task except the one named ``keep``."""
        self._closing = True
        for task in self._side:
            if task.get_name() != keep:
                task.cancel()

    async def cancel_all(self) -> None:
        """Cancel every remaining task (but the calling one) and await them."""
        others = [
            t
            for t in [*self._side, *self._background]
            if t is not asyncio.current_task()
        ]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closing:
            return
        log.critical(
            "supervisor side task %s died; stopping the supervisor",
            task.get_name(),
            exc_info=task.exception(),
        )
        self.spawn(self._on_death())
