"""Prepare: claim the due deliveries that may go now, and make each a ready `Outbound`.

One transaction: candidates come from the fair, lock-free ranking; their endpoints are
then locked and each candidate is admitted under the endpoint's exact free slots and its
rate limit, or pushed back. What is admitted is leased before the transaction commits, so
nothing is sent while a lock is held and a crashed sender's lease simply runs out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import policy
from app.delivery import repository as repo
from app.delivery.send import Outbound
from app.models import Delivery, Event, WebhookEndpoint

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains


@dataclass
class Claim:
    """The sends to make now, and when the earliest rate-limited delivery falls due."""

    sends: list[Outbound] = field(default_factory=list)
    deferred_until: datetime | None = None

    def defer(self, until: datetime) -> None:
        self.deferred_until = min(until, self.deferred_until or until)


async def claim(rt: Runtime, limit: int) -> Claim:
    s, now = rt.settings, utcnow()
    result = Claim()
    async with transaction(rt.session_factory) as session:
        rows = await repo.claim_candidates(
            session, now=now, limit=limit, circuit_threshold=s.webhook_circuit_threshold
        )
        endpoints = await repo.lock_endpoints(session, list({e.id for _, e, _ in rows if e}))
        room = await repo.room_by_endpoint(
            session, list(endpoints), now=now, circuit_threshold=s.webhook_circuit_threshold
        )
        secrets = await _callback_secrets(session, rows)
        for delivery, endpoint_row, event in rows:
            if endpoint_row is None:
                signing = [secrets[delivery.client_id]]
                result.sends.append(_lease(rt, delivery, None, event, signing, now))
                continue
            endpoint = endpoints.get(endpoint_row.id)
            if endpoint is None:
                continue  # removed since the ranking; nothing left to send to
            if _admit(delivery, endpoint, room, now, result):
                signing = policy.signing_secrets(
                    endpoint.secret,
                    endpoint.previous_secret,
                    endpoint.previous_secret_expires_at,
                    now,
                )
                result.sends.append(_lease(rt, delivery, endpoint, event, signing, now))
    return result


async def _callback_secrets(
    session: AsyncSession, rows: list[tuple[Delivery, WebhookEndpoint | None, Event]]
) -> dict[str, str]:
    """A job's callback_url has no endpoint of its own: the client's secret signs it."""
    return await repo.client_secrets(session, {d.client_id for d, e, _ in rows if e is None})


def _admit(
    delivery: Delivery,
    endpoint: WebhookEndpoint,
    room: dict[str, int],
    now: datetime,
    claim: Claim,
) -> bool:
    """Take one of the endpoint's slots and one rate token, or push the delivery back."""
    decision = policy.admit(
        room.get(endpoint.id, 0), endpoint.rate_tat, endpoint.rate_limit_per_s, now
    )
    if decision.retry_at is not None:
        delivery.next_attempt_at = max(decision.retry_at, delivery.next_attempt_at or now)
        if decision.retry_at > now:
            claim.defer(decision.retry_at)  # wake when the rate lets it go, not at the sweep
        return False
    endpoint.rate_tat = decision.rate_tat
    room[endpoint.id] = room.get(endpoint.id, 0) - 1
    return True


def _lease(
    rt: Runtime,
    delivery: Delivery,
    endpoint: WebhookEndpoint | None,
    event: Event,
    secrets: list[str],
    now: datetime,
) -> Outbound:
    delivery.locked_until = policy.lease_until(now, rt.settings.webhook_timeout_s)
    # Counted when leased, not when recorded: a send whose lease runs out unrecorded (a
    # crash mid-send) was an attempt too, so the next one carries the next number.
    delivery.attempts += 1
    return Outbound(
        delivery_id=delivery.id,
        event_id=event.id,
        event_created_at=event.created_at,
        endpoint_id=endpoint.id if endpoint else None,
        url=endpoint.url if endpoint else delivery.target_url or "",
        body=json.dumps(event.payload, separators=(",", ":")),
        secrets=secrets,
        attempt=delivery.attempts,
    )
