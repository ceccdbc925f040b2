"""The archiver's steps against real PostgreSQL: claim, fence, retry window, event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import archival
from app.jobs.archival import duration_mismatch
from app.models import Event, Job
from app.statuses import ArchiveStatus, JobStatus
from app.workers import archiver
from tests.support.job_rows import insert_job, read_job
from tests.support.steps import Steps


async def _succeeded(steps: Steps, **fields: object) -> str:
    client = await steps.new_client()
    now = utcnow()
    values: dict[str, object] = {
        "status": JobStatus.succeeded,
        "progress": 100,
        "result_video_url": "http://127.0.0.1:9/results/x.mp4",
        "result_expires_at": now + timedelta(hours=24),
        "result_duration_s": 5.0,
        "billed_seconds": 5,
        "archive_status": ArchiveStatus.pending,
        "archive_next_at": now,
        "completed_at": now,
    }
    values.update(fields)
    return await insert_job(steps.runtime, client.client_id, **values)


async def _succeeded_events(steps: Steps, job_id: str) -> int:
    async with transaction(steps.runtime.session_factory) as session:
        stmt = select(func.count()).where(Event.job_id == job_id, Event.type == "job.succeeded")
        return int((await session.execute(stmt)).scalar_one())


@pytest.mark.parametrize(
    ("probed", "reported", "billed", "expected"),
    [
        (5.0, 5.0, 5, False),
        (5.04, 5.0, 5, False),
        (5.4, 5.4, 6, False),  # billed rounded up
        (5.0, 8.0, 8, True),  # shorter than reported and billed
        (5.0, 5.0, 10, True),  # billed for more than it lasts
        (5.0, None, None, False),
        (None, 5.0, 5, None),  # not probed: unknown, not a mismatch
    ],
)
def test_duration_mismatch(
    probed: float | None, reported: float | None, billed: int | None, expected: bool | None
) -> None:
    assert duration_mismatch(probed, reported, billed) is expected


async def test_a_claim_leases_the_job_and_counts_the_attempt(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job_id = await _succeeded(db_steps)

    [item] = await archival.claim(rt, 10)
    again = await archival.claim(rt, 10)
    job = await read_job(rt, job_id)

    assert (item.job_id, item.attempt) == (job_id, 1)
    assert again == []  # leased
    assert job.archive_next_at is not None
    assert job.archive_next_at > utcnow()


async def test_a_superseded_claim_records_nothing(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job_id = await _succeeded(db_steps)
    [stale] = await archival.claim(rt, 10)
    async with transaction(rt.session_factory) as session:
        leased = await session.get(Job, job_id)
        assert leased is not None
        leased.archive_next_at = utcnow()  # as if its lease ran out
    [current] = await archival.claim(rt, 10)

    recorded = await archival.record_archived(
        rt, stale, key="arc_x/result.mp4", sha256="0" * 64, size_bytes=1, probed_s=5.0
    )
    job = await read_job(rt, job_id)

    assert current.attempt == stale.attempt + 1
    assert recorded is False
    assert job.archive_status is ArchiveStatus.pending
    assert await _succeeded_events(db_steps, job_id) == 0


async def test_a_retry_that_would_fall_after_the_link_expires_fails_it(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job_id = await _succeeded(db_steps, result_expires_at=utcnow() + timedelta(seconds=1))
    [item] = await archival.claim(rt, 10)

    outcome, retry_at = await archival.record_failure(rt, item, "result_http_503", retryable=True)
    job = await read_job(rt, job_id)

    assert (outcome, retry_at) == ("failed", None)
    assert (job.archive_status, job.archive_error) == (
        ArchiveStatus.failed,
        "result_link_expired",
    )
    assert await _succeeded_events(db_steps, job_id) == 1


async def test_a_retry_within_the_link_lifetime_is_scheduled_without_an_event(
    db_steps: Steps,
) -> None:
    rt = db_steps.runtime
    job_id = await _succeeded(db_steps)
    [item] = await archival.claim(rt, 10)

    outcome, retry_at = await archival.record_failure(rt, item, "result_http_503", retryable=True)
    job = await read_job(rt, job_id)

    assert outcome == "retried"
    assert retry_at is not None
    assert job.archive_status is ArchiveStatus.pending
    assert job.archive_next_at == retry_at
    assert await _succeeded_events(db_steps, job_id) == 0


async def test_a_link_past_its_expiry_is_not_fetched(db_steps: Steps) -> None:
    rt = db_steps.runtime
    job_id = await _succeeded(db_steps, result_expires_at=utcnow() - timedelta(seconds=1))
    [item] = await archival.claim(rt, 10)

    await archiver.archive_one(rt, item)  # the URL (port 9) would refuse if it were dialled
    job = await read_job(rt, job_id)

    assert (job.archive_status, job.archive_error) == (
        ArchiveStatus.failed,
        "result_link_expired",
    )
    assert await _succeeded_events(db_steps, job_id) == 1


async def test_a_release_makes_an_interrupted_copy_due_at_once(db_steps: Steps) -> None:
    rt = db_steps.runtime
    await _succeeded(db_steps)
    [item] = await archival.claim(rt, 10)

    await archival.release(rt, item)
    [again] = await archival.claim(rt, 10)

    assert again.attempt == item.attempt + 1
