"""job attempts: a preempted job goes back to the queue as a new attempt; each ended
attempt of a job is kept (when it ran, how it ended and why)

Revision ID: c6f2a9d3attempt
Revises: b5e8a1c4fair
Create Date: 2026-12-11 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "c6f2a9d3attempt"
down_revision: str | None = "b5e8a1c4fair"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
UTC = labyard.db.base.UTCDateTime(timezone=True)
INT = labyard.db.base.CheckedInteger()


def upgrade() -> None:
    op.create_table(
        "job_attempts",
        sa.Column("id", INT, nullable=False),
        sa.Column("job_id", INT, nullable=False),
        sa.Column("number", INT, nullable=False),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("ended_at", UTC, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("exit_code", INT, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_attempts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_attempts")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_job_attempts_job_id")),
    )
    op.create_index("ix_job_attempts_ended_at", "job_attempts", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_job_attempts_ended_at", table_name="job_attempts")
    op.drop_table("job_attempts")
