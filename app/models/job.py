from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import EnumText, status_in
from app.statuses import AT_PROVIDER, AWAITING_SUBMIT, ArchiveStatus, JobStatus


class Job(Base):
    """One generation request and everything the gateway knows about it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key"),
        Index("ix_jobs_client_id_id", "client_id", "id"),
        Index(
            "ix_jobs_due_submit",
            "next_attempt_at",
            postgresql_where=status_in(AWAITING_SUBMIT),
        ),
        Index(
            "ix_jobs_due_poll",
            "next_poll_at",
            postgresql_where=status_in(AT_PROVIDER),
        ),
        Index(
            "ix_jobs_due_archive",
            "archive_next_at",
            postgresql_where=text("archive_status = 'pending'"),
        ),
        Index(
            "ix_jobs_archive_expires_at",
            "archive_expires_at",
            postgresql_where=text("archive_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    status: Mapped[JobStatus] = mapped_column(EnumText(JobStatus, 20), default=JobStatus.queued)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    model: Mapped[str] = mapped_column(String(64))
    quality: Mapped[str] = mapped_column(String(8))
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    image_url: Mapped[str] = mapped_column(Text)
    video_url: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))

    provider_name: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_task_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    providers_tried: Mapped[list[str]] = mapped_column(JSONB, default=list)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    submit_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submit_unknown: Mapped[bool] = mapped_column(default=False)
    callback_registered: Mapped[bool] = mapped_column(default=False)
    estimated_time_s: Mapped[int | None] = mapped_column(Integer, nullable=True)

    result_video_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    archived_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_duration_s: Mapped[float | None] = mapped_column(nullable=True)
    # The gateway's own copy of the result (the archiver's): null until the job succeeds.
    archive_status: Mapped[ArchiveStatus | None] = mapped_column(
        EnumText(ArchiveStatus, 10), nullable=True
    )
    archive_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    archive_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    archived_duration_s: Mapped[float | None] = mapped_column(nullable=True)
    duration_mismatch: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    archive_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the next copy may start; while one runs, the end of its lease.
    archive_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    archive_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    cost_estimated_usd: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    cost_billed_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), nullable=True)
    billed_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What the upstream reported it charged, in its own unit, beside our settlement; drift
    # = the two disagree (only judged where the provider's unit has a configured price).
    upstream_charge: Mapped[Decimal | None] = mapped_column(Numeric(16, 4), nullable=True)
    upstream_charge_unit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    upstream_charge_drift: Mapped[bool | None] = mapped_column(nullable=True)

    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobEvent(Base):
    """One applied state change; the job's history as `GET /v1/jobs/{id}/events` shows it."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[JobStatus | None] = mapped_column(EnumText(JobStatus, 20), nullable=True)
    to_status: Mapped[JobStatus] = mapped_column(EnumText(JobStatus, 20))
    version: Mapped[int] = mapped_column(Integer)
    progress: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
