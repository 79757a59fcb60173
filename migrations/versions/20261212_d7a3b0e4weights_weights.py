"""weights: registered models (a finished job's exported model, copied into the weights
store), with their lineage (source job, parent weights)

Revision ID: d7a3b0e4weights
Revises: c6f2a9d3attempt
Create Date: 2026-12-12 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "d7a3b0e4weights"
down_revision: str | None = "c6f2a9d3attempt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
UTC = labyard.db.base.UTCDateTime(timezone=True)
INT = labyard.db.base.CheckedInteger()


def upgrade() -> None:
    op.create_table(
        "weights",
        sa.Column("id", INT, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("project_id", INT, nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("framework", sa.String(32), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("input_shape", sa.JSON(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source_job_id", INT, nullable=True),
        sa.Column("source_job_name", sa.String(200), nullable=False),
        sa.Column("parent_id", INT, nullable=True),
        sa.Column("created_by_id", INT, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_weights_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_job_id"],
            ["jobs.id"],
            name=op.f("fk_weights_source_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["weights.id"],
            name=op.f("fk_weights_parent_id_weights"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_weights_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weights")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_weights_project_id")),
    )
    op.create_index(op.f("ix_weights_project_id"), "weights", ["project_id"])
    op.create_index(op.f("ix_weights_source_job_id"), "weights", ["source_job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_weights_source_job_id"), table_name="weights")
    op.drop_index(op.f("ix_weights_project_id"), table_name="weights")
    op.drop_table("weights")
