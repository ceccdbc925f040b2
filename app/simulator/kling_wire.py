"""The official Kling API's wire format (UPSTREAM.md §B): envelope, create body, task object.

Every answer is `{code, message, request_id, data}` with `code` 0 on success. Errors
reuse `SimulatorError`; its `code` is the Kling integer code as a string ("1102"), or an
evolink-style name for errors raised by the shared machinery, which `kling_code_for`
maps to the nearest Kling code for the HTTP status.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.simulator.errors import SimulatorError
from app.simulator.tasks import SimTask

KlingModel = Literal["kling-v3", "kling-v2-6"]
MODEL_NAME: KlingModel = "kling-v3"
# What the API uses when `model_name` is left out: an older model (UPSTREAM.md §B; the
# name is this simulator's guess).
OLDER_DEFAULT_MODEL: KlingModel = "kling-v2-6"
MAX_PROMPT_CHARS = 2500
_ID_ALPHABET = string.ascii_letters + string.digits

# The error table of §B; messages paraphrase the official ones.
MESSAGES: dict[int, str] = {
    1000: "Authentication failed",
    1001: "Authorization is empty",
    1002: "Authorization is invalid",
    1003: "Authorization is not yet valid",
    1004: "Authorization has expired",
    1100: "Account exception",
    1101: "Account in arrears",
    1102: "Resource pack balance exhausted or expired",
    1103: "No access to the requested resource",
    1200: "Invalid request",
    1201: "Invalid parameter",
    1202: "Task not found",
    1203: "Requested resource does not exist",
    1300: "Platform policy triggered",
    1301: "Content safety policy triggered",
    1302: "Request rate over the limit",
    1303: "Concurrency over the resource pack's limit",
    1304: "IP policy triggered",
    5000: "Server internal error",
    5001: "Server temporarily unavailable (maintenance)",
    5002: "Server internal timeout (backlog)",
}
# The HTTP status §B pairs with each code.
HTTP_STATUSES: dict[int, int] = {
    **dict.fromkeys((1000, 1001, 1002, 1003, 1004), 401),
    **dict.fromkeys((1100, 1101, 1102, 1302, 1303, 1304), 429),
    1103: 403,
    **dict.fromkeys((1200, 1201, 1300, 1301), 400),
    **dict.fromkeys((1202, 1203), 404),
    5000: 500,
    5001: 503,
    5002: 504,
}
# The code used for an error that names none, by HTTP status.
_CODES_BY_STATUS: dict[int, int] = {
    400: 1201,
    401: 1000,
    403: 1103,
    404: 1202,
    429: 1302,
    500: 5000,
    503: 5001,
    504: 5002,
}


def kling_error(code: int, message: str | None = None, **kwargs: Any) -> SimulatorError:
    """A SimulatorError that the Kling handler answers with exactly this code."""
    status = HTTP_STATUSES.get(code, 500 if code >= 5000 else 400)
    return SimulatorError(status, message or MESSAGES.get(code, "Error"), code=str(code), **kwargs)


def code_for_status(status: int) -> int:
    """The Kling code of an error that names none."""
    return _CODES_BY_STATUS.get(status, 5000 if status >= 500 else 1200)


def kling_code_for(exc: SimulatorError) -> int:
    if exc.code.isdigit() and int(exc.code) != 0:
        return int(exc.code)
    return code_for_status(exc.status)


def new_request_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def new_kling_task_id() -> str:
    """An 18-digit id, the form the official examples show."""
    return str(secrets.randbelow(9 * 10**17) + 10**17)


def envelope(data: Any, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": new_request_id(), "data": data}


def make_kling_handler() -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The handler for `SimulatorError` on the Kling wire: the wrapped error shape."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, SimulatorError):  # registered for this class only
            raise exc
        body = envelope(None, kling_code_for(exc), exc.message)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    return handle


# --- create body ---------------------------------------------------------------------


class Element(BaseModel):
    element_id: str = Field(min_length=1)


class WatermarkInfo(BaseModel):
    enabled: bool


class KlingCreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_name: KlingModel = OLDER_DEFAULT_MODEL
    image_url: str = Field(min_length=1)
    video_url: str = Field(min_length=1)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    # Strings, not booleans: a JSON `true` is refused, as the upstream documents strings.
    keep_original_sound: Literal["yes", "no"] = "yes"
    character_orientation: Literal["image", "video"]
    mode: Literal["std", "pro"]
    element_list: list[Element] = Field(default_factory=list, max_length=1)
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _elements_need_video_orientation(self) -> KlingCreateBody:
        if self.element_list and self.character_orientation != "video":
            raise ValueError("element_list is only allowed with character_orientation 'video'")
        return self


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def parse_kling_create_body(raw: Any) -> KlingCreateBody:
    if not isinstance(raw, dict):
        raise kling_error(1200, "request body must be a JSON object")
    try:
        return KlingCreateBody.model_validate(raw)
    except ValidationError as exc:
        raise kling_error(1201, _describe(exc)) from exc


# --- task object ---------------------------------------------------------------------

KlingStatus = Literal["submitted", "processing", "succeed", "failed"]
# Kling has no cancel: a task an admin cancels shows as failed.
_KLING_STATUSES: dict[str, KlingStatus] = {
    "pending": "submitted",
    "processing": "processing",
    "completed": "succeed",
    "failed": "failed",
    "cancelled": "failed",
}


@dataclass
class KlingTask(SimTask):
    """A `SimTask` with what the Kling wire adds; times are Unix milliseconds."""

    external_task_id: str | None = None
    video_id: str = ""
    created_at_ms: int = 0
    updated_at_ms: int = 0


def kling_status(task: SimTask) -> KlingStatus:
    return _KLING_STATUSES[task.status]


def _seconds_text(value: float) -> str:
    return f"{value:g}"


def _status_msg(task: SimTask) -> str:
    if task.status == "cancelled":
        return "Task cancelled"
    if task.status == "failed" and task.error is not None:
        return task.error["message"]
    return ""


def render_kling_task(task: KlingTask, *, as_status: KlingStatus | None = None) -> dict[str, Any]:
    """The task object as create, query (inside `data`) and callbacks (bare) show it.

    `as_status` renders a stale view (the out-of-order callback fault).
    """
    status = as_status or kling_status(task)
    info = {} if task.external_task_id is None else {"external_task_id": task.external_task_id}
    body: dict[str, Any] = {
        "task_id": task.id,
        "task_status": status,
        "task_status_msg": "" if as_status else _status_msg(task),
        "task_info": info,
        "created_at": task.created_at_ms,
        "updated_at": task.updated_at_ms,
    }
    if status == "succeed" and task.result_url is not None:
        video = {
            "id": task.video_id,
            "url": task.result_url,
            "duration": _seconds_text(task.video_duration_s),
        }
        body["task_result"] = {"videos": [video]}
    return body
