"""Operator routes (scope `admin`): providers, stuck jobs, forced polls, client settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth import service as auth_service
from app.auth.dependencies import AdminPrincipal
from app.auth.schemas import ClientOut, ClientUpdate
from app.db.session import DbSession
from app.errors import problem_responses
from app.jobs import polling, unknown
from app.jobs import service as job_service
from app.jobs.schemas import JobAdopt, JobList, JobOut
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
    submit_unknown: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobList:
    """Jobs of every client, newest first; `stuck=true`: live jobs with no change for 15 min,
    or a submit whose outcome is unknown; `submit_unknown=true`: only jobs whose submit
    outcome is unknown (their estimate is `cost.at_risk`), whatever their status."""
    return await job_service.list_all_jobs(
        session, stuck=stuck, submit_unknown=submit_unknown, limit=limit
    )


@router.post("/jobs/{job_id}/poll", response_model=JobOut, responses=problem_responses(404, 502))
async def poll_job(job_id: str, rt: RuntimeDep, _: AdminPrincipal) -> JobOut:
    """Ask the provider about this job now and apply the answer."""
    return to_out(await polling.force_poll(rt, job_id))


@router.post(
    "/jobs/{job_id}/adopt", response_model=JobOut, responses=problem_responses(404, 409, 422, 502)
)
async def adopt_job(job_id: str, body: JobAdopt, rt: RuntimeDep, _: AdminPrincipal) -> JobOut:
    """Settle a job whose submit outcome is unknown: `{task_id}` attaches the upstream task
    an operator found (checked with the provider; the job continues from it), `{ruled_out:
    true}` records that the provider made none (the job fails `submit_ruled_out`, its
    `at_risk` drops to zero). 409 `not_adoptable` for a job whose outcome is known or that
    has a task; 409 `task_already_tracked` for a task another job has; 422
    `unknown_upstream_task` when the provider knows no such task."""
    if body.task_id is not None:
        return to_out(await unknown.operator_adopt(rt, job_id, body.task_id))
    return to_out(await unknown.rule_out(rt, job_id, body.reason))


@router.post("/clients/{client_id}", response_model=ClientOut, responses=problem_responses(404))
async def update_client(
    client_id: str, body: ClientUpdate, session: DbSession, _: AdminPrincipal
) -> ClientOut:
    """Set a client's monthly budget (USD), name, or disable it."""
    return auth_service.client_out(await auth_service.update_client(session, client_id, body))
