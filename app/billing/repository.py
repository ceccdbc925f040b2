"""Money queries: what a client has spent and reserved in a period."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Client, Job
from app.statuses import LIVE


async def budget_of(session: AsyncSession, client_id: str) -> Decimal | None:
    stmt = select(Client.monthly_budget_usd).where(Client.id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_budget(session: AsyncSession, client_id: str) -> None:
    """Serialise the budget checks of one client until commit, so concurrent creates cannot
    overspend. An advisory lock, not `FOR UPDATE` on the client row: every insert that
    references the client takes a key-share lock on that row, and mixing the two deadlocks."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('budget:' || :c, 0))"),
        {"c": client_id},
    )


async def committed_usd(session: AsyncSession, client_id: str, since: datetime) -> Decimal:
    """Billed money of finished jobs plus reservations (estimates) of live ones."""
    amount = case(
        (Job.status.in_(sorted(LIVE)), Job.cost_estimated_usd),
        else_=func.coalesce(Job.cost_billed_usd, 0),
    )
    stmt = select(func.coalesce(func.sum(amount), 0)).where(
        Job.client_id == client_id, Job.created_at >= since
    )
    return Decimal((await session.execute(stmt)).scalar_one())


# The same rule as `app.jobs.views.at_risk_usd`, in SQL.
_at_risk = and_(Job.submit_unknown.is_(True), Job.cost_billed_usd.is_(None))


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
            func.coalesce(func.sum(case((_at_risk, Job.cost_estimated_usd), else_=0)), 0),
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
            "at_risk_usd": Decimal(at_risk or 0),
        }
        for cid, status, count, seconds, billed, estimated, at_risk in (
            await session.execute(stmt)
        ).all()
    ]
