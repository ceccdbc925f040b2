"""Operator routes (scope `admin`): providers, stuck jobs, forced polls, client settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth import service as auth_service
from app.auth.dependencies import AdminPrincipal
from app.auth.schemas import ClientOut, ClientUpdate
from app.db.session import DbSession
from app.errors import problem_responses
from app.jobs import polling
from app.jobs import service as job_service
from app.jobs.schemas import JobList, JobOut
from app.jobs.views import to_out
from app.ops.schemas import ProviderList
from app.runtime import RuntimeDep

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=problem_responses(401, 403))


@router.get("/providers", response_model=ProviderList)
async def providers(rt: RuntimeDep, _: AdminPrincipal) -> ProviderList:
    """Every configured provider: health, circuit state, prices."""
    return ProviderList(data=[{"name": n, **d} for n, d in rt.registry.describe().items()])


@router.get("/jobs", response_model=JobList)
async def admin_jobs(
    session: DbSession,
    _: AdminPrincipal,
    stuck: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobList:
    """Jobs of every client, newest first; `stuck=true`: live jobs with no change for 15 min,
    or a submit whose outcome is unknown."""
    return await job_service.list_all_jobs(session, stuck=stuck, limit=limit)


@router.post("/jobs/{job_id}/poll", response_model=JobOut, responses=problem_responses(404, 502))
async def poll_job(job_id: str, rt: RuntimeDep, _: AdminPrincipal) -> JobOut:
    """Ask the provider about this job now and apply the answer."""
    return to_out(await polling.force_poll(rt, job_id))


@router.post("/clients/{client_id}", response_model=ClientOut, responses=problem_responses(404))
async def update_client(
    client_id: str, body: ClientUpdate, session: DbSession, _: AdminPrincipal
) -> ClientOut:
    """Set a client's monthly budget (USD), name, or disable it."""
    return auth_service.client_out(await auth_service.update_client(session, client_id, body))
