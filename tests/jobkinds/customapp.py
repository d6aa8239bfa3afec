"""An application of its own job kinds for ``aiouws serve --app customapp:factory``.

The ``shout`` kind returns its ``word`` in capitals. The factory follows the
contract of :mod:`aiouws.cli.plugins`: it gets the settings (DSN resolved) and the
command-line options and returns the ``web.Application``.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from aiouws.config import Settings
from aiouws.http.app import create_app
from aiouws.jobapi import JobContext
from aiouws.kinds import JobKind, ParameterSpec

SHOUT = JobKind(
    name="shout",
    entry_point="customapp:run",
    parameters=(ParameterSpec(name="word", required=True),),
    description="Returns WORD in capitals.",
)


def run(ctx: JobContext) -> None:
    word = ctx.parameters["word"].upper()
    ctx.add_result("result", word.encode(), "text/plain", file_name="result.txt")


def factory(settings: Settings, options: argparse.Namespace) -> web.Application:
    assert options.command == "serve"
    return create_app(settings, [SHOUT])
