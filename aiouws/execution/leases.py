"""Leases: the crash safety of claimed jobs (claims, heartbeat, recovery).

Every claim carries a lease that the heartbeat renews for the jobs this process
really runs. At start and on every heartbeat, EXECUTING jobs whose lease expired
(their server died), and at start those claimed under this instance id, end in
**ERROR, not re-queued**: a half-run job may have had side effects (written
files, sent mail, run a long query), so running it again silently is worse than
telling the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Collection

from aiouws.errors import StoreError
from aiouws.storage.claims import NO_CAP, Claim
from aiouws.storage.store import JobStore

__all__ = [
    "LEASE_EXPIRED_MESSAGE",
    "RESTARTED_MESSAGE",
    "SHUTDOWN_MESSAGE",
    "Leases",
]

log = logging.getLogger(__name__)

LEASE_EXPIRED_MESSAGE = "server stopped while the job was executing (lease expired)"
RESTARTED_MESSAGE = "server stopped while the job was executing"
SHUTDOWN_MESSAGE = "service shut down"


def _default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """The claims of one supervisor instance: who claims, for how long."""

    def __init__(
        self,
        store: JobStore,
        *,
        instance_id: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.instance_id = instance_id or _default_instance_id()
        self.lease_seconds = lease_seconds

    def claim(
        self,
        runner_pid: int,
        *,
        inline: bool = False,
        max_owner: int = NO_CAP,
        max_lane: int = NO_CAP,
    ) -> Claim:
        """The claim of a job run here by the runner ``runner_pid`` (``inline``:
        in a fast lane), within the global caps given (see :class:`Claim`)."""
        return Claim(
            self.instance_id,
            self.lease_seconds,
            runner_pid,
            inline=inline,
            max_owner=max_owner,
            max_lane=max_lane,
        )

    async def heartbeat(self, running: Callable[[], Collection[str]]) -> None:
        """Forever: renew the leases of the ``running`` jobs, resolve lost ones.

        After a failed beat (the database was away, and every server's leases
        may have run out meanwhile) lost jobs are resolved only once a whole
        lease has passed, so that the servers still alive renew theirs first.
        """
        loop = asyncio.get_running_loop()
        quiet_until = 0.0
        recovering: asyncio.Task[None] | None = None

        async def recover() -> None:
            nonlocal quiet_until
            try:
                await self.recover(at_start=False)
            except StoreError as exc:
                log.warning("heartbeat failed: %s", exc)
                quiet_until = loop.time() + self.lease_seconds

        try:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                try:
                    jobs = running()
                    if jobs:
                        await self.store.renew_leases(
                            self.instance_id, self.lease_seconds, list(jobs)
                        )
                except StoreError as exc:
                    log.warning("heartbeat failed: %s", exc)
                    quiet_until = loop.time() + self.lease_seconds
                    continue
                # Recovery runs beside the renewals: terminating a lost job's
                # backends may wait up to REPLICA_SECONDS for a hung replica
                # (aiouws.storage.backends), longer than a short lease lasts.
                if recovering is not None and recovering.done():
                    recovering.result()  # a bug in it stops the heartbeat
                    recovering = None
                if recovering is None and loop.time() >= quiet_until:
                    recovering = asyncio.create_task(recover())
        finally:
            if recovering is not None:
                recovering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recovering

    async def recover(self, *, at_start: bool) -> None:
        """Resolve EXECUTING jobs no live server runs any more to ERROR."""
        lost = await self.store.fail_expired_leases(LEASE_EXPIRED_MESSAGE)
        if at_start:
            lost += await self.store.fail_claimed(self.instance_id, RESTARTED_MESSAGE)
        for job_id in lost:
            log.warning("lost job resolved to ERROR", extra={"job_id": job_id})

    async def mark_aborted(self, job_id: str, message: str) -> None:
        """End a claimed job that will not run (any more) in ABORTED, if it can."""
        with contextlib.suppress(StoreError):
            await self.store.mark_aborted(job_id, message)
