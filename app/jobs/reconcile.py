"""Apply what the upstream says about a task to its job, and schedule the next look."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.pricing import settle_usd
from app.clock import utcnow
from app.jobs import archival, state, transitions
from app.jobs import repository as repo
from app.jobs.state import TERMINAL, Decision, JobStatus
from app.metrics import UPSTREAM_CHARGE_DRIFT
from app.models import Job
from app.money import usd
from app.providers.base import TaskSnapshot, TaskStatus
from app.providers.registry import ProviderEntry
from app.settings import Settings
from app.statuses import ArchiveStatus

log = logging.getLogger(__name__)

STATUS_FROM_TASK = {
    TaskStatus.pending: JobStatus.submitted,
    TaskStatus.processing: JobStatus.processing,
    TaskStatus.succeeded: JobStatus.succeeded,
    TaskStatus.failed: JobStatus.failed,
    TaskStatus.cancelled: JobStatus.cancelled,
}


def first_poll_at(
    settings: Settings, now: datetime, estimate_s: int | None, callbacks: bool
) -> datetime:
    """Poll-only: look when the provider expects to be done. With healthy callbacks: only
    once the job is overdue, so the poller is a safety net and not a second load."""
    delay_s = float(estimate_s) if estimate_s else settings.poll_first_delay_s
    if callbacks:
        delay_s += settings.poll_overdue_grace_s
    return now + timedelta(seconds=delay_s)


def next_poll_at(settings: Settings, now: datetime, attempts: int) -> datetime:
    """Exponential backoff with ±20 % jitter, capped."""
    base = settings.poll_backoff_base_s * (2 ** max(0, min(attempts - 1, 16)))
    delay_s = min(settings.poll_backoff_max_s, base) * random.uniform(0.8, 1.2)  # noqa: S311
    return now + timedelta(seconds=delay_s)


def _settle(
    job: Job, entry: ProviderEntry | None, snapshot: TaskSnapshot, settings: Settings
) -> None:
    now = utcnow()
    if snapshot.status is TaskStatus.succeeded:
        job.result_video_url = snapshot.result_urls[0] if snapshot.result_urls else None
        job.result_expires_at = now + timedelta(seconds=settings.result_link_ttl_s)
        job.result_duration_s = snapshot.video_duration_s
        if entry is not None and snapshot.video_duration_s:
            job.cost_billed_usd, job.billed_seconds = settle_usd(
                entry.config, job.quality, snapshot.video_duration_s
            )
        archival.start(job, settings, now)
        record_upstream_charge(job, entry, snapshot)
    else:  # failed and cancelled tasks are refunded upstream
        job.cost_billed_usd, job.billed_seconds = Decimal("0"), 0
        if snapshot.status is TaskStatus.failed:
            job.error_code = snapshot.error_code or "upstream_failed"
            job.error_message = snapshot.error_message or "the provider reported the task as failed"


def drift_tolerance(billed: Decimal) -> Decimal:
    return max(Decimal("0.01"), billed * Decimal("0.01"))


def record_upstream_charge(job: Job, entry: ProviderEntry | None, snapshot: TaskSnapshot) -> None:
    """Keep what the upstream says it charged beside our settlement, and flag drift where
    its unit has a configured price."""
    if snapshot.upstream_charge is None:
        return
    job.upstream_charge = snapshot.upstream_charge
    job.upstream_charge_unit = snapshot.upstream_charge_unit
    unit_usd = entry.config.upstream_unit_usd if entry is not None else None
    if unit_usd is None or job.cost_billed_usd is None:
        return
    theirs = usd(snapshot.upstream_charge * unit_usd)
    job.upstream_charge_drift = abs(theirs - job.cost_billed_usd) > drift_tolerance(
        job.cost_billed_usd
    )
    if job.upstream_charge_drift and entry is not None:
        UPSTREAM_CHARGE_DRIFT.labels(provider=entry.name).inc()
        log.warning(
            "job %s: %s reports %s %s (%s USD); we settled %s USD",
            job.id,
            entry.name,
            snapshot.upstream_charge,
            snapshot.upstream_charge_unit,
            theirs,
            job.cost_billed_usd,
        )


async def apply_snapshot(
    session: AsyncSession,
    settings: Settings,
    job: Job,
    entry: ProviderEntry | None,
    snapshot: TaskSnapshot,
    *,
    source: str,
) -> Decision:
    """The caller holds the row lock. Stale or repeated snapshots change nothing."""
    if job.provider_task_id is None:
        job.provider_task_id = snapshot.task_id
    if job.provider_task_id == snapshot.task_id:
        job.submit_unknown = False  # the task is known and reports on itself: no longer at risk
    seen = STATUS_FROM_TASK[snapshot.status]
    preview = state.observe(job.status, job.progress, seen, snapshot.progress)
    if preview.status_changed and preview.status in TERMINAL:
        _settle(job, entry, snapshot, settings)  # before the change: its event carries them
    detail = {"task_status": snapshot.status.value, "task_id": snapshot.task_id}
    decision = await transitions.observe(
        session, job, seen, snapshot.progress, source=source, detail=detail
    )
    if job.status not in TERMINAL:
        job.next_poll_at = next_poll_at(settings, utcnow(), job.poll_attempts)
    await session.flush()
    if decision.status_changed and job.archive_status is ArchiveStatus.pending:
        await repo.notify(session, repo.CHANNEL_ARCHIVE)
    return decision
