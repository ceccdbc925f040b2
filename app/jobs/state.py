"""The job state machine: pure, no I/O, exhaustively tested.

Two kinds of input move a job:
- observations of the upstream (`observe`): callbacks and polls. They are applied only
  when they raise the state's rank, so duplicated and out-of-order observations are
  harmless. Progress only grows.
- commands of the gateway itself (`command`): start a submit, requeue after a failed
  submit, record the submit, cancel, expire, fail. Each has an explicit set of states
  it may start from.
Terminal states absorb everything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.statuses import LIVE, TERMINAL, JobStatus

__all__ = ["LIVE", "TERMINAL", "Command", "Decision", "JobStatus", "command", "observe"]


RANK: dict[JobStatus, int] = {
    JobStatus.queued: 0,
    JobStatus.submitting: 1,
    JobStatus.submitted: 2,
    JobStatus.processing: 3,
    JobStatus.succeeded: 4,
    JobStatus.failed: 4,
    JobStatus.cancelled: 4,
    JobStatus.expired: 4,
}


class Command(enum.StrEnum):
    start_submit = "start_submit"
    requeue = "requeue"
    mark_submitted = "mark_submitted"
    cancel = "cancel"
    expire = "expire"
    fail = "fail"


COMMAND_FROM: dict[Command, frozenset[JobStatus]] = {
    Command.start_submit: frozenset({JobStatus.queued}),
    Command.requeue: frozenset({JobStatus.submitting}),
    Command.mark_submitted: frozenset({JobStatus.submitting}),
    Command.cancel: frozenset({JobStatus.queued, JobStatus.submitted, JobStatus.processing}),
    Command.expire: LIVE,
    Command.fail: LIVE,
}

COMMAND_TO: dict[Command, JobStatus] = {
    Command.start_submit: JobStatus.submitting,
    Command.requeue: JobStatus.queued,
    Command.mark_submitted: JobStatus.submitted,
    Command.cancel: JobStatus.cancelled,
    Command.expire: JobStatus.expired,
    Command.fail: JobStatus.failed,
}

# What an observation of the upstream may claim; queued/submitting are ours alone.
OBSERVABLE: frozenset[JobStatus] = frozenset(
    {
        JobStatus.submitted,
        JobStatus.processing,
        JobStatus.succeeded,
        JobStatus.failed,
        JobStatus.cancelled,
    }
)


@dataclass(frozen=True)
class Decision:
    """What to do with one input: the resulting status/progress and whether it changed."""

    status: JobStatus
    progress: int
    status_changed: bool
    progress_changed: bool
    reason: str

    @property
    def changed(self) -> bool:
        return self.status_changed or self.progress_changed


def _final_progress(status: JobStatus, progress: int) -> int:
    return 100 if status is JobStatus.succeeded else progress


def observe(current: JobStatus, progress: int, seen: JobStatus, seen_progress: int) -> Decision:
    """Apply an upstream observation under the rank rule."""
    if seen not in OBSERVABLE:
        raise ValueError(f"{seen} cannot be observed upstream")
    if current in TERMINAL:
        return Decision(current, progress, False, False, "terminal_absorbs")
    if RANK[seen] < RANK[current]:
        return Decision(current, progress, False, False, "stale")
    new_progress = _final_progress(seen, max(progress, min(max(seen_progress, 0), 100)))
    status_changed = seen is not current
    return Decision(
        seen,
        new_progress,
        status_changed,
        new_progress != progress,
        "applied" if status_changed else "same_state",
    )


def command(current: JobStatus, progress: int, cmd: Command) -> Decision:
    """Apply one of the gateway's own commands; refused unless allowed from `current`."""
    if current not in COMMAND_FROM[cmd]:
        return Decision(current, progress, False, False, "not_allowed")
    target = COMMAND_TO[cmd]
    new_progress = 0 if target is JobStatus.queued else _final_progress(target, progress)
    return Decision(target, new_progress, True, new_progress != progress, "applied")
