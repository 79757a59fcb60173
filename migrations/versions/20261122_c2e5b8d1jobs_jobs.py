"""jobs: sweeps, jobs, metrics, scheduler lease

Revision ID: c2e5b8d1jobs
Revises: b1d4a7c0data
Create Date: 2026-11-22 07:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import labyard.db.base  # noqa: F401

revision: str = "c2e5b8d1jobs"
down_revision: str | None = "b1d4a7c0data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
