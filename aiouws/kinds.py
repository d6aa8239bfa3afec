"""Job kinds: one explicit object per kind of job a service offers.

A kind names its parameters (type, default, required), optionally a hook that
parses and checks them before a job is queued (``prepare``), and the runner entry
point (``"package.module:function"``) that a warm runner process imports and
calls for each job. This is how TAP and user-defined services plug in (DaCHS's useruws),
without generated classes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiouws.errors import UsageError
from aiouws.models import JobParameter

if TYPE_CHECKING:
    from aiouws.jobapi import JobContext

__all__ = ["InlineLane", "JobKind", "ParameterSpec", "ParameterType", "kinds_by_name"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

ParameterType = str  # one of "str", "int", "float", "bool", "file"
_TYPES = ("str", "int", "float", "bool", "file")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterSpec:
    """A parameter a job kind understands. Names are case-insensitive."""

    name: str
    type: ParameterType = "str"
    default: str | None = None
    required: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.lower())
        if self.type not in _TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {_TYPES}")

    def check(self, value: str) -> str | None:
        """Return a message if ``value`` does not fit this parameter's type."""
        try:
            if self.type == "int":
                int(value)
            elif self.type == "float":
                float(value)
            elif self.type == "bool" and value.lower() not in (
                "true",
                "false",
                "1",
                "0",
                "yes",
                "no",
            ):
                raise ValueError(value)
        except ValueError:
            return (
                f"parameter {self.name.upper()}: {value!r} is not a valid {self.type}"
            )
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineLane:
    """A kind's fast lane: small jobs run at once inside the server process.

    A job that ``accepts`` takes, when it is queued and one of ``slots`` is
    free, is claimed at once and run by ``run`` (a coroutine function taking the
    same ``JobContext`` as a runner's entry point) on the server's event loop,
    instead of waiting for a runner process. Phases, leases, ABORT, execution
    duration and results behave as for any job. Only for short, I/O-bound work:
    the code shares the server's loop, so it must never block it. ``run`` gets
    the value ``accepts`` was given as ``ctx.prepared``, so it need not parse
    the job's parameters again.
    """

    #: Whether the lane takes a job: given the job's parameters (with defaults),
    #: or what the kind's ``prepare`` hook made of them if it has one.
    accepts: Callable[[Any], bool]
    run: Callable[[JobContext], Awaitable[None]]
    slots: int = 8

    def __post_init__(self) -> None:
        if not inspect.iscoroutinefunction(self.run):
            raise TypeError("an inline lane's run must be a coroutine function")
        if self.slots < 1:
            raise ValueError("an inline lane needs at least one slot")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobKind:
    """One kind of job: its parameters and the code a runner executes for it."""

    name: str
    #: ``"module:function"``; the function takes a ``aiouws.jobapi.JobContext`` and
    #: may be a coroutine function. It is imported inside the runner process only.
    entry_point: str
    parameters: tuple[ParameterSpec, ...] = ()
    description: str = ""
    #: Run-count goal for this kind; None uses the service default.
    slots: int | None = None
    #: Extra argv for the runner (e.g. a DSN for a TAP runner); never secrets in logs.
    runner_args: tuple[str, ...] = ()
    #: Environment variables for the runner processes (kept out of ``repr``: TAP's
    #: hold the query role's DSN, which may carry a password).
    runner_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Optional fast lane for small jobs, run in the server process.
    inline: InlineLane | None = None
    #: Optional: parses and checks a job's parameters (with defaults) when the
    #: job is created with RUN or run, before it is queued; raises
    #: :class:`aiouws.errors.UsageError` for bad ones (the job then ends in ERROR,
    #: never queued). What it returns is what the inline lane's ``accepts`` gets,
    #: and its ``run`` as ``ctx.prepared`` (a runner process parses anew). It may
    #: be a coroutine function (awaited), e.g. to parse off the event loop.
    prepare: Callable[[Sequence[JobParameter]], object] | None = None
    #: Optional: the DALI VOTable error document for a message, served as the
    #: error of a job refused at RUN (missing or bad parameters); without one,
    #: that error is the plain message.
    error_votable: Callable[[str], bytes] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"job kind name {self.name!r} must match {_NAME.pattern}")
        if not _ENTRY.match(self.entry_point):
            raise ValueError(
                f"entry point {self.entry_point!r} must be 'module:function'"
            )

    def spec(self, name: str) -> ParameterSpec | None:
        wanted = name.lower()
        return next((p for p in self.parameters if p.name == wanted), None)

    def problems(self, params: Sequence[JobParameter]) -> list[str]:
        """What keeps ``params`` from running: missing required ones, bad values.

        Unknown parameters are kept but ignored, as DALI asks.
        """
        given = {p.name: p for p in params}
        problems = [
            f"missing required parameter {spec.name.upper()}"
            for spec in self.parameters
            if spec.required and spec.name not in given and spec.default is None
        ]
        for p in params:
            spec = self.spec(p.name)
            if spec is not None and not p.by_reference:
                message = spec.check(p.value)
                if message:
                    problems.append(message)
        return problems

    async def check(
        self, params: Sequence[JobParameter], files: Sequence[JobParameter] = ()
    ) -> tuple[list[str], object]:
        """What keeps a job from running: :meth:`problems`, else what the
        ``prepare`` hook refuses; if nothing, what the hook made of ``params``
        with defaults and ``files`` (a new job's uploads), or those parameters
        themselves for a kind without a hook."""
        problems = self.problems(params)
        if problems:
            return problems, None
        full = self.with_defaults(params) + tuple(files)
        if self.prepare is None:
            return [], full
        try:
            prepared = self.prepare(full)
            if inspect.isawaitable(prepared):
                prepared = await prepared
            return [], prepared
        except UsageError as exc:
            return [exc.message], None

    def with_defaults(self, params: Sequence[JobParameter]) -> tuple[JobParameter, ...]:
        """``params`` plus declared defaults for those not given."""
        given = {p.name for p in params}
        extra = tuple(
            JobParameter(name=s.name, value=s.default)
            for s in self.parameters
            if s.default is not None and s.name not in given
        )
        return tuple(params) + extra


def kinds_by_name(kinds: Iterable[JobKind]) -> dict[str, JobKind]:
    """Index kinds by name, refusing duplicates."""
    table: dict[str, JobKind] = {}
    for kind in kinds:
        if kind.name in table:
            raise ValueError(f"job kind {kind.name!r} given twice")
        table[kind.name] = kind
    return table
