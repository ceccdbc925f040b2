from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.db.session import DbSession
from app.errors import problem_responses
from app.inbound import service
from app.runtime import RuntimeDep

router = APIRouter(tags=["upstream"])


@router.post(
    "/v1/upstream/{provider}/callbacks/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 413, 422),
)
async def upstream_callback(
    provider: str,
    job_id: str,
    request: Request,
    session: DbSession,
    rt: RuntimeDep,
    token: Annotated[str, Query(max_length=128)],
) -> Response:
    """Receive a provider's task callback; safe to receive any number of times, in any order.
    Bodies over 1 MiB are refused (413) before they are read."""
    body = await request.body()
    await service.receive(session, rt, provider=provider, job_id=job_id, token=token, body=body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
