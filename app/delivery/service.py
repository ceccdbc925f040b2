"""Endpoint management, delivery logs, redelivery."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.auth.service import new_webhook_secret
from app.clock import utcnow
from app.delivery import outbox
from app.delivery import repository as repo
from app.delivery.errors import DeliveryNotFound, EndpointNotFound, EndpointUrlRejected
from app.delivery.schemas import (
    AttemptOut,
    BulkRedeliverResult,
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
)
from app.delivery.types import TERMINAL_EVENTS
from app.ids import new_id
from app.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from app.net import UrlRejected, resolve_and_vet
from app.statuses import LIVE_DELIVERY, DeliveryStatus, EndpointStatus

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


async def vet_endpoint_url(rt: Runtime, url: str) -> None:
    try:
        target = await resolve_and_vet(url, rt.url_policy)
    except UrlRejected as exc:
        log.info("webhook endpoint url %r refused: %s", url, exc)  # the specifics: log only
        raise EndpointUrlRejected(
            f"url refused: {exc.public_reason}", loc=["body", "url"], reason_code=exc.code
        ) from exc
    if any(ip.is_loopback for ip in target.addresses):
        log.warning("webhook endpoint %s points at loopback (allowed only in dev/test)", url)


async def create_endpoint(
    session: AsyncSession, rt: Runtime, principal: Principal, body: EndpointCreate
) -> WebhookEndpoint:
    await vet_endpoint_url(rt, body.url)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        client_id=principal.client_id,
        url=body.url,
        description=body.description,
        event_types=body.event_types or sorted(TERMINAL_EVENTS),
        status=EndpointStatus.enabled,
        secret=new_webhook_secret(),
        rate_limit_per_s=body.rate_limit_per_s or rt.settings.webhook_endpoint_rate_per_s,
        max_concurrency=body.max_concurrency or rt.settings.webhook_endpoint_concurrency,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = await repo.get_endpoint(session, endpoint_id, principal.client_id, lock=lock)
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


async def list_endpoints(
    session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> EndpointList:
    rows = await repo.list_endpoints(session, principal.client_id, limit, cursor)
    page = rows[:limit]
    return EndpointList(
        data=[endpoint_out(e) for e in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


async def update_endpoint(
    session: AsyncSession, rt: Runtime, principal: Principal, endpoint_id: str, body: EndpointUpdate
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, principal, endpoint_id, lock=True)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        await vet_endpoint_url(rt, changes["url"])
    for field in ("url", "description", "event_types", "rate_limit_per_s", "max_concurrency"):
        if field in changes and (changes[field] is not None or field == "description"):
            setattr(endpoint, field, changes[field])
    if body.status is EndpointStatus.enabled and endpoint.status is not EndpointStatus.enabled:
        # A fresh start: the owner says the endpoint is fixed.
        endpoint.disabled_reason = None
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        endpoint.circuit_open_until = None
    if body.status is EndpointStatus.disabled and endpoint.status is not EndpointStatus.disabled:
        endpoint.disabled_reason = "disabled by the owner"
    if body.status is not None:
        endpoint.status = body.status
    endpoint.updated_at = utcnow()
    await session.flush()
    await repo.notify(session)
    return endpoint


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, principal, endpoint_id, lock=True)
    endpoint.deleted_at = endpoint.updated_at = utcnow()
    endpoint.status = EndpointStatus.disabled
    endpoint.disabled_reason = "deleted"


async def rotate_secret(
    session: AsyncSession, rt: Runtime, principal: Principal, endpoint_id: str
) -> str:
    """The old secret keeps signing beside the new one for the overlap window."""
    endpoint = await get_endpoint(session, principal, endpoint_id, lock=True)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(
        seconds=rt.settings.webhook_secret_overlap_s
    )
    endpoint.secret = new_webhook_secret()
    endpoint.updated_at = now
    return endpoint.secret


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> DeliveryList:
    await get_endpoint(session, principal, endpoint_id)
    rows = await repo.list_deliveries(session, endpoint_id, status, limit, cursor)
    page = rows[:limit]
    attempts = await repo.attempts_of(session, [d.id for d, _ in page])
    return DeliveryList(
        data=[delivery_out(d, t, [a for a in attempts if a.delivery_id == d.id]) for d, t in page],
        next_cursor=page[-1][0].id if len(rows) > limit else None,
    )


async def get_delivery(
    session: AsyncSession, principal: Principal, delivery_id: str
) -> DeliveryOut:
    delivery = await repo.get_delivery(session, delivery_id, principal.client_id)
    if delivery is None:
        raise DeliveryNotFound(delivery_id)
    event = await session.get(Event, delivery.event_id)
    attempts = await repo.attempts_of(session, [delivery.id])
    return delivery_out(delivery, event.type if event else "", attempts)


async def redeliver(session: AsyncSession, principal: Principal, delivery_id: str) -> Delivery:
    """Due now, same event and webhook-id. Repeating it while it is due changes nothing more."""
    delivery = await repo.get_delivery(session, delivery_id, principal.client_id, lock=True)
    if delivery is None:
        raise DeliveryNotFound(delivery_id)
    now = utcnow()
    if delivery.status in (DeliveryStatus.succeeded, DeliveryStatus.dead):
        delivery.status, delivery.schedule_step = DeliveryStatus.pending, 0
    in_flight = delivery.locked_until is not None and delivery.locked_until > now
    if not in_flight:
        delivery.next_attempt_at = delivery.updated_at = now
        if delivery.endpoint_id is not None:
            endpoint = await repo.get_endpoint(session, delivery.endpoint_id, None, lock=True)
            if endpoint is not None:
                _probe_now(endpoint, now)
        await repo.notify(session)
    return delivery


def _probe_now(endpoint: WebhookEndpoint, now: datetime) -> None:
    """An operator's redeliver goes out now even while the endpoint's circuit is open: the
    circuit goes half-open at once, and the redelivered delivery, the only one due before
    the circuit's end (the others' next_attempt_at says that end), is its one probe. A
    success closes the circuit; a failure re-opens it for twice as long, as any probe."""
    if endpoint.circuit_open_until is not None and endpoint.circuit_open_until > now:
        endpoint.circuit_open_until = now


async def bulk_redeliver(
    session: AsyncSession, principal: Principal, endpoint_id: str, since: datetime
) -> BulkRedeliverResult:
    """Everything that failed or was missed since `since`: failed and dead deliveries are due
    again, and events the endpoint never got a delivery for get one (once: the pair is unique)."""
    endpoint = await get_endpoint(session, principal, endpoint_id, lock=True)
    now = utcnow()
    _probe_now(endpoint, now)  # all due now, so the circuit's probe goes now too
    requeued = await repo.reset_for_redelivery(session, endpoint.id, since, now)
    created = 0
    for event in await repo.missed_events(session, endpoint, since):
        delivery = outbox.new_delivery(event, endpoint=endpoint, url=None, due_at=now)
        created += await repo.insert_delivery_once(session, delivery)
    await repo.notify(session)
    return BulkRedeliverResult(requeued=requeued, created=created)


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint, from_attributes=True)


def delivery_out(
    delivery: Delivery, event_type: str, attempts: Sequence[DeliveryAttempt]
) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=event_type,
        endpoint_id=delivery.endpoint_id,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status in LIVE_DELIVERY else None,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        attempt_log=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )
