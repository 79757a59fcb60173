"""lab sessions: a lab's JupyterLab, each start a job of its own

Revision ID: e2b5d8f1session
Revises: d1a4c7e9search
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "e2b5d8f1session"
down_revision: str | None = "d1a4c7e9search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lab_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_lab_sessions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_lab_sessions_lab_id_labs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_lab_sessions_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"],
            ["users.id"],
            name=op.f("fk_lab_sessions_started_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_sessions")),
        sa.UniqueConstraint("job_id", name=op.f("uq_lab_sessions_job_id")),
    )
    op.create_index(op.f("ix_lab_sessions_project_id"), "lab_sessions", ["project_id"])
    op.create_index(op.f("ix_lab_sessions_lab_id"), "lab_sessions", ["lab_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lab_sessions_lab_id"), table_name="lab_sessions")
    op.drop_index(op.f("ix_lab_sessions_project_id"), table_name="lab_sessions")
    op.drop_table("lab_sessions")
