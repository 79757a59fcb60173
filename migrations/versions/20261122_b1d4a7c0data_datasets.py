"""datasets: datasets, uploads, extraction tasks

Revision ID: b1d4a7c0data
Revises: 0e42022b667d
Create Date: 2026-11-22 07:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import labyard.db.base  # noqa: F401

revision: str = "b1d4a7c0data"
down_revision: str | None = "0e42022b667d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
