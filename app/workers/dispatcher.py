"""Deliver due events to subscribers: claimed with SKIP LOCKED, each send its own task.

Sends run as independent tasks under a global cap (a `Pool`), and the claim respects a per-endpoint
concurrency cap, a per-endpoint rate limit and a per-endpoint circuit, so one slow or
dead endpoint can hold at most its own few slots and never the others'.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import outbox
from app.delivery import repository as repo
from app.delivery.signer import standard_headers
from app.metrics import DELIVERY_ATTEMPTS, DELIVERY_LATENCY
from app.models import Client, DeliveryAttempt, WebhookEndpoint
from app.net import UrlRejected
from app.runtime import Runtime
from app.settings import Settings
from app.statuses import LIVE_DELIVERY, DeliveryStatus, EndpointStatus
from app.workers.loop import Pool

log = logging.getLogger(__name__)

USER_AGENT = f"motion-gateway-webhooks/{__version__}"
MAX_LOGGED_BODY_BYTES = 1024


@dataclass(frozen=True)
class Outbound:
    delivery_id: str
    event_id: str
    event_created_at: datetime
    endpoint_id: str | None
    url: str
    body: str
    secrets: list[str]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after_s: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def endpoint_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def _admit(
    endpoint: WebhookEndpoint, in_flight: dict[str, int], s: Settings, now: datetime
) -> datetime | None:
    """None when the endpoint may take one more send now, else when to try again (rate)."""
    cap = (
        1
        if endpoint.consecutive_failures >= s.webhook_circuit_threshold
        else endpoint.max_concurrency
    )
    if in_flight.get(endpoint.id, 0) >= cap:
        return now  # stays due; picked up when a slot frees
    interval = timedelta(seconds=1.0 / endpoint.rate_limit_per_s)
    tat = max(endpoint.rate_tat or now, now)
    if tat - now > timedelta(seconds=1.0):  # allow a burst of about one second's worth
        return tat
    endpoint.rate_tat = tat + interval
    in_flight[endpoint.id] = in_flight.get(endpoint.id, 0) + 1
    return None


async def claim(rt: Runtime, limit: int) -> tuple[list[Outbound], datetime | None]:
    """The sends to make now, and when the earliest rate-limited one falls due."""
    s, now = rt.settings, utcnow()
    out: list[Outbound] = []
    deferred_until: datetime | None = None
    async with transaction(rt.session_factory) as session:
        rows = await repo.claim_candidates(
            session, now=now, limit=limit, circuit_threshold=s.webhook_circuit_threshold
        )
        endpoints = await repo.lock_endpoints(session, list({e.id for _, e, _ in rows if e}))
        in_flight = await repo.in_flight_by_endpoint(session, list(endpoints), now)
        client_secrets = await _client_secrets(
            session, {d.client_id for d, e, _ in rows if e is None}
        )
        for delivery, endpoint_row, event in rows:
            endpoint = endpoints.get(endpoint_row.id) if endpoint_row else None
            if endpoint is not None:
                later = _admit(endpoint, in_flight, s, now)
                if later is not None:
                    delivery.next_attempt_at = max(later, delivery.next_attempt_at or now)
                    if later > now:
                        deferred_until = min(later, deferred_until or later)
                    continue
            # the lease outlives the send's timeout; a crashed sender's delivery returns after it
            delivery.locked_until = now + timedelta(seconds=s.webhook_timeout_s + 5)
            out.append(
                Outbound(
                    delivery_id=delivery.id,
                    event_id=event.id,
                    event_created_at=event.created_at,
                    endpoint_id=endpoint.id if endpoint else None,
                    url=endpoint.url if endpoint else delivery.target_url or "",
                    body=json.dumps(event.payload, separators=(",", ":")),
                    secrets=endpoint_secrets(endpoint, now)
                    if endpoint
                    else [client_secrets[delivery.client_id]],
                    attempt=delivery.attempts + 1,
                )
            )
    return out, deferred_until


async def _client_secrets(session: AsyncSession, client_ids: set[str]) -> dict[str, str]:
    if not client_ids:
        return {}
    rows = await session.execute(
        select(Client.id, Client.webhook_secret).where(Client.id.in_(client_ids))
    )
    return {str(cid): str(secret) for cid, secret in rows.all()}


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date is rare from webhook receivers; the schedule applies


async def send(client: httpx.AsyncClient, ob: Outbound) -> Outcome:
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-attempt": str(ob.attempt),
        **standard_headers(ob.secrets, ob.event_id, utcnow(), ob.body),
    }
    started = time.monotonic()
    try:
        async with client.stream("POST", ob.url, content=ob.body.encode(), headers=headers) as resp:
            body = b""
            async for chunk in resp.aiter_raw():
                body += chunk
                if len(body) >= MAX_LOGGED_BODY_BYTES:
                    break
            outcome = Outcome(
                status_code=resp.status_code,
                response_body=body[:MAX_LOGGED_BODY_BYTES].decode("utf-8", errors="replace"),
                retry_after_s=_retry_after_s(resp.headers.get("retry-after")),
            )
    except UrlRejected as exc:
        outcome = Outcome(error=f"refused by the URL policy: {exc.reason}")
    except httpx.TimeoutException:
        outcome = Outcome(error="timed out")
    except httpx.HTTPError as exc:
        outcome = Outcome(error=f"{type(exc).__name__}: {exc}"[:500])
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return Outcome(**{**outcome.__dict__, "duration_ms": elapsed_ms})


def _describe_failure(outcome: Outcome) -> str:
    if outcome.error:
        return outcome.error
    if outcome.status_code is not None and 300 <= outcome.status_code < 400:
        return f"HTTP {outcome.status_code}: redirects are not followed"
    return f"HTTP {outcome.status_code}"


def _next_delay_s(s: Settings, step: int, outcome: Outcome) -> float | None:
    """None when the schedule is exhausted. Retry-After wins within bounds."""
    if step >= len(s.webhook_retry_schedule_s):
        return None
    delay = s.webhook_retry_schedule_s[step] * random.uniform(0.9, 1.1)  # noqa: S311
    if outcome.status_code in (429, 503) and outcome.retry_after_s is not None:
        delay = max(delay, min(outcome.retry_after_s, s.webhook_retry_after_max_s))
    return delay


async def record(rt: Runtime, ob: Outbound, outcome: Outcome) -> None:
    s, now = rt.settings, utcnow()
    async with transaction(rt.session_factory) as session:
        delivery = await repo.get_delivery(session, ob.delivery_id, None, lock=True)
        if delivery is None or delivery.status not in LIVE_DELIVERY:
            return
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                attempt=ob.attempt,
                status_code=outcome.status_code,
                error=None if outcome.ok else _describe_failure(outcome),
                response_body=outcome.response_body,
                duration_ms=outcome.duration_ms,
                created_at=now,
            )
        )
        delivery.attempts = ob.attempt
        delivery.locked_until = None
        delivery.updated_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = None if outcome.ok else _describe_failure(outcome)
        endpoint = (
            await repo.get_endpoint(session, ob.endpoint_id, None, lock=True)
            if ob.endpoint_id
            else None
        )
        if outcome.ok:
            delivery.status, delivery.delivered_at = DeliveryStatus.succeeded, now
            DELIVERY_LATENCY.observe((now - ob.event_created_at).total_seconds())
            DELIVERY_ATTEMPTS.labels(outcome="succeeded").inc()
            if endpoint is not None:
                _endpoint_healthy(endpoint)
            return
        gone = outcome.status_code == 410 and endpoint is not None
        delivery.schedule_step += 1
        delay = None if gone else _next_delay_s(s, delivery.schedule_step, outcome)
        if delay is None:
            delivery.status = DeliveryStatus.dead
        else:
            delivery.status = DeliveryStatus.failed
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        DELIVERY_ATTEMPTS.labels(outcome="gone" if gone else delivery.status).inc()
        if endpoint is not None:
            await _endpoint_failed(session, s, endpoint, now, gone=gone)


def _endpoint_healthy(endpoint: WebhookEndpoint) -> None:
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    endpoint.circuit_open_until = None


async def _endpoint_failed(
    session: AsyncSession, s: Settings, endpoint: WebhookEndpoint, now: datetime, *, gone: bool
) -> None:
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    over = endpoint.consecutive_failures - s.webhook_circuit_threshold
    if over >= 0:
        open_s = min(s.webhook_circuit_open_s * 2 ** min(over, 16), s.webhook_circuit_open_max_s)
        endpoint.circuit_open_until = now + timedelta(seconds=open_s)
    sustained = (now - endpoint.failing_since).total_seconds() >= s.webhook_disable_after_s
    if gone or sustained:
        endpoint.status = EndpointStatus.disabled
        endpoint.disabled_reason = (
            "the endpoint answered 410 Gone"
            if gone
            else f"every delivery failed since {endpoint.failing_since.isoformat()}"
        )
        endpoint.updated_at = now
        log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)
        await outbox.publish_endpoint_disabled(session, endpoint)


async def deliver(rt: Runtime, client: httpx.AsyncClient, ob: Outbound) -> None:
    await record(rt, ob, await send(client, ob))


async def step(rt: Runtime, client: httpx.AsyncClient, pool: Pool) -> int:
    """Top the in-flight sends up to the pool's cap with due deliveries."""
    if not pool.free:
        return 0
    items, deferred_until = await claim(rt, pool.free)
    if deferred_until is not None:
        # wake exactly when the rate limit lets the next one go, not at the next sweep
        pool.wake_after((deferred_until - utcnow()).total_seconds())
    for ob in items:
        pool.spawn(deliver(rt, client, ob), f"delivery {ob.delivery_id}")
    return len(items)
