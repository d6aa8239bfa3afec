"""The UWS 1.1 phase machine: phases, client actions and the transition table.

Pure and synchronous: no I/O, no hooks. The job store enforces the same table
with guarded SQL updates (``WHERE phase = ANY(allowed)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "ACTIVE_PHASES",
    "FINAL_PHASES",
    "TRANSITIONS",
    "Action",
    "ErrorType",
    "Phase",
    "PhaseChangeError",
    "allowed_sources",
    "check_transition",
    "effective_actions",
    "resolve_action",
]


class Phase(StrEnum):
    """The phases of UWS 1.1; values are exactly the words of the standard."""

    PENDING = "PENDING"  #: accepted, not yet committed to run
    QUEUED = "QUEUED"  #: committed to run, waiting for a slot
    EXECUTING = "EXECUTING"  #: a runner works on it
    COMPLETED = "COMPLETED"  #: finished with results
    ERROR = "ERROR"  #: failed; see the error summary
    ABORTED = "ABORTED"  #: stopped by a client, a limit or the operator
    UNKNOWN = "UNKNOWN"  #: the service cannot tell
    HELD = "HELD"  #: waiting for the service to allow it to queue
    SUSPENDED = "SUSPENDED"  #: paused by the service
    ARCHIVED = "ARCHIVED"  #: results deleted, metadata kept


class Action(StrEnum):
    """What a client may ask of a job's phase (``POST {job}/phase``)."""

    RUN = "RUN"
    ABORT = "ABORT"
    SUSPEND = "SUSPEND"
    ARCHIVE = "ARCHIVE"


class ErrorType(StrEnum):
    """The ``type`` attribute of a UWS error summary."""

    FATAL = "fatal"
    TRANSIENT = "transient"


FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
ACTIVE_PHASES = frozenset({Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED, Phase.HELD})

#: Every legal phase change: ``TRANSITIONS[old]`` is the set of phases ``old`` may
#: become. A change to the same phase is never listed and never legal.
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.QUEUED, Phase.HELD, Phase.ABORTED, Phase.ERROR}),
    Phase.HELD: frozenset({Phase.QUEUED, Phase.PENDING, Phase.ABORTED, Phase.ERROR}),
    Phase.QUEUED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR, Phase.HELD}),
    Phase.EXECUTING: frozenset(
        {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.SUSPENDED, Phase.QUEUED}
    ),
    Phase.SUSPENDED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.COMPLETED: frozenset({Phase.ARCHIVED}),
    Phase.ERROR: frozenset({Phase.ARCHIVED}),
    Phase.ABORTED: frozenset({Phase.ARCHIVED}),
    Phase.ARCHIVED: frozenset(),
    Phase.UNKNOWN: frozenset({Phase.ERROR, Phase.ABORTED}),
}

#: What each client action turns a phase into. Phases missing from an action's
#: map refuse it, except those in ``_IGNORED`` which accept it as a no-op.
_ACTION_TARGETS: Mapping[Action, Mapping[Phase, Phase]] = {
    Action.RUN: {Phase.PENDING: Phase.QUEUED, Phase.HELD: Phase.QUEUED},
    Action.ABORT: {
        phase: Phase.ABORTED
        for phase in (
            Phase.PENDING,
            Phase.HELD,
            Phase.QUEUED,
            Phase.EXECUTING,
            Phase.SUSPENDED,
        )
    },
    Action.ARCHIVE: {
        phase: Phase.ARCHIVED for phase in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED)
    },
    Action.SUSPEND: {},
}

#: (action, phase) pairs accepted and ignored, as DaCHS's ``ignoreAndLog``: running
#: a job that already runs or ran, aborting one already aborted.
_IGNORED: frozenset[tuple[Action, Phase]] = frozenset(
    {
        (Action.RUN, p)
        for p in (
            Phase.QUEUED,
            Phase.EXECUTING,
            Phase.COMPLETED,
            Phase.ERROR,
            Phase.ABORTED,
            Phase.SUSPENDED,
        )
    }
    | {(Action.ABORT, Phase.ABORTED), (Action.ARCHIVE, Phase.ARCHIVED)}
)


class PhaseChangeError(Exception):
    """A phase change or action that the phase machine does not allow."""

    def __init__(self, phase: Phase, wanted: str) -> None:
        super().__init__(f"job is {phase.value}: cannot {wanted}")
        self.phase = phase
        self.wanted = wanted


def check_transition(old: Phase, new: Phase) -> None:
    """Raise :class:`PhaseChangeError` unless ``old`` may become ``new``."""
    if new not in TRANSITIONS[old]:
        raise PhaseChangeError(old, f"change to {new.value}")


def allowed_sources(new: Phase) -> frozenset[Phase]:
    """All phases from which ``new`` may be reached (for guarded SQL updates)."""
    return frozenset(old for old, targets in TRANSITIONS.items() if new in targets)


def effective_actions(phase: Phase) -> tuple[Action, ...]:
    """The actions that change ``phase`` (not refused, not ignored), in
    :class:`Action` order: what a page offers."""
    return tuple(a for a in Action if phase in _ACTION_TARGETS[a])


def resolve_action(phase: Phase, action: Action) -> Phase | None:
    """The phase ``action`` turns ``phase`` into, or None when it is ignored.

    Raises
    ------
    PhaseChangeError
        When the action is illegal in this phase.
    """
    target = _ACTION_TARGETS[action].get(phase)
    if target is not None:
        return target
    if (action, phase) in _IGNORED:
        return None
    raise PhaseChangeError(phase, action.value)
