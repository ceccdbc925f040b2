"""The upstream's own endpoints (UPSTREAM.md §A), in its wire format."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Header, Request, Response

from app.simulator.errors import SimulatorError
from app.simulator.service import Simulator

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": "Upstream error shape: {error: {code, message, type}}"}
    for status in (400, 401, 404, 429, 500, 503)
}


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise SimulatorError(400, "request body is not valid JSON", code="invalid_json") from exc


def build_router(sim: Simulator) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/videos/generations", responses=_ERROR_RESPONSES)
    async def create_generation(
        request: Request,
        authorization: str | None = Header(default=None),
        idempotency_key: str | None = Header(default=None),
    ) -> dict[str, Any]:
        """Create a motion-control video task (answers `pending`)."""
        api_key = sim.authenticate(authorization)
        raw = await _json_body(request)
        base_url = str(request.base_url)
        return await sim.create(api_key, raw, idempotency_key, base_url)

    @router.get("/v1/tasks/{task_id}", responses=_ERROR_RESPONSES)
    async def get_task(
        task_id: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Current state of a task; `results` appear once it is completed."""
        api_key = sim.authenticate(authorization)
        return await sim.query(api_key, task_id)

    @router.api_route("/results/{task_id}.mp4", methods=["GET", "HEAD"], responses=_ERROR_RESPONSES)
    async def get_result(task_id: str) -> Response:
        """The result video; the link expires `result_ttl_s` after completion."""
        content = await sim.result(task_id)
        return Response(content=content, media_type="video/mp4")

    return router
