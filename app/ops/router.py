"""Health, readiness and metrics: what an orchestrator and ops look at."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from app.clock import utcnow
from app.db.migrate import current_revision, head_revision
from app.delivery import repository as delivery_repo
from app.jobs import repository as repo
from app.metrics import DELIVERY_BACKLOG, DELIVERY_BACKLOG_AGE, JOBS_BY_STATUS, REGISTRY
from app.runtime import RuntimeDep

router = APIRouter(tags=["ops"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    database: str
    migrations: str
    callback_mode: str
    callback_mode_reason: str
    providers: dict[str, dict[str, Any]]


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """200 while the process runs."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Ready when the database answers and its schema is at the code's migration head."""
    database, migrations = "ok", "ok"
    try:
        async with rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current, head = await current_revision(rt.engine), head_revision()
        if current != head:
            migrations = f"at {current}, code expects {head}"
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc)
        database, migrations = f"unavailable: {type(exc).__name__}", "unknown"
    ready = database == "ok" and migrations == "ok"
    body = Readiness(
        ready=ready,
        database=database,
        migrations=migrations,
        callback_mode=rt.callback.mode,
        callback_mode_reason=rt.callback.reason,
        providers=rt.registry.describe(),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text exposition."""
    try:
        async with rt.session_factory() as session:
            for status, count in (await repo.count_by_status(session)).items():
                JOBS_BY_STATUS.labels(status=status).set(count)
            DELIVERY_BACKLOG.clear()
            DELIVERY_BACKLOG_AGE.clear()
            for state, count, oldest_s in await delivery_repo.backlog(session, utcnow()):
                DELIVERY_BACKLOG.labels(endpoint_state=state).set(count)
                DELIVERY_BACKLOG_AGE.labels(endpoint_state=state).set(oldest_s)
    except Exception as exc:
        log.warning("metrics: job counts unavailable: %s", exc)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
