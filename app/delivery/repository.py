"""All SQL about endpoints, events and deliveries. Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from app.delivery.types import OPERATIONAL_EVENTS
from app.models import Client, Delivery, DeliveryAttempt, Event, WebhookEndpoint
from app.statuses import LIVE_DELIVERY, DeliveryStatus, EndpointStatus

CHANNEL_DELIVER = "mgw_deliver"


async def notify(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL_DELIVER})


async def endpoints_for(
    session: AsyncSession, client_id: str, event_type: str
) -> Sequence[WebhookEndpoint]:
    """Enabled endpoints of the client subscribed to `event_type` (operational: all)."""
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.client_id == client_id,
        WebhookEndpoint.status == EndpointStatus.enabled,
        WebhookEndpoint.deleted_at.is_(None),
    )
    if event_type not in OPERATIONAL_EVENTS:
        stmt = stmt.where(WebhookEndpoint.event_types.contains([event_type]))
    return (await session.execute(stmt.order_by(WebhookEndpoint.id))).scalars().all()


async def get_endpoint(
    session: AsyncSession, endpoint_id: str, client_id: str | None, *, lock: bool = False
) -> WebhookEndpoint | None:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None)
    )
    if client_id is not None:
        stmt = stmt.where(WebhookEndpoint.client_id == client_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_endpoints(
    session: AsyncSession, client_id: str, limit: int, cursor: str | None
) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.client_id == client_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        stmt = stmt.where(WebhookEndpoint.id < cursor)
    return list((await session.execute(stmt)).scalars())


async def get_delivery(
    session: AsyncSession, delivery_id: str, client_id: str | None, *, lock: bool = False
) -> Delivery | None:
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    if client_id is not None:
        stmt = stmt.where(Delivery.client_id == client_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_deliveries(
    session: AsyncSession, endpoint_id: str, status: str | None, limit: int, cursor: str | None
) -> list[tuple[Delivery, str]]:
    stmt = (
        select(Delivery, Event.type)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.endpoint_id == endpoint_id)
        .order_by(Delivery.id.desc())
        .limit(limit + 1)
    )
    if status:
        stmt = stmt.where(Delivery.status == status)
    if cursor:
        stmt = stmt.where(Delivery.id < cursor)
    return [(d, t) for d, t in (await session.execute(stmt)).all()]


async def attempts_of(session: AsyncSession, delivery_ids: Sequence[str]) -> list[DeliveryAttempt]:
    if not delivery_ids:
        return []
    stmt = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
        .order_by(DeliveryAttempt.id)
    )
    return list((await session.execute(stmt)).scalars())


def _open_for_traffic(now: datetime) -> ColumnElement[bool]:
    return or_(
        Delivery.endpoint_id.is_(None),
        and_(
            WebhookEndpoint.status == EndpointStatus.enabled,
            WebhookEndpoint.deleted_at.is_(None),
            or_(
                WebhookEndpoint.circuit_open_until.is_(None),
                WebhookEndpoint.circuit_open_until <= now,
            ),
        ),
    )


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Delivery.status.in_(LIVE_DELIVERY),
        Delivery.next_attempt_at <= now,
        or_(Delivery.locked_until.is_(None), Delivery.locked_until <= now),
    )


def _in_flight(now: datetime, endpoint_ids: Sequence[str] | None = None) -> Subquery:
    """Sends under way per endpoint: live deliveries whose lease has not run out."""
    stmt = select(Delivery.endpoint_id, func.count().label("n")).where(
        Delivery.endpoint_id.is_not(None),
        Delivery.status.in_(LIVE_DELIVERY),
        Delivery.locked_until > now,
    )
    if endpoint_ids is not None:
        stmt = stmt.where(Delivery.endpoint_id.in_(endpoint_ids))
    return stmt.group_by(Delivery.endpoint_id).subquery("in_flight")


def _room(in_flight: Subquery, circuit_threshold: int) -> ColumnElement[int]:
    """The per-endpoint concurrency rule, written once: free slots are the endpoint's cap
    (1 while its circuit probes, so a failing endpoint gets one send at a time) minus what is
    in flight. Used by the claim's fair ranking and again under the endpoints' row locks."""
    cap = case(
        (WebhookEndpoint.consecutive_failures >= circuit_threshold, 1),
        else_=WebhookEndpoint.max_concurrency,
    )
    return cap - func.coalesce(in_flight.c.n, 0)


async def claim_candidates(
    session: AsyncSession, *, now: datetime, limit: int, circuit_threshold: int
) -> list[tuple[Delivery, WebhookEndpoint | None, Event]]:
    """Due deliveries whose destination has room, oldest first.

    First, without locks, each endpoint's due rows are ranked and only as many as it has
    free slots (`_room`) are candidates: a backed-up endpoint cannot fill the claim window
    and starve the others. A job's own callback has one slot per delivery. Disabled
    endpoints and open circuits are filtered out, so a parked backlog costs nothing.
    Then those rows are locked `FOR UPDATE OF deliveries SKIP LOCKED`: replicas claiming at
    once get disjoint rows and never wait on each other. The ranking ran without locks, so
    the caller re-reads `room_by_endpoint` under the endpoints' locks before admitting.
    """
    in_flight = _in_flight(now)
    room = case(
        (Delivery.endpoint_id.is_(None), 1),
        else_=_room(in_flight, circuit_threshold),
    )
    ranked = (
        select(
            Delivery.id,
            Delivery.next_attempt_at,
            func.row_number()
            .over(
                partition_by=func.coalesce(Delivery.endpoint_id, Delivery.id),
                order_by=Delivery.next_attempt_at,
            )
            .label("rank"),
            room.label("room"),
        )
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .outerjoin(in_flight, in_flight.c.endpoint_id == Delivery.endpoint_id)
        .where(_due(now), _open_for_traffic(now))
        .subquery()
    )
    # Round-robin across endpoints: every endpoint's first due row before any endpoint's
    # second, so when the window is short (the pool nearly full of slow sends) a healthy
    # endpoint's new delivery is not queued behind older retries of failing ones.
    picked = (
        select(ranked.c.id)
        .where(ranked.c.rank <= ranked.c.room)
        .order_by(ranked.c.rank, ranked.c.next_attempt_at)
        .limit(limit)
    )
    ids = list((await session.execute(picked)).scalars())
    if not ids:
        return []
    stmt = (
        select(Delivery, WebhookEndpoint, Event)
        .join(Event, Event.id == Delivery.event_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(Delivery.id.in_(ids), _due(now))
        .order_by(Delivery.next_attempt_at)
        .with_for_update(of=Delivery, skip_locked=True)
    )
    return [(d, e, ev) for d, e, ev in (await session.execute(stmt)).all()]


async def lock_endpoints(
    session: AsyncSession, endpoint_ids: Sequence[str]
) -> dict[str, WebhookEndpoint]:
    """Serialise admission (concurrency and rate bookkeeping) per endpoint across replicas
    (held for a claim only). Locked in id order, so two claimers can never deadlock."""
    if not endpoint_ids:
        return {}
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id.in_(sorted(endpoint_ids)))
        .order_by(WebhookEndpoint.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {e.id: e for e in (await session.execute(stmt)).scalars()}


async def room_by_endpoint(
    session: AsyncSession, endpoint_ids: Sequence[str], *, now: datetime, circuit_threshold: int
) -> dict[str, int]:
    """Free slots per endpoint, exact once the caller holds `lock_endpoints`: another
    replica's claim of the same endpoint has committed by then, so its leases count here."""
    if not endpoint_ids:
        return {}
    in_flight = _in_flight(now, endpoint_ids)
    stmt = (
        select(WebhookEndpoint.id, _room(in_flight, circuit_threshold))
        .outerjoin(in_flight, in_flight.c.endpoint_id == WebhookEndpoint.id)
        .where(WebhookEndpoint.id.in_(endpoint_ids))
    )
    return {eid: int(n) for eid, n in (await session.execute(stmt)).all()}


async def client_secrets(session: AsyncSession, client_ids: set[str]) -> dict[str, str]:
    """The clients' own signing secrets: what a job's callback_url is signed with."""
    if not client_ids:
        return {}
    rows = await session.execute(
        select(Client.id, Client.webhook_secret).where(Client.id.in_(client_ids))
    )
    return {str(cid): str(secret) for cid, secret in rows.all()}


async def missed_events(
    session: AsyncSession, endpoint: WebhookEndpoint, since: datetime
) -> Sequence[Event]:
    """The endpoint's events since `since` (and since the endpoint itself was created)
    that it never got a delivery for."""
    has_delivery = (
        select(Delivery.id)
        .where(Delivery.event_id == Event.id, Delivery.endpoint_id == endpoint.id)
        .exists()
    )
    stmt = select(Event).where(
        Event.client_id == endpoint.client_id,
        # never a backfill of what happened before the endpoint existed
        Event.created_at >= max(since, endpoint.created_at),
        Event.type.in_(endpoint.event_types),
        ~has_delivery,
    )
    return (await session.execute(stmt.order_by(Event.created_at))).scalars().all()


async def insert_delivery_once(session: AsyncSession, delivery: Delivery) -> bool:
    values = {c.key: getattr(delivery, c.key) for c in Delivery.__mapper__.column_attrs}
    stmt = (
        insert(Delivery)
        .values(**{k: v for k, v in values.items() if v is not None})
        .on_conflict_do_nothing(index_elements=["event_id", "endpoint_id"])
        .returning(Delivery.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def reset_for_redelivery(
    session: AsyncSession, endpoint_id: str, since: datetime, now: datetime
) -> int:
    stmt = (
        update(Delivery)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.created_at >= since,
            Delivery.status.in_((DeliveryStatus.failed, DeliveryStatus.dead)),
        )
        .values(status=DeliveryStatus.pending, schedule_step=0, next_attempt_at=now, updated_at=now)
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def hold_for_circuit(
    session: AsyncSession, endpoint_id: str, until: datetime, *, except_id: str
) -> int:
    """The endpoint's circuit is open until `until`: its live deliveries due before then
    say so, so a stored `next_attempt_at` is when the delivery will really be tried. Those
    due later keep their own schedule (the circuit adds nothing to it).

    Rows locked elsewhere are skipped, never waited for: a claim holding some of them
    waits in turn for endpoint locks, so waiting here could close a deadlock cycle
    (record → claim → a publish's key-share lock → record). What a claim holds is being
    sent or pushed back by it anyway."""
    unlocked = (
        select(Delivery.id)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.id != except_id,
            Delivery.status.in_(LIVE_DELIVERY),
            Delivery.next_attempt_at < until,
        )
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(unlocked.scalar_subquery()))
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_logs(session: AsyncSession, older_than: datetime) -> int:
    """Retention: finished deliveries (with their attempts) and their events."""
    done = delete(Delivery).where(
        Delivery.status.in_((DeliveryStatus.succeeded, DeliveryStatus.dead)),
        Delivery.updated_at < older_than,
    )
    result = await session.execute(done)
    orphan_events = delete(Event).where(
        Event.created_at < older_than,
        ~select(Delivery.id).where(Delivery.event_id == Event.id).exists(),
    )
    await session.execute(orphan_events)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def backlog(session: AsyncSession, now: datetime) -> list[tuple[str, int, float]]:
    """(endpoint state, live deliveries, oldest age in s) for the metrics gauges."""
    state = case(
        (Delivery.endpoint_id.is_(None), "job_callback"),
        (WebhookEndpoint.status != EndpointStatus.enabled, EndpointStatus.disabled.value),
        (WebhookEndpoint.circuit_open_until > now, "circuit_open"),
        else_=EndpointStatus.enabled.value,
    )
    stmt = (
        select(state, func.count(), func.min(Delivery.created_at))
        .select_from(Delivery)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(Delivery.status.in_(LIVE_DELIVERY))
        .group_by(state)
    )
    rows = (await session.execute(stmt)).all()
    return [(str(s), int(n), (now - oldest).total_seconds()) for s, n, oldest in rows]
