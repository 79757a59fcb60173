"""jobs: where progress reporting began (the ETA measures its pace from there)

Revision ID: f6b9e2a5eta
Revises: e4a7d0f3tb
Create Date: 2026-12-01 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "f6b9e2a5eta"
down_revision: str | None = "e4a7d0f3tb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("progress_start_fraction", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column(
                "progress_started_at", labyard.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("progress_started_at")
        batch.drop_column("progress_start_fraction")
