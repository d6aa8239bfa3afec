"""The local results store: a directory per job below one root (the embedded
default, and a file system shared by all hosts, e.g. NFS). Files are written in
place, served by the server itself; ``redirect`` never applies.

Stdlib only: runner processes import it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from aiouws.results.store import (
    JOB_ID,
    AsyncWriter,
    Served,
    StoreSpec,
    Writer,
    check_name,
)

__all__ = ["LocalOutputs", "LocalStore"]


class LocalOutputs:
    """A job's files in its directory ``workdir``."""

    local = True

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextmanager
    def open(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> Iterator[Writer]:
        """No temp file and rename: nobody reads a result before it is
        published, and results become visible with the job's final phase."""
        target = self.workdir / check_name(name)
        out = open(target, "wb")  # noqa: SIM115 - closed below, removed on failure
        try:
            with out:
                yield out
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    @asynccontextmanager
    async def open_async(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> AsyncIterator[AsyncWriter]:
        """Local writes go to the page cache: written as they come (an inline
        lane's job directory was made off the event loop before its run)."""
        with self.open(name, media_type, download_name) as out:
            yield _AsyncFile(out)

    def put(self, name: str, data: bytes, media_type: str) -> None:
        target = self.workdir / check_name(name)
        aside = self.workdir / f".{name}.tmp"
        try:
            aside.write_bytes(data)
            os.replace(aside, target)
        except BaseException:
            aside.unlink(missing_ok=True)
            raise

    def put_file(self, name: str, source: Path, media_type: str) -> None:
        target = self.workdir / check_name(name)
        if source.resolve() != target.resolve():
            os.replace(source, target)

    def size(self, name: str) -> int | None:
        try:
            return (self.workdir / check_name(name)).stat().st_size
        except OSError:
            return None

    def fetch(self, name: str) -> Path | None:
        path = self.workdir / check_name(name)
        return path if path.is_file() else None


class _AsyncFile:
    def __init__(self, out: Writer) -> None:
        self._out = out

    async def write(self, data: bytes, /) -> int:
        return self._out.write(data)


class LocalStore:
    """Job directories ``<root>/<job_id>/`` holding the files themselves."""

    spec = StoreSpec(kind="local")

    def __init__(self, root: Path) -> None:
        self.root = root

    def job_dir(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"invalid job id {job_id!r}")
        return self.root / job_id

    def outputs(self, job_id: str, workdir: Path) -> LocalOutputs:
        return LocalOutputs(workdir)

    def _file(self, job_id: str, name: str) -> Path:
        return self.job_dir(job_id) / check_name(name)

    async def put_file(
        self, job_id: str, name: str, source: Path, media_type: str
    ) -> None:
        target = self._file(job_id, name)
        target.parent.mkdir(mode=0o750, exist_ok=True)
        source.replace(target)

    async def put(self, job_id: str, name: str, data: bytes, media_type: str) -> None:
        self.job_dir(job_id).mkdir(mode=0o750, exist_ok=True)
        LocalOutputs(self.job_dir(job_id)).put(name, data, media_type)

    async def size(self, job_id: str, name: str) -> int | None:
        try:
            return self._file(job_id, name).stat().st_size
        except OSError:
            return None

    async def serve(
        self, job_id: str, name: str, media_type: str, *, redirect: bool
    ) -> Served | None:
        path = self._file(job_id, name)
        return Served(media_type, path=path) if path.is_file() else None

    async def remove_job(self, job_id: str) -> None:
        if JOB_ID.match(job_id):
            await asyncio.to_thread(
                shutil.rmtree, self.root / job_id, ignore_errors=True
            )

    async def job_ids(self) -> set[str]:
        return await asyncio.to_thread(self._dirs)

    def _dirs(self) -> set[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return set()
        return {
            e.name
            for e in entries
            if JOB_ID.match(e.name) and e.is_dir(follow_symlinks=False)
        }

    async def last_modified(self, job_id: str) -> float | None:
        try:
            return await asyncio.to_thread(_newest, self.job_dir(job_id))
        except OSError:
            return None

    async def close(self) -> None:
        return None


def _newest(directory: Path) -> float:
    """The latest modification time of ``directory`` and its files."""
    newest = directory.stat().st_mtime
    for entry in os.scandir(directory):
        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest
