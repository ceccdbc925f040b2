"""The aggregator's wire (UPSTREAM.md §A), EvoLink-style; named `evolink` like the provider kind.

Bearer keys, `POST /v1/videos/generations`, `GET /v1/tasks/{id}`, the bare task object
in every answer and callback, errors as `{"error": {"code", "message", "type"}}`, and a
single callback when a task ends, retried at `callback_retry_delays_s`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultRules, RequestFault, retry_after
from app.simulator.tasks import SimTask
from app.simulator.wire import (
    MAX_PROMPT_CHARS,
    CallbackPolicy,
    CreateRequest,
    Element,
    WatermarkInfo,
    bearer_token,
    check_elements,
    describe,
    json_body,
    random_text,
)

if TYPE_CHECKING:
    from app.simulator.service import Simulator

_STALE_PROGRESS = 50
_MAX_LISTED = 100
# Opaque credits per output second; only their integer-ness and growth matter.
_CREDITS_PER_S = {"720p": 12, "1080p": 16}
# The `type` the upstream pairs with each status (UPSTREAM.md §A, "Errors").
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large_error",
    429: "rate_limit_error",
    500: "internal_server_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "gateway_timeout_error",
}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": "Upstream error shape: {error: {code, message, type}}"}
    for status in (400, 401, 404, 429, 500, 503)
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "internal_server_error" if status >= 500 else "api_error")


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    character_orientation: Literal["image", "video"]
    keep_sound: bool = True
    element_list: list[Element] = Field(default_factory=list, max_length=1)
    watermark_info: WatermarkInfo | None = None

    @model_validator(mode="after")
    def _elements_need_video_orientation(self) -> ModelParams:
        check_elements(self.character_orientation, self.element_list)
        return self


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: Literal["kling-v3-motion-control"]
    image_urls: list[str] = Field(min_length=1, max_length=1)
    video_urls: list[str] = Field(min_length=1, max_length=1)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    quality: Literal["720p", "1080p"] = "720p"
    model_params: ModelParams
    callback_url: str | None = None


def credits_reserved(quality: str, video_duration_s: float) -> int:
    return math.ceil(video_duration_s) * _CREDITS_PER_S.get(quality, 12)


def request_echo(task: SimTask) -> dict[str, Any]:
    """What a listed task shows of its create request (the form a secondary client reads):
    its inputs and callback URL, by which a client finds a task whose create answer it lost."""
    body = task.create_body
    echo = {key: body.get(key) for key in ("image_urls", "video_urls", "prompt", "quality")}
    echo["callback_url"] = task.callback_url
    return {key: value for key, value in echo.items() if value is not None}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _error_object(error: dict[str, str]) -> dict[str, str | int]:
    # `#sim:fail=1301` yields an integer code, the form one mirror documents.
    code = error["code"]
    return {"code": int(code) if code.isdigit() else code, "message": error["message"]}


class EvolinkWire:
    """The aggregator API (§A)."""

    name = "evolink"
    title = "aggregator wire format"
    status_field = "status"
    fault_rules: type[FaultRules] = FaultRules

    def routes(self, sim: Simulator) -> APIRouter:
        router = APIRouter()

        @router.post("/v1/videos/generations", responses=_ERROR_RESPONSES)
        async def create_generation(
            request: Request,
            authorization: str | None = Header(default=None),
            idempotency_key: str | None = Header(default=None),
        ) -> dict[str, Any]:
            """Create a motion-control video task (answers `pending`)."""
            api_key = sim.authenticate(authorization)
            raw = await json_body(request)
            return await sim.create(api_key, raw, str(request.base_url), idempotency_key)

        @router.get("/v1/tasks/{task_id}", responses=_ERROR_RESPONSES)
        async def get_task(
            task_id: str, authorization: str | None = Header(default=None)
        ) -> dict[str, Any]:
            """Current state of a task; `results` appear once it is completed."""
            return await sim.query(sim.authenticate(authorization), task_id)

        @router.get("/v1/tasks", responses=_ERROR_RESPONSES)
        async def list_tasks(
            authorization: str | None = Header(default=None), limit: int = 20
        ) -> dict[str, Any]:
            """The account's tasks, newest first (the list a secondary source documents)."""
            tasks = await sim.list_tasks(sim.authenticate(authorization))
            shown = tasks[: max(1, min(limit, _MAX_LISTED))]
            data = [{**sim.render(task), **request_echo(task)} for task in shown]
            return {"object": "list", "data": data, "has_more": len(tasks) > len(shown)}

        return router

    def authenticate(self, authorization: str | None, config: SimulatorConfig) -> str:
        key = bearer_token(authorization)
        if key is None:
            raise SimulatorError(401, "missing bearer API key", code="missing_api_key")
        if config.accepted_api_keys and key not in config.accepted_api_keys:
            raise SimulatorError(401, "invalid API key", code="invalid_api_key")
        return key

    def parse_create(self, raw: Any) -> CreateRequest:
        if not isinstance(raw, dict):
            raise SimulatorError(
                400, "request body must be a JSON object", code="invalid_parameter"
            )
        try:
            body = CreateBody.model_validate(raw)
        except ValidationError as exc:
            raise SimulatorError(400, describe(exc), code="invalid_parameter") from exc
        return CreateRequest(raw, body.model, body.quality, body.prompt, body.callback_url)

    def new_task_id(self, created_s: int) -> str:
        return f"task-unified-{created_s}-{random_text(8)}"

    def render_task(
        self, task: SimTask, config: SimulatorConfig, *, stale: bool = False
    ) -> dict[str, Any]:
        status = "processing" if stale else task.status
        body: dict[str, Any] = {
            "id": task.id,
            "object": "video.generation.task",
            "created": task.created_at_ms // 1000,
            "model": task.model,
            "status": status,
            "progress": _STALE_PROGRESS if stale else task.progress(config.processing_time_s),
            "type": "video",
            "task_info": {
                "can_cancel": False,
                "estimated_time": task.estimated_time_s,
                "video_duration": _number(task.video_duration_s),
            },
            "usage": {
                "billing_rule": "per_second",
                "credits_reserved": credits_reserved(task.quality, task.video_duration_s),
                "user_group": config.user_group,
            },
        }
        if status == "completed" and task.result_url is not None:
            body["results"] = [task.result_url]
        if status == "failed" and task.error is not None:
            body["error"] = _error_object(task.error)
        return body

    def answer(self, task_body: dict[str, Any]) -> dict[str, Any]:
        return task_body

    def error_body(self, exc: SimulatorError, config: SimulatorConfig) -> dict[str, Any]:
        kind = error_type_for(exc.status)
        code: str | int = exc.status if config.error_code_style == "int" else exc.code or kind
        return {"error": {"code": code, "message": exc.message, "type": kind}}

    def fault_error(self, rule: RequestFault) -> SimulatorError:
        status = rule.status or 500
        message = rule.message or f"simulated fault: HTTP {status}"
        return SimulatorError(status, message, code=rule.code, headers=retry_after(rule))

    def callback_policy(self, config: SimulatorConfig) -> CallbackPolicy:
        return CallbackPolicy(False, False, config.callback_retry_delays_s)

    def summary(self, task: SimTask, config: SimulatorConfig) -> dict[str, Any]:
        return {
            "status": task.status,
            "progress": task.progress(config.processing_time_s),
            "idempotency_key": task.idempotency_key,
        }


WIRE = EvolinkWire()
