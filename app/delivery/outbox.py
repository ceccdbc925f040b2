"""The transactional outbox: whoever applies a change publishes its event in the same
transaction, and the event's deliveries are written beside it, so a crash can lose neither.

Delivery knows destinations (a client's subscribed endpoints, or one extra URL), never what
the event is about: the domain that owns the change chooses the event type and its data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.delivery import repository as repo
from app.delivery.types import ENDPOINT_DISABLED
from app.ids import new_id
from app.models import Delivery, Event, WebhookEndpoint
from app.statuses import DeliveryStatus


def event_body(
    event_id: str, event_type: str, created_at: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "created_at": created_at, "data": data}


async def _store_event(
    session: AsyncSession, client_id: str, job_id: str | None, event_type: str, data: dict[str, Any]
) -> Event:
    now = utcnow()
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
    not_before: datetime | None = None,
) -> Delivery:
    """One pending delivery of `event`, made at `due_at` (default: when the event happened)
    and due then, or at `not_before` if later: an open circuit's end, so that what is
    stored is when it will really be tried."""
    due_at = due_at or event.created_at
    next_at = max(due_at, not_before) if not_before is not None else due_at
    return Delivery(
        id=new_id("dlv"),
        event_id=event.id,
        client_id=event.client_id,
        endpoint_id=endpoint.id if endpoint else None,
        target_url=url,
        status=DeliveryStatus.pending,
        attempts=0,
        schedule_step=0,
        next_attempt_at=next_at,
        created_at=due_at,
        updated_at=due_at,
    )


async def _fan_out(
    session: AsyncSession, event: Event, endpoints: Iterable[WebhookEndpoint], extra_url: str | None
) -> None:
    session.add_all(
        new_delivery(event, endpoint=e, url=None, not_before=e.circuit_open_until)
        for e in endpoints
    )
    if extra_url:
        session.add(new_delivery(event, endpoint=None, url=extra_url))
    await session.flush()
    await repo.notify(session)


async def publish(
    session: AsyncSession,
    client_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    job_id: str | None = None,
    extra_url: str | None = None,
    only_if_heard: bool = False,
) -> Event | None:
    """Publish `event_type` to the client's subscribed endpoints and to `extra_url`, inside
    the caller's transaction.

    The event is kept even when nobody receives it now (an endpoint added later can ask
    for it with a bulk redelivery) unless `only_if_heard`: then, with no destination, it
    is not stored at all (chatty events nobody subscribed to cost nothing) and None is
    returned.
    """
    endpoints = await repo.endpoints_for(session, client_id, event_type)
    if only_if_heard and not endpoints and not extra_url:
        return None
    event = await _store_event(session, client_id, job_id, event_type, data)
    await _fan_out(session, event, endpoints, extra_url)
    return event


async def publish_endpoint_disabled(session: AsyncSession, endpoint: WebhookEndpoint) -> Event:
    """Tell the owner through its other endpoints; never disable silently."""
    data = {
        "endpoint_id": endpoint.id,
        "url": endpoint.url,
        "reason": endpoint.disabled_reason,
        "status": endpoint.status,
    }
    event = await _store_event(session, endpoint.client_id, None, ENDPOINT_DISABLED, data)
    others = [
        e
        for e in await repo.endpoints_for(session, endpoint.client_id, ENDPOINT_DISABLED)
        if e.id != endpoint.id
    ]
    await _fan_out(session, event, others, None)
    return event
