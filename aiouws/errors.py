"""The one exception hierarchy of aiouws; ``http/middleware.py`` maps it to HTTP.

Every error carries its HTTP status and renders its own body (:meth:`UWSError.render`,
``text/plain`` here); a job kind's errors may subclass :class:`UWSError` with another
form (TAP's are DALI VOTable documents). Stdlib only: runner processes import it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

__all__ = [
    "DATABASE_RETRY_AFTER",
    "DatabaseUnavailable",
    "AuthenticationRequired",
    "CredentialsBusy",
    "CrossSiteRequest",
    "TooManyFailures",
    "ErrorCode",
    "error_body",
    "InvalidPhaseError",
    "JobNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "StorageFull",
    "StoreError",
    "TooManyJobs",
    "Unauthorized",
    "UWSError",
    "UsageError",
]


class ErrorCode(StrEnum):
    """Machine-readable error kinds; the first word of every error body."""

    USAGE_ERROR = "UsageError"
    UNAUTHORIZED = "Unauthorized"
    PERMISSION_DENIED = "PermissionDenied"
    INVALID_PHASE = "InvalidPhase"
    NOT_FOUND = "NotFound"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    TOO_MANY_JOBS = "TooManyJobs"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL_ERROR = "InternalError"


def error_body(code: ErrorCode, message: str, detail: str | None = None) -> str:
    """``UsageError: LAST must be a positive integer`` (+ detail on its own line)."""
    body = f"{code.value}: {message}\n"
    if detail:
        body += f"\n{detail}\n"
    return body


class UWSError(Exception):
    """Base of every error a client may see; carries its HTTP status and body."""

    status: ClassVar[int] = 500
    error_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    #: Media type of :meth:`render`'s body (sent with ``charset=utf-8``).
    media_type: ClassVar[str] = "text/plain"

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def render(self) -> bytes:
        """The response body, UTF-8: ``UsageError: message`` and the detail."""
        return error_body(self.error_code, self.message, self.detail).encode()

    def headers(self) -> dict[str, str]:
        """Response headers besides Content-Type (none unless a subclass says)."""
        return {}


class UsageError(UWSError):
    """Malformed or invalid input from the client."""

    status = 400
    error_code = ErrorCode.USAGE_ERROR


class Unauthorized(UWSError):
    """Credentials are missing or wrong (HTTP basic authentication)."""

    status = 401
    error_code = ErrorCode.UNAUTHORIZED

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="aiouws", charset="UTF-8"'}


class PermissionDenied(UWSError):
    """The job belongs to someone else, or the client is not allowed the action."""

    status = 403
    error_code = ErrorCode.PERMISSION_DENIED


class CrossSiteRequest(PermissionDenied):
    """A state-changing request sent by a browser from another site's page."""


class InvalidPhaseError(UWSError):
    """The request is not allowed in the job's current phase."""

    status = 403
    error_code = ErrorCode.INVALID_PHASE


class NotFound(UWSError):
    """No such resource."""

    status = 404
    error_code = ErrorCode.NOT_FOUND


class JobNotFound(NotFound):
    """No job with this id (or none that this owner may see)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class PayloadTooLarge(UWSError):
    """The request body or an upload exceeds a configured limit."""

    status = 413
    error_code = ErrorCode.PAYLOAD_TOO_LARGE


class StorageFull(UWSError):
    """A request's files (e.g. an upload) did not fit on the jobs directory's
    disk: 507, not the client's fault and not a bug."""

    status = 507
    error_code = ErrorCode.SERVICE_UNAVAILABLE


class TooManyJobs(UWSError):
    """An owner's queued or executing jobs are at their configured cap."""

    status = 429
    error_code = ErrorCode.TOO_MANY_JOBS

    def __init__(self, message: str, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


#: Seconds a client is told to wait (``Retry-After``) while the database is away.
DATABASE_RETRY_AFTER = 5


class ServiceUnavailable(UWSError):
    """The service cannot answer now (database down, shutting down); the client
    is told when to retry (``Retry-After``)."""

    status = 503
    error_code = ErrorCode.SERVICE_UNAVAILABLE
    retry_after: ClassVar[int] = DATABASE_RETRY_AFTER

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be used now: connection refused, starting up or shutting
    down (SQLSTATE 57P01/57P03), connection lost mid-query, pool closed.

    Which low-level failures mean this is decided in one place,
    ``aiouws.storage.outage``; ``http/middleware.py`` answers every one of them
    with this error (a job kind's own form where it registered one).
    """


class StoreError(DatabaseUnavailable):
    """The job database failed in a way the client cannot fix."""


# -- credentials under attack (issue 10: password floods, anonymous refused) --


class AuthenticationRequired(Unauthorized):
    """An anonymous request to a service that requires authentication."""


class TooManyFailures(UWSError):
    """Too many wrong passwords from this client or for this user: wait."""

    status = 429
    error_code = ErrorCode.UNAUTHORIZED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class CredentialsBusy(ServiceUnavailable):
    """Too many passwords are being checked at once; try again shortly."""

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}
