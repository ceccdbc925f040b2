"""One settings class for the whole service; it fails fast on unsafe production values.

Every field is documented in `.env.example`. Names are `MGW_<FIELD>` except
`DATABASE_URL` and `PUBLIC_BASE_URL`, whose names the API contract fixes.
"""

from __future__ import annotations

import enum
import os
import tempfile
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderKind = Literal["evolink", "kling"]
BillingRounding = Literal["nearest", "ceil"]
Role = Literal["api", "worker", "all"]
StorageBackend = Literal["local", "s3"]

# SigV4 presigned URLs live at most 7 days.
MAX_PRESIGNED_S = 7 * 86400.0

DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - a placeholder refused in prod


def _usable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _user_data_dir() -> Path | None:
    if xdg := os.environ.get("XDG_DATA_HOME"):
        return Path(xdg) / "motion-gateway"
    try:
        return Path.home() / ".local" / "share" / "motion-gateway"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def default_data_dir() -> Path:
    """Where state lives when MGW_DATA_DIR is unset: the first of ./.data, the user's data
    directory and a per-user temporary directory that can be written. A service that runs
    as an unprivileged user in a read-only working directory still starts and stores."""
    local = Path(".data")
    candidates = [
        local,
        _user_data_dir(),
        Path(tempfile.gettempdir()) / f"motion-gateway-{os.getuid()}",
    ]
    for candidate in candidates:
        if candidate is not None and _usable_dir(candidate):
            return candidate
    return local  # nothing is writable: the first write will name this path


class Environment(enum.StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class ProviderConfig(BaseModel):
    """One upstream seller of the model; prices live here, never in code."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    kind: ProviderKind = "evolink"
    base_url: str
    api_key: str = ""  # evolink: the bearer key
    access_key: str = ""  # kling: the JWT's `iss`
    secret_key: str = ""  # kling: the HS256 signing key
    # Decimal strings ("0.1134"); up to 6 places, as providers quote fractions of a cent.
    price_720p_usd_per_s: Decimal = Field(default=Decimal("0.1134"), gt=0, decimal_places=6)
    price_1080p_usd_per_s: Decimal = Field(default=Decimal("0.1512"), gt=0, decimal_places=6)
    billing_rounding: BillingRounding = "nearest"
    enabled: bool = True
    # Reconciling a create whose answer was lost (evolink kind; Kling always has its
    # `external_task_id`). Only set `honors_idempotency_key` for an upstream known to
    # return the existing task for a repeated `Idempotency-Key`: the replay is then safe.
    honors_idempotency_key: bool = False
    task_list_lookup: bool = True  # match the account's task list (`GET /v1/tasks`)
    # The US dollars one unit of the upstream's own charge is worth (the aggregator's
    # credits, Kling's units). Set: each settled job's reported charge is compared with our
    # settlement, and a difference over a cent (or 1 %) is flagged as drift.
    upstream_unit_usd: Decimal | None = Field(default=None, gt=0, decimal_places=8)

    @model_validator(mode="after")
    def _credentials_for_kind(self) -> ProviderConfig:
        if self.kind == "evolink" and not self.api_key:
            raise ValueError(f"provider {self.name}: api_key is required for kind evolink")
        if self.kind == "kling" and not (self.access_key and self.secret_key):
            raise ValueError(f"provider {self.name}: access_key and secret_key are required")
        return self

    def price_per_s(self, quality: str) -> Decimal:
        return self.price_1080p_usd_per_s if quality == "1080p" else self.price_720p_usd_per_s


def _default_providers() -> list[ProviderConfig]:
    return [
        ProviderConfig(name="simulator", base_url="http://127.0.0.1:8001", api_key="sim-key"),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MGW_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `NAME=` as in .env.example means "the default"
    )

    environment: Environment = Environment.dev
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MGW_DATABASE_URL")
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("PUBLIC_BASE_URL", "MGW_PUBLIC_BASE_URL"),
    )
    # Unset: ./.data where the working directory is writable (make run), else a per-user
    # data directory (a container's read-only /app): see `default_data_dir`.
    data_dir: Path | None = None
    secret_key: str = DEV_SECRET
    log_level: str = "INFO"
    log_json: bool = False
    role: Role = "all"
    auto_migrate: bool = True
    # A dead database must be answered (503) within a second: bounded waits everywhere.
    db_connect_timeout_s: float = Field(default=0.8, gt=0)
    db_pool_timeout_s: float = Field(default=0.8, gt=0)
    db_command_timeout_s: float = Field(default=5.0, gt=0)

    providers: list[ProviderConfig] = Field(default_factory=_default_providers)
    provider_submit_timeout_s: float = 30.0
    provider_query_timeout_s: float = 15.0
    circuit_failure_threshold: int = 5
    circuit_open_s: float = 30.0

    worker_lease_s: float = 60.0
    # How long shutdown waits for in-flight submits, polls and sends; unset: the longest
    # call timeout plus a margin, so a deploy never turns a paid submit into an unknown.
    shutdown_grace_s: float | None = None
    worker_sweep_interval_s: float = 2.0
    worker_concurrency: int = 8
    submit_retry_base_s: float = 2.0
    submit_retry_max_s: float = 120.0
    # A create whose outcome is unknown is looked for (callback, lookup by our id, an
    # idempotent replay, the task list) for this long after it was sent: longer than the
    # provider's longest processing time, since the aggregator calls back only at the end.
    # After it the job stays visible with `at_risk` until an operator adopts or rules out.
    submit_unknown_window_s: float = 3 * 3600.0
    submit_reconcile_first_s: float = 5.0
    submit_reconcile_interval_s: float = 30.0
    submit_reconcile_max_interval_s: float = 600.0

    poll_first_delay_s: float = 30.0
    poll_backoff_base_s: float = 5.0
    poll_backoff_max_s: float = 300.0
    poll_overdue_grace_s: float = 60.0
    upstream_query_rate_per_s: float = 10.0
    upstream_query_burst: int = 20
    job_deadline_s: float = 6 * 3600.0
    result_link_ttl_s: float = 24 * 3600.0

    url_allowlist_cidrs: list[str] = Field(default_factory=list)
    media_dir: Path | None = None
    upload_ttl_s: float = 7 * 86400.0
    upload_max_bytes: int | None = None
    media_url_probe: Literal["off", "best_effort", "strict"] = "best_effort"
    media_probe_timeout_s: float = 20.0

    # Where uploads and archived results are stored: files under media_root, or S3.
    storage_backend: StorageBackend = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""
    s3_presigned_links: bool = False

    archive_results: bool = True
    archive_retention_s: float = Field(default=30 * 86400.0, gt=0)
    archive_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    archive_concurrency: int = Field(default=4, ge=1)
    # A claimed copy's lease; the copy itself is cut off before it runs out.
    archive_lease_s: float = Field(default=900.0, gt=10)
    archive_retry_base_s: float = Field(default=2.0, gt=0)
    archive_retry_max_s: float = Field(default=300.0, gt=0)
    archive_read_timeout_s: float = Field(default=30.0, gt=0)

    webhook_timeout_s: float = 10.0
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    webhook_retry_after_max_s: float = 3600.0
    webhook_endpoint_concurrency: int = 4
    webhook_endpoint_rate_per_s: float = 10.0
    webhook_circuit_threshold: int = 5
    webhook_circuit_open_s: float = 30.0
    webhook_circuit_open_max_s: float = 3600.0
    webhook_disable_after_s: float = 5 * 86400.0
    webhook_secret_overlap_s: float = 86400.0
    webhook_log_retention_s: float = 30 * 86400.0
    webhook_ca_bundle: str | None = None
    dispatcher_concurrency: int = 32

    @property
    def longest_call_s(self) -> float:
        return max(
            self.provider_submit_timeout_s, self.provider_query_timeout_s, self.webhook_timeout_s
        )

    @property
    def effective_shutdown_grace_s(self) -> float:
        if self.shutdown_grace_s is not None:
            return self.shutdown_grace_s
        return self.longest_call_s + 5.0

    @model_validator(mode="after")
    def _leases_outlive_calls(self) -> Settings:
        # A call that outlives its lease would be judged lost while it is still running.
        if self.worker_lease_s <= self.longest_call_s:
            raise ValueError(
                f"MGW_WORKER_LEASE_S ({self.worker_lease_s:g}) must exceed the longest call "
                f"timeout ({self.longest_call_s:g} s)"
            )
        if self.shutdown_grace_s is not None and self.shutdown_grace_s < self.longest_call_s:
            raise ValueError(
                f"MGW_SHUTDOWN_GRACE_S ({self.shutdown_grace_s:g}) must be at least the "
                f"longest call timeout ({self.longest_call_s:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _storage_is_complete(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("MGW_S3_BUCKET is required with MGW_STORAGE_BACKEND=s3")
        if self.s3_presigned_links and self.storage_backend != "s3":
            raise ValueError("MGW_S3_PRESIGNED_LINKS needs MGW_STORAGE_BACKEND=s3")
        if self.s3_presigned_links and self.archive_retention_s > MAX_PRESIGNED_S:
            raise ValueError(
                "MGW_ARCHIVE_RETENTION_S must be at most 604800 (7 days, the longest a "
                "presigned S3 link lives) with MGW_S3_PRESIGNED_LINKS=true"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_prod(self) -> Settings:
        if self.environment is Environment.prod:
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError("MGW_SECRET_KEY must be set to 32+ random characters in prod")
            if self.database_url is None:
                raise ValueError("DATABASE_URL is required in prod")
        return self

    @cached_property
    def secret_bytes(self) -> bytes:
        return self.secret_key.encode()

    @property
    def is_dev_like(self) -> bool:
        return self.environment is not Environment.prod

    @cached_property
    def data_root(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()

    @property
    def media_root(self) -> Path:
        return self.media_dir or self.data_root / "media"
