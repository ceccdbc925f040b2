"""job result archive: status, checksum, size, duration check, retry schedule

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("archive_status", sa.String(length=10), nullable=True))
    op.add_column("jobs", sa.Column("archive_error", sa.String(length=64), nullable=True))
    op.add_column("jobs", sa.Column("archive_key", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("sha256", sa.String(length=64), nullable=True))
    op.add_column("jobs", sa.Column("size_bytes", sa.BigInteger(), nullable=True))
    op.add_column("jobs", sa.Column("archived_duration_s", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("duration_mismatch", sa.Boolean(), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("archive_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("jobs", sa.Column("archive_next_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs", sa.Column("archive_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_jobs_due_archive",
        "jobs",
        ["archive_next_at"],
        unique=False,
        postgresql_where=sa.text("archive_status = 'pending'"),
    )
    op.create_index(
        "ix_jobs_archive_expires_at",
        "jobs",
        ["archive_expires_at"],
        unique=False,
        postgresql_where=sa.text("archive_key IS NOT NULL"),
    )
    # Jobs that succeeded before archival existed keep only the upstream link.
    op.execute("UPDATE jobs SET archive_status = 'off' WHERE status = 'succeeded'")


def downgrade() -> None:
    op.drop_index("ix_jobs_archive_expires_at", table_name="jobs")
    op.drop_index("ix_jobs_due_archive", table_name="jobs")
    for column in (
        "archive_expires_at",
        "archive_next_at",
        "archive_attempts",
        "duration_mismatch",
        "archived_duration_s",
        "size_bytes",
        "sha256",
        "archive_key",
        "archive_error",
        "archive_status",
    ):
        op.drop_column("jobs", column)
