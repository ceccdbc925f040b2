"""The job API's wire shapes. Validation codes that start with `mgw_` surface as `code`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.jobs.state import JobStatus
from app.money import Money
from app.statuses import ArchiveStatus
from app.validation import http_url_problem

MODEL_ID = "kling-v3-motion-control"
MAX_PROMPT_CHARS = 2500
MAX_CALLBACK_URL_CHARS = 2048
MAX_METADATA_BYTES = 4096


class Element(BaseModel):
    model_config = ConfigDict(extra="forbid")
    element_id: str = Field(min_length=1, max_length=128)


class WatermarkInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    character_orientation: Literal["image", "video"]
    keep_sound: bool = True
    element_list: list[Element] | None = None
    watermark_info: WatermarkInfo | None = None

    @model_validator(mode="after")
    def _element_rules(self) -> ModelParams:
        if self.element_list is None:
            return self
        if len(self.element_list) > 1:
            raise PydanticCustomError(
                "mgw_too_many_elements", "element_list takes at most 1 element"
            )
        if self.element_list and self.character_orientation != "video":
            raise PydanticCustomError(
                "mgw_element_list_requires_video_orientation",
                "element_list is only allowed with character_orientation 'video'",
            )
        return self


class JobCreate(BaseModel):
    """Body of `POST /v1/jobs`."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["kling-v3-motion-control"] = "kling-v3-motion-control"
    image_url: str | None = None
    image_urls: list[str] | None = None
    image_upload_id: str | None = None
    video_url: str | None = None
    video_urls: list[str] | None = None
    video_upload_id: str | None = None
    prompt: str | None = None
    quality: Literal["720p", "1080p"]
    model_params: ModelParams
    callback_url: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("image_url", "image_urls", "video_url", "video_urls")
    @classmethod
    def _dialable(cls, value: str | list[str] | None, info: ValidationInfo) -> object:
        kind = (info.field_name or "").split("_")[0]
        for url in [value] if isinstance(value, str) else value or []:
            if (reason := http_url_problem(url)) is not None:
                raise PydanticCustomError(
                    f"mgw_invalid_{kind}_url",
                    "{kind} URL {reason}",
                    {"kind": kind, "reason": reason},
                )
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_length(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_PROMPT_CHARS:
            raise PydanticCustomError(
                "mgw_prompt_too_long", "prompt must be at most {limit} characters", {"limit": 2500}
            )
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > MAX_CALLBACK_URL_CHARS:
            raise PydanticCustomError(
                "mgw_callback_url_too_long", "callback_url must be at most 2048 characters"
            )
        if (reason := http_url_problem(value)) is not None:
            raise PydanticCustomError(
                "mgw_callback_url_invalid", "callback_url {reason}", {"reason": reason}
            )
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":")).encode()) > (
            MAX_METADATA_BYTES
        ):
            raise PydanticCustomError("mgw_metadata_too_large", "metadata must be at most 4 KiB")
        return value

    @model_validator(mode="after")
    def _exactly_one_of_each(self) -> JobCreate:
        for kind in ("image", "video"):
            sources = self._sources(kind)
            if len(sources) != 1:
                raise PydanticCustomError(
                    f"mgw_exactly_one_{kind}",
                    "give exactly one {kind}: {kind}_url, {kind}_urls or {kind}_upload_id "
                    "({count} given)",
                    {"kind": kind, "count": len(sources)},
                )
        return self

    def _sources(self, kind: str) -> list[tuple[str, str]]:
        single: str | None = getattr(self, f"{kind}_url")
        many: list[str] | None = getattr(self, f"{kind}_urls")
        upload: str | None = getattr(self, f"{kind}_upload_id")
        found = [("url", u) for u in ([single] if single is not None else []) + (many or [])]
        return found + ([("upload", upload)] if upload is not None else [])

    def image_source(self) -> tuple[str, str]:
        return self._sources("image")[0]

    def video_source(self) -> tuple[str, str]:
        return self._sources("video")[0]


class ProviderRef(BaseModel):
    name: str
    task_id: str | None


class JobResult(BaseModel):
    video_url: str | None = Field(description="The upstream's link; dies at `expires_at`.")
    expires_at: datetime | None
    archived_url: str | None = Field(
        description="The gateway's own copy, for the archive retention period."
    )
    archive_status: ArchiveStatus | None = Field(
        description="pending | archived | failed | off; `archive_error` says why it failed."
    )
    archive_error: str | None = None
    sha256: str | None = Field(description="SHA-256 (hex) of the archived bytes.")
    size_bytes: int | None
    duration_s: float | None = Field(description="The length the provider reported.")
    duration_mismatch: bool | None = Field(
        default=None,
        description="True when the archived video's probed length differs from what the "
        "provider reported or billed; null until probed.",
    )


class JobError(BaseModel):
    code: str
    message: str


class UpstreamCharge(BaseModel):
    """What the upstream itself reported it charged, beside our settlement."""

    amount: str = Field(description="In the upstream's own unit, as a decimal string.")
    unit: str = Field(description="`credits` (the aggregator) or `units` (Kling).")
    drift: bool | None = Field(
        description="The reported charge disagrees with `billed` (null: not judged, as "
        "the unit has no configured price)."
    )


class JobCost(BaseModel):
    currency: Literal["USD"] = "USD"
    estimated: Money
    billed: Money
    billed_seconds: int | None
    at_risk: Money
    upstream: UpstreamCharge | None = None


class JobOut(BaseModel):
    """A job as every API answer and every webhook shows it."""

    id: str
    status: JobStatus
    progress: int
    model: str
    quality: str
    prompt: str | None
    model_params: dict[str, Any]
    image_url: str
    video_url: str
    callback_url: str | None
    metadata: dict[str, Any] | None
    provider: ProviderRef | None
    result: JobResult | None
    error: JobError | None
    cost: JobCost
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class JobList(BaseModel):
    data: list[JobOut]
    next_cursor: str | None


class JobEventOut(BaseModel):
    id: int
    from_status: JobStatus | None
    to_status: JobStatus
    version: int
    progress: int
    source: str
    detail: dict[str, Any] | None
    created_at: datetime


class JobEventList(BaseModel):
    data: list[JobEventOut]


class JobAdopt(BaseModel):
    """`POST /v1/admin/jobs/{id}/adopt`: exactly one of `task_id` or `ruled_out: true`."""

    model_config = ConfigDict(extra="forbid")

    task_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The upstream task an operator found for this job's create.",
    )
    ruled_out: bool = Field(
        default=False,
        description="The provider made no task for this create: fail the job, clear at_risk.",
    )
    reason: str | None = Field(
        default=None, max_length=500, description="Why it was ruled out (kept in the error)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> JobAdopt:
        if (self.task_id is None) == (not self.ruled_out):
            raise ValueError("give exactly one of task_id or ruled_out: true")
        return self
