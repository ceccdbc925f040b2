"""Record: what one attempt did to its delivery and to its endpoint's health, in one
transaction. A delivery already finished elsewhere (a redeliver, a lease that ran out and
was re-claimed and recorded) is left as it is."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import outbox, policy
from app.delivery import repository as repo
from app.delivery.send import Outbound, Outcome
from app.metrics import DELIVERY_ATTEMPTS, DELIVERY_LATENCY
from app.models import Delivery, DeliveryAttempt, WebhookEndpoint
from app.settings import Settings
from app.statuses import LIVE_DELIVERY, DeliveryStatus, EndpointStatus

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


async def record(rt: Runtime, ob: Outbound, outcome: Outcome) -> None:
    now = utcnow()
    async with transaction(rt.session_factory) as session:
        delivery = await repo.get_delivery(session, ob.delivery_id, None, lock=True)
        if delivery is None or delivery.status not in LIVE_DELIVERY:
            return
        _log_attempt(session, delivery, ob, outcome, now)
        endpoint = (
            await repo.get_endpoint(session, ob.endpoint_id, None, lock=True)
            if ob.endpoint_id
            else None
        )
        if outcome.ok:
            _succeeded(delivery, endpoint, ob, now)
            return
        # Gone means "this subscription is over": a job's callback_url has none to end.
        gone = outcome.status_code == 410 and endpoint is not None
        _failed(rt.settings, delivery, outcome, now, gone=gone)
        if endpoint is not None:
            await _endpoint_failed(session, rt.settings, endpoint, delivery, now, gone=gone)


def _log_attempt(
    session: AsyncSession, delivery: Delivery, ob: Outbound, outcome: Outcome, now: datetime
) -> None:
    error = None if outcome.ok else policy.failure_reason(outcome.status_code, outcome.error)
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempt=ob.attempt,
            status_code=outcome.status_code,
            error=error,
            response_body=outcome.response_body,
            duration_ms=outcome.duration_ms,
            created_at=now,
        )
    )
    delivery.attempts = max(delivery.attempts, ob.attempt)  # a late record never winds back
    delivery.locked_until = None
    delivery.updated_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = error


def _succeeded(
    delivery: Delivery, endpoint: WebhookEndpoint | None, ob: Outbound, now: datetime
) -> None:
    delivery.status, delivery.delivered_at = DeliveryStatus.succeeded, now
    DELIVERY_LATENCY.observe((now - ob.event_created_at).total_seconds())
    DELIVERY_ATTEMPTS.labels(outcome="succeeded").inc()
    if endpoint is not None:
        # one success closes the circuit and ends the failure streak
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        endpoint.circuit_open_until = None


def _failed(
    s: Settings, delivery: Delivery, outcome: Outcome, now: datetime, *, gone: bool
) -> None:
    """The next step of the schedule, or dead when it is exhausted (or the endpoint is gone)."""
    delivery.schedule_step += 1
    delay_s = (
        None
        if gone
        else policy.retry_delay_s(
            s.webhook_retry_schedule_s,
            delivery.schedule_step,
            status_code=outcome.status_code,
            retry_after_s=outcome.retry_after_s,
            retry_after_max_s=s.webhook_retry_after_max_s,
            jitter=policy.jitter(),
        )
    )
    if delay_s is None:
        delivery.status = DeliveryStatus.dead
    else:
        delivery.status = DeliveryStatus.failed
        delivery.next_attempt_at = now + timedelta(seconds=delay_s)
    DELIVERY_ATTEMPTS.labels(outcome="gone" if gone else delivery.status).inc()


async def _endpoint_failed(
    session: AsyncSession,
    s: Settings,
    endpoint: WebhookEndpoint,
    delivery: Delivery,
    now: datetime,
    *,
    gone: bool,
) -> None:
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    open_s = policy.circuit_open_s(
        endpoint.consecutive_failures,
        s.webhook_circuit_threshold,
        s.webhook_circuit_open_s,
        s.webhook_circuit_open_max_s,
    )
    if open_s is not None:
        # The circuit waits; a delivery's own schedule does not stretch beyond that wait,
        # and every stored next_attempt_at says when it will really be tried.
        until = now + timedelta(seconds=open_s)
        endpoint.circuit_open_until = until
        if delivery.status in LIVE_DELIVERY and delivery.next_attempt_at is not None:
            delivery.next_attempt_at = max(delivery.next_attempt_at, until)
        await repo.hold_for_circuit(session, endpoint.id, until, except_id=delivery.id)
    reason = policy.disable_reason(
        gone=gone,
        failing_since=endpoint.failing_since,
        now=now,
        disable_after_s=s.webhook_disable_after_s,
    )
    if reason is not None:
        await _disable(session, endpoint, reason, now)


async def _disable(
    session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
) -> None:
    endpoint.status = EndpointStatus.disabled
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    await outbox.publish_endpoint_disabled(session, endpoint)
