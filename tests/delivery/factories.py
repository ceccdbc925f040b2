"""Plain async factories for delivery step tests: rows made the way the app makes them
(events and deliveries through the outbox), read back from a fresh session."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select

from app.auth.service import new_webhook_secret
from app.clock import utcnow
from app.db.base import Base
from app.db.engine import transaction
from app.delivery import outbox
from app.ids import new_id
from app.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from app.statuses import EndpointStatus
from tests.support.steps import Steps

M = TypeVar("M", bound=Base)

DATA = {"id": "job_1", "status": "succeeded"}


async def new_endpoint(steps: Steps, client_id: str, url: str, **columns: Any) -> WebhookEndpoint:
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id("we"),
        "client_id": client_id,
        "url": url,
        "event_types": ["job.succeeded"],
        "status": EndpointStatus.enabled,
        "secret": new_webhook_secret(),
        "rate_limit_per_s": 100.0,
        "max_concurrency": 4,
        "consecutive_failures": 0,
        "created_at": now,
        "updated_at": now,
    }
    values.update(columns)
    endpoint = WebhookEndpoint(**values)
    async with transaction(steps.runtime.session_factory) as session:
        session.add(endpoint)
    return endpoint


async def publish(
    steps: Steps, client_id: str, event_type: str = "job.succeeded", **kwargs: Any
) -> Event:
    async with transaction(steps.runtime.session_factory) as session:
        event = await outbox.publish(session, client_id, event_type, DATA, **kwargs)
    assert event is not None
    return event


async def set_columns(steps: Steps, model: type[M], row_id: object, **columns: Any) -> None:
    async with transaction(steps.runtime.session_factory) as session:
        row = await session.get(model, row_id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)


async def load(steps: Steps, model: type[M], row_id: object) -> M:
    async with transaction(steps.runtime.session_factory) as session:
        row = await session.get(model, row_id)
        assert row is not None
        return row


async def deliveries_of(steps: Steps, event_id: str) -> list[Delivery]:
    async with transaction(steps.runtime.session_factory) as session:
        stmt = select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.id)
        return list((await session.execute(stmt)).scalars())


async def events_of(steps: Steps, client_id: str, event_type: str) -> list[Event]:
    async with transaction(steps.runtime.session_factory) as session:
        stmt = select(Event).where(Event.client_id == client_id, Event.type == event_type)
        return list((await session.execute(stmt)).scalars())


async def attempts_of(steps: Steps, delivery_id: str) -> list[DeliveryAttempt]:
    async with transaction(steps.runtime.session_factory) as session:
        stmt = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.attempt)
        )
        return list((await session.execute(stmt)).scalars())
