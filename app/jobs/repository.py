"""All SQL about jobs. Services call these; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Job, JobEvent, UpstreamCallback
from app.statuses import AT_PROVIDER, LIVE, ArchiveStatus, JobStatus

CHANNEL_SUBMIT = "mgw_submit"
CHANNEL_POLL = "mgw_poll"
CHANNEL_ARCHIVE = "mgw_archive"


async def notify(session: AsyncSession, channel: str) -> None:
    """Queued inside the transaction; Postgres delivers it only if the transaction commits."""
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})


async def insert_job_once(session: AsyncSession, job: Job) -> bool:
    """Insert unless (client, Idempotency-Key) exists; safe under concurrent identical creates."""
    values = {c.key: getattr(job, c.key) for c in Job.__mapper__.column_attrs}
    values = {k: v for k, v in values.items() if v is not None}
    stmt = (
        insert(Job)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["client_id", "idempotency_key"])
        .returning(Job.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get_job(
    session: AsyncSession, job_id: str, *, client_id: str | None = None
) -> Job | None:
    stmt = select(Job).where(Job.id == job_id)
    if client_id is not None:
        stmt = stmt.where(Job.client_id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_job(session: AsyncSession, job_id: str) -> Job | None:
    """Row lock for a transition; waits for the other writer instead of skipping."""
    stmt = (
        select(Job)
        .where(Job.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_idempotency_key(session: AsyncSession, client_id: str, key: str) -> Job | None:
    stmt = select(Job).where(Job.client_id == client_id, Job.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_jobs(
    session: AsyncSession,
    *,
    client_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> list[Job]:
    """Newest first; ids sort by creation time, so the last id is the cursor."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if client_id is not None:
        stmt = stmt.where(Job.client_id == client_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if cursor is not None:
        stmt = stmt.where(Job.id < cursor)
    return list((await session.execute(stmt)).scalars())


async def list_recent(
    session: AsyncSession,
    *,
    limit: int,
    stuck_before: datetime | None = None,
    submit_unknown: bool = False,
) -> list[Job]:
    """Every client's jobs, newest first (the admin view). With `stuck_before`: only live
    jobs unchanged since then, or whose submit has an unknown outcome. With
    `submit_unknown`: only jobs whose submit outcome is unknown (whatever their status:
    these are the jobs whose `cost.at_risk` is not zero)."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if stuck_before is not None:
        stmt = stmt.where(
            Job.status.in_(sorted(LIVE)),
            or_(Job.updated_at < stuck_before, Job.submit_unknown.is_(True)),
        )
    if submit_unknown:
        stmt = stmt.where(Job.submit_unknown.is_(True))
    return list((await session.execute(stmt)).scalars())


# A submit whose outcome is unknown and whose task nobody has found yet: the reconciler
# looks for it, the deadline does not hide it, only a found task or an operator ends it.
_UNRESOLVED = and_(
    Job.status == JobStatus.submitting,
    Job.submit_unknown.is_(True),
    Job.provider_task_id.is_(None),
)


async def claim_due_lookups(
    session: AsyncSession, *, now: datetime, limit: int, lease_s: float
) -> list[Job]:
    """Claim unresolved unknown-outcome submits whose next look is due, and push that look
    out by a lease (which also recovers a reconciler that died mid-look). SKIP LOCKED: N
    replicas get disjoint rows."""
    stmt = (
        select(Job)
        .where(_UNRESOLVED, Job.next_attempt_at <= now)
        .order_by(Job.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    jobs = list((await session.execute(stmt)).scalars())
    for job in jobs:
        job.next_attempt_at = now + timedelta(seconds=lease_s)
    await session.flush()
    return jobs


async def job_with_task(
    session: AsyncSession, *, provider: str, task_id: str, other_than: str
) -> str | None:
    """The id of another job that already tracks this upstream task, if any."""
    stmt = select(Job.id).where(
        Job.provider_name == provider, Job.provider_task_id == task_id, Job.id != other_than
    )
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def count_submit_unknown(session: AsyncSession) -> dict[str, int]:
    """Unknown-outcome jobs: `unresolved` (no task found yet) and `at_risk` (all whose
    estimate counts as at risk)."""
    unresolved = func.count().filter(_UNRESOLVED)
    at_risk = func.count().filter(Job.submit_unknown.is_(True), Job.cost_billed_usd.is_(None))
    row = (await session.execute(select(unresolved, at_risk))).one()
    return {"unresolved": int(row[0]), "at_risk": int(row[1])}


async def list_events(session: AsyncSession, job_id: str) -> Sequence[JobEvent]:
    stmt = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    return (await session.execute(stmt)).scalars().all()


async def claim_due_submits(session: AsyncSession, *, now: datetime, limit: int) -> list[Job]:
    """Claim queued jobs that are due.

    `FOR UPDATE SKIP LOCKED`: N replicas running this at once each get disjoint rows and
    never wait on each other; the caller moves each row out of `queued` in the same
    transaction, so once it commits no other replica can claim it again.
    """
    stmt = (
        select(Job)
        .where(Job.status == JobStatus.queued, Job.next_attempt_at <= now)
        .order_by(Job.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def claim_due_polls(
    session: AsyncSession, *, now: datetime, limit: int, lease_s: float
) -> list[Job]:
    """Claim live jobs whose poll is due and push `next_poll_at` out by a lease.

    Safe on N replicas: SKIP LOCKED hands each row to one claimer, and the pushed-out
    `next_poll_at` keeps it from being claimed again until the lease runs out, which is
    also what recovers a job whose poller crashed.
    """
    stmt = (
        select(Job)
        .where(
            Job.next_poll_at <= now,
            or_(
                Job.status.in_(sorted(AT_PROVIDER)),
                and_(Job.status == JobStatus.submitting, Job.provider_task_id.is_not(None)),
            ),
        )
        .order_by(Job.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    jobs = list((await session.execute(stmt)).scalars())
    for job in jobs:
        job.next_poll_at = now + timedelta(seconds=lease_s)
        job.poll_attempts += 1
    await session.flush()
    return jobs


async def claim_stale(session: AsyncSession, *, now: datetime, limit: int) -> list[Job]:
    """Jobs the janitor must settle: past their deadline (except an unresolved unknown
    submit: expiring it would hide a task that may be running and billed), or a submit
    whose lease ran out mid-call (its outcome becomes unknown). SKIP LOCKED as above."""
    stmt = (
        select(Job)
        .where(
            or_(
                and_(
                    Job.status.in_(sorted(LIVE)),
                    Job.deadline_at <= now,
                    not_(_UNRESOLVED),
                ),
                and_(
                    Job.status == JobStatus.submitting,
                    Job.provider_task_id.is_(None),
                    Job.submit_unknown.is_(False),
                    Job.locked_until <= now,
                ),
            )
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def store_callback(session: AsyncSession, row: UpstreamCallback) -> bool:
    """Store a raw callback once per distinct body; True when it is new."""
    stmt = (
        insert(UpstreamCallback)
        .values(
            job_id=row.job_id,
            provider=row.provider,
            body_sha256=row.body_sha256,
            body=row.body,
            claimed_status=row.claimed_status,
        )
        .on_conflict_do_update(
            index_elements=["job_id", "body_sha256"],
            set_={"repeats": UpstreamCallback.repeats + 1},
        )
        .returning(text("(xmax = 0) AS inserted"))
    )
    return bool((await session.execute(stmt)).scalar_one())


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows.all()}


async def hint_task(
    session: AsyncSession, *, job_id: str, provider: str, task_id: str, now: datetime
) -> bool:
    """A callback named a task: poll it now. Adopts the task id only for a job whose submit
    is still in flight or unknown, and only from the provider it was sent to."""
    adopt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.submitting,
            Job.provider_task_id.is_(None),
            Job.provider_name == provider,
        )
        .values(provider_task_id=task_id)
    )
    await session.execute(adopt)
    due = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.provider_task_id == task_id,
            Job.status.in_(sorted(AT_PROVIDER | {JobStatus.submitting})),
        )
        .values(next_poll_at=now)
        .returning(Job.id)
    )
    return (await session.execute(due)).scalar_one_or_none() is not None


async def claim_due_archives(
    session: AsyncSession, *, now: datetime, limit: int, lease_s: float
) -> list[Job]:
    """Claim succeeded jobs whose copy is due; SKIP LOCKED and a lease as for polls. Each
    claim counts an attempt, and the attempt number fences what the claimer may record."""
    stmt = (
        select(Job)
        .where(Job.archive_status == ArchiveStatus.pending, Job.archive_next_at <= now)
        .order_by(Job.archive_next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    jobs = list((await session.execute(stmt)).scalars())
    for job in jobs:
        job.archive_next_at = now + timedelta(seconds=lease_s)
        job.archive_attempts += 1
    await session.flush()
    return jobs


async def release_archive(session: AsyncSession, job_id: str, attempt: int, now: datetime) -> None:
    """An interrupted copy (shutdown) is due again at once instead of after its lease."""
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.archive_status == ArchiveStatus.pending,
            Job.archive_attempts == attempt,
        )
        .values(archive_next_at=now)
    )
    await session.execute(stmt)


async def expired_archives(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[str, str]]:
    """(job id, storage key) of archived results past their retention."""
    stmt = (
        select(Job.id, Job.archive_key)
        .where(Job.archive_key.is_not(None), Job.archive_expires_at <= now)
        .order_by(Job.archive_expires_at)
        .limit(limit)
    )
    return [(job_id, key) for job_id, key in (await session.execute(stmt)).all() if key]


async def forget_archives(session: AsyncSession, job_ids: list[str]) -> None:
    """The copies are deleted: the jobs keep their checksum and size, not the link."""
    if not job_ids:
        return
    stmt = update(Job).where(Job.id.in_(job_ids)).values(archive_key=None, archived_url=None)
    await session.execute(stmt)
