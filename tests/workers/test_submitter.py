"""One submitter step at a time, against the live simulator: claim, send, record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.clock import utcnow
from app.jobs import reconcile
from app.jobs.views import at_risk_usd
from app.runtime import Runtime
from app.statuses import JobStatus
from app.workers import submitter
from app.workers.loop import Pool
from tests.support.jobs import (
    ago,
    create,
    history,
    load,
    outbox_types,
    set_faults,
    sim_tasks,
    steps_of,
    update_row,
)
from tests.support.simulator import RunningSimulator
from tests.support.steps import Steps, close_steps, open_steps, step_settings

SUBMIT_TIMEOUT_S = 0.5


@pytest.fixture
async def quick_steps(step_database_url: str, simulator: RunningSimulator) -> AsyncIterator[Steps]:
    """Like `steps`, with a submit timeout short enough for a hanging create to be cheap."""
    settings = step_settings(
        step_database_url, simulator.base_url, provider_submit_timeout_s=SUBMIT_TIMEOUT_S
    )
    opened = await open_steps(settings)
    try:
        yield opened
    finally:
        await close_steps(opened)


async def run_step(rt: Runtime, size: int = 4) -> int:
    """One `submitter.step`, then wait for the sends it spawned (as the loop's pool would)."""
    pool = Pool(size, asyncio.Event())
    claimed = await submitter.step(rt, pool)
    await pool.drain(grace_s=10.0)
    return claimed


def between(value: datetime | None, low: datetime, high: datetime, delay_s: float) -> bool:
    """`value` is `delay_s` after some instant in [low, high]."""
    delay = timedelta(seconds=delay_s)
    return value is not None and low + delay <= value <= high + delay


async def test_a_queued_job_is_submitted_once_and_ends_submitted_with_the_task_id(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    before = utcnow()

    claimed = await run_step(rt)

    after = utcnow()
    tasks = (await sim_tasks(simulator))["tasks"]
    assert claimed == 1
    assert [t["idempotency_key"] for t in tasks] == [job.id]
    stored = await load(rt, job.id)
    assert stored.status is JobStatus.submitted
    assert (stored.provider_name, stored.provider_task_id) == ("simulator", tasks[0]["id"])
    assert (stored.submit_attempts, stored.submit_unknown, stored.version) == (1, False, 3)
    assert (stored.locked_until, stored.next_attempt_at) == (None, None)
    assert stored.estimated_time_s == 1  # the simulator's pending + processing, rounded up
    assert stored.callback_registered is rt.callbacks_enabled
    first_poll = reconcile.first_poll_at(rt.settings, before, 1, rt.callbacks_enabled) - before
    assert between(stored.next_poll_at, before, after, first_poll.total_seconds())
    events = await history(rt, job.id)
    assert steps_of(events) == [
        (None, "queued", 1),
        ("queued", "submitting", 2),
        ("submitting", "submitted", 3),
    ]
    assert events[2].detail == {"provider": "simulator", "task_id": tasks[0]["id"]}
    assert await run_step(rt) == 0  # nothing left to claim: no second create
    assert (await sim_tasks(simulator))["create_calls"] == 1


async def test_the_claim_commits_submitting_with_a_lease_before_any_request_leaves(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())

    attempts = await submitter.claim(rt, limit=5)

    assert [a.job_id for a in attempts] == [job.id]
    assert (await sim_tasks(simulator))["create_calls"] == 0
    stored = await load(rt, job.id)
    assert stored.status is JobStatus.submitting
    assert (stored.provider_name, stored.submit_attempts, stored.next_attempt_at) == (
        "simulator",
        1,
        None,
    )
    assert stored.submit_sent_at is not None
    assert stored.locked_until == stored.submit_sent_at + timedelta(
        seconds=rt.settings.worker_lease_s
    )
    assert steps_of(await history(rt, job.id))[-1] == ("queued", "submitting", 2)
    assert attempts[0].request.job_id == job.id
    assert attempts[0].request.image_url == job.image_url


async def test_a_step_claims_no_more_than_the_pool_has_free_slots(steps: Steps) -> None:
    rt = steps.runtime
    key = await steps.new_client()
    jobs = [(await create(rt, key))[0] for _ in range(3)]

    assert await submitter.step(rt, Pool(0, asyncio.Event())) == 0
    claimed = await run_step(rt, size=2)

    statuses = sorted([(await load(rt, j.id)).status for j in jobs])
    assert claimed == 2
    assert statuses == sorted([JobStatus.submitted, JobStatus.submitted, JobStatus.queued])


async def test_a_provider_503_requeues_the_job_with_backoff(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await set_faults(simulator, {"create": {"status": 503, "count": 1}})
    before = utcnow()

    await run_step(rt)

    after = utcnow()
    stored = await load(rt, job.id)
    assert stored.status is JobStatus.queued
    assert (stored.provider_name, stored.provider_task_id, stored.providers_tried) == (
        None,
        None,
        [],  # the only provider: tried again after the backoff, not excluded
    )
    assert (stored.submit_attempts, stored.submit_unknown, stored.locked_until) == (1, False, None)
    # Jittered over the upper half of the first step of the backoff.
    base = rt.settings.submit_retry_base_s
    assert stored.next_attempt_at is not None
    assert before + timedelta(seconds=base / 2) <= stored.next_attempt_at
    assert stored.next_attempt_at <= after + timedelta(seconds=base)
    events = await history(rt, job.id)
    assert steps_of(events) == [
        (None, "queued", 1),
        ("queued", "submitting", 2),
        ("submitting", "queued", 3),
    ]
    assert events[2].detail is not None
    assert (events[2].detail["provider"], events[2].detail["error"]) == (
        "simulator",
        "service_unavailable_error",
    )
    assert (await sim_tasks(simulator))["tasks"] == []


async def test_a_requeued_job_is_not_retried_before_its_backoff_then_submitted_once(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await set_faults(simulator, {"create": {"status": 503, "count": 1}})
    await run_step(rt)

    assert await submitter.step(rt, Pool(4, asyncio.Event())) == 0  # still backing off
    await update_row(rt, job.id, next_attempt_at=ago(0.01))  # the backoff ran out
    assert await run_step(rt) == 1

    stored = await load(rt, job.id)
    tasks = (await sim_tasks(simulator))["tasks"]
    assert (stored.status, stored.submit_attempts, stored.version) == (JobStatus.submitted, 2, 5)
    assert [t["idempotency_key"] for t in tasks] == [job.id]
    assert stored.provider_task_id == tasks[0]["id"]


async def test_a_retry_after_longer_than_the_backoff_is_honoured(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await set_faults(simulator, {"create": {"status": 429, "retry_after": 7, "count": 1}})
    before = utcnow()

    await run_step(rt)

    after = utcnow()
    stored = await load(rt, job.id)
    assert stored.status is JobStatus.queued
    assert between(stored.next_attempt_at, before, after, 7.0)


async def _assert_left_unknown(
    rt: Runtime, job_id: str, before: datetime, after: datetime, sim: RunningSimulator
) -> None:
    stored = await load(rt, job_id)
    assert stored.status is JobStatus.submitting
    assert (stored.submit_unknown, stored.provider_name, stored.provider_task_id) == (
        True,
        "simulator",
        None,
    )
    assert stored.locked_until is None
    # The reconciler looks for its task soon (app/workers/reconciler.py), never resends it.
    assert between(stored.next_attempt_at, before, after, rt.settings.submit_reconcile_first_s)
    assert steps_of(await history(rt, job_id))[-1] == ("queued", "submitting", 2)
    tasks = (await sim_tasks(sim))["tasks"]
    assert [t["idempotency_key"] for t in tasks] == [job_id]  # the upstream did create it


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 500, "create_anyway": True, "count": 1}, id="500-after-create"),
    ],
)
async def test_an_error_after_the_task_was_created_leaves_submit_unknown(
    steps: Steps, simulator: RunningSimulator, fault: dict[str, Any]
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await set_faults(simulator, {"create": fault})
    before = utcnow()

    await run_step(rt)

    await _assert_left_unknown(rt, job.id, before, utcnow(), simulator)
    assert await run_step(rt) == 0  # never resubmitted blindly
    assert (await sim_tasks(simulator))["create_calls"] == 1


async def test_a_create_that_times_out_leaves_submit_unknown(
    quick_steps: Steps, simulator: RunningSimulator
) -> None:
    rt = quick_steps.runtime
    job, _ = await create(rt, await quick_steps.new_client())
    await set_faults(simulator, {"create": {"timeout": True, "hang_s": 5.0, "count": 1}})
    before = utcnow()

    await run_step(rt)

    await _assert_left_unknown(rt, job.id, before, utcnow(), simulator)


async def test_a_permanent_refusal_fails_the_job_with_the_providers_code(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    await set_faults(
        simulator, {"create": {"status": 400, "code": "invalid_request_error", "count": 1}}
    )

    await run_step(rt)

    stored = await load(rt, job.id)
    assert (stored.status, stored.error_code, stored.version) == (
        JobStatus.failed,
        "invalid_request_error",
        3,
    )
    assert stored.completed_at is not None
    assert (stored.next_attempt_at, stored.locked_until) == (None, None)
    assert steps_of(await history(rt, job.id))[-1] == ("submitting", "failed", 3)
    assert await outbox_types(rt, job.id) == ["job.failed"]


async def test_an_answer_for_a_job_that_moved_on_meanwhile_keeps_the_paid_task_visible(
    steps: Steps, simulator: RunningSimulator
) -> None:
    """The janitor expired the job while its create was in flight; the provider made the
    task anyway. The state stays, but the task id is kept and its estimate is at risk."""
    rt = steps.runtime
    job, _ = await create(rt, await steps.new_client())
    [attempt] = await submitter.claim(rt, limit=1)
    await update_row(rt, job.id, status=JobStatus.expired, version=3)

    await submitter.send(rt, attempt)

    stored = await load(rt, job.id)
    [task] = (await sim_tasks(simulator))["tasks"]
    assert (stored.status, stored.version, stored.provider_task_id) == (
        JobStatus.expired,
        3,
        task["id"],
    )
    assert stored.submit_unknown is True
    assert at_risk_usd(stored) == stored.cost_estimated_usd
