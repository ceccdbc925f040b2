"""The one place a job's state changes: state machine decision + version + event row.

Every caller holds the job's row lock, so the version bump, the `job_events` row and
whatever the change causes commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.jobs import events, state
from app.jobs.state import Command, Decision, JobStatus
from app.metrics import JOB_TRANSITIONS
from app.models import Job, JobEvent


async def _record(
    session: AsyncSession, job: Job, decision: Decision, source: str, detail: dict[str, Any] | None
) -> bool:
    if not decision.changed:
        return False
    previous = job.status
    now = utcnow()
    job.progress = decision.progress
    job.updated_at = now
    if not decision.status_changed:
        return True
    job.status = decision.status
    job.version += 1
    if decision.status in state.TERMINAL:
        job.completed_at = now
        job.next_poll_at = None
        job.next_attempt_at = None
        job.locked_until = None
    session.add(
        JobEvent(
            job_id=job.id,
            from_status=previous,
            to_status=decision.status,
            version=job.version,
            progress=job.progress,
            source=source,
            detail=detail,
            created_at=now,
        )
    )
    await session.flush()
    await events.publish_status(session, job, decision.status)
    JOB_TRANSITIONS.labels(to_status=decision.status, source=source).inc()
    return True


async def observe(
    session: AsyncSession,
    job: Job,
    seen: JobStatus,
    seen_progress: int,
    *,
    source: str,
    detail: dict[str, Any] | None = None,
) -> Decision:
    decision = state.observe(job.status, job.progress, seen, seen_progress)
    await _record(session, job, decision, source, detail)
    return decision


async def command(
    session: AsyncSession,
    job: Job,
    cmd: Command,
    *,
    source: str,
    detail: dict[str, Any] | None = None,
) -> Decision:
    decision = state.command(job.status, job.progress, cmd)
    await _record(session, job, decision, source, detail)
    return decision


async def record_created(session: AsyncSession, job: Job) -> None:
    """The first event of every job: (none) → queued, version 1."""
    session.add(
        JobEvent(
            job_id=job.id,
            from_status=None,
            to_status=JobStatus.queued,
            version=job.version,
            progress=0,
            source="api",
            detail=None,
            created_at=job.created_at,
        )
    )
    await session.flush()
