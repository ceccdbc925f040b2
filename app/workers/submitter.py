"""Forward queued jobs to the cheapest healthy provider, at most once per paid call."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from app.backoff import Backoff
from app.clock import utcnow
from app.db.engine import transaction
from app.inbound.tokens import callback_url
from app.jobs import reconcile, transitions
from app.jobs import repository as repo
from app.jobs.state import TERMINAL, Command, JobStatus
from app.metrics import upstream_call
from app.models import Job
from app.providers.base import (
    AmbiguousError,
    PermanentError,
    ProviderError,
    RetryableError,
    SubmitRequest,
    TaskSnapshot,
)
from app.providers.registry import ProviderEntry
from app.runtime import Runtime
from app.unavailable import describe, is_database_unavailable
from app.workers.loop import Pool

log = logging.getLogger(__name__)

# Refusals about our account with this provider (auth, quota, permission), not about the
# job: another provider may well take it.
PROVIDER_SIDE_STATUSES = frozenset({401, 402, 403})


def provider_side(exc: ProviderError) -> bool:
    return exc.status_code in PROVIDER_SIDE_STATUSES


@dataclass(frozen=True)
class Attempt:
    job_id: str
    entry: ProviderEntry
    request: SubmitRequest


def build_request(rt: Runtime, job: Job, provider: str) -> SubmitRequest:
    params = job.model_params
    cb = (
        callback_url(rt.settings.public_base_url, rt.settings.secret_bytes, provider, job.id)
        if rt.callbacks_enabled
        else None
    )
    watermark = params.get("watermark_info")
    return SubmitRequest(
        job_id=job.id,
        image_url=job.image_url,
        video_url=job.video_url,
        quality=job.quality,
        character_orientation=params["character_orientation"],
        keep_sound=params.get("keep_sound", True),
        prompt=job.prompt,
        element_ids=tuple(e["element_id"] for e in params.get("element_list") or ()),
        watermark_enabled=watermark["enabled"] if watermark else None,
        callback_url=cb,
    )


def _backoff_s(rt: Runtime, attempts: int, retry_after_s: float | None) -> float:
    """Exponential, capped, with full jitter over its upper half: after an outage the
    queued jobs spread out instead of retrying at the same instant."""
    ceiling: float = min(
        rt.settings.submit_retry_max_s, rt.settings.submit_retry_base_s * 2 ** max(0, attempts - 1)
    )
    delay = ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after_s or 0.0)


async def claim(rt: Runtime, limit: int) -> list[Attempt]:
    """Move due queued jobs to `submitting` and commit before any request leaves."""
    now = utcnow()
    attempts: list[Attempt] = []
    async with transaction(rt.session_factory) as session:
        for job in await repo.claim_due_submits(session, now=now, limit=limit):
            entry = rt.registry.choose(job.quality, exclude=set(job.providers_tried))
            if entry is None:
                job.providers_tried = []
                job.next_attempt_at = now + timedelta(
                    seconds=_backoff_s(rt, job.submit_attempts + 1, None)
                )
                continue
            await transitions.command(
                session,
                job,
                Command.start_submit,
                source="submitter",
                detail={"provider": entry.name},
            )
            job.provider_name = entry.name
            job.submit_attempts += 1
            job.submit_sent_at = now
            job.next_attempt_at = None
            job.locked_until = now + timedelta(seconds=rt.settings.worker_lease_s)
            job.callback_registered = rt.callbacks_enabled
            attempts.append(Attempt(job.id, entry, build_request(rt, job, entry.name)))
    return attempts


async def step(rt: Runtime, pool: Pool) -> int:
    if not pool.free:
        return 0
    attempts = await claim(rt, pool.free)
    for attempt in attempts:
        pool.spawn(send(rt, attempt), f"submit of {attempt.job_id}")
    return len(attempts)


async def send(rt: Runtime, attempt: Attempt) -> None:
    entry = attempt.entry
    try:
        with upstream_call(entry.name, "submit"):
            snapshot = await entry.adapter.submit(attempt.request)
    except ProviderError as exc:
        if isinstance(exc, PermanentError) and not provider_side(exc):
            entry.breaker.record_success()  # a refusal of this job: the provider is up
        else:
            entry.breaker.record_failure()
        await until_recorded(rt, attempt, partial(record_failure, rt, attempt, exc))
        return
    except Exception as exc:  # unknown failure after the request may have left: ambiguous
        log.exception("submit of %s to %s failed unexpectedly", attempt.job_id, entry.name)
        entry.breaker.record_failure()  # resolves a probe: never leave the slot taken
        ambiguous = AmbiguousError("submit_error", repr(exc))
        await until_recorded(rt, attempt, partial(record_failure, rt, attempt, ambiguous))
        return
    entry.breaker.record_success()
    await until_recorded(rt, attempt, partial(record_success, rt, attempt, snapshot))


async def until_recorded(
    rt: Runtime, attempt: Attempt, record: Callable[[], Awaitable[None]]
) -> None:
    """The provider's answer exists only in memory: keep trying to write it while the
    database is unreachable (up to the unknown-outcome window), rather than leave the
    job to be judged `submit_outcome_unknown` for an answer we had."""
    backoff = Backoff()
    deadline = time.monotonic() + rt.settings.submit_unknown_window_s
    while True:
        try:
            await record()
            return
        except Exception as exc:
            if not is_database_unavailable(exc) or time.monotonic() >= deadline:
                raise
            delay_s = backoff.next_s()
            log.warning(
                "submit of %s: answer held, database unavailable (%s); retry in %.1fs",
                attempt.job_id,
                describe(exc),
                delay_s,
            )
            await asyncio.sleep(delay_s)


async def record_success(rt: Runtime, attempt: Attempt, snapshot: TaskSnapshot) -> None:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, attempt.job_id)
        if job is None:
            return
        if job.status is not JobStatus.submitting:
            if job.provider_task_id is None and job.status in TERMINAL:
                # Expired (or failed) while its create was in flight, and the provider made
                # the task after all: a paid task. Keep its id, and its estimate at risk,
                # so the charge stays visible (usage, the admin list of unknown submits).
                job.provider_task_id = snapshot.task_id
                job.submit_unknown = True
                job.cost_billed_usd = None  # never billed: a job with no task billed nothing
                job.billed_seconds = None
                log.warning(
                    "job %s ended %s while its create was in flight; the provider made task "
                    "%s, kept with its estimate at risk",
                    job.id,
                    job.status,
                    snapshot.task_id,
                )
            elif job.provider_task_id != snapshot.task_id:
                log.warning(
                    "job %s moved on with task %s; the create answered %s",
                    job.id,
                    job.provider_task_id,
                    snapshot.task_id,
                )
            return  # an early callback or an operator already moved it on
        # The create's answer is authoritative over a task id adopted from a callback.
        job.provider_task_id = snapshot.task_id
        job.submit_unknown = False  # a late answer settles what the janitor could not know
        job.estimated_time_s = snapshot.estimated_time_s
        job.locked_until = None
        job.next_poll_at = reconcile.first_poll_at(
            rt.settings, now, snapshot.estimated_time_s, job.callback_registered
        )
        await transitions.command(
            session,
            job,
            Command.mark_submitted,
            source="submitter",
            detail={"provider": attempt.entry.name, "task_id": snapshot.task_id},
        )
        await repo.notify(session, repo.CHANNEL_POLL)


async def record_failure(rt: Runtime, attempt: Attempt, exc: ProviderError) -> None:
    now = utcnow()
    detail = {"provider": attempt.entry.name, "error": exc.code, "message": exc.message[:500]}
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, attempt.job_id)
        if job is None:
            return
        if job.status is not JobStatus.submitting:
            # Ended while its create was out, and the create may have made a task: keep its
            # estimate at risk, visible, rather than forget it.
            orphan = job.provider_task_id is None and job.cost_billed_usd is None
            if isinstance(exc, AmbiguousError) and job.status in TERMINAL and orphan:
                job.submit_unknown = True
                log.warning(
                    "job %s ended %s while its create was out; the create's outcome is "
                    "unknown (%s), its estimate is kept at risk",
                    job.id,
                    job.status,
                    exc.code,
                )
            return
        job.locked_until = None
        job.submit_unknown = isinstance(exc, AmbiguousError)  # a definite refusal is known
        if isinstance(exc, AmbiguousError):
            # Never resubmit blindly: a callback naming our job, or the reconciler's lookups
            # (app/workers/reconciler.py), find the task; until then its estimate is at risk.
            job.next_attempt_at = now + timedelta(seconds=rt.settings.submit_reconcile_first_s)
            log.warning(
                "submit of %s to %s has an unknown outcome: %s", job.id, attempt.entry.name, exc
            )
            return
        if isinstance(exc, PermanentError) and not provider_side(exc):
            job.error_code, job.error_message = exc.code, exc.message
            await transitions.command(session, job, Command.fail, source="submitter", detail=detail)
            return
        retry_after = exc.retry_after_s if isinstance(exc, RetryableError) else None
        job.providers_tried = [*job.providers_tried, attempt.entry.name]
        others_left = rt.registry.has_candidate(exclude=set(job.providers_tried))
        delay_s = 0.0 if others_left else _backoff_s(rt, job.submit_attempts, retry_after)
        if not others_left:
            job.providers_tried = []
        job.next_attempt_at = now + timedelta(seconds=delay_s)
        job.provider_name = None
        await transitions.command(session, job, Command.requeue, source="submitter", detail=detail)
        await repo.notify(session, repo.CHANNEL_SUBMIT)
