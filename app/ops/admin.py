"""Operator routes (scope `admin`): providers, stuck jobs, forced polls, client settings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from app.auth.dependencies import AdminPrincipal
from app.clock import utcnow
from app.db.session import DbSession
from app.errors import BadGateway, NotFound, problem_responses
from app.jobs import repository as jobs_repo
from app.jobs.schemas import JobList, JobOut
from app.jobs.views import to_out
from app.models import Client, Job
from app.providers.base import ProviderError
from app.runtime import RuntimeDep
from app.statuses import LIVE
from app.workers import poller

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=problem_responses(401, 403))

STUCK_AFTER = timedelta(minutes=15)


class ProviderList(BaseModel):
    data: list[dict[str, Any]]


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    monthly_budget_usd: Decimal | None = Field(default=None, ge=0)
    clear_budget: bool = False
    disabled: bool | None = None


class ClientOut(BaseModel):
    id: str
    name: str
    is_admin: bool
    disabled: bool
    monthly_budget_usd: float | None


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
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if stuck:
        stmt = stmt.where(
            Job.status.in_(sorted(LIVE)),
            or_(Job.updated_at < utcnow() - STUCK_AFTER, Job.submit_unknown.is_(True)),
        )
    jobs = (await session.execute(stmt)).scalars().all()
    return JobList(data=[to_out(j) for j in jobs], next_cursor=None)


@router.post("/jobs/{job_id}/poll", response_model=JobOut, responses=problem_responses(404, 502))
async def poll_job(job_id: str, session: DbSession, rt: RuntimeDep, _: AdminPrincipal) -> JobOut:
    """Ask the provider about this job now and apply the answer."""
    job = await jobs_repo.get_job(session, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", code="job_not_found")
    entry = rt.registry.get(job.provider_name or "")
    if entry is not None and job.provider_task_id is not None:
        try:
            snapshot = await entry.adapter.fetch(job.provider_task_id)
        except ProviderError as exc:
            raise BadGateway(f"the provider did not answer: {exc.code}") from exc
        await session.commit()  # release nothing held; the apply runs its own transaction
        await poller.apply(rt, job_id, snapshot, source="admin")
    fresh = await jobs_repo.get_job(session, job_id)
    if fresh is None:
        raise NotFound(f"no job {job_id}", code="job_not_found")
    await session.refresh(fresh)
    return to_out(fresh)


@router.post("/clients/{client_id}", response_model=ClientOut, responses=problem_responses(404))
async def update_client(
    client_id: str, body: ClientUpdate, session: DbSession, _: AdminPrincipal
) -> ClientOut:
    """Set a client's monthly budget (USD), name, or disable it."""
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound(f"no client {client_id}", code="client_not_found")
    if body.name is not None:
        client.name = body.name
    if body.monthly_budget_usd is not None:
        client.monthly_budget_usd = body.monthly_budget_usd
    if body.clear_budget:
        client.monthly_budget_usd = None
    if body.disabled is not None:
        client.disabled = body.disabled
    await session.flush()
    return ClientOut(
        id=client.id,
        name=client.name,
        is_admin=client.is_admin,
        disabled=client.disabled,
        monthly_budget_usd=float(client.monthly_budget_usd)
        if client.monthly_budget_usd is not None
        else None,
    )
