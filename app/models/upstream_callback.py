from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class UpstreamCallback(Base):
    """Every callback the upstream sent, raw; repeats of one body are stored once."""

    __tablename__ = "upstream_callbacks"
    __table_args__ = (UniqueConstraint("job_id", "body_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    body_sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    claimed_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    repeats: Mapped[int] = mapped_column(default=1)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
