"""`jobs.service.list_all_jobs`, the operators' view of every client's jobs, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import service
from app.statuses import JobStatus
from tests.support.job_rows import insert_job
from tests.support.steps import Steps


async def list_ids(steps: Steps, *, stuck: bool, limit: int = 20) -> list[str]:
    async with transaction(steps.runtime.session_factory) as session:
        page = await service.list_all_jobs(session, stuck=stuck, limit=limit)
    assert page.next_cursor is None
    return [job.id for job in page.data]


async def jobs_of_every_kind(steps: Steps) -> dict[str, str]:
    """One job per case, in two clients' names, keyed by what makes it (not) stuck."""
    rt = steps.runtime
    one, other = (await steps.new_client("one")), (await steps.new_client("other"))
    long_ago = utcnow() - service.STUCK_AFTER - timedelta(minutes=1)
    recently = utcnow() - service.STUCK_AFTER + timedelta(minutes=5)
    return {
        "quiet_live": await insert_job(
            rt, one.client_id, status=JobStatus.processing, updated_at=long_ago
        ),
        "unknown_submit": await insert_job(
            rt, other.client_id, status=JobStatus.submitting, submit_unknown=True
        ),
        "busy_live": await insert_job(
            rt, one.client_id, status=JobStatus.submitted, updated_at=recently
        ),
        "old_terminal": await insert_job(
            rt, other.client_id, status=JobStatus.succeeded, updated_at=long_ago
        ),
    }


async def test_every_clients_jobs_newest_first(steps: Steps) -> None:
    jobs = await jobs_of_every_kind(steps)

    listed = await list_ids(steps, stuck=False)

    assert listed == sorted(jobs.values(), reverse=True)


async def test_stuck_means_live_and_quiet_or_an_unknown_submit(steps: Steps) -> None:
    jobs = await jobs_of_every_kind(steps)

    listed = await list_ids(steps, stuck=True)

    assert listed == sorted([jobs["quiet_live"], jobs["unknown_submit"]], reverse=True)


async def test_the_limit_cuts_the_newest_page(steps: Steps) -> None:
    jobs = await jobs_of_every_kind(steps)

    listed = await list_ids(steps, stuck=False, limit=2)

    assert listed == sorted(jobs.values(), reverse=True)[:2]


async def test_the_listing_shapes_jobs_like_the_job_api(steps: Steps) -> None:
    client = await steps.new_client()
    job_id = await insert_job(steps.runtime, client.client_id, status=JobStatus.queued)

    async with transaction(steps.runtime.session_factory) as session:
        [job] = (await service.list_all_jobs(session, stuck=False, limit=20)).data

    assert (job.id, job.status, job.version, job.provider) == (job_id, JobStatus.queued, 1, None)
    assert job.cost.estimated == Decimal("1.1340")
