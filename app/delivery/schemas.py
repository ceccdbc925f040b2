from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from app.statuses import DeliveryStatus, EndpointStatus

EventType = Literal[
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "job.expired",
    "job.submitted",
    "job.processing",
    "endpoint.disabled",
]


def _check_types(values: list[str] | None) -> list[str] | None:
    if values is not None and not values:
        raise PydanticCustomError("mgw_event_types_empty", "event_types cannot be empty")
    return sorted(set(values)) if values else values


# Documented as `minItems: 1` in the schema; enforced by `_check_types`, with its own code.
EventTypes = Annotated[
    Annotated[list[EventType], Field(json_schema_extra={"minItems": 1})] | None,
    AfterValidator(_check_types),
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    event_types: EventTypes = None
    description: str | None = Field(default=None, max_length=500)
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=64)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: EventTypes = None
    description: str | None = Field(default=None, max_length=500)
    status: EndpointStatus | None = None
    rate_limit_per_s: float | None = Field(default=None, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=64)


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    status: EndpointStatus
    disabled_reason: str | None
    rate_limit_per_s: float
    max_concurrency: int
    consecutive_failures: int
    failing_since: datetime | None
    circuit_open_until: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str


class EndpointList(BaseModel):
    data: list[EndpointOut]
    next_cursor: str | None


class SecretOut(BaseModel):
    secret: str


class AttemptOut(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    created_at: datetime


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    endpoint_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


class RedeliverAccepted(BaseModel):
    id: str
    status: str
    next_attempt_at: datetime | None


class BulkRedeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime


class BulkRedeliverResult(BaseModel):
    requeued: int
    created: int
