from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.billing import service
from app.billing.schemas import Usage
from app.db.session import DbSession
from app.errors import Forbidden, Unprocessable, problem_responses

router = APIRouter(tags=["money"], responses=problem_responses(401, 403, 422))


@router.get("/v1/usage", response_model=Usage, response_model_by_alias=True)
async def get_usage(
    session: DbSession,
    principal: CurrentPrincipal,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    client_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Usage:
    """Jobs by status, billed seconds and USD, and estimates still in flight (default: this month).

    Admins may pass `client_id`, or omit it for every client with a per-client breakdown."""
    now = datetime.now(UTC)
    start = _utc(from_) if from_ else service.month_start(now)
    end = _utc(to) if to else now + timedelta(seconds=1)
    if end <= start:
        raise Unprocessable("`to` must be after `from`", code="invalid_period", loc=["query", "to"])
    if not principal.is_admin:
        if client_id not in (None, principal.client_id):
            raise Forbidden("only admins may read another client's usage", code="admin_required")
        client_id = principal.client_id
    return await service.usage(session, client_id, start, end)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
