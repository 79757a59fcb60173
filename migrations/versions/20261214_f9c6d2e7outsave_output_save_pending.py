"""jobs.output_save_pending: a succeeded job whose mlsteam.yml may have an `output_dataset:`
block waits for the platform to save it; kept in the database (it was a list in the
scheduler's memory), so a job that ended just before the server stopped is saved after
its restart

Revision ID: f9c6d2e7outsave
Revises: e8b4c1d5dhclient
Create Date: 2026-12-14 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f9c6d2e7outsave"
down_revision: str | None = "e8b4c1d5dhclient"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column(
                "output_save_pending", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.create_index("ix_jobs_output_save_pending", ["output_save_pending"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_output_save_pending")
        batch.drop_column("output_save_pending")
