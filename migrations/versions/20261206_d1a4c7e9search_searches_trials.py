"""searches and their trials (a search is a sweep of kind "search") (Optuna's study kept in the platform's tables), and the status a
requested stop ends in (a pruned trial's job ends `pruned`, not `stopped`)

Revision ID: d1a4c7e9search
Revises: c9e3f5a7pubname
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "d1a4c7e9search"
down_revision: str | None = "c9e3f5a7pubname"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="sweep"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("stop_status", sa.String(16), nullable=False, server_default="stopped")
        )
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("trials_wanted", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("job_spec", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", labyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"], ["sweeps.id"], name=op.f("fk_searches_id_sweeps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_searches_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_searches_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_searches")),
    )
    op.create_index(op.f("ix_searches_project_id"), "searches", ["project_id"])
    op.create_table(
        "search_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("system_attrs", sa.JSON(), nullable=False),
        sa.Column("last_point_id", sa.Integer(), nullable=False),
        sa.Column("pruned_step", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", labyard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", labyard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
            name=op.f("fk_search_trials_search_id_searches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_search_trials_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_trials")),
        sa.UniqueConstraint("search_id", "number", name=op.f("uq_search_trials_search_id")),
        sa.UniqueConstraint("job_id", name=op.f("uq_search_trials_job_id")),
    )


def downgrade() -> None:
    op.drop_table("search_trials")
    op.drop_index(op.f("ix_searches_project_id"), table_name="searches")
    op.drop_table("searches")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stop_status")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("kind")
