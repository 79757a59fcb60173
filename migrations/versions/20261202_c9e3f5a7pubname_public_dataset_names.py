"""public dataset names are unique: a partial unique index, so two admins creating (or
publishing) the same public name at once get one dataset and a 409, not two datasets

Public datasets have no project, so uq_datasets_project_id (project_id, name) never compared
them (NULLs differ). Duplicates a race already made keep their files and get "-<id>"
appended to the name (the oldest keeps it).

Revision ID: c9e3f5a7pubname
Revises: b8d2e4f6rollup
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c9e3f5a7pubname"
down_revision: str | None = "b8d2e4f6rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_datasets_public_name"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, name FROM datasets WHERE is_public ORDER BY name, id")
    ).all()
    seen: set[str] = set()
    for dataset_id, name in rows:
        if name in seen:
            suffix = f"-{dataset_id}"
            conn.execute(
                sa.text("UPDATE datasets SET name = :name WHERE id = :id"),
                {"name": name[: 100 - len(suffix)] + suffix, "id": dataset_id},
            )
        seen.add(name)
    op.create_index(
        INDEX,
        "datasets",
        ["name"],
        unique=True,
        sqlite_where=sa.text("is_public"),
        postgresql_where=sa.text("is_public"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="datasets")
