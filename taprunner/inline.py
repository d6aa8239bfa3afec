"""The async TAP fast lane: small queries run in the server, not in a runner.

A query whose result is bounded small (MAXREC, or the query's own TOP, at most
``tap_inline_rows``) and that uploads nothing is claimed at once and run on the
server's event loop (:class:`aiouws.kinds.InlineLane`), with a connection from
the TAP pool: no queueing behind big jobs and no hand-over to a runner process.
Its encoding is bounded by the row limit; waiting for PostgreSQL does not block
the loop. Everything else about the job (phases, ABORT, execution duration,
leases, result files, error documents) is as in a runner.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from aiouws.config import Settings
from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane
from aiouws.models import JobParameter
from taprunner.adql import row_bound
from taprunner.errors import TapError
from taprunner.job import Limits, execute, write_error
from taprunner.params import parse_request

if TYPE_CHECKING:
    from taprunner.server import TapState

__all__ = ["TapInline"]


class TapInline:
    """The lane's test and job function; ``state`` is set once the TAP pool is up."""

    def __init__(self, settings: Settings) -> None:
        self.max_rows = settings.tap_inline_rows
        self.slots = settings.tap_inline_slots
        self.limits = Limits(
            maxrec_default=settings.tap_maxrec_default,
            maxrec_hard=settings.tap_maxrec_hard,
            timeout=float(settings.max_execution_duration),
            upload_bytes=settings.max_upload_bytes,
        )
        self.state: TapState | None = None
        self._bounds: OrderedDict[str, int | None] = OrderedDict()

    def lane(self) -> InlineLane | None:
        if self.max_rows <= 0 or self.slots <= 0:
            return None
        return InlineLane(accepts=self.accepts, run=self.run, slots=self.slots)

    def accepts(self, parameters: Sequence[JobParameter]) -> bool:
        """Whether the job's result is bounded to ``max_rows`` and has no upload."""
        if self.state is None:
            return False
        params: dict[str, list[str]] = {}
        for p in parameters:
            params.setdefault(p.name.lower(), []).append(p.value)
        try:
            request = parse_request(
                params,
                maxrec_default=self.limits.maxrec_default,
                maxrec_hard=self.limits.maxrec_hard,
            )
        except TapError:
            return False  # the runner writes the error document as usual
        if request.uploads:
            return False
        if request.maxrec <= self.max_rows:
            return True
        bound = self._row_bound(request.query)
        return bound is not None and bound <= self.max_rows

    async def run(self, ctx: JobContext) -> None:
        """The job, on a pooled connection (waiting for one as long as it may)."""
        state = self.state
        assert state is not None
        timeout = float(ctx.execution_duration or self.limits.timeout)
        try:
            async with state.pool.acquire(timeout=timeout) as conn:
                catalog = await state.catalog()
                await execute(ctx, conn, catalog, self.limits)
        except TimeoutError as exc:
            message = f"no database connection became free within {timeout:g} s"
            write_error(ctx, message)
            raise TapError(message) from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            message = f"database unavailable: {exc}"
            write_error(ctx, message)
            raise TapError(message) from exc

    def _row_bound(self, query: str) -> int | None:
        """:func:`row_bound`, remembered for recent queries (clients repeat them)."""
        if query in self._bounds:
            self._bounds.move_to_end(query)
            return self._bounds[query]
        bound = self._bounds[query] = row_bound(query)
        if len(self._bounds) > 256:
            self._bounds.popitem(last=False)
        return bound
