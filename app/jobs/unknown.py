"""Submits whose outcome is unknown: adopt the task someone found, or rule it out.

A create whose answer was lost (a timeout or a 500 after the provider made the task, a
worker killed mid-call) is never resent blindly. The job stays `submitting` with
`submit_unknown` set, its estimate counted as `cost.at_risk`, until one of these ends it:

- a callback naming our job (`app/inbound`, through `repo.hint_task`);
- the reconciler (`app/workers/reconciler.py`), asking the adapter's `find_task`
  (Kling by `external_task_id`, the aggregator by an idempotent replay or its task
  list), for `submit_unknown_window_s` after the send;
- an operator: `POST /v1/admin/jobs/{id}/adopt {task_id}` attaches a task they found;
  `{ruled_out: true}` records that the provider made none, which fails the job with
  `submit_ruled_out` and clears `at_risk`.

Past the window nothing is looked for automatically; the job stays visible (admin list
`?submit_unknown=true`, the `mgw_submit_unknown_jobs` gauge, `at_risk_usd` in usage), and
its deadline does not expire it, since that would hide a task that may be billed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.errors import BadGateway, Conflict, Unprocessable
from app.jobs import reconcile, transitions
from app.jobs import repository as repo
from app.jobs.errors import JobNotFound
from app.jobs.state import TERMINAL, Command, JobStatus
from app.metrics import SUBMIT_LOOKUPS
from app.models import Job
from app.providers.base import PermanentError, ProviderError, TaskSnapshot
from app.providers.registry import ProviderEntry
from app.settings import Settings

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


class NotAdoptable(Conflict):
    code = "not_adoptable"


class TaskAlreadyTracked(Conflict):
    code = "task_already_tracked"


class UnknownUpstreamTask(Unprocessable):
    code = "unknown_upstream_task"


def unresolved(job: Job) -> bool:
    return (
        job.status is JobStatus.submitting and job.submit_unknown and job.provider_task_id is None
    )


def next_look_at(settings: Settings, sent_at: datetime | None, now: datetime) -> datetime | None:
    """When to look again: the interval grows with the time since the send (half of it,
    within the configured bounds); None once the window has closed."""
    if sent_at is None:
        return None
    end = sent_at + timedelta(seconds=settings.submit_unknown_window_s)
    if now >= end:
        return None
    elapsed_s = (now - sent_at).total_seconds()
    delay_s = min(
        settings.submit_reconcile_max_interval_s,
        max(settings.submit_reconcile_interval_s, elapsed_s / 2),
    )
    return min(now + timedelta(seconds=delay_s), end)


async def adopt(
    session: AsyncSession,
    settings: Settings,
    job: Job,
    entry: ProviderEntry | None,
    snapshot: TaskSnapshot,
    *,
    source: str,
    detail: dict[str, Any],
) -> bool:
    """Attach the found task to an unresolved job and continue from it (submitted, then
    whatever the snapshot says). The caller holds the row lock. False when the job was
    resolved meanwhile, or when another job already tracks that task (never two jobs on
    one task: that would bill one run twice)."""
    if not unresolved(job):
        return False
    other = await repo.job_with_task(
        session, provider=job.provider_name or "", task_id=snapshot.task_id, other_than=job.id
    )
    if other is not None:
        log.warning("job %s: task %s is already job %s's", job.id, snapshot.task_id, other)
        return False
    now = utcnow()
    job.provider_task_id = snapshot.task_id
    job.submit_unknown = False
    job.estimated_time_s = snapshot.estimated_time_s
    job.locked_until = None
    job.next_attempt_at = None
    await transitions.command(
        session,
        job,
        Command.mark_submitted,
        source=source,
        detail={**detail, "task_id": snapshot.task_id},
    )
    await reconcile.apply_snapshot(session, settings, job, entry, snapshot, source=source)
    if job.status not in TERMINAL:
        job.next_poll_at = reconcile.first_poll_at(
            settings, now, snapshot.estimated_time_s, job.callback_registered
        )
    await repo.notify(session, repo.CHANNEL_POLL)
    return True


async def _read(rt: Runtime, job_id: str) -> Job:
    async with transaction(rt.session_factory) as session:
        job = await repo.get_job(session, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def operator_adopt(rt: Runtime, job_id: str, task_id: str) -> Job:
    """An operator found the task (the provider's console, support): check that the
    provider knows it, then continue the job from it. Only for an unresolved job."""
    job = await _read(rt, job_id)
    if not unresolved(job):
        raise NotAdoptable("only a job whose submit outcome is unknown and has no task")
    entry = rt.registry.get(job.provider_name or "")
    if entry is None:
        raise NotAdoptable(f"the job's provider {job.provider_name!r} is not configured")
    try:
        snapshot = await entry.adapter.fetch(task_id)  # no transaction open meanwhile
    except PermanentError as exc:
        if exc.code == "task_not_found":
            raise UnknownUpstreamTask(f"{entry.name} knows no task {task_id!r}") from exc
        raise BadGateway(f"the provider did not answer: {exc.code}") from exc
    except ProviderError as exc:
        raise BadGateway(f"the provider did not answer: {exc.code}") from exc
    async with transaction(rt.session_factory) as session:
        locked = await repo.lock_job(session, job_id)
        if locked is None:
            raise JobNotFound(job_id)
        if not unresolved(locked):
            raise NotAdoptable("the job was resolved meanwhile")
        other = await repo.job_with_task(
            session, provider=entry.name, task_id=snapshot.task_id, other_than=job_id
        )
        if other is not None:
            raise TaskAlreadyTracked(f"task {snapshot.task_id} is already tracked by {other}")
        await adopt(
            session,
            rt.settings,
            locked,
            entry,
            snapshot,
            source="admin",
            detail={"provider": entry.name, "found_by": "operator"},
        )
    SUBMIT_LOOKUPS.labels(provider=entry.name, outcome="adopted_by_operator").inc()
    return await _read(rt, job_id)


async def rule_out(rt: Runtime, job_id: str, reason: str | None) -> Job:
    """An operator established that the provider made no task for this create (e.g. the
    provider's own records): the job fails with `submit_ruled_out` and `at_risk` is
    cleared. A job with a task cannot be ruled out."""
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, job_id)
        if job is None:
            raise JobNotFound(job_id)
        if not job.submit_unknown or job.provider_task_id is not None:
            raise NotAdoptable("only a job whose submit outcome is unknown and has no task")
        job.submit_unknown = False
        if job.status not in TERMINAL:
            job.error_code = "submit_ruled_out"
            job.error_message = (
                "the provider's answer to the submit was lost, and an operator established "
                "that it made no task" + (f": {reason}" if reason else "")
            )[:2000]
            job.cost_billed_usd, job.billed_seconds = Decimal("0"), 0
            await transitions.command(
                session, job, Command.fail, source="admin", detail={"ruled_out": True}
            )
    SUBMIT_LOOKUPS.labels(provider=job.provider_name or "none", outcome="ruled_out").inc()
    return await _read(rt, job_id)
