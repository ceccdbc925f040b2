"""Health, readiness and metrics: what an orchestrator and ops look at."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.metrics import REGISTRY
from app.ops import service
from app.ops.schemas import Health, Readiness
from app.runtime import RuntimeDep

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """200 while the process runs."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Ready when the database answers and its schema is at the code's migration head."""
    body = await service.readiness(rt)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text exposition."""
    await service.sample_gauges(rt)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
