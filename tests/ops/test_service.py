"""`ops.service`: readiness and the gauges sampled at scrape time, on PostgreSQL."""

from __future__ import annotations

import dataclasses

from app.db.engine import make_engine
from app.db.migrate import head_revision
from app.metrics import REGISTRY
from app.ops import service
from app.statuses import JobStatus
from tests.support.job_rows import insert_job
from tests.support.steps import Steps


async def test_ready_on_a_migrated_database(steps: Steps) -> None:
    rt = steps.runtime

    ready = await service.readiness(rt)

    assert head_revision() is not None
    assert (ready.ready, ready.database, ready.migrations) == (True, "ok", "ok")
    assert (ready.callback_mode, ready.callback_mode_reason) == (
        rt.callback.mode,
        rt.callback.reason,
    )
    assert list(ready.providers) == ["simulator"]


async def test_not_ready_when_the_database_does_not_answer(steps: Steps) -> None:
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    dead = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        ready = await service.readiness(dataclasses.replace(steps.runtime, engine=dead))
    finally:
        await dead.dispose()

    assert ready.ready is False
    assert ready.database.startswith("unavailable: ")
    assert ready.migrations == "unknown"


async def test_gauges_count_the_jobs_by_status(steps: Steps) -> None:
    rt = steps.runtime
    client = await steps.new_client()
    for status in (JobStatus.queued, JobStatus.queued, JobStatus.processing):
        await insert_job(rt, client.client_id, status=status)

    await service.sample_gauges(rt)

    assert REGISTRY.get_sample_value("mgw_jobs", {"status": "queued"}) == 2
    assert REGISTRY.get_sample_value("mgw_jobs", {"status": "processing"}) == 1
