"""Fault injection: per-task `#sim:` directives in the prompt, and global counted rules
(one per scope, installed by `POST /_sim/faults`); the package docstring lists both."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_DIRECTIVE = re.compile(r"#sim:([a-z_]+)(?:=(\S+))?")

# Failure codes with a realistic message; any other code gets a generic one.
FAILURE_MESSAGES: dict[str, str] = {
    "generation_failed": "Video generation failed",
    "content_policy": "The input was rejected by the content safety policy",
    "invalid_image": "No clearly visible character was found in the image",
    "invalid_video": "The reference video could not be processed",
    "timeout": "The generation did not finish in time",
}


@dataclass(frozen=True)
class Directives:
    """What a task's prompt asks the simulator to do differently."""

    fail_code: str | None = None
    fail_without_error: bool = False
    stuck: bool = False
    drop_callback: bool = False
    callback_copies: int = 1
    callback_delay_s: float = 0.0
    early_callback: bool = False
    out_of_order: bool = False
    video_duration_s: float | None = None


def _positive_number(name: str, value: str | None) -> float:
    try:
        number = float(value or "")
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ValueError(f"#sim:{name} needs a positive number")
    return number


def _no_value(name: str, value: str | None) -> None:
    if value is not None:
        raise ValueError(f"#sim:{name} takes no value")


def _apply(fields: dict[str, object], name: str, value: str | None) -> None:
    if name == "fail":
        fields["fail_code"] = value or "generation_failed"
    elif name == "dup_callback":
        fields["callback_copies"] = int(_positive_number(name, value or "2"))
    elif name == "delay_callback":
        fields["callback_delay_s"] = _positive_number(name, value)
    elif name == "duration":
        fields["video_duration_s"] = _positive_number(name, value)
    elif name in _FLAGS:
        _no_value(name, value)
        fields[_FLAGS[name]] = True
    else:
        raise ValueError(f"unknown simulator directive #sim:{name}")


_FLAGS = {
    "fail_bare": "fail_without_error",
    "stuck": "stuck",
    "drop_callback": "drop_callback",
    "early_callback": "early_callback",
    "out_of_order": "out_of_order",
}


def parse_directives(prompt: str | None) -> Directives:
    """Read `#sim:NAME[=VALUE]` directives; raise ValueError on an unknown or bad one.

    A typo must not silently turn a fault test into a happy-path test, hence the error.
    """
    fields: dict[str, object] = {}
    for match in _DIRECTIVE.finditer(prompt or ""):
        _apply(fields, match.group(1), match.group(2))
    return Directives(**fields)  # type: ignore[arg-type]


class RequestFault(BaseModel):
    """A rule for `create`, `query` or `result` requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | None = Field(default=None, ge=400, le=599)
    code: str | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    timeout: bool = False
    hang_s: float | None = Field(default=None, ge=0)
    create_anyway: bool = False
    count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_effect(self) -> Self:
        if (self.status is None) == (not self.timeout):
            raise ValueError("a request fault needs exactly one of `status` or `timeout`")
        return self


class CallbackFault(BaseModel):
    """A rule for the callbacks of the next tasks to end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop: bool = False
    delay_s: float | None = Field(default=None, ge=0)
    count: int | None = Field(default=None, ge=1)


class FaultRules(BaseModel):
    """Body of `POST /_sim/faults`; each scope given replaces that scope's rule."""

    model_config = ConfigDict(extra="forbid")

    create: RequestFault | None = None
    query: RequestFault | None = None
    result: RequestFault | None = None
    callbacks: CallbackFault | None = None
    # The aggregator's task list (`GET /v1/tasks`); without it a `query` rule applies there.
    list: RequestFault | None = None


RequestScope = Literal["create", "query", "result", "list"]


@dataclass
class _Armed:
    rule: RequestFault | CallbackFault
    remaining: int | None

    def use(self) -> bool:
        """Count one match; True once a counted rule is used up."""
        if self.remaining is None:
            return False
        self.remaining -= 1
        return self.remaining == 0

    def describe(self) -> dict[str, object]:
        return {**self.rule.model_dump(exclude_none=True), "remaining": self.remaining}


class FaultBook:
    """The global rules in force, one per scope, consumed one match at a time."""

    def __init__(self) -> None:
        self._armed: dict[str, _Armed] = {}

    def install(self, rules: FaultRules) -> None:
        for scope in ("create", "query", "result", "callbacks", "list"):
            rule: RequestFault | CallbackFault | None = getattr(rules, scope)
            if rule is not None:
                self._armed[scope] = _Armed(rule, rule.count)

    def reset(self) -> None:
        self._armed.clear()

    def take_request(self, scope: RequestScope) -> RequestFault | None:
        rule = self._take(scope)
        return rule if isinstance(rule, RequestFault) else None

    def take_callback(self) -> CallbackFault | None:
        rule = self._take("callbacks")
        return rule if isinstance(rule, CallbackFault) else None

    def _take(self, scope: str) -> RequestFault | CallbackFault | None:
        armed = self._armed.get(scope)
        if armed is not None and armed.use():
            del self._armed[scope]
        return armed.rule if armed is not None else None

    def describe(self) -> dict[str, object]:
        """The rules in force with the matches each has left (None = until reset)."""
        return {scope: armed.describe() for scope, armed in self._armed.items()}


def retry_after(rule: RequestFault) -> dict[str, str]:
    """The `Retry-After` header a rule asks for (whole seconds, as HTTP requires)."""
    if rule.retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(rule.retry_after))}
