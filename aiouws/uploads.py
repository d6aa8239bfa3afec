"""Files sent with a job creation: placed in the results store as the new job's
``upload-<name>`` (any host may run the job) and named by by-reference
parameters (``{upload_url}/{job_id}/uploads/{name}``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiouws.models import JobParameter
from aiouws.results.store import ResultStore

__all__ = ["Upload", "place_uploads", "upload_parameters"]


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent with a job creation (multipart), already written to a temp file."""

    name: str  #: the form field name, used as the file name in the job dir
    path: Path


def upload_parameters(
    job_id: str, uploads: Sequence[Upload], upload_url: str
) -> tuple[JobParameter, ...]:
    """The by-reference parameters naming a new job's uploaded files."""
    return tuple(
        JobParameter(
            name=upload.name.lower(),
            value=f"{upload_url}/{job_id}/uploads/{upload.name}",
            by_reference=True,
        )
        for upload in uploads
    )


async def place_uploads(
    results: ResultStore, job_id: str, uploads: Sequence[Upload]
) -> None:
    """Store the uploaded files as the new job's ``upload-<name>`` (the spooled
    file is moved, or uploaded and removed). The name is the form field's,
    checked already (:func:`aiouws.workdir.safe_file_name`)."""
    for upload in uploads:
        await results.put_file(
            job_id, "upload-" + upload.name, upload.path, "application/octet-stream"
        )
