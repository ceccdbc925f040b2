"""A succeeded job's own copy of its result: when it is due, and what its outcome records.

When a job succeeds with archival on, its `archive_status` becomes `pending` and its
`job.succeeded` event waits (see `events.publish_status`). The archiver claims it, copies
the result with no transaction open (`app.media.archive`), and records the outcome here:
archived, a retry before the upstream link expires, or a definitive failure. The event is
published in the same transaction as that outcome, so it goes out exactly once, and
carries the link that lasts.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import events
from app.jobs import repository as repo
from app.metrics import ARCHIVE_DURATION_MISMATCHES, ARCHIVED_BYTES, ARCHIVES
from app.models import Job
from app.settings import Settings
from app.statuses import ArchiveStatus, JobStatus

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)

# How far the probed length may stray from the reported one (container vs stream rounding).
DURATION_TOLERANCE_S: Final = 0.5
# Billing rounds the reported length to whole seconds (nearest or up): up to 1 s apart.
BILLING_ROUNDING_S: Final = 1.0
LINK_EXPIRED: Final = "result_link_expired"


def archive_key(job_id: str) -> str:
    """One key per job: a retried or repeated copy replaces the same object."""
    return f"arc_{job_id}/result.mp4"


@dataclass(frozen=True)
class ArchiveItem:
    job_id: str
    provider: str
    url: str | None
    link_expires_at: datetime | None
    attempt: int
    reported_s: float | None
    billed_seconds: int | None


def start(job: Job, settings: Settings, now: datetime) -> None:
    """On success, before the transition: archival pending (the event waits) or off."""
    if not settings.archive_results:
        job.archive_status = ArchiveStatus.off
        ARCHIVES.labels(outcome="off").inc()
        return
    job.archive_status = ArchiveStatus.pending
    job.archive_next_at = now


def duration_mismatch(
    probed_s: float | None, reported_s: float | None, billed_seconds: int | None
) -> bool | None:
    """None when the file could not be probed; True when it is not as long as reported,
    or not as long as billed beyond what whole-second rounding explains."""
    if probed_s is None:
        return None
    if reported_s is not None and abs(probed_s - reported_s) > DURATION_TOLERANCE_S:
        return True
    limit_s = BILLING_ROUNDING_S + DURATION_TOLERANCE_S
    return billed_seconds is not None and abs(billed_seconds - probed_s) > limit_s


def retry_delay_s(settings: Settings, attempt: int) -> float:
    """Doubling from the base, capped, with ±20 % jitter."""
    base = settings.archive_retry_base_s * 2 ** max(0, min(attempt - 1, 16))
    return float(min(settings.archive_retry_max_s, base) * random.uniform(0.8, 1.2))  # noqa: S311


async def claim(rt: Runtime, limit: int) -> list[ArchiveItem]:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        jobs = await repo.claim_due_archives(
            session, now=now, limit=limit, lease_s=rt.settings.archive_lease_s
        )
        return [
            ArchiveItem(
                job_id=job.id,
                provider=job.provider_name or "",
                url=job.result_video_url,
                link_expires_at=job.result_expires_at,
                attempt=job.archive_attempts,
                reported_s=job.result_duration_s,
                billed_seconds=job.billed_seconds,
            )
            for job in jobs
        ]


async def _lock_current(session: AsyncSession, item: ArchiveItem) -> Job | None:
    """The job, if this claim is still the one in charge of its copy."""
    job = await repo.lock_job(session, item.job_id)
    if job is None or job.archive_status is not ArchiveStatus.pending:
        return None
    if job.archive_attempts != item.attempt:
        log.warning("archive of %s: attempt %d was superseded", item.job_id, item.attempt)
        return None
    return job


async def archived_link(rt: Runtime, key: str, expires_at: datetime) -> str:
    """A presigned store link where configured (and offered), else a signed /media link."""
    if rt.settings.s3_presigned_links:
        presigned = await rt.media.storage.presigned_url(key, expires_at - utcnow())
        if presigned is not None:
            return presigned
    return rt.media.signed_url(key, expires_at)


async def record_archived(
    rt: Runtime,
    item: ArchiveItem,
    *,
    key: str,
    sha256: str,
    size_bytes: int,
    probed_s: float | None,
) -> bool:
    """Archived: the link, checksum, size and duration check, then the event. False when
    the claim was superseded (the object is the same key either way)."""
    expires_at = utcnow() + timedelta(seconds=rt.settings.archive_retention_s)
    url = await archived_link(rt, key, expires_at)
    mismatch = duration_mismatch(probed_s, item.reported_s, item.billed_seconds)
    async with transaction(rt.session_factory) as session:
        job = await _lock_current(session, item)
        if job is None:
            return False
        job.archive_status = ArchiveStatus.archived
        job.archive_error = None
        job.archive_key = key
        job.archived_url = url
        job.archive_expires_at = expires_at
        job.archive_next_at = None
        job.sha256 = sha256
        job.size_bytes = size_bytes
        job.archived_duration_s = probed_s
        job.duration_mismatch = mismatch
        job.updated_at = utcnow()
        await session.flush()
        await events.publish_status(session, job, JobStatus.succeeded)
    ARCHIVES.labels(outcome="archived").inc()
    ARCHIVED_BYTES.inc(size_bytes)
    if mismatch:
        ARCHIVE_DURATION_MISMATCHES.labels(provider=item.provider or "unknown").inc()
        log.warning(
            "job %s: archived result lasts %.2f s; the provider reported %s s and billed %s s",
            item.job_id,
            probed_s,
            item.reported_s,
            item.billed_seconds,
        )
    return True


async def record_failure(
    rt: Runtime, item: ArchiveItem, reason: str, *, retryable: bool
) -> tuple[str, datetime | None]:
    """A retry while the upstream link lives, else a definitive failure (and the event).
    The outcome ("retried", "failed" or "superseded") and when a retry is due."""
    now = utcnow()
    next_at = now + timedelta(seconds=retry_delay_s(rt.settings, item.attempt))
    expires_at = item.link_expires_at
    if retryable and (expires_at is None or next_at >= expires_at):
        retryable, reason = False, LINK_EXPIRED  # no try left before the link dies
    async with transaction(rt.session_factory) as session:
        job = await _lock_current(session, item)
        if job is None:
            return "superseded", None
        job.archive_error = reason
        if retryable:
            job.archive_next_at = next_at
            outcome = "retried"
        else:
            job.archive_status = ArchiveStatus.failed
            job.archive_next_at = None
            job.updated_at = now
            await session.flush()
            await events.publish_status(session, job, JobStatus.succeeded)
            outcome = "failed"
    ARCHIVES.labels(outcome=outcome).inc()
    log.info("archive of %s: %s (%s)", item.job_id, outcome, reason)
    return outcome, next_at if retryable else None


async def release(rt: Runtime, item: ArchiveItem) -> None:
    async with transaction(rt.session_factory) as session:
        await repo.release_archive(session, item.job_id, item.attempt, utcnow())
