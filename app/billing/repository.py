"""Money queries: what a client has spent and reserved in a period."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Client, Job

LIVE = ("queued", "submitting", "submitted", "processing")


async def lock_client(session: AsyncSession, client_id: str) -> Client | None:
    """Serialises budget checks of one client, so concurrent creates cannot overspend."""
    stmt = select(Client).where(Client.id == client_id).with_for_update()
    return (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def committed_usd(session: AsyncSession, client_id: str, since: datetime) -> Decimal:
    """Billed money of finished jobs plus reservations (estimates) of live ones."""
    amount = case(
        (Job.status.in_(LIVE), Job.cost_estimated_usd),
        else_=func.coalesce(Job.cost_billed_usd, 0),
    )
    stmt = select(func.coalesce(func.sum(amount), 0)).where(
        Job.client_id == client_id, Job.created_at >= since
    )
    return Decimal((await session.execute(stmt)).scalar_one())


async def usage_rows(
    session: AsyncSession, client_id: str | None, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    stmt = (
        select(
            Job.client_id,
            Job.status,
            func.count(),
            func.coalesce(func.sum(Job.billed_seconds), 0),
            func.coalesce(func.sum(Job.cost_billed_usd), 0),
            func.coalesce(func.sum(Job.cost_estimated_usd), 0),
        )
        .where(Job.created_at >= start, Job.created_at < end)
        .group_by(Job.client_id, Job.status)
    )
    if client_id is not None:
        stmt = stmt.where(Job.client_id == client_id)
    return [
        {
            "client_id": cid,
            "status": status,
            "count": int(count),
            "billed_seconds": int(seconds or 0),
            "billed_usd": Decimal(billed or 0),
            "estimated_usd": Decimal(estimated or 0),
        }
        for cid, status, count, seconds, billed, estimated in (await session.execute(stmt)).all()
    ]
