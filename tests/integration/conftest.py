"""Fixtures of the QueueSupervisor tests (helpers: supervisorkit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from supervisorkit import KINDS, Factory

from aiouws.config import Settings
from aiouws.notify import PhaseListener
from aiouws.store import JobStore
from aiouws.supervisor import QueueSupervisor
from aiouws.workdir import JobDirs


@pytest.fixture
async def listener(db_dsn: str) -> AsyncIterator[PhaseListener]:
    lst = PhaseListener(lambda: asyncpg.connect(db_dsn))
    await lst.start()
    yield lst
    await lst.stop()


@pytest.fixture
def dirs(tmp_path: Path) -> JobDirs:
    return JobDirs(tmp_path / "jobs")


@pytest.fixture
async def make_supervisor(
    store: JobStore, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> AsyncIterator[Factory]:
    made: list[QueueSupervisor] = []

    async def make(
        *,
        instance_id: str | None = None,
        grace: float = 0.5,
        slots: int = 2,
        start: bool = True,
    ) -> QueueSupervisor:
        settings = Settings(
            data_dir=tmp_path, jobs_dir=dirs.root, grace=grace, slots_per_kind=slots
        )
        sup = QueueSupervisor(
            store, KINDS, dirs, settings, listener, instance_id=instance_id
        )
        made.append(sup)
        if start:
            await sup.start()
        return sup

    yield make
    for sup in made:
        if sup._started:
            await sup.stop(grace=0)


@pytest.fixture
async def supervisor(make_supervisor: Factory) -> QueueSupervisor:
    return await make_supervisor()
