"""The ``echo`` job kind and small clients of its UWS API (test_http_*.py).

``echo_app`` serves it without executing jobs, so that the tests see every phase
a client moves a job through. ``run_seconds`` reads how long a job ran from any
UWS job document.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web
from testkit import Client

from aiouws.config import Settings
from aiouws.http.app import create_app
from aiouws.kinds import JobKind, ParameterSpec

__all__ = ["ECHO", "UWS", "XSI_NIL", "create", "echo_app", "job_xml", "run_seconds"]

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

ECHO = JobKind(
    name="echo",
    entry_point="aiouws.demo:run",
    parameters=(
        ParameterSpec(name="seconds", type="float", default="0"),
        ParameterSpec(name="needed", required=True),
    ),
)


def echo_app(settings: Settings) -> web.Application:
    """The UWS service of the ``echo`` kind; jobs stay QUEUED (nothing executes)."""
    return create_app(settings, [ECHO], execute=False)


async def create(client: Client, **params: str) -> str:
    resp = await client.post("/jobs/echo", data=params, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert "//jobs" not in location.split("://", 1)[1]
    return location.rsplit("/", 1)[1]


async def job_xml(client: Client, job_id: str, assert_valid: Any, **query: str) -> Any:
    resp = await client.get(f"/jobs/echo/{job_id}", params=query)
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    return assert_valid(await resp.read())


def run_seconds(document: str) -> float:
    """Seconds from ``startTime`` to ``endTime`` in a UWS job document."""
    start, end = (
        datetime.fromisoformat(re.findall(f"<uws:{name}>([^<]+)<", document)[0])
        for name in ("startTime", "endTime")
    )
    return (end - start).total_seconds()
