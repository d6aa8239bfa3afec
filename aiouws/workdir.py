"""Per-job working directories ``<root>/<job_id>/`` and safe file names inside them."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from aiouws.errors import JobNotFound, UsageError

__all__ = ["JOB_ID_PATTERN", "JobDirs", "new_job_id", "safe_file_name"]

#: Job ids: URL-safe base64 of 16 random bytes (128 bits), 22 characters.
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_job_id() -> str:
    """A fresh unguessable job id (128 random bits), never starting with ``-``:
    command lines (``aiouws jobs show ID``, shells) would read it as an option."""
    while True:
        job_id = secrets.token_urlsafe(16)
        if not job_id.startswith("-"):
            return job_id


def safe_file_name(name: str) -> str:
    """Return ``name`` if it is a plain, harmless file name; raise UsageError if not.

    No path separators, no leading dot, no ``..``, no control characters: a name
    that passes can never leave the job directory.
    """
    if not _SAFE_NAME.match(name) or ".." in name:
        raise UsageError(
            f"invalid file name {name!r}: use letters, digits, '.', '_', '-'"
        )
    return name


class JobDirs:
    """Creates, finds and removes job directories below one root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str) -> Path:
        """The directory of ``job_id`` (not created). Raises JobNotFound on bad ids."""
        if not JOB_ID_PATTERN.match(job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def create(self, job_id: str) -> Path:
        path = self.path(job_id)
        path.mkdir(mode=0o750, parents=False, exist_ok=True)
        return path

    def file(self, job_id: str, name: str) -> Path:
        """Path of file ``name`` inside the job's directory (name is checked)."""
        return self.path(job_id) / safe_file_name(name)

    def remove(self, job_id: str) -> None:
        """Delete the job's directory and everything in it (no error if absent)."""
        if JOB_ID_PATTERN.match(job_id):
            shutil.rmtree(self.root / job_id, ignore_errors=True)
