"""aiouws: an IVOA UWS 1.1 job service on aiohttp, asyncio and PostgreSQL.

Public API: build a standalone app with :func:`create_app`, or mount UWS job lists
inside your own aiohttp app with :func:`uws_context` and :func:`uws_subapp`;
describe your own job kinds with :class:`JobKind` and :class:`ParameterSpec`.
"""

from .config import Settings
from .errors import (
    InvalidPhaseError,
    JobNotFound,
    NotFound,
    PermissionDenied,
    UsageError,
    UWSError,
)
from .http.app import create_app, uws_context, uws_subapp
from .kinds import JobKind, ParameterSpec
from .models import Job, JobParameter, JobResult
from .phases import Action, Phase

__all__ = [
    "Action",
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
    "create_app",
    "uws_context",
    "uws_subapp",
]
