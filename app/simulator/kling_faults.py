"""Global fault rules on the Kling wire: the shared rules, plus Kling codes and HTTP 200.

`POST /_sim/faults` takes the same scopes as the aggregator wire; a request rule may
also name a Kling `code` (an integer) and use `status: 200`, since the official API can
refuse with HTTP 200 and a non-zero code:
    {"create": {"status": 429, "code": 1102}}        balance exhausted
    {"create": {"status": 200, "code": 1102}}        the same refusal, with HTTP 200
    {"create": {"status": 503}}                      code 5001 (the status's default)
    {"query": {"status": 404, "code": 1203, "count": 1}}
"""

from __future__ import annotations

import math
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultRules, RequestFault
from app.simulator.kling_wire import MESSAGES, code_for_status


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


def kling_fault_error(rule: RequestFault) -> SimulatorError:
    """The refusal a status rule produces, answered in the Kling envelope."""
    status = rule.status or 500
    code = int(rule.code) if rule.code and rule.code.isdigit() else code_for_status(status)
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(rule.retry_after))
    message = rule.message or f"simulated fault: {MESSAGES.get(code, 'error')}"
    return SimulatorError(status, message, code=str(code), headers=headers)
