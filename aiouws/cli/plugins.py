"""The extension points of the ``aiouws`` command: ``Plugin`` and ``--app``.

An application built on aiouws (e.g. TAP, in ``taprunner.cli``) extends the
command line with a :class:`Plugin` passed to :func:`.command.main`::

    def main(argv=None):
        return aiouws.cli.command.main(argv, plugins=[MyPlugin()], module="mypackage")

where ``python -m mypackage`` runs that ``main`` (``serve --workers N`` starts
its workers that way). A plug-in may add commands, options of ``serve``, its own
settings (file keys with its prefix) and the application ``serve`` runs.

Without a plug-in, ``aiouws serve --app MODULE:FACTORY`` serves any job kinds: the
factory is an :data:`AppFactory`, called as ``factory(settings, options)`` with the
:class:`~aiouws.config.Settings` (DSN resolved: the embedded database runs by
then, so :meth:`aiouws.storage.database.Database.of` works) and the parsed command-line
options (an ``argparse.Namespace``); it returns the ``web.Application`` to run,
typically ``aiouws.http.app.create_app(settings, [MY_KIND, ...])``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from aiouws.config import ConfigError, Settings

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["AdminCommand", "AppFactory", "Commands", "Plugin", "load_factory"]

#: ``factory(settings, options) -> web.Application`` (see the module docstring).
AppFactory: TypeAlias = "Callable[[Settings, argparse.Namespace], web.Application]"
#: A database command: ``handler(conn, settings, options) -> exit code``. The
#: connection is open and the aiouws schema is up to date.
AdminCommand: TypeAlias = Callable[
    [asyncpg.Connection, Settings, argparse.Namespace], Awaitable[int]
]
#: Where commands are added (``parser.add_subparsers()``).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Plugin:
    """An extension of the ``aiouws`` command; override what you need.

    A command added by :meth:`add_commands` names its handler with
    ``parser.set_defaults(admin=handler)`` (an :data:`AdminCommand`).
    """

    #: Words added to the program's description, e.g. ``"TAP 1.1 server"``.
    title: str = ""
    #: Prefix of the plug-in's own keys in the TOML file (e.g. ``"tap_"``),
    #: which ``Settings.load`` then leaves alone.
    settings_prefix: str = ""

    def add_commands(self, commands: Commands) -> None:
        """Add commands next to ``serve``, ``db``, ``jobs``, ..."""

    def add_serve_options(self, serve: argparse.ArgumentParser) -> None:
        """Add options of the ``serve`` command."""

    def configure(self, settings: Settings, options: argparse.Namespace) -> None:
        """Check the plug-in's own settings before any command runs.

        Raises
        ------
        ConfigError
            For an invalid setting (the command then exits with status 2).
        """

    def jobs_path(self, kind: str) -> str | None:
        """The URL path of ``kind``'s job list if the plug-in serves that kind
        (e.g. TAP's ``/tap/async``); None: not its kind (then ``/jobs/{kind}``,
        where ``create_app`` mounts it). ``jobs show`` links results with it."""
        return None

    def serve_app(
        self, settings: Settings, options: argparse.Namespace
    ) -> web.Application | None:
        """The application ``serve`` runs without ``--app`` (None: not ours)."""
        return None

    def worker_args(self, options: argparse.Namespace, index: int) -> list[str]:
        """The plug-in's ``serve`` options for worker ``index`` of ``--workers``."""
        return []


def load_factory(spec: str) -> AppFactory:
    """The factory named by ``MODULE:FACTORY`` (the module is imported).

    Raises
    ------
    ConfigError
        If ``spec`` is malformed or names nothing callable.
    """
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigError(f"--app must be MODULE:FACTORY, not {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--app {spec}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"--app {spec}: not callable")
    return factory  # type: ignore[no-any-return]
