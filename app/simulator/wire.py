"""The upstream's wire format: the create body it accepts and the task body it answers."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.tasks import SimTask

MODEL = "kling-v3-motion-control"
MAX_PROMPT_CHARS = 2500
# Opaque credits per output second; only their integer-ness and growth matter.
_CREDITS_PER_S = {"720p": 12, "1080p": 16}


class Element(BaseModel):
    element_id: str = Field(min_length=1)


class WatermarkInfo(BaseModel):
    enabled: bool


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    character_orientation: Literal["image", "video"]
    keep_sound: bool = True
    element_list: list[Element] = Field(default_factory=list, max_length=1)
    watermark_info: WatermarkInfo | None = None

    @model_validator(mode="after")
    def _elements_need_video_orientation(self) -> ModelParams:
        if self.element_list and self.character_orientation != "video":
            raise ValueError("element_list is only allowed with character_orientation 'video'")
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


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def parse_create_body(raw: Any) -> CreateBody:
    """Validate like the upstream does, answering its 400 shape."""
    if not isinstance(raw, dict):
        raise SimulatorError(400, "request body must be a JSON object", code="invalid_parameter")
    try:
        return CreateBody.model_validate(raw)
    except ValidationError as exc:
        raise SimulatorError(400, _describe(exc), code="invalid_parameter") from exc


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def credits_reserved(quality: str, video_duration_s: float) -> int:
    return math.ceil(video_duration_s) * _CREDITS_PER_S.get(quality, 12)


def render_task(
    task: SimTask,
    config: SimulatorConfig,
    *,
    as_status: str | None = None,
    as_progress: int | None = None,
) -> dict[str, Any]:
    """The task object as create, query and callbacks show it.

    `as_status`/`as_progress` render a stale view (the out-of-order callback fault).
    """
    status = as_status or task.status
    progress = as_progress if as_progress is not None else task.progress(config.processing_time_s)
    body: dict[str, Any] = {
        "id": task.id,
        "object": "video.generation.task",
        "created": task.created,
        "model": task.model,
        "status": status,
        "progress": progress,
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


def _error_object(error: dict[str, str]) -> dict[str, str | int]:
    # `#sim:fail=1301` yields an integer code, the form one mirror documents.
    code = error["code"]
    return {"code": int(code) if code.isdigit() else code, "message": error["message"]}
