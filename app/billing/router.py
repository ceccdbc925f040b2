from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.billing import service
from app.billing.schemas import Usage
from app.db.session import DbSession
from app.errors import problem_responses

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
    return await service.usage_for(session, principal, start=from_, end=to, client_id=client_id)
