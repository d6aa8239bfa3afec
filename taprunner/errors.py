"""TAP errors: what went wrong with a query, as the client should read it."""

from __future__ import annotations

__all__ = ["ServiceBusy", "TapError", "TapQueryError", "TapUsageError"]


class TapError(Exception):
    """Base of TAP failures; the message is shown to the client as is."""

    #: HTTP status for the sync endpoint.
    status = 500


class TapUsageError(TapError):
    """The request was wrong: bad parameters, bad ADQL, unknown tables."""

    status = 400


class TapQueryError(TapError):
    """The database refused or failed the query (timeout, data error)."""

    status = 400


class ServiceBusy(TapError):
    """Every pooled connection stayed in use while the request waited for one."""

    status = 503

    def __init__(self) -> None:
        super().__init__("service busy, retry in a few seconds")
