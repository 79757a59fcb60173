"""Slurm: where the cluster has a job (node, state, reason, queue position) and the Slurm
options of a flavor (partition, account, QOS)

Revision ID: f3c6e9a2slurm
Revises: e2b5d8f1session
Create Date: 2026-12-08 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3c6e9a2slurm"
down_revision: str | None = "e2b5d8f1session"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("node", sa.String(200), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("engine_state", sa.String(32), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("engine_reason", sa.String(200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
    with op.batch_alter_table("flavors") as batch:
        for column in ("partition", "account", "qos"):
            batch.add_column(sa.Column(column, sa.String(100), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("flavors") as batch:
        for column in ("qos", "account", "partition"):
            batch.drop_column(column)
    with op.batch_alter_table("jobs") as batch:
        for column in ("queue_position", "engine_reason", "engine_state", "node"):
            batch.drop_column(column)
