"""The official Kling API's wire (UPSTREAM.md §B).

HS256 JWT auth, `POST /v1/videos/motion-control`, `GET /v1/videos/motion-control/{id}`,
every answer wrapped `{code, message, request_id, data}` (`code` 0 = success), unique
`external_task_id`s, and a callback (the bare task object, one attempt, no retry) on
every status change. Errors keep their Kling code as text in `SimulatorError.code`; the
core's named codes map to the nearest Kling code for their HTTP status.

Global request faults may name a Kling `code` and use HTTP 200, since the official API
can refuse with HTTP 200 and a non-zero code:
    {"create": {"status": 429, "code": 1102}}        balance exhausted
    {"create": {"status": 200, "code": 1102}}        the same refusal, with HTTP 200
    {"create": {"status": 503}}                      code 5001 (the status's default)
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal, Self

import jwt
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultRules, RequestFault, retry_after
from app.simulator.tasks import SimTask, TaskState
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

KlingModel = Literal["kling-v3", "kling-v2-6"]
# What the API uses when `model_name` is left out: an older model (UPSTREAM.md §B; the
# name is this simulator's guess).
OLDER_DEFAULT_MODEL: KlingModel = "kling-v2-6"
_PATH = "/v1/videos/motion-control"

# The error table of §B: code -> (HTTP status, message); messages paraphrase the docs.
ERRORS: dict[int, tuple[int, str]] = {
    1000: (401, "Authentication failed"),
    1001: (401, "Authorization is empty"),
    1002: (401, "Authorization is invalid"),
    1003: (401, "Authorization is not yet valid"),
    1004: (401, "Authorization has expired"),
    1100: (429, "Account exception"),
    1101: (429, "Account in arrears"),
    1102: (429, "Resource pack balance exhausted or expired"),
    1103: (403, "No access to the requested resource"),
    1200: (400, "Invalid request"),
    1201: (400, "Invalid parameter"),
    1202: (404, "Task not found"),
    1203: (404, "Requested resource does not exist"),
    1300: (400, "Platform policy triggered"),
    1301: (400, "Content safety policy triggered"),
    1302: (429, "Request rate over the limit"),
    1303: (429, "Concurrency over the resource pack's limit"),
    1304: (429, "IP policy triggered"),
    5000: (500, "Server internal error"),
    5001: (503, "Server temporarily unavailable (maintenance)"),
    5002: (504, "Server internal timeout (backlog)"),
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
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": "Kling envelope with a non-zero code: {code, message, request_id}"}
    for status in (400, 401, 403, 404, 429, 500, 503, 504)
}

KlingStatus = Literal["submitted", "processing", "succeed", "failed"]
# Kling has no cancel: a task an admin cancels shows as failed.
_STATUSES: dict[TaskState, KlingStatus] = {
    "pending": "submitted",
    "processing": "processing",
    "completed": "succeed",
    "failed": "failed",
    "cancelled": "failed",
}


def kling_error(code: int, message: str | None = None) -> SimulatorError:
    """A SimulatorError that the Kling wire answers with exactly this code."""
    status, default_message = ERRORS.get(code, (500 if code >= 5000 else 400, "Error"))
    return SimulatorError(status, message or default_message, code=str(code))


def code_for(status: int, code: str | None) -> int:
    """The Kling code to answer: the one named, else the nearest one for `status`."""
    if code is not None and code.isdigit() and int(code) != 0:
        return int(code)
    if code == "invalid_json":  # the core's one name whose code is not its status's
        return 1200
    return _CODES_BY_STATUS.get(status, 5000 if status >= 500 else 1200)


def envelope(data: Any, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": random_text(22), "data": data}


# --- authentication ------------------------------------------------------------------


def _refusal(exc: jwt.InvalidTokenError) -> SimulatorError:
    # Subclasses first: an expired token is also an invalid one.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return kling_error(1004)
    if isinstance(exc, jwt.ImmatureSignatureError):
        return kling_error(1003)
    if isinstance(exc, jwt.InvalidSignatureError | jwt.InvalidIssuerError):
        return kling_error(1000, f"Authentication failed: {exc}")
    return kling_error(1002, f"Authorization is invalid: {exc}")


# --- bodies --------------------------------------------------------------------------


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
        check_elements(self.character_orientation, self.element_list)
        return self


class KlingRequestFault(RequestFault):
    """A `RequestFault` whose status may be 200, provided it carries a non-zero code."""

    status: int | None = Field(default=None, ge=200, le=599)

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _success_status_needs_a_code(self) -> Self:
        names_code = bool(self.code and self.code.isdigit() and int(self.code) != 0)
        if self.status is not None and self.status < 400 and not names_code:
            raise ValueError("a fault with a 2xx/3xx status needs a non-zero Kling `code`")
        return self


class KlingFaultRules(FaultRules):
    """Body of `POST /_sim/faults` on the Kling wire."""

    create: KlingRequestFault | None = None
    query: KlingRequestFault | None = None
    result: KlingRequestFault | None = None


def _status_msg(task: SimTask) -> str:
    if task.status == "cancelled":
        return "Task cancelled"
    if task.status == "failed" and task.error is not None:
        return task.error["message"]
    return ""


class KlingWire:
    """The official Kling API (§B)."""

    name = "kling"
    title = "Kling wire format"
    status_field = "task_status"
    fault_rules: type[FaultRules] = KlingFaultRules

    def routes(self, sim: Simulator) -> APIRouter:
        router = APIRouter()

        @router.post(_PATH, responses=_ERROR_RESPONSES)
        async def create_motion_control(
            request: Request, authorization: str | None = Header(default=None)
        ) -> dict[str, Any]:
            """Create a motion-control task; `data` is the task, `submitted`."""
            access_key = sim.authenticate(authorization)
            raw = await json_body(request)
            return await sim.create(access_key, raw, str(request.base_url))

        @router.get(_PATH + "/{task_id}", responses=_ERROR_RESPONSES)
        async def get_motion_control(
            task_id: str, authorization: str | None = Header(default=None)
        ) -> dict[str, Any]:
            """One task, by `task_id` or by its `external_task_id` (§B takes either)."""
            return await sim.query(sim.authenticate(authorization), task_id)

        return router

    def authenticate(self, authorization: str | None, config: SimulatorConfig) -> str:
        """The access key a valid JWT names (`iss`); its signature, `exp` and `nbf` checked."""
        if not (authorization or "").strip():
            raise kling_error(1001)
        token = bearer_token(authorization)
        if token is None:
            raise kling_error(1002, "Authorization must be `Bearer <jwt>`")
        try:
            jwt.decode(
                token,
                config.kling_secret_key,
                algorithms=["HS256"],
                issuer=config.kling_access_key,
                options={"require": ["iss", "exp", "nbf"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _refusal(exc) from exc
        return config.kling_access_key

    def parse_create(self, raw: Any) -> CreateRequest:
        if not isinstance(raw, dict):
            raise kling_error(1200, "request body must be a JSON object")
        try:
            body = KlingCreateBody.model_validate(raw)
        except ValidationError as exc:
            raise kling_error(1201, describe(exc)) from exc
        return CreateRequest(
            raw, body.model_name, body.mode, body.prompt, body.callback_url, body.external_task_id
        )

    def new_task_id(self, created_s: int) -> str:
        """An 18-digit id, the form the official examples show."""
        return str(secrets.randbelow(9 * 10**17) + 10**17)

    def render_task(
        self, task: SimTask, config: SimulatorConfig, *, stale: bool = False
    ) -> dict[str, Any]:
        status = "processing" if stale else _STATUSES[task.status]
        info = {} if task.external_task_id is None else {"external_task_id": task.external_task_id}
        body: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_status_msg": "" if stale else _status_msg(task),
            "task_info": info,
            "created_at": task.created_at_ms,
            "updated_at": task.updated_at_ms,
        }
        if status == "succeed" and task.result_url is not None:
            video = {"id": task.video_id, "url": task.result_url}
            body["task_result"] = {"videos": [{**video, "duration": f"{task.video_duration_s:g}"}]}
        return body

    def answer(self, task_body: dict[str, Any]) -> dict[str, Any]:
        return envelope(task_body)

    def error_body(self, exc: SimulatorError, config: SimulatorConfig) -> dict[str, Any]:
        return envelope(None, code_for(exc.status, exc.code), exc.message)

    def fault_error(self, rule: RequestFault) -> SimulatorError:
        status = rule.status or 500
        code = code_for(status, rule.code)
        message = rule.message or f"simulated fault: {ERRORS.get(code, (0, 'error'))[1]}"
        return SimulatorError(status, message, code=str(code), headers=retry_after(rule))

    def callback_policy(self, config: SimulatorConfig) -> CallbackPolicy:
        # No documented retry: each change is one attempt.
        return CallbackPolicy(config.kling_callback_on_submit, True, ())

    def summary(self, task: SimTask, config: SimulatorConfig) -> dict[str, Any]:
        return {
            "status": _STATUSES[task.status],
            "external_task_id": task.external_task_id,
            "model_name": task.model,
            "mode": task.quality,
        }


WIRE = KlingWire()
