"""`app.jobs.transitions` on real rows: the decision, the version, the event row, the outbox."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.engine import transaction
from app.jobs import repository as repo
from app.jobs import transitions
from app.jobs.state import Command, Decision
from app.models import Job
from app.runtime import Runtime
from app.statuses import JobStatus
from tests.support.jobs import create, history, insert_row, later, load, outbox_types, steps_of
from tests.support.steps import Steps


async def _observe(
    rt: Runtime, job_id: str, seen: JobStatus, progress: int, **kwargs: Any
) -> Decision:
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, job_id)
        assert job is not None
        return await transitions.observe(session, job, seen, progress, source="poller", **kwargs)


async def _command(rt: Runtime, job_id: str, cmd: Command, **kwargs: Any) -> Decision:
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, job_id)
        assert job is not None
        return await transitions.command(session, job, cmd, source="submitter", **kwargs)


async def _at_provider(db_steps: Steps, status: JobStatus, progress: int = 0, **fields: Any) -> Job:
    key = await db_steps.new_client()
    return await insert_row(
        db_steps.runtime,
        key.client_id,
        status=status,
        progress=progress,
        version=3,
        provider_name="simulator",
        provider_task_id="task-1",
        next_poll_at=later(30),
        **fields,
    )


async def test_a_command_bumps_the_version_and_writes_one_event_row(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job, _ = await create(rt, await db_steps.new_client())

    decision = await _command(rt, job.id, Command.start_submit, detail={"provider": "simulator"})

    assert (decision.status, decision.reason) == (JobStatus.submitting, "applied")
    stored = await load(rt, job.id)
    assert (stored.status, stored.version) == (JobStatus.submitting, 2)
    assert stored.completed_at is None
    events = await history(rt, job.id)
    assert steps_of(events) == [(None, "queued", 1), ("queued", "submitting", 2)]
    assert (events[1].source, events[1].detail, events[1].progress) == (
        "submitter",
        {"provider": "simulator"},
        0,
    )
    assert events[1].created_at == stored.updated_at


async def test_an_observation_that_raises_the_rank_is_applied_with_its_progress(
    db_steps: Steps,
) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.submitted)

    decision = await _observe(rt, job.id, JobStatus.processing, 40)

    assert decision.reason == "applied"
    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.processing, 40, 4)
    events = await history(rt, job.id)
    assert steps_of(events) == [("submitted", "processing", 4)]
    assert (events[0].progress, events[0].source) == (40, "poller")


async def test_progress_alone_updates_the_row_but_writes_no_event(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.processing, progress=40)

    decision = await _observe(rt, job.id, JobStatus.processing, 70)

    assert (decision.status_changed, decision.progress_changed) == (False, True)
    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.processing, 70, 3)
    assert stored.updated_at > job.updated_at
    assert await history(rt, job.id) == []


async def test_a_stale_observation_writes_nothing(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.processing, progress=40)

    decision = await _observe(rt, job.id, JobStatus.submitted, 90)

    assert (decision.reason, decision.changed) == ("stale", False)
    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.processing, 40, 3)
    assert stored.updated_at == job.updated_at
    assert await history(rt, job.id) == []


async def test_a_repeated_observation_writes_nothing(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.processing, progress=40)

    decision = await _observe(rt, job.id, JobStatus.processing, 40)

    assert (decision.reason, decision.changed) == ("same_state", False)
    stored = await load(rt, job.id)
    assert (stored.version, stored.updated_at) == (3, job.updated_at)
    assert await history(rt, job.id) == []


async def test_success_sets_completed_at_clears_the_schedule_and_enqueues_the_event(
    db_steps: Steps,
) -> None:
    rt = db_steps.runtime
    job = await _at_provider(
        db_steps,
        JobStatus.processing,
        progress=60,
        locked_until=later(60),
        next_attempt_at=later(5),
    )

    await _observe(rt, job.id, JobStatus.succeeded, 60)

    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.succeeded, 100, 4)
    assert stored.completed_at is not None
    assert stored.completed_at == stored.updated_at
    assert (stored.next_poll_at, stored.next_attempt_at, stored.locked_until) == (None, None, None)
    assert steps_of(await history(rt, job.id)) == [("processing", "succeeded", 4)]
    assert await outbox_types(rt, job.id) == ["job.succeeded"]


async def test_a_failing_command_is_terminal_too(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.submitted, progress=10)

    await _command(rt, job.id, Command.fail, detail={"error": "x"})

    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.failed, 10, 4)
    assert stored.completed_at is not None
    assert stored.next_poll_at is None
    assert steps_of(await history(rt, job.id)) == [("submitted", "failed", 4)]
    assert await outbox_types(rt, job.id) == ["job.failed"]


async def test_a_terminal_job_absorbs_observations_and_commands(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.succeeded, progress=100)

    seen = await _observe(rt, job.id, JobStatus.failed, 0)
    commanded = await _command(rt, job.id, Command.expire)

    assert (seen.reason, commanded.reason) == ("terminal_absorbs", "not_allowed")
    stored = await load(rt, job.id)
    assert (stored.status, stored.version, stored.updated_at) == (
        JobStatus.succeeded,
        3,
        job.updated_at,
    )
    assert await history(rt, job.id) == []
    assert await outbox_types(rt, job.id) == []


async def test_a_command_not_allowed_from_the_state_writes_nothing(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job, _ = await create(rt, await db_steps.new_client())

    decision = await _command(rt, job.id, Command.mark_submitted)

    assert decision.reason == "not_allowed"
    stored = await load(rt, job.id)
    assert (stored.status, stored.version) == (JobStatus.queued, 1)
    assert steps_of(await history(rt, job.id)) == [(None, "queued", 1)]


async def test_a_requeue_resets_progress_and_records_the_round_trip(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job, _ = await create(rt, await db_steps.new_client())

    await _command(rt, job.id, Command.start_submit)
    await _command(rt, job.id, Command.requeue)
    await _command(rt, job.id, Command.start_submit)

    stored = await load(rt, job.id)
    assert (stored.status, stored.version) == (JobStatus.submitting, 4)
    assert steps_of(await history(rt, job.id)) == [
        (None, "queued", 1),
        ("queued", "submitting", 2),
        ("submitting", "queued", 3),
        ("queued", "submitting", 4),
    ]


async def test_a_rolled_back_transition_leaves_neither_version_nor_event(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job = await _at_provider(db_steps, JobStatus.submitted)

    class Abort(Exception):
        pass

    async def succeed_then_fail() -> None:
        async with transaction(rt.session_factory) as session:
            locked = await repo.lock_job(session, job.id)
            assert locked is not None
            await transitions.observe(session, locked, JobStatus.succeeded, 100, source="poller")
            raise Abort

    with pytest.raises(Abort):
        await succeed_then_fail()

    stored = await load(rt, job.id)
    assert (stored.status, stored.version, stored.completed_at) == (JobStatus.submitted, 3, None)
    assert await history(rt, job.id) == []
    assert await outbox_types(rt, job.id) == []
