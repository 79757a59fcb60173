"""deephealth clients and profiles: client ids an administrator registers for DeepHealth's
front-ends (besides LABYARD_DEEPHEALTH_CLIENT_IDS), and the e-mail and names it edits

Revision ID: e8b4c1d5dhclient
Revises: d7a3b0e4weights
Create Date: 2026-12-13 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base

revision: str = "e8b4c1d5dhclient"
down_revision: str | None = "d7a3b0e4weights"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
UTC = labyard.db.base.UTCDateTime(timezone=True)
INT = labyard.db.base.CheckedInteger()


def upgrade() -> None:
    op.create_table(
        "deephealth_clients",
        sa.Column("id", INT, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by_id", INT, nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_deephealth_clients_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deephealth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_deephealth_clients_client_id")),
    )
    op.create_table(
        "deephealth_profiles",
        sa.Column("user_id", INT, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("first_name", sa.String(150), nullable=False),
        sa.Column("last_name", sa.String(150), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_deephealth_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deephealth_profiles")),
    )


def downgrade() -> None:
    op.drop_table("deephealth_profiles")
    op.drop_table("deephealth_clients")
