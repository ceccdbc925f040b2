"""upstream charge beside our settlement

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("upstream_charge", sa.Numeric(16, 4), nullable=True))
    op.add_column("jobs", sa.Column("upstream_charge_unit", sa.String(length=16), nullable=True))
    op.add_column("jobs", sa.Column("upstream_charge_drift", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "upstream_charge_drift")
    op.drop_column("jobs", "upstream_charge_unit")
    op.drop_column("jobs", "upstream_charge")
