"""Files sent with a job creation: moved into the new job's directory and named
by by-reference parameters (``{upload_url}/{job_id}/uploads/{name}``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiouws.models import JobParameter
from aiouws.workdir import JobDirs

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


def place_uploads(dirs: JobDirs, job_id: str, uploads: Sequence[Upload]) -> None:
    """Move the uploaded files into the new job's directory (``upload-<name>``)."""
    for upload in uploads:
        dirs.create(job_id)
        upload.path.replace(dirs.file(job_id, "upload-" + upload.name))
