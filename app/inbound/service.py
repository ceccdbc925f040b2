"""Upstream callbacks are hints: stored raw, deduplicated, then confirmed by a poll.

A valid token proves who we gave the URL to, not what the payload says, so nothing in a
callback body changes a job's state by itself; it makes the poller ask the upstream now.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.errors import NotFound, Unauthorized, Unprocessable
from app.inbound.tokens import token_is_valid
from app.jobs import repository as repo
from app.metrics import CALLBACKS_RECEIVED
from app.models import UpstreamCallback
from app.providers.base import ProviderError

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


async def receive(
    session: AsyncSession, rt: Runtime, *, provider: str, job_id: str, token: str, body: bytes
) -> bool:
    """Returns True when the callback was new and a confirming poll was scheduled."""
    if not token_is_valid(rt.settings.secret_bytes, provider, job_id, token):
        raise Unauthorized("bad callback token", code="invalid_callback_token")
    entry = rt.registry.get(provider)
    job = await repo.get_job(session, job_id)
    if entry is None or job is None:
        raise NotFound("no such provider or job", code="not_found")
    try:
        snapshot = entry.adapter.parse_callback(body)
    except ProviderError as exc:
        raise Unprocessable(
            f"unreadable callback body: {exc.message}", code="bad_callback_payload"
        ) from exc
    row = UpstreamCallback(
        job_id=job_id,
        provider=provider,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body=body.decode("utf-8", errors="replace"),
        claimed_status=snapshot.status.value,
    )
    if not await repo.store_callback(session, row):
        CALLBACKS_RECEIVED.labels(provider=provider, outcome="repeat").inc()
        return False
    CALLBACKS_RECEIVED.labels(provider=provider, outcome="new").inc()
    due = await repo.hint_task(
        session,
        job_id=job_id,
        provider=provider,
        task_id=snapshot.task_id,
        now=utcnow(),
    )
    if due:
        await repo.notify(session, repo.CHANNEL_POLL)
    else:
        log.info("callback for %s (task %s) needs no poll", job_id, snapshot.task_id)
    return due
