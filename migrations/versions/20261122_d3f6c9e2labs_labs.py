"""labs: labs and their attached datasets

Revision ID: d3f6c9e2labs
Revises: c2e5b8d1jobs
Create Date: 2026-11-22 07:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "d3f6c9e2labs"
down_revision: str | None = "c2e5b8d1jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "labs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=11), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_labs_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_labs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labs")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_labs_project_id")),
    )
    op.create_table(
        "lab_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_lab_datasets_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_lab_datasets_lab_id_labs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_datasets")),
        sa.UniqueConstraint("lab_id", "dataset_id", name=op.f("uq_lab_datasets_lab_id")),
    )
    with op.batch_alter_table("lab_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lab_datasets_dataset_id"), ["dataset_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lab_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lab_datasets_dataset_id"))

    op.drop_table("lab_datasets")
    op.drop_table("labs")
