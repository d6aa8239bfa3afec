"""The phase machine, exhaustively: every (phase, phase) pair and every action."""

from __future__ import annotations

import itertools

import pytest

from aiouws.phases import (
    FINAL_PHASES,
    TRANSITIONS,
    Action,
    Phase,
    PhaseChangeError,
    allowed_sources,
    check_transition,
    resolve_action,
)

# The legal changes, written out independently of the table under test.
LEGAL = {
    ("PENDING", "QUEUED"),
    ("PENDING", "HELD"),
    ("PENDING", "ABORTED"),
    ("PENDING", "ERROR"),
    ("HELD", "QUEUED"),
    ("HELD", "PENDING"),
    ("HELD", "ABORTED"),
    ("HELD", "ERROR"),
    ("QUEUED", "EXECUTING"),
    ("QUEUED", "ABORTED"),
    ("QUEUED", "ERROR"),
    ("QUEUED", "HELD"),
    ("EXECUTING", "COMPLETED"),
    ("EXECUTING", "ERROR"),
    ("EXECUTING", "ABORTED"),
    ("EXECUTING", "SUSPENDED"),
    ("EXECUTING", "QUEUED"),
    ("SUSPENDED", "EXECUTING"),
    ("SUSPENDED", "ABORTED"),
    ("SUSPENDED", "ERROR"),
    ("COMPLETED", "ARCHIVED"),
    ("ERROR", "ARCHIVED"),
    ("ABORTED", "ARCHIVED"),
    ("UNKNOWN", "ERROR"),
    ("UNKNOWN", "ABORTED"),
}


def test_every_phase_has_an_entry_and_values_are_uws_words() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert {p.value for p in Phase} == {
        "PENDING",
        "QUEUED",
        "EXECUTING",
        "COMPLETED",
        "ERROR",
        "ABORTED",
        "UNKNOWN",
        "HELD",
        "SUSPENDED",
        "ARCHIVED",
    }


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Phase, Phase)))
def test_every_pair(old: Phase, new: Phase) -> None:
    if (old.value, new.value) in LEGAL:
        check_transition(old, new)
    else:
        with pytest.raises(PhaseChangeError, match=old.value):
            check_transition(old, new)


def test_final_phases_only_archive() -> None:
    for phase in FINAL_PHASES - {Phase.ARCHIVED}:
        assert TRANSITIONS[phase] == {Phase.ARCHIVED}
    assert TRANSITIONS[Phase.ARCHIVED] == frozenset()


@pytest.mark.parametrize("new", list(Phase))
def test_allowed_sources_inverts_the_table(new: Phase) -> None:
    expected = {Phase(a) for a, b in LEGAL if b == new.value}
    assert allowed_sources(new) == expected


RUN = {"PENDING": "QUEUED", "HELD": "QUEUED"}
RUN_IGNORED = {"QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "SUSPENDED"}
ABORT = {p: "ABORTED" for p in ("PENDING", "HELD", "QUEUED", "EXECUTING", "SUSPENDED")}
ABORT_IGNORED = {"ABORTED"}


@pytest.mark.parametrize("phase", list(Phase))
def test_run_action(phase: Phase) -> None:
    if phase.value in RUN:
        assert resolve_action(phase, Action.RUN) == Phase(RUN[phase.value])
    elif phase.value in RUN_IGNORED:
        assert resolve_action(phase, Action.RUN) is None
    else:
        with pytest.raises(PhaseChangeError, match=f"job is {phase.value}"):
            resolve_action(phase, Action.RUN)


@pytest.mark.parametrize("phase", list(Phase))
def test_abort_action(phase: Phase) -> None:
    if phase.value in ABORT:
        assert resolve_action(phase, Action.ABORT) is Phase.ABORTED
    elif phase.value in ABORT_IGNORED:
        assert resolve_action(phase, Action.ABORT) is None
    else:
        with pytest.raises(PhaseChangeError, match="cannot ABORT"):
            resolve_action(phase, Action.ABORT)


@pytest.mark.parametrize("phase", list(Phase))
def test_action_targets_are_legal_transitions(phase: Phase) -> None:
    for action in Action:
        try:
            target = resolve_action(phase, action)
        except PhaseChangeError:
            continue
        if target is not None:
            check_transition(phase, target)
