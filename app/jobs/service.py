"""Job decisions for the API: create (idempotent), read, list, cancel; the admin listing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.billing import service as billing
from app.billing.pricing import estimate_usd
from app.clock import utcnow
from app.db.engine import transaction
from app.ids import is_id, new_id
from app.jobs import repository as repo
from app.jobs import transitions
from app.jobs.errors import (
    CallbackUrlRejected,
    IdempotencyConflict,
    InvalidCursor,
    JobNotFound,
    NotCancellable,
)
from app.jobs.schemas import JobCreate, JobEventList, JobEventOut, JobList
from app.jobs.state import Command, JobStatus
from app.jobs.views import to_out
from app.media.context import MediaContext
from app.media.probe import VideoInfo
from app.media.remote import probe_url
from app.media.service import LIMITS, resolve_upload
from app.models import Job
from app.net import UrlRejected, resolve_and_vet
from app.providers.base import ProviderError, TaskStatus

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

MediaKind = Literal["image", "video"]
log = logging.getLogger(__name__)

# A live job this long without any change is worth an operator's look.
STUCK_AFTER = timedelta(minutes=15)


def request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _vet_callback_url(rt: Runtime, url: str | None) -> None:
    if url is None:
        return
    try:
        target = await resolve_and_vet(url, rt.url_policy)
    except UrlRejected as exc:
        # What a name resolves to stays in the log: the answer would be a scanning oracle.
        log.info("callback_url %r refused: %s", url, exc)
        raise CallbackUrlRejected(
            f"callback_url refused: {exc.public_reason}",
            loc=["body", "callback_url"],
            reason_code=exc.code,
        ) from exc
    if any(ip.is_loopback for ip in target.addresses):
        log.warning("callback_url %s points at loopback (allowed only in dev/test)", url)


async def _replay(session: AsyncSession, client_id: str, key: str, digest: str) -> Job | None:
    existing = await repo.get_by_idempotency_key(session, client_id, key)
    if existing is not None and existing.request_hash != digest:
        raise IdempotencyConflict()
    return existing


async def _media_urls(
    session: AsyncSession, rt: Runtime, media: MediaContext, client_id: str, body: JobCreate
) -> tuple[str, str, float | None]:
    """(image_url, video_url, video duration when known): URLs are probed against the model's
    limits where they can be fetched (both at once), uploads become signed links."""
    orientation, now = body.model_params.character_orientation, utcnow()
    sources: list[tuple[MediaKind, str, str]] = [
        ("image", *body.image_source()),
        ("video", *body.video_source()),
    ]
    settings = rt.settings
    probes = await asyncio.gather(
        *(
            probe_url(
                rt.media_client,
                value,
                kind,
                orientation,
                LIMITS,
                settings.media_url_probe,
                settings.media_probe_timeout_s,
            )
            for kind, source, value in sources
            if source == "url"
        )
    )
    duration_s = next((p.duration_s for p in probes if isinstance(p, VideoInfo)), None)
    urls: list[str] = []
    for kind, source, value in sources:
        if source == "url":
            urls.append(value)
            continue
        resolved = await resolve_upload(session, media, client_id, value, kind, orientation, now)
        urls.append(resolved.url)
        duration_s = resolved.duration_s if kind == "video" else duration_s
    return urls[0], urls[1], duration_s


def _new_job(
    rt: Runtime,
    principal: Principal,
    body: JobCreate,
    key: str | None,
    digest: str,
    media: tuple[str, str, float | None],
) -> Job:
    now = utcnow()
    orientation = body.model_params.character_orientation
    image_url, video_url, duration_s = media
    return Job(
        id=new_id("job"),
        client_id=principal.client_id,
        status=JobStatus.queued.value,
        progress=0,
        version=1,
        model=body.model,
        quality=body.quality,
        prompt=body.prompt,
        model_params=body.model_params.model_dump(mode="json", exclude_none=True),
        image_url=image_url,
        video_url=video_url,
        callback_url=body.callback_url,
        metadata_=body.metadata,
        idempotency_key=key,
        request_hash=digest,
        providers_tried=[],
        submit_attempts=0,
        poll_attempts=0,
        submit_unknown=False,
        callback_registered=False,
        cost_estimated_usd=estimate_usd(
            rt.settings.providers, body.quality, orientation, duration_s
        ),
        next_attempt_at=now,
        deadline_at=now + timedelta(seconds=rt.settings.job_deadline_s),
        created_at=now,
        updated_at=now,
    )


async def create_job(
    session: AsyncSession,
    rt: Runtime,
    principal: Principal,
    body: JobCreate,
    key: str | None,
) -> tuple[Job, bool]:
    """Returns (job, created). A repeated Idempotency-Key returns the first job.

    The replay check reads in a short transaction of its own, so that no connection is
    held while the callback URL is resolved and media URLs are fetched: a slow media host
    must cost its own create the probe budget, and every other request nothing.
    """
    digest = request_hash(body)
    if key is not None:
        async with transaction(rt.session_factory) as read:
            if existing := await _replay(read, principal.client_id, key, digest):
                return existing, False
    await _vet_callback_url(rt, body.callback_url)
    urls = await _media_urls(session, rt, rt.media, principal.client_id, body)
    job = _new_job(rt, principal, body, key, digest, urls)
    await billing.reserve(session, principal.client_id, job.cost_estimated_usd, job.created_at)
    if not await repo.insert_job_once(session, job):
        # A concurrent request with the same key won the insert; answer with its job.
        winner = await _replay(session, principal.client_id, key or "", digest)
        if winner is None:
            raise RuntimeError("insert conflicted but no job holds the Idempotency-Key")
        return winner, False
    stored = await repo.get_job(session, job.id)
    if stored is None:
        raise RuntimeError(f"job {job.id} vanished inside its own transaction")
    await transitions.record_created(session, stored)
    await repo.notify(session, repo.CHANNEL_SUBMIT)
    return stored, True


async def get_job(session: AsyncSession, principal: Principal, job_id: str) -> Job:
    job = None
    if is_id(job_id, "job"):  # anything else names no job: no need to ask the database
        job = await repo.get_job(session, job_id, client_id=principal.client_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def list_jobs(
    session: AsyncSession,
    principal: Principal,
    *,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
) -> JobList:
    if cursor is not None and not is_id(cursor, "job"):  # the router checks it already
        raise InvalidCursor("cursor is not one this API issued", loc=["query", "cursor"])
    jobs = await repo.list_jobs(
        session,
        client_id=principal.client_id,
        status=status.value if status else None,
        limit=limit,
        cursor=cursor,
    )
    page, more = jobs[:limit], len(jobs) > limit
    return JobList(data=[to_out(j) for j in page], next_cursor=page[-1].id if more else None)


async def list_all_jobs(
    session: AsyncSession, *, stuck: bool, limit: int, submit_unknown: bool = False
) -> JobList:
    """Jobs of every client, newest first, for operators; `stuck`: live jobs with no change
    for `STUCK_AFTER`, or a submit whose outcome is unknown; `submit_unknown`: only jobs
    whose submit outcome is unknown. One page, no cursor."""
    stuck_before = utcnow() - STUCK_AFTER if stuck else None
    jobs = await repo.list_recent(
        session, limit=limit, stuck_before=stuck_before, submit_unknown=submit_unknown
    )
    return JobList(data=[to_out(j) for j in jobs], next_cursor=None)


async def list_events(session: AsyncSession, principal: Principal, job_id: str) -> JobEventList:
    await get_job(session, principal, job_id)
    events = await repo.list_events(session, job_id)
    return JobEventList(data=[JobEventOut.model_validate(e, from_attributes=True) for e in events])


async def cancel_job(session: AsyncSession, rt: Runtime, principal: Principal, job_id: str) -> Job:
    """Queued: cancelled here. Submitted: only if the provider confirms. Otherwise 409."""
    job = await repo.lock_job(session, (await get_job(session, principal, job_id)).id)
    if job is None:
        raise JobNotFound(job_id)
    status = job.status
    if status is JobStatus.queued:
        await transitions.command(session, job, Command.cancel, source="api")
        return job
    if status in (JobStatus.submitted, JobStatus.processing):
        await _cancel_upstream(session, rt, job)
        return job
    raise NotCancellable(f"a job in status '{status}' cannot be cancelled")


async def _cancel_upstream(session: AsyncSession, rt: Runtime, job: Job) -> None:
    entry = rt.registry.get(job.provider_name or "")
    if entry is None or job.provider_task_id is None:
        raise NotCancellable("the job's provider is not configured any more")
    try:
        snapshot = await entry.adapter.cancel(job.provider_task_id)
    except ProviderError as exc:
        raise NotCancellable(f"the provider did not cancel the task ({exc.code})") from exc
    if snapshot.status is not TaskStatus.cancelled:
        raise NotCancellable(f"the provider reports the task as '{snapshot.status}'")
    await transitions.observe(session, job, JobStatus.cancelled, job.progress, source="api")
