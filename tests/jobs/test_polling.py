"""The poll units of work (`app.jobs.polling`) against real PostgreSQL and a live simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from app.clock import utcnow
from app.errors import BadGateway
from app.jobs import polling
from app.jobs.errors import JobNotFound
from app.providers.base import SubmitRequest, TaskSnapshot, TaskStatus
from app.runtime import Runtime
from app.statuses import JobStatus
from tests.support.job_rows import IMAGE_URL, VIDEO_URL, insert_job, read_events, read_job
from tests.support.simulator import RunningSimulator, wait_until
from tests.support.steps import Steps


async def sim_task(rt: Runtime) -> str:
    """A task at the simulator that stays unfinished until the test finishes it."""
    entry = rt.registry.get("simulator")
    assert entry is not None
    snapshot = await entry.adapter.submit(
        SubmitRequest(
            job_id="job_test",
            image_url=IMAGE_URL,
            video_url=VIDEO_URL,
            quality="720p",
            character_orientation="image",
            prompt="#sim:stuck",
        )
    )
    return snapshot.task_id


async def finish(simulator: RunningSimulator, task_id: str, how: str = "complete") -> None:
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        response = await http.post(f"/_sim/tasks/{task_id}/{how}")
    response.raise_for_status()


async def submitted_job(steps: Steps, task_id: str | None, **fields: object) -> str:
    client = await steps.new_client()
    values: dict[str, object] = {
        "status": JobStatus.submitted,
        "provider_name": "simulator",
        "provider_task_id": task_id,
    }
    values.update(fields)
    return await insert_job(steps.runtime, client.client_id, **values)


SUCCEEDED = TaskSnapshot(
    task_id="task_a",
    status=TaskStatus.succeeded,
    progress=100,
    result_urls=("https://cdn.example.com/out.mp4",),
    video_duration_s=5.0,
)


async def test_apply_settles_a_succeeded_task(steps: Steps) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, "task_a")

    await polling.apply(rt, job_id, SUCCEEDED, source="poll")

    job = await read_job(rt, job_id)
    assert (job.status, job.progress, job.version) == (JobStatus.succeeded, 100, 2)
    assert job.result_video_url == "https://cdn.example.com/out.mp4"
    assert (job.cost_billed_usd, job.billed_seconds) == (Decimal("0.567"), 5)
    assert job.next_poll_at is None
    [event] = await read_events(rt, job_id)
    assert (event.from_status, event.to_status, event.source) == (
        JobStatus.submitted,
        JobStatus.succeeded,
        "poll",
    )
    assert event.detail == {"task_status": "succeeded", "task_id": "task_a"}


async def test_apply_of_a_progress_report_schedules_the_next_poll(steps: Steps) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, None, status=JobStatus.submitting)
    before = utcnow()

    snapshot = TaskSnapshot(task_id="task_b", status=TaskStatus.processing, progress=40)
    await polling.apply(rt, job_id, snapshot, source="poll")

    job = await read_job(rt, job_id)
    assert (job.status, job.progress, job.provider_task_id) == (
        JobStatus.processing,
        40,
        "task_b",  # a job whose submit answer was lost adopts the task it is told about
    )
    assert job.next_poll_at is not None
    assert job.next_poll_at > before


async def test_apply_leaves_a_terminal_job_alone(steps: Steps) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, "task_a", status=JobStatus.failed, error_code="boom")

    await polling.apply(rt, job_id, SUCCEEDED, source="poll")

    job = await read_job(rt, job_id)
    assert (job.status, job.version, job.result_video_url) == (JobStatus.failed, 1, None)
    assert await read_events(rt, job_id) == []


async def test_apply_ignores_a_snapshot_of_another_task(steps: Steps) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, "task_mine")

    await polling.apply(rt, job_id, SUCCEEDED, source="poll")

    job = await read_job(rt, job_id)
    assert (job.status, job.version, job.provider_task_id) == (
        JobStatus.submitted,
        1,
        "task_mine",
    )
    assert await read_events(rt, job_id) == []


async def test_apply_to_a_job_that_does_not_exist_is_a_no_op(steps: Steps) -> None:
    await polling.apply(steps.runtime, "job_nope", SUCCEEDED, source="poll")


async def test_force_poll_applies_what_the_provider_says_now(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    task_id = await sim_task(rt)
    job_id = await submitted_job(steps, task_id)
    await finish(simulator, task_id)

    job = await polling.force_poll(rt, job_id)

    assert (job.id, job.status, job.progress) == (job_id, JobStatus.succeeded, 100)
    assert (job.cost_billed_usd, job.billed_seconds) == (Decimal("0.567"), 5)
    assert job.result_video_url is not None
    assert job.result_video_url.startswith(simulator.base_url)
    assert (await read_job(rt, job_id)).version == 2
    [event] = await read_events(rt, job_id)
    assert (event.to_status, event.source) == (JobStatus.succeeded, "admin")


async def test_force_poll_of_a_failed_task_fails_the_job(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    task_id = await sim_task(rt)
    job_id = await submitted_job(steps, task_id)
    await finish(simulator, task_id, "fail")

    job = await polling.force_poll(rt, job_id)

    assert (job.status, job.error_code) == (JobStatus.failed, "generation_failed")
    assert (job.cost_billed_usd, job.billed_seconds) == (Decimal("0"), 0)


async def test_force_poll_of_an_unknown_job_is_job_not_found(steps: Steps) -> None:
    with pytest.raises(JobNotFound) as caught:
        await polling.force_poll(steps.runtime, "job_nope")

    error = caught.value
    assert (error.status_code, error.code, error.detail) == (
        404,
        "job_not_found",
        "no job job_nope",
    )


async def test_force_poll_of_a_job_not_yet_at_a_provider_returns_it_unchanged(
    steps: Steps,
) -> None:
    rt = steps.runtime
    client = await steps.new_client()
    job_id = await insert_job(rt, client.client_id)

    job = await polling.force_poll(rt, job_id)

    assert (job.id, job.status, job.version) == (job_id, JobStatus.queued, 1)


async def test_force_poll_with_a_provider_no_longer_configured_returns_the_job(
    steps: Steps,
) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, "task_a", provider_name="retired")

    job = await polling.force_poll(rt, job_id)

    assert (job.status, job.version) == (JobStatus.submitted, 1)


async def test_force_poll_reports_a_provider_failure_as_bad_gateway(steps: Steps) -> None:
    rt = steps.runtime
    job_id = await submitted_job(steps, "task_the_simulator_never_made")

    with pytest.raises(BadGateway) as caught:
        await polling.force_poll(rt, job_id)

    error = caught.value
    assert (error.status_code, error.code) == (502, "upstream_unavailable")
    assert error.detail == "the provider did not answer: task_not_found"
    job = await read_job(rt, job_id)
    assert (job.status, job.version, job.poll_attempts) == (JobStatus.submitted, 1, 0)


async def idle_transactions(rt: Runtime) -> int:
    """Connections to this test's database sitting inside an open transaction."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
    )
    async with rt.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_force_poll_holds_no_transaction_while_the_provider_answers(
    steps: Steps, simulator: RunningSimulator
) -> None:
    rt = steps.runtime
    task_id = await sim_task(rt)
    job_id = await submitted_job(steps, task_id)
    await finish(simulator, task_id)
    async with httpx.AsyncClient(base_url=simulator.base_url) as http:
        slow = {"query": {"timeout": True, "hang_s": 1.0, "count": 1}}
        (await http.post("/_sim/faults", json=slow)).raise_for_status()

    poll = asyncio.create_task(polling.force_poll(rt, job_id))
    await wait_until(lambda: _query_rule_taken(simulator))
    during_fetch = await idle_transactions(rt)
    job = await poll

    assert during_fetch == 0
    assert job.status is JobStatus.succeeded


async def _query_rule_taken(simulator: RunningSimulator) -> bool:
    return simulator.simulator.faults.describe().get("query") is None
