"""The S3 results store: objects ``[prefix]<job_id>/<name>`` in one bucket of
any S3-compatible object storage, through obstore (Rust's ``object_store``).

Runners write results as they stream, by multipart upload in parts of
:data:`PART_BYTES` with at most :data:`PARTS_IN_FLIGHT` parts uploading at once
(so a runner holds at most about ``PART_BYTES * (PARTS_IN_FLIGHT + 1)`` bytes);
nothing is written to the local disk. Each object carries its Content-Type and
a Content-Disposition naming the file, which a presigned GET returns as they are.
Credentials come from ``credentials_file`` (TOML: ``access_key_id``,
``secret_access_key``, optionally ``session_token``) or from the standard
``AWS_*`` variables; they are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import S3Store

from aiouws.errors import ResultsUnavailable
from aiouws.results.store import (
    JOB_ID,
    AsyncWriter,
    Served,
    StoreSpec,
    Writer,
    object_key,
)

if TYPE_CHECKING:
    from obstore import WritableFile

__all__ = ["PARTS_IN_FLIGHT", "PART_BYTES", "S3Outputs", "S3Results", "s3_store"]

log = logging.getLogger(__name__)

#: Bytes per multipart part (S3's minimum is 5 MiB).
PART_BYTES = 8 * 1024 * 1024
#: Parts of one result uploading at once.
PARTS_IN_FLIGHT = 4
#: Bytes per chunk when a file is streamed through the server.
STREAM_CHUNK = 1024 * 1024
_CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")


def s3_store(spec: StoreSpec) -> S3Store:
    """The obstore S3Store of ``spec`` (credentials from its file or the
    environment)."""
    config: dict[str, Any] = {}
    if spec.endpoint:
        config["endpoint"] = spec.endpoint
    if spec.region:
        config["region"] = spec.region
    if spec.credentials_file:
        with open(spec.credentials_file, "rb") as handle:
            secrets = tomllib.load(handle)
        config.update({k: str(secrets[k]) for k in _CREDENTIAL_KEYS if k in secrets})
    return S3Store(
        spec.bucket,
        prefix=spec.prefix.strip("/") or None,
        config=config,  # type: ignore[arg-type]
        client_options={"allow_http": spec.endpoint.startswith("http://")},
    )


def _attributes(media_type: str, download_name: str | None) -> dict[str, str]:
    attributes = {"Content-Type": media_type}
    if download_name is not None:
        attributes["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return attributes


class _Upload:
    """An open multipart upload, written like a file."""

    def __init__(self, file: WritableFile) -> None:
        self._file = file

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)


class S3Outputs:
    """A job's files as objects; ``workdir`` is scratch (uploads fetched there)."""

    local = False

    def __init__(self, store: S3Store, job_id: str, workdir: Path) -> None:
        self._store = store
        self._job_id = job_id
        self.workdir = workdir

    def _key(self, name: str) -> str:
        return object_key(self._job_id, name)

    @contextmanager
    def open(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> Iterator[Writer]:
        key = self._key(name)
        file = obstore.open_writer(
            self._store,
            key,
            attributes=_attributes(media_type, download_name or name),
            buffer_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        try:
            yield _Upload(file)
        except BaseException:
            # object_store cannot abort a buffered writer: finish it, delete it.
            try:
                file.close()
                obstore.delete(self._store, key)
            except Exception as exc:  # the job's own failure is what matters
                log.warning("cannot remove the partial object %s: %s", key, exc)
            raise
        file.close()

    @asynccontextmanager
    async def open_async(
        self, name: str, media_type: str, download_name: str | None = None
    ) -> AsyncIterator[AsyncWriter]:
        key = self._key(name)
        file = obstore.open_writer_async(
            self._store,
            key,
            attributes=_attributes(media_type, download_name or name),
            buffer_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        try:
            yield file
        except BaseException:
            try:
                await file.close()
                await obstore.delete_async(self._store, key)
            except Exception as exc:  # the job's own failure is what matters
                log.warning("cannot remove the partial object %s: %s", key, exc)
            raise
        await file.close()

    def put(self, name: str, data: bytes, media_type: str) -> None:
        obstore.put(
            self._store,
            self._key(name),
            data,
            attributes=_attributes(media_type, None),
        )

    def put_file(self, name: str, source: Path, media_type: str) -> None:
        obstore.put(
            self._store,
            self._key(name),
            source,
            attributes=_attributes(media_type, name),
            chunk_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        source.unlink(missing_ok=True)

    def size(self, name: str) -> int | None:
        try:
            return int(obstore.head(self._store, self._key(name))["size"])
        except FileNotFoundError:
            return None

    def fetch(self, name: str) -> Path | None:
        target = self.workdir / name
        try:
            result = obstore.get(self._store, self._key(name))
        except FileNotFoundError:
            return None
        with open(target, "wb") as out:
            for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                out.write(chunk)
        return target


class S3Results:
    """The server side of the S3 store."""

    def __init__(self, spec: StoreSpec, *, presign_seconds: float = 300.0) -> None:
        self.spec = spec
        self._store = s3_store(spec)
        self._lifetime = timedelta(seconds=presign_seconds)

    def outputs(self, job_id: str, workdir: Path) -> S3Outputs:
        return S3Outputs(self._store, job_id, workdir)

    async def put_file(
        self, job_id: str, name: str, source: Path, media_type: str
    ) -> None:
        with _unavailable():
            await obstore.put_async(
                self._store,
                object_key(job_id, name),
                source,
                attributes=_attributes(media_type, name),
                chunk_size=PART_BYTES,
                max_concurrency=PARTS_IN_FLIGHT,
            )
        source.unlink(missing_ok=True)

    async def put(self, job_id: str, name: str, data: bytes, media_type: str) -> None:
        with _unavailable():
            await obstore.put_async(
                self._store,
                object_key(job_id, name),
                data,
                attributes=_attributes(media_type, None),
            )

    async def size(self, job_id: str, name: str) -> int | None:
        with _unavailable():
            try:
                meta = await obstore.head_async(self._store, object_key(job_id, name))
            except FileNotFoundError:
                return None
        return int(meta["size"])

    async def serve(
        self, job_id: str, name: str, media_type: str, *, redirect: bool
    ) -> Served | None:
        key = object_key(job_id, name)
        with _unavailable():
            if redirect:
                if await self.size(job_id, name) is None:
                    return None
                url = await obstore.sign_async(self._store, "GET", key, self._lifetime)
                return Served(media_type, url=url)
            try:
                result = await obstore.get_async(self._store, key)
            except FileNotFoundError:
                return None
        return Served(
            media_type,
            chunks=_chunks(result.stream(min_chunk_size=STREAM_CHUNK)),
            size=int(result.meta["size"]),
        )

    async def remove_job(self, job_id: str) -> None:
        if not JOB_ID.match(job_id):
            return
        with _unavailable():
            keys = [
                meta["path"]
                async for batch in obstore.list(self._store, f"{job_id}/")
                for meta in batch
            ]
            if keys:
                await obstore.delete_async(self._store, keys)

    async def job_ids(self) -> set[str]:
        with _unavailable():
            listing = await obstore.list_with_delimiter_async(self._store, None)
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"])
        return {name for name in names if JOB_ID.match(name)}

    async def last_modified(self, job_id: str) -> float | None:
        with _unavailable():
            newest: datetime | None = None
            async for batch in obstore.list(self._store, f"{job_id}/"):
                for meta in batch:
                    when = meta["last_modified"]
                    newest = when if newest is None else max(newest, when)
        return None if newest is None else newest.astimezone(UTC).timestamp()

    async def close(self) -> None:
        return None


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    """The object's bytes; the store failing midway is a ResultsUnavailable
    (a page's preview says so instead of a 500)."""
    with _unavailable():
        async for chunk in stream:
            yield bytes(chunk)


@contextmanager
def _unavailable() -> Iterator[None]:
    """Failures of the object store (other than a missing object) as a 503."""
    try:
        yield
    except (FileNotFoundError, ValueError):
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("results store failed: %s", exc)
        raise ResultsUnavailable("the results store cannot be reached") from exc
