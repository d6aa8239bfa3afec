"""TAP errors: what went wrong with a query, as the client should read it.

They are :class:`aiouws.errors.UWSError` s: each carries its HTTP status, and its
body is the DALI error document (a VOTable with ``QUERY_STATUS=ERROR``), so the
aiouws error middleware answers for them wherever they are raised. The runner
side imports this module too (no web stack here).
"""

from __future__ import annotations

from aiouws.errors import DatabaseUnavailable, ErrorCode, UWSError
from taprunner.formats.votable import error_document

__all__ = [
    "VOTABLE_MEDIA_TYPE",
    "DiskFull",
    "ReplicaBehind",
    "ServiceBusy",
    "TapError",
    "TapUnavailable",
    "TapQueryError",
    "TapRequestTooLarge",
    "TapUsageError",
]

#: Media type of the DALI error document.
VOTABLE_MEDIA_TYPE = "application/x-votable+xml"


class TapError(UWSError):
    """Base of TAP failures; the message is shown to the client as is."""

    status = 500
    media_type = VOTABLE_MEDIA_TYPE

    def render(self) -> bytes:
        """The DALI error VOTable with the message as its QUERY_STATUS text."""
        return error_document(self.message)


class TapUsageError(TapError):
    """The request was wrong: bad parameters, bad ADQL, unknown tables."""

    status = 400
    error_code = ErrorCode.USAGE_ERROR


class TapRequestTooLarge(TapError):
    """The request's body is over a limit (``max_request_bytes``, uploads)."""

    status = 413
    error_code = ErrorCode.USAGE_ERROR


class TapQueryError(TapError):
    """The database refused or failed the query (timeout, data error)."""

    status = 400
    error_code = ErrorCode.USAGE_ERROR


class ServiceBusy(TapError):
    """Every pooled connection stayed in use while the request waited for one."""

    status = 503
    error_code = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("service busy, retry in a few seconds")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class ReplicaBehind(TapError):
    """The catalogue replica the query went to has not replayed the caller's
    session role yet (made on the primary a moment ago, with a grant): retry."""

    status = 503
    error_code = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "your access rights are newer than what the catalogue replica has"
            " replayed yet (a grant made moments ago); retry in a few seconds"
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class TapUnavailable(TapError, DatabaseUnavailable):
    """The database is unavailable (refused, restarting, lost): a DALI error
    document with 503 and ``Retry-After`` (the TAP app's ``UNAVAILABLE_ERROR``)."""

    status = 503
    error_code = ErrorCode.SERVICE_UNAVAILABLE


class DiskFull(TapError):
    """A job's result (or its other files) did not fit on the jobs directory's
    disk."""

    status = 507
    error_code = ErrorCode.SERVICE_UNAVAILABLE
