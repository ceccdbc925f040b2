"""The fallback poller: confirms callbacks and finds what callbacks never told us."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import polling, reconcile, transitions
from app.jobs import repository as repo
from app.jobs.state import TERMINAL, Command
from app.metrics import upstream_call
from app.providers.base import PermanentError, ProviderError, RetryableError
from app.runtime import Runtime
from app.workers.loop import Pool

log = logging.getLogger(__name__)

LOST_TASK_AFTER_POLLS = 3


@dataclass(frozen=True)
class PollItem:
    job_id: str
    provider: str
    task_id: str
    attempts: int


async def claim(rt: Runtime, limit: int) -> list[PollItem]:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        jobs = await repo.claim_due_polls(
            session,
            now=now,
            limit=limit,
            lease_s=rt.settings.worker_lease_s,
        )
        return [
            PollItem(j.id, j.provider_name or "", j.provider_task_id or "", j.poll_attempts)
            for j in jobs
        ]


async def step(rt: Runtime, pool: Pool) -> int:
    if not pool.free:
        return 0
    items = await claim(rt, pool.free)
    for item in items:
        pool.spawn(poll_one(rt, item), f"poll of {item.job_id}")
    return len(items)


async def poll_one(rt: Runtime, item: PollItem) -> None:
    entry = rt.registry.get(item.provider)
    if entry is None:
        await _reschedule(rt, item, None, "provider_not_configured")
        return
    await entry.bucket.acquire()
    try:
        with upstream_call(entry.name, "fetch"):
            snapshot = await entry.adapter.fetch(item.task_id)
    except ProviderError as exc:
        if isinstance(exc, RetryableError) and exc.retry_after_s:
            entry.bucket.pause(exc.retry_after_s)
        await _on_fetch_error(rt, item, exc)
        return
    except Exception:
        log.exception("poll of %s failed unexpectedly", item.job_id)
        await _reschedule(rt, item, None, "poll_error")
        return
    await polling.apply(rt, item.job_id, snapshot, source="poll")


async def _on_fetch_error(rt: Runtime, item: PollItem, exc: ProviderError) -> None:
    lost = (
        isinstance(exc, PermanentError)
        and exc.code == "task_not_found"
        and item.attempts >= LOST_TASK_AFTER_POLLS
    )
    if not lost:
        retry_after = exc.retry_after_s if isinstance(exc, RetryableError) else None
        await _reschedule(rt, item, retry_after, exc.code)
        return
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, item.job_id)
        if job is None or job.status in TERMINAL:
            return
        job.error_code = "upstream_task_not_found"
        job.error_message = f"the provider no longer knows task {item.task_id}"
        await transitions.command(session, job, Command.fail, source="poll")


async def _reschedule(rt: Runtime, item: PollItem, retry_after_s: float | None, why: str) -> None:
    now = utcnow()
    log.info("poll of %s deferred: %s", item.job_id, why)
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, item.job_id)
        if job is None or job.status in TERMINAL:
            return
        at = reconcile.next_poll_at(rt.settings, now, job.poll_attempts)
        if retry_after_s:
            at = max(at, now + timedelta(seconds=retry_after_s))
        job.next_poll_at = at
