"""Settles what nobody else will: deadlines, submits whose outcome stayed unknown, and the
retention of delivery logs, uploads and archived results."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import repository as delivery_repo
from app.inbound.selfcheck import check_callback_mode
from app.jobs import repository as repo
from app.jobs import transitions, unknown
from app.jobs.state import Command, JobStatus
from app.media import repository as media_repo
from app.metrics import MEDIA_PURGED
from app.models import Job
from app.runtime import Runtime
from app.workers import reconciler

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 300.0
PURGE_BATCH: Final = 200

log = logging.getLogger(__name__)


class Janitor:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S

    async def step(self) -> int:
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S
            await self.housekeeping()
        settled = await settle_stale(self._rt)
        return settled + await reconciler.step(self._rt)

    async def housekeeping(self) -> None:
        """Re-check our callback URL (DNS can change) and apply log retention."""
        rt = self._rt
        rt.callback = await check_callback_mode(rt.settings)
        cutoff = utcnow() - timedelta(seconds=rt.settings.webhook_log_retention_s)
        async with transaction(rt.session_factory) as session:
            await delivery_repo.purge_logs(session, cutoff)
        await purge_expired_media(rt)


async def purge_expired_media(rt: Runtime, now: datetime | None = None) -> tuple[int, int]:
    """Delete uploads and archived results past their retention: (uploads, archives).

    Each batch is read in one transaction, its objects deleted with none open (a store
    may be across the network), and the rows updated in another. A crash in between only
    repeats a delete, which is idempotent.
    """
    now = now or utcnow()
    uploads = await _purge(rt, "upload", media_repo.expired_uploads, media_repo.delete_uploads, now)
    archives = await _purge(rt, "archive", repo.expired_archives, repo.forget_archives, now)
    if uploads or archives:
        log.info("retention: deleted %d uploads and %d archived results", uploads, archives)
    return uploads, archives


async def settle_stale(rt: Runtime) -> int:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        jobs = await repo.claim_stale(session, now=now, limit=100)
        for job in jobs:
            await settle(rt, session, job)
    return len(jobs)


async def settle(rt: Runtime, session: AsyncSession, job: Job) -> None:
    """Expire a job past its deadline, or mark a submit whose worker died mid-call as of
    unknown outcome (the reconciler then looks for its task at once). An unresolved
    unknown submit is never failed here: `app.jobs.unknown` says who ends it."""
    now = utcnow()
    if job.deadline_at <= now and not unknown.unresolved(job):
        job.error_code = "deadline_exceeded"
        job.error_message = "no terminal answer from the provider before the job's deadline"
        await transitions.command(session, job, Command.expire, source="janitor")
        return
    if job.status is not JobStatus.submitting or job.submit_unknown:
        return
    if job.provider_task_id is None and job.locked_until is not None and job.locked_until <= now:
        # The worker that sent it died mid-call: the request may have reached the provider.
        job.submit_unknown = True
        job.locked_until = None
        job.next_attempt_at = now
        log.warning("submit of %s: its worker died mid-call; the outcome is unknown", job.id)


Expired = Callable[..., Awaitable[list[tuple[str, str]]]]
Forget = Callable[[AsyncSession, list[str]], Awaitable[None]]


async def _purge(rt: Runtime, kind: str, expired: Expired, forget: Forget, now: datetime) -> int:
    """Batches of (row id, object key): read, delete the objects, then forget the rows."""
    purged = 0
    while True:
        async with transaction(rt.session_factory) as session:
            batch = await expired(session, now=now, limit=PURGE_BATCH)
        if not batch:
            return purged
        for _row_id, key in batch:
            await rt.media.storage.delete(key)
        async with transaction(rt.session_factory) as session:
            await forget(session, [row_id for row_id, _ in batch])
        purged += len(batch)
        MEDIA_PURGED.labels(kind=kind).inc(len(batch))
