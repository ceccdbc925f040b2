"""The provider protocol every upstream adapter implements.

Adapters translate the upstream's wire format into `TaskSnapshot`s and its failures into
three kinds of error, because the router's failover and the at-most-once rule for paid
calls depend on that split:

- `RetryableError`: the request provably did not take effect (connection refused, 429,
  502, 503 before a task was created). Safe to retry, here or on another provider.
- `PermanentError`: the upstream refused the request for good (400, 401, 402, 403...).
  Retrying anywhere with the same input is pointless.
- `AmbiguousError`: the request may have reached the upstream (timeout after sending,
  connection reset mid-response, 500 on a create). A paid create that ends like this must
  never be blindly resubmitted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


class TaskStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


@dataclass(frozen=True)
class SubmitRequest:
    job_id: str
    image_url: str
    video_url: str
    quality: str  # "720p" | "1080p"
    character_orientation: str  # "image" | "video"
    keep_sound: bool = True
    prompt: str | None = None
    element_ids: tuple[str, ...] = ()
    watermark_enabled: bool | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class TaskSnapshot:
    task_id: str
    status: TaskStatus
    progress: int = 0
    result_urls: tuple[str, ...] = ()
    video_duration_s: float | None = None
    estimated_time_s: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    # What the upstream says it charges for the task, in its own unit (the aggregator's
    # opaque credits, Kling's deducted units), when it says so.
    upstream_charge: Decimal | None = None
    upstream_charge_unit: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class Mechanism(enum.StrEnum):
    """The ways an adapter can find the task of a create whose answer was lost."""

    external_id = "external_id"  # the upstream keeps our job id and can be asked by it
    idempotent_replay = "idempotent_replay"  # the create again, same key: the same task
    task_list = "task_list"  # the account's task list, matched by time and request


@dataclass(frozen=True)
class FoundTask:
    """A task an adapter found for a job, and how it found it."""

    snapshot: TaskSnapshot
    mechanism: Mechanism


class ProviderError(Exception):
    """Base of every adapter failure; `code` is a stable snake_case string."""

    def __init__(self, code: str, message: str, *, status_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status_code = status_code


class RetryableError(ProviderError):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(code, message, status_code=status_code)
        self.retry_after_s = retry_after_s


class PermanentError(ProviderError):
    pass


class AmbiguousError(ProviderError):
    pass


class CancelNotSupported(PermanentError):
    def __init__(self) -> None:
        super().__init__("cancel_not_supported", "the provider has no cancel endpoint")


class Provider(Protocol):
    """What the router, the submitter, the poller and the inbound endpoint call."""

    name: str
    # The mechanisms `find_task` tries, in order; empty: it can find nothing.
    reconcile_mechanisms: tuple[Mechanism, ...]

    async def submit(self, request: SubmitRequest) -> TaskSnapshot: ...

    async def fetch(self, task_id: str) -> TaskSnapshot: ...

    async def cancel(self, task_id: str) -> TaskSnapshot: ...

    def parse_callback(self, body: bytes) -> TaskSnapshot: ...

    async def find_task(
        self, request: SubmitRequest, *, submitted_at: datetime, idempotency_key: str
    ) -> FoundTask | None:
        """The task a create of `request` (sent at `submitted_at` with `idempotency_key`)
        made, found without ever making a second one; None when none was found. Raises
        `RetryableError` when the upstream could not be asked."""
        ...
