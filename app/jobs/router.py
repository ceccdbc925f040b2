"""HTTP only: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import AfterValidator

from app.auth.dependencies import CurrentPrincipal
from app.db.session import DbSession
from app.errors import problem_responses
from app.jobs import service
from app.jobs.schemas import JobCreate, JobEventList, JobList, JobOut
from app.jobs.state import JobStatus
from app.jobs.views import to_out
from app.runtime import RuntimeDep
from app.validation import cursor_check, cursor_query

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=problem_responses(401, 422))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "A replay of an earlier Idempotency-Key"},
        **problem_responses(402, 409, 429),
    },
)
async def create_job(
    body: JobCreate,
    response: Response,
    session: DbSession,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=255, min_length=1)] = None,
) -> JobOut:
    """Create a job; validated against the model's limits before anything is spent."""
    job, created = await service.create_job(session, rt, principal, body, idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return to_out(job)


@router.get("", response_model=JobList)
async def list_jobs(
    session: DbSession,
    principal: CurrentPrincipal,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(**cursor_query("job")), AfterValidator(cursor_check("job"))
    ] = None,
) -> JobList:
    """List the caller's jobs, newest first."""
    return await service.list_jobs(session, principal, status=status_, limit=limit, cursor=cursor)


@router.get("/{job_id}", response_model=JobOut, responses=problem_responses(404))
async def get_job(job_id: str, session: DbSession, principal: CurrentPrincipal) -> JobOut:
    """Get one of the caller's jobs."""
    return to_out(await service.get_job(session, principal, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut, responses=problem_responses(404, 409))
async def cancel_job(
    job_id: str, session: DbSession, rt: RuntimeDep, principal: CurrentPrincipal
) -> JobOut:
    """Cancel a job that is not yet submitted, or whose provider confirms the cancel."""
    return to_out(await service.cancel_job(session, rt, principal, job_id))


@router.get("/{job_id}/events", response_model=JobEventList, responses=problem_responses(404))
async def list_job_events(
    job_id: str, session: DbSession, principal: CurrentPrincipal
) -> JobEventList:
    """The job's state history, oldest first."""
    return await service.list_events(session, principal, job_id)
