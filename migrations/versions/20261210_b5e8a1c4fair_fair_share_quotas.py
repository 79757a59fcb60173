"""fair share: projects' default job priority, GPU quotas of projects and users, an
index on jobs' end time (recent GPU-hours)

Revision ID: b5e8a1c4fair
Revises: a4d7f0b3notify
Create Date: 2026-12-10 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "b5e8a1c4fair"
down_revision: str | None = "a4d7f0b3notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
UTC = labyard.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("default_priority", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("jobs") as batch:
        batch.create_index(batch.f("ix_jobs_finished_at"), ["finished_at"], unique=False)
    op.create_table(
        "gpu_quotas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("monthly_gpu_hours", sa.Double(), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_gpu_quotas_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_gpu_quotas_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_quotas")),
        sa.UniqueConstraint("project_id", name=op.f("uq_gpu_quotas_project_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_gpu_quotas_user_id")),
    )


def downgrade() -> None:
    op.drop_table("gpu_quotas")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index(batch.f("ix_jobs_finished_at"))
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("default_priority")
