"""aiouws: an IVOA UWS 1.1 job service on aiohttp, asyncio and PostgreSQL.

Public API: describe job kinds with :class:`JobKind` and :class:`ParameterSpec`;
the web side (``create_app``, ``uws_context``, ``uws_subapp``) lives in
:mod:`aiouws.http`. This package itself imports no web stack, because runner
processes import it too.
"""

from aiouws.config import Settings
from aiouws.errors import (
    InvalidPhaseError,
    JobNotFound,
    NotFound,
    PermissionDenied,
    UsageError,
    UWSError,
)
from aiouws.kinds import InlineLane, JobKind, ParameterSpec
from aiouws.models import Job, JobParameter, JobResult
from aiouws.phases import Action, Phase

__all__ = [
    "Action",
    "InlineLane",
    "InvalidPhaseError",
    "Job",
    "JobKind",
    "JobNotFound",
    "JobParameter",
    "JobResult",
    "NotFound",
    "ParameterSpec",
    "PermissionDenied",
    "Phase",
    "Settings",
    "UWSError",
    "UsageError",
]
