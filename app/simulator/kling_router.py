"""The official Kling API's endpoints (UPSTREAM.md §B), plus the result video link."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Header, Request, Response

from app.simulator.kling_service import KlingSimulator
from app.simulator.kling_wire import kling_error

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": "Kling envelope with a non-zero code: {code, message, request_id}"}
    for status in (400, 401, 403, 404, 429, 500, 503, 504)
}


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise kling_error(1200, "request body is not valid JSON") from exc


def build_kling_router(sim: KlingSimulator) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/videos/motion-control", responses=_ERROR_RESPONSES)
    async def create_motion_control(
        request: Request, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Create a motion-control task; `data` is the task, `submitted`."""
        access_key = sim.authenticate(authorization)
        raw = await _json_body(request)
        return await sim.kling_create(access_key, raw, str(request.base_url))

    @router.get("/v1/videos/motion-control/{task_id}", responses=_ERROR_RESPONSES)
    async def get_motion_control(
        task_id: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """One task; `task_result.videos` appears once it has succeeded."""
        access_key = sim.authenticate(authorization)
        return await sim.kling_query(access_key, task_id)

    @router.api_route("/results/{task_id}.mp4", methods=["GET", "HEAD"], responses=_ERROR_RESPONSES)
    async def get_result(task_id: str) -> Response:
        """The result video; the link expires `result_ttl_s` after completion."""
        content = await sim.result(task_id)
        return Response(content=content, media_type="video/mp4")

    return router
