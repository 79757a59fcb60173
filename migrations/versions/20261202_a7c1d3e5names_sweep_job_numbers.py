"""sweeps and jobs: numbers (a sweep's in its lab, a job's in its sweep) and display names

Existing sweeps are numbered in creation order within their lab (lab-less ones within their
project); existing jobs in id order within their sweep, and renamed by jobs.naming.

Revision ID: a7c1d3e5names
Revises: f6b9e2a5eta
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from labyard.jobs import naming

revision: str = "a7c1d3e5names"
down_revision: str | None = "f6b9e2a5eta"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("label", sa.String(length=200), nullable=False, server_default="")
        )
    _backfill(op.get_bind())
    with op.batch_alter_table("sweeps") as batch:
        batch.create_unique_constraint(batch.f("uq_sweeps_lab_id"), ["lab_id", "number"])
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("label", server_default=None)


def _backfill(bind: sa.Connection) -> None:
    """Number the existing sweeps and jobs and rename the jobs, as new ones are named."""
    sweeps = bind.execute(
        sa.text("SELECT id, project_id, lab_id, name, grid FROM sweeps ORDER BY created_at, id")
    ).all()
    counters: dict[tuple[str, int], int] = {}
    for sweep_id, project_id, lab_id, name, grid in sweeps:
        key = ("lab", lab_id) if lab_id is not None else ("project", project_id)
        counters[key] = number = counters.get(key, 0) + 1
        bind.execute(
            sa.text("UPDATE sweeps SET number = :n WHERE id = :id"), {"n": number, "id": sweep_id}
        )
        varying = naming.grid_varying(_json(grid) or {})
        prefix = naming.sweep_display_name(name, number)
        jobs = bind.execute(
            sa.text("SELECT id, params FROM jobs WHERE sweep_id = :s ORDER BY id"), {"s": sweep_id}
        ).all()
        for job_number, (job_id, params) in enumerate(jobs, start=1):
            label = naming.job_label(job_number, _json(params) or {}, varying)[:200]
            bind.execute(
                sa.text("UPDATE jobs SET number = :n, label = :l, name = :name WHERE id = :id"),
                {
                    "n": job_number,
                    "l": label,
                    "name": naming.job_display_name(prefix, label)[:200],
                    "id": job_id,
                },
            )


def _json(value: Any) -> Any:
    """A JSON column's value as raw SQL returns it (text on SQLite, decoded on PostgreSQL)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_constraint(batch.f("uq_sweeps_lab_id"), type_="unique")
        batch.drop_column("number")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("label")
        batch.drop_column("number")
