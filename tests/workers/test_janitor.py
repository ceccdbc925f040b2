"""One janitor step at a time: deadlines, submits whose outcome stayed unknown."""

from __future__ import annotations

from datetime import datetime

from app.clock import utcnow
from app.statuses import JobStatus
from app.workers import janitor, submitter
from tests.support.jobs import (
    ago,
    create,
    history,
    insert_row,
    later,
    load,
    outbox_types,
    set_faults,
    sim_tasks,
    steps_of,
    update_row,
)
from tests.support.simulator import RunningSimulator
from tests.support.steps import Steps


def due_between(low: datetime, high: datetime, value: datetime | None) -> bool:
    return value is not None and low <= value <= high


async def test_a_queued_job_past_its_deadline_expires(steps: Steps) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await update_row(rt, job.id, deadline_at=ago(1))

    settled = await janitor.settle_stale(rt)

    assert settled == 1
    stored = await load(rt, job.id)
    assert (stored.status, stored.version, stored.error_code) == (
        JobStatus.expired,
        2,
        "deadline_exceeded",
    )
    assert stored.completed_at is not None
    assert stored.next_attempt_at is None
    events = await history(rt, job.id)
    assert steps_of(events) == [(None, "queued", 1), ("queued", "expired", 2)]
    assert events[1].source == "janitor"
    assert await outbox_types(rt, job.id) == ["job.expired"]


async def test_a_job_at_the_provider_past_its_deadline_expires_through_the_janitor_step(
    steps: Steps,
) -> None:
    rt = steps.runtime
    key = await steps.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.processing,
        progress=40,
        version=4,
        provider_name="simulator",
        provider_task_id="task-1",
        next_poll_at=later(5),
        deadline_at=ago(1),
    )

    settled = await janitor.Janitor(rt).step()

    assert settled == 1
    stored = await load(rt, job.id)
    assert (stored.status, stored.progress, stored.version) == (JobStatus.expired, 40, 5)
    assert (stored.next_poll_at, stored.error_code) == (None, "deadline_exceeded")
    assert steps_of(await history(rt, job.id)) == [("processing", "expired", 5)]


async def test_nothing_stale_settles_nothing(steps: Steps) -> None:
    rt = steps.runtime
    key = await steps.new_client()
    live, _ = await create(rt, key)
    done = await insert_row(rt, key.client_id, status=JobStatus.succeeded, deadline_at=ago(60))

    assert await janitor.settle_stale(rt) == 0

    assert (await load(rt, live.id)).status is JobStatus.queued
    stored = await load(rt, done.id)
    assert (stored.status, stored.error_code, stored.version) == (JobStatus.succeeded, None, 1)


async def test_a_submit_whose_lease_ran_out_is_marked_unknown_not_resent(steps: Steps) -> None:
    """The worker that sent it died mid-call: the request may have reached the provider."""
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await submitter.claim(rt, limit=1)  # the worker dies before it sends or records
    await update_row(rt, job.id, locked_until=ago(1))
    before = utcnow()

    assert await janitor.settle_stale(rt) == 1

    after = utcnow()
    stored = await load(rt, job.id)
    assert (stored.status, stored.submit_unknown, stored.locked_until) == (
        JobStatus.submitting,
        True,
        None,
    )
    assert due_between(before, after, stored.next_attempt_at)  # the reconciler looks at once
    assert stored.version == 2  # no state change, so no event
    assert len(await history(rt, job.id)) == 2
    assert await janitor.settle_stale(rt) == 0  # the reconciler's now, not the janitor's
    assert await submitter.claim(rt, limit=5) == []


async def test_an_unknown_submit_is_never_failed_by_the_janitor(steps: Steps) -> None:
    """Its window closed and nothing found it: it stays visible, its estimate at risk."""
    rt = steps.runtime
    key = await steps.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.submitting,
        version=2,
        provider_name="simulator",
        submit_attempts=1,
        submit_unknown=True,
        submit_sent_at=ago(3600),
        next_attempt_at=None,
    )

    assert await janitor.settle_stale(rt) == 0

    stored = await load(rt, job.id)
    assert (stored.status, stored.version, stored.error_code) == (JobStatus.submitting, 2, None)
    assert stored.submit_unknown is True
    assert await outbox_types(rt, job.id) == []


async def test_the_deadline_does_not_hide_an_unresolved_unknown_submit(steps: Steps) -> None:
    rt = steps.runtime
    key = await steps.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.submitting,
        version=2,
        provider_name="simulator",
        submit_unknown=True,
        next_attempt_at=later(60),
        deadline_at=ago(1),
    )

    assert await janitor.settle_stale(rt) == 0

    stored = await load(rt, job.id)
    assert (stored.status, stored.error_code, stored.submit_unknown) == (
        JobStatus.submitting,
        None,
        True,
    )


async def test_the_deadline_expires_an_unknown_submit_once_its_task_is_known(
    steps: Steps,
) -> None:
    """A callback adopted the task: the job is at the provider, the deadline applies."""
    rt = steps.runtime
    key = await steps.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.submitting,
        version=2,
        provider_name="simulator",
        provider_task_id="task-1",
        submit_unknown=True,
        deadline_at=ago(1),
    )

    assert await janitor.settle_stale(rt) == 1

    stored = await load(rt, job.id)
    assert (stored.status, stored.error_code) == (JobStatus.expired, "deadline_exceeded")


async def test_a_provably_refused_submit_clears_the_unknown_mark_before_its_retry(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    [slow] = await submitter.claim(rt, limit=1)
    await update_row(rt, job.id, locked_until=ago(1))  # the send outlives its lease
    await janitor.settle_stale(rt)  # ... so the janitor marks the outcome unknown
    await set_faults(simulator, {"create": {"status": 503, "count": 1}})
    await submitter.send(rt, slow)  # then the provider answers: provably not created
    assert (await load(rt, job.id)).status is JobStatus.queued

    await update_row(rt, job.id, next_attempt_at=ago(0.01))
    await submitter.claim(rt, limit=1)  # the retry's worker dies too
    await update_row(rt, job.id, locked_until=ago(1))
    await janitor.settle_stale(rt)

    stored = await load(rt, job.id)
    assert (stored.status, stored.error_code) == (JobStatus.submitting, None)
    assert stored.submit_unknown is True  # its own unknown window is open now


async def test_a_late_answer_with_a_task_clears_the_unknown_mark(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    [slow] = await submitter.claim(rt, limit=1)
    await update_row(rt, job.id, locked_until=ago(1))
    await janitor.settle_stale(rt)

    await submitter.send(rt, slow)

    stored = await load(rt, job.id)
    tasks = (await sim_tasks(simulator))["tasks"]
    assert (stored.status, stored.provider_task_id) == (JobStatus.submitted, tasks[0]["id"])
    assert stored.submit_unknown is False
