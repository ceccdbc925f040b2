"""Polling as units of work: apply one provider answer, or ask the provider now (admin).

The poller loop and the admin route both end here, so an answer is applied the same way
whoever asked for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.db.engine import transaction
from app.errors import BadGateway
from app.jobs import reconcile
from app.jobs import repository as repo
from app.jobs.errors import JobNotFound
from app.jobs.state import TERMINAL
from app.models import Job
from app.providers.base import ProviderError, TaskSnapshot
from app.providers.registry import ProviderEntry

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


async def apply(rt: Runtime, job_id: str, snapshot: TaskSnapshot, *, source: str) -> None:
    """One transaction: lock the job, apply the snapshot. A terminal job, a vanished one,
    or a snapshot of another task than the job's changes nothing."""
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, job_id)
        if job is None or job.status in TERMINAL:
            return
        if job.provider_task_id not in (None, snapshot.task_id):
            log.warning("job %s: snapshot for foreign task %s ignored", job_id, snapshot.task_id)
            return
        entry = rt.registry.get(job.provider_name or "")
        await reconcile.apply_snapshot(session, rt.settings, job, entry, snapshot, source=source)


async def force_poll(rt: Runtime, job_id: str) -> Job:
    """Ask the job's provider about it now and apply the answer; the job as it is after.

    Each database step is its own short transaction, so no transaction stays open while
    the provider is asked. A job with no provider task yet (or whose provider is no
    longer configured) is returned as it is.
    """
    job = await _read_job(rt, job_id)
    entry = rt.registry.get(job.provider_name or "")
    if entry is None or job.provider_task_id is None:
        return job
    snapshot = await _fetch(entry, job.provider_task_id)
    await apply(rt, job_id, snapshot, source="admin")
    return await _read_job(rt, job_id)


async def _read_job(rt: Runtime, job_id: str) -> Job:
    async with transaction(rt.session_factory) as session:
        job = await repo.get_job(session, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def _fetch(entry: ProviderEntry, task_id: str) -> TaskSnapshot:
    try:
        return await entry.adapter.fetch(task_id)
    except ProviderError as exc:
        raise BadGateway(f"the provider did not answer: {exc.code}") from exc
