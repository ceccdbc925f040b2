"""Budgets (a reservation at create) and usage reports."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.billing import repository as repo
from app.billing.schemas import Usage, UsageTotals
from app.clock import utcnow
from app.errors import Forbidden, PaymentRequired, Unprocessable
from app.money import usd_text
from app.statuses import LIVE


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def reserve(
    session: AsyncSession, client_id: str, estimate_usd: Decimal, now: datetime
) -> None:
    """Refuse a job whose estimate would take the month past the client's budget.

    The lock is held until commit, which makes the check and the insert of the job (whose
    estimate is the reservation) one step for concurrent creates of the same client."""
    if await repo.budget_of(session, client_id) is None:
        return
    await repo.lock_budget(session, client_id)
    budget = await repo.budget_of(session, client_id)  # read again under the lock
    if budget is None:
        return
    committed = await repo.committed_usd(session, client_id, month_start(now))
    if committed + estimate_usd > budget:
        raise PaymentRequired(
            f"this job's estimate of ${estimate_usd} would bring the month to "
            f"${committed + estimate_usd}, over the budget of ${budget}",
            budget_usd=usd_text(budget),
            committed_usd=usd_text(committed),
            estimate_usd=usd_text(estimate_usd),
        )


def _totals(rows: list[dict[str, Any]]) -> UsageTotals:
    jobs: dict[str, int] = defaultdict(int)
    seconds, billed, in_flight, at_risk = 0, Decimal(0), Decimal(0), Decimal(0)
    for row in rows:
        jobs[row["status"]] += row["count"]
        seconds += row["billed_seconds"]
        billed += row["billed_usd"]
        at_risk += row["at_risk_usd"]
        if row["status"] in LIVE:
            in_flight += row["estimated_usd"]
    return UsageTotals(
        jobs=dict(jobs),
        billed_seconds=seconds,
        billed_usd=billed,
        estimated_usd_in_flight=in_flight,
        at_risk_usd=at_risk,
    )


async def usage(
    session: AsyncSession, client_id: str | None, start: datetime, end: datetime
) -> Usage:
    rows = await repo.usage_rows(session, client_id, start, end)
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_client[row["client_id"]].append(row)
    return Usage(
        **{"from": start, "to": end},
        client_id=client_id,
        currency="USD",
        **_totals(rows).model_dump(),
        clients={cid: _totals(r) for cid, r in by_client.items()} if client_id is None else None,
    )


async def usage_for(
    session: AsyncSession,
    principal: Principal,
    *,
    start: datetime | None,
    end: datetime | None,
    client_id: str | None,
) -> Usage:
    """The usage a caller may read: its own, or (admins) one client's or everyone's.
    The period defaults to this month so far; naive times are taken as UTC."""
    now = utcnow()
    period_start = _utc(start) if start else month_start(now)
    period_end = _utc(end) if end else now + timedelta(seconds=1)
    if period_end <= period_start:
        raise Unprocessable("`to` must be after `from`", code="invalid_period", loc=["query", "to"])
    return await usage(session, _readable_client(principal, client_id), period_start, period_end)


def _readable_client(principal: Principal, client_id: str | None) -> str | None:
    """None means every client, which only an admin may ask for (by omitting `client_id`)."""
    if principal.is_admin:
        return client_id
    if client_id not in (None, principal.client_id):
        raise Forbidden("only admins may read another client's usage", code="admin_required")
    return principal.client_id


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
