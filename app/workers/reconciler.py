"""Look for the task of each create whose answer was lost, and adopt it when found.

A thin loop (docs/architecture.md): claim due lookups in one short transaction (SKIP
LOCKED, a lease pushed onto `next_attempt_at`), ask each job's adapter `find_task` with
no session open, record the answer in another transaction through `app.jobs.unknown`.
What each adapter can find with is its `reconcile_mechanisms`; one that has none leaves
the job to its callback and to the operator.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import repository as repo
from app.jobs import unknown
from app.metrics import SUBMIT_LOOKUPS, upstream_call
from app.providers.base import FoundTask, SubmitRequest
from app.providers.registry import ProviderEntry
from app.runtime import Runtime
from app.workers.submitter import build_request

log = logging.getLogger(__name__)

BATCH = 8


@dataclass(frozen=True)
class Lookup:
    job_id: str
    entry: ProviderEntry
    request: SubmitRequest
    submitted_at: datetime


async def claim(rt: Runtime, limit: int = BATCH) -> list[Lookup]:
    now = utcnow()
    lookups: list[Lookup] = []
    async with transaction(rt.session_factory) as session:
        jobs = await repo.claim_due_lookups(
            session, now=now, limit=limit, lease_s=rt.settings.worker_lease_s
        )
        for job in jobs:
            entry = rt.registry.get(job.provider_name or "")
            able = entry is not None and bool(entry.adapter.reconcile_mechanisms)
            if entry is None or not able or job.submit_sent_at is None:
                # Nothing to look with: the callback or an operator must settle it.
                job.next_attempt_at = None
                SUBMIT_LOOKUPS.labels(provider=job.provider_name or "none", outcome="no_way").inc()
                continue
            # The same request as the lost create: the same body, callback URL and key.
            request = build_request(rt, job, entry.name)
            lookups.append(Lookup(job.id, entry, request, job.submit_sent_at))
    return lookups


async def step(rt: Runtime) -> int:
    lookups = await claim(rt)
    if lookups:
        await asyncio.gather(*(look(rt, lookup) for lookup in lookups))
    return len(lookups)


async def look(rt: Runtime, lookup: Lookup) -> None:
    entry = lookup.entry
    found: FoundTask | None = None
    try:
        with upstream_call(entry.name, "find_task"):
            found = await entry.adapter.find_task(
                lookup.request, submitted_at=lookup.submitted_at, idempotency_key=lookup.job_id
            )
    except Exception as exc:  # the upstream could not say: look again later
        log.warning("lookup of %s at %s failed: %s", lookup.job_id, entry.name, exc)
        SUBMIT_LOOKUPS.labels(provider=entry.name, outcome="error").inc()
    await record(rt, lookup, found)


async def record(rt: Runtime, lookup: Lookup, found: FoundTask | None) -> None:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        job = await repo.lock_job(session, lookup.job_id)
        if job is None or not unknown.unresolved(job):
            return  # a callback or an operator resolved it meanwhile
        if found is not None:
            adopted = await unknown.adopt(
                session,
                rt.settings,
                job,
                lookup.entry,
                found.snapshot,
                source="reconciler",
                detail={"provider": lookup.entry.name, "found_by": found.mechanism.value},
            )
            if adopted:
                log.info(
                    "job %s: found task %s at %s by %s",
                    job.id,
                    found.snapshot.task_id,
                    lookup.entry.name,
                    found.mechanism.value,
                )
                SUBMIT_LOOKUPS.labels(provider=lookup.entry.name, outcome=found.mechanism).inc()
                return
        else:
            SUBMIT_LOOKUPS.labels(provider=lookup.entry.name, outcome="not_found").inc()
        job.next_attempt_at = unknown.next_look_at(rt.settings, job.submit_sent_at, now)
        if job.next_attempt_at is None:
            log.warning(
                "job %s: no task found at %s within the window; it stays visible with its "
                "estimate at risk until an operator adopts a task or rules it out",
                job.id,
                lookup.entry.name,
            )
            SUBMIT_LOOKUPS.labels(provider=lookup.entry.name, outcome="window_closed").inc()
