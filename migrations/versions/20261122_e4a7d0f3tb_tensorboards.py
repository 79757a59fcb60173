"""tensorboards: TensorBoard instances

Revision ID: e4a7d0f3tb
Revises: d3f6c9e2labs
Create Date: 2026-11-22 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "e4a7d0f3tb"
down_revision: str | None = "d3f6c9e2labs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tensorboards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("logdir_spec", sa.JSON(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("process_started_at", labyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_access_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_tensorboards_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"],
            ["users.id"],
            name=op.f("fk_tensorboards_started_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tensorboards")),
    )
    with op.batch_alter_table("tensorboards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tensorboards_key"), ["key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_tensorboards_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tensorboards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tensorboards_project_id"))
        batch_op.drop_index(batch_op.f("ix_tensorboards_key"))

    op.drop_table("tensorboards")
