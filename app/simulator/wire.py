"""The seam between the simulator's core and the upstream API it imitates.

The core (tasks, lifecycle, faults, callbacks, the `/_sim` admin API) knows nothing of
any upstream's field names, envelopes or error codes; a `Wire` translates both ways.
Adding an upstream means writing one module in `app/simulator/wires/` that defines a
`Wire`, and naming it in `app.simulator.app.WIRES`.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultRules, RequestFault
from app.simulator.tasks import SimTask

if TYPE_CHECKING:
    from app.simulator.service import Simulator

MAX_PROMPT_CHARS = 2500
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class CreateRequest:
    """What the core needs from a create body, whatever the wire calls its fields."""

    body: dict[str, Any]
    """The create request as received, kept for `GET /_sim/tasks/{id}`."""
    model: str
    quality: str
    prompt: str | None
    callback_url: str | None
    external_task_id: str | None = None


@dataclass(frozen=True)
class CallbackPolicy:
    """When a wire's upstream calls back, and how hard it tries."""

    on_submit: bool
    """Also when a task is created."""
    on_every_change: bool
    """On every status change, not only when the task ends."""
    retry_delays_s: tuple[float, ...]
    """Waits before each retry of a failed attempt; () means a single attempt."""


class Wire(Protocol):
    """One upstream's dialect, as the core needs it."""

    name: str
    title: str
    status_field: str
    """The task body's status field, recorded in the callback log."""
    fault_rules: type[FaultRules]
    """Body model of `POST /_sim/faults` (a wire may allow more than the core's)."""

    def routes(self, sim: Simulator) -> APIRouter:
        """The upstream's own endpoints (create, query, ...), calling into `sim`."""

    def authenticate(self, authorization: str | None, config: SimulatorConfig) -> str:
        """The account a request's `Authorization` names; a 401 `SimulatorError` else."""

    def parse_create(self, raw: Any) -> CreateRequest:
        """Validate a create body as the upstream does; a 400 `SimulatorError` else."""

    def new_task_id(self, created_s: int) -> str: ...

    def render_task(
        self, task: SimTask, config: SimulatorConfig, *, stale: bool = False
    ) -> dict[str, Any]:
        """The task as queries and callbacks show it; `stale` = an out-of-date
        `processing` view (the out-of-order callback fault)."""

    def answer(self, task_body: dict[str, Any]) -> dict[str, Any]:
        """A create or query answer around a task body (an envelope, or the body itself)."""

    def error_body(self, exc: SimulatorError, config: SimulatorConfig) -> dict[str, Any]: ...

    def fault_error(self, rule: RequestFault) -> SimulatorError:
        """The refusal a global fault rule with a `status` produces."""

    def callback_policy(self, config: SimulatorConfig) -> CallbackPolicy: ...

    def summary(self, task: SimTask, config: SimulatorConfig) -> dict[str, Any]:
        """The wire's own fields in `GET /_sim/tasks` (its `status`, ...)."""


# --- pieces the known wires share ------------------------------------------------------


class Element(BaseModel):
    element_id: str = Field(min_length=1)


class WatermarkInfo(BaseModel):
    enabled: bool


def check_elements(orientation: str, elements: list[Element]) -> None:
    """Both upstreams allow an element only with the video orientation (UPSTREAM.md §D)."""
    if elements and orientation != "video":
        raise ValueError("element_list is only allowed with character_orientation 'video'")


def describe(error: ValidationError) -> str:
    """The first problem of a refused body, as `where: what`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def random_text(length: int) -> str:
    """Letters and digits, as both upstreams' random ids use."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def json_body(request: Request) -> Any:
    """The request's JSON; a 400 (code `invalid_json`) when it is not JSON at all."""
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise SimulatorError(400, "request body is not valid JSON", code="invalid_json") from exc
