"""The results store (:mod:`.store`): a job's results, error documents and
uploads, on a local or shared file system (:mod:`.local`, the default) or in
S3-compatible object storage (:mod:`.s3`, the ``s3`` extra: obstore).

Stdlib only until an S3 store is asked for: runner processes import this.
"""

from __future__ import annotations

from pathlib import Path

from aiouws.results.local import LocalOutputs, LocalStore
from aiouws.results.store import JobOutputs, ResultStore, Served, StoreSpec

__all__ = [
    "JobOutputs",
    "LocalStore",
    "ResultStore",
    "Served",
    "StoreSpec",
    "job_outputs",
    "open_store",
]

_opened: dict[StoreSpec, object] = {}


def open_store(
    spec: StoreSpec, root: Path, *, presign_seconds: float = 300.0
) -> ResultStore:
    """The server side of the store ``spec`` says (``root``: the local store's)."""
    if spec.kind == "local":
        return LocalStore(root)
    if spec.kind == "s3":
        from aiouws.results.s3 import S3Results

        return S3Results(spec, presign_seconds=presign_seconds)
    raise ValueError(f"unknown results store {spec.kind!r}")


def job_outputs(spec: StoreSpec | None, job_id: str, workdir: Path) -> JobOutputs:
    """The runner side of the store for one job; ``workdir``: its local
    directory (the files themselves, or scratch). One client per store and
    process, kept warm between jobs."""
    if spec is None or spec.kind == "local":
        return LocalOutputs(workdir)
    from aiouws.results.s3 import S3Outputs, s3_store

    client = _opened.get(spec)
    if client is None:
        client = _opened[spec] = s3_store(spec)
    return S3Outputs(client, job_id, workdir)  # type: ignore[arg-type]
