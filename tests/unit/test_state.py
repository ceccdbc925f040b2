"""Every state × every observation and command, against an independent oracle."""

from __future__ import annotations

import itertools

import pytest

from app.jobs import state
from app.jobs.state import Command, JobStatus

ALL = list(JobStatus)
OBSERVABLE = sorted(state.OBSERVABLE)
PROGRESSES = [0, 40, 100]

# Written out by hand, not derived from the module under test.
RANK = {
    "queued": 0,
    "submitting": 1,
    "submitted": 2,
    "processing": 3,
    "succeeded": 4,
    "failed": 4,
    "cancelled": 4,
    "expired": 4,
}
TERMINAL = {"succeeded", "failed", "cancelled", "expired"}
COMMAND_TABLE = {
    ("start_submit", "queued"): "submitting",
    ("requeue", "submitting"): "queued",
    ("mark_submitted", "submitting"): "submitted",
    ("cancel", "queued"): "cancelled",
    ("cancel", "submitted"): "cancelled",
    ("cancel", "processing"): "cancelled",
    **{("expire", s): "expired" for s in RANK if s not in TERMINAL},
    **{("fail", s): "failed" for s in RANK if s not in TERMINAL},
}


@pytest.mark.parametrize(
    ("current", "seen", "progress", "seen_progress"),
    list(itertools.product(ALL, OBSERVABLE, PROGRESSES, PROGRESSES)),
)
def test_observe_matrix(
    current: JobStatus, seen: JobStatus, progress: int, seen_progress: int
) -> None:
    decision = state.observe(current, progress, seen, seen_progress)
    if current in TERMINAL or RANK[seen] < RANK[current]:
        assert (decision.status, decision.progress, decision.changed) == (current, progress, False)
        return
    assert decision.status is seen
    assert decision.status_changed == (seen is not current)
    expected_progress = 100 if seen is JobStatus.succeeded else max(progress, seen_progress)
    assert decision.progress == expected_progress
    assert decision.progress >= progress  # progress never shrinks


@pytest.mark.parametrize(("current", "cmd"), list(itertools.product(ALL, list(Command))))
def test_command_matrix(current: JobStatus, cmd: Command) -> None:
    decision = state.command(current, 30, cmd)
    target = COMMAND_TABLE.get((cmd.value, current.value))
    if target is None:
        assert (decision.status, decision.changed, decision.reason) == (
            current,
            False,
            "not_allowed",
        )
    else:
        assert decision.status.value == target
        assert decision.status_changed


@pytest.mark.parametrize("current", sorted(state.TERMINAL))
def test_terminal_states_absorb_everything(current: JobStatus) -> None:
    for seen in OBSERVABLE:
        assert not state.observe(current, 50, seen, 100).changed
    for cmd in Command:
        assert not state.command(current, 50, cmd).changed


@pytest.mark.parametrize("seen", [JobStatus.queued, JobStatus.submitting, JobStatus.expired])
def test_gateway_only_states_cannot_be_observed(seen: JobStatus) -> None:
    with pytest.raises(ValueError, match="cannot be observed"):
        state.observe(JobStatus.submitted, 0, seen, 0)


def test_duplicated_and_reordered_observations_converge() -> None:
    """Any order of the same observations ends in the same state with the same changes."""
    seen = [
        (JobStatus.submitted, 0),
        (JobStatus.processing, 30),
        (JobStatus.processing, 70),
        (JobStatus.succeeded, 100),
    ]
    outcomes = set()
    for order in itertools.permutations(seen * 2, 4):
        current, progress, changes = JobStatus.submitting, 0, 0
        for status, pct in order:
            d = state.observe(current, progress, status, pct)
            current, progress, changes = d.status, d.progress, changes + d.status_changed
        if JobStatus.succeeded in (s for s, _ in order):
            outcomes.add((current, progress))
            assert changes <= 3
    assert outcomes == {(JobStatus.succeeded, 100)}


def test_out_of_range_progress_is_clamped() -> None:
    assert state.observe(JobStatus.submitted, 10, JobStatus.processing, 250).progress == 100
    assert state.observe(JobStatus.submitted, 10, JobStatus.processing, -5).progress == 10
