"""Event types and the transactional outbox: an applied change writes its event and
deliveries in the same transaction, so a crash can lose neither."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery import repository as repo
from app.delivery.types import TERMINAL_EVENTS
from app.ids import new_id
from app.jobs.state import JobStatus
from app.jobs.views import job_payload
from app.models import Delivery, Event, Job, WebhookEndpoint
from app.statuses import DeliveryStatus

EVENT_FOR_STATUS = {
    JobStatus.succeeded: "job.succeeded",
    JobStatus.failed: "job.failed",
    JobStatus.cancelled: "job.cancelled",
    JobStatus.expired: "job.expired",
    JobStatus.submitted: "job.submitted",
    JobStatus.processing: "job.processing",
}


def event_body(
    event_id: str, event_type: str, created_at: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "created_at": created_at, "data": data}


async def _store_event(
    session: AsyncSession, client_id: str, job_id: str | None, event_type: str, data: dict[str, Any]
) -> Event:
    now = datetime.now(UTC)
    event_id = new_id("evt")
    event = Event(
        id=event_id,
        client_id=client_id,
        job_id=job_id,
        type=event_type,
        payload=event_body(event_id, event_type, now.isoformat().replace("+00:00", "Z"), data),
        created_at=now,
    )
    session.add(event)
    await session.flush()
    return event


def new_delivery(
    event: Event,
    *,
    endpoint: WebhookEndpoint | None,
    url: str | None,
    due_at: datetime | None = None,
) -> Delivery:
    """One pending delivery of `event`, due at `due_at` (default: when the event happened)."""
    due_at = due_at or event.created_at
    return Delivery(
        id=new_id("dlv"),
        event_id=event.id,
        client_id=event.client_id,
        endpoint_id=endpoint.id if endpoint else None,
        target_url=url,
        status=DeliveryStatus.pending,
        attempts=0,
        schedule_step=0,
        next_attempt_at=due_at,
        created_at=due_at,
        updated_at=due_at,
    )


async def enqueue_job_event(session: AsyncSession, job: Job, status: JobStatus) -> None:
    """Called inside the transaction that applied `status` to `job`."""
    event_type = EVENT_FOR_STATUS.get(status)
    if event_type is None:
        return
    endpoints = await repo.endpoints_for(session, job.client_id, event_type)
    job_callback = job.callback_url if event_type in TERMINAL_EVENTS else None
    if not endpoints and not job_callback and event_type not in TERMINAL_EVENTS:
        return  # nobody asked for this progress event
    event = await _store_event(session, job.client_id, job.id, event_type, job_payload(job))
    session.add_all(new_delivery(event, endpoint=e, url=None) for e in endpoints)
    if job_callback:
        session.add(new_delivery(event, endpoint=None, url=job_callback))
    await session.flush()
    await repo.notify(session)


async def enqueue_endpoint_disabled(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Tell the owner through its other endpoints; never disable silently."""
    data = {
        "endpoint_id": endpoint.id,
        "url": endpoint.url,
        "reason": endpoint.disabled_reason,
        "status": endpoint.status,
    }
    event = await _store_event(session, endpoint.client_id, None, "endpoint.disabled", data)
    others = [
        e
        for e in await repo.endpoints_for(session, endpoint.client_id, "endpoint.disabled")
        if e.id != endpoint.id
    ]
    session.add_all(new_delivery(event, endpoint=e, url=None) for e in others)
    await session.flush()
    await repo.notify(session)
