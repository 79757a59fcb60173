"""metric series summaries and chart buckets, so a chart never scans every point

Existing points are folded in arrival (id) order, as ingestion does for new ones.

Revision ID: b8d2e4f6rollup
Revises: a7c1d3e5names
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import labyard.db.base
from labyard.jobs import rollup

revision: str = "b8d2e4f6rollup"
down_revision: str | None = "a7c1d3e5names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", labyard.db.base.CheckedInteger(), primary_key=True),
        sa.Column(
            "job_id",
            labyard.db.base.CheckedInteger(),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("x_name", sa.String(8), nullable=False),
        sa.Column("points", labyard.db.base.CheckedInteger(), nullable=False),
        *(
            sa.Column(column, sa.Double(), nullable=False)
            for column in ("first_x", "first_value", "last_x", "last_value", "low", "high")
        ),
        sa.Column("last_point_id", labyard.db.base.CheckedInteger(), nullable=False),
        sa.UniqueConstraint("job_id", "name", "x_name"),
    )
    op.create_table(
        "metric_buckets",
        sa.Column(
            "series_id",
            labyard.db.base.CheckedInteger(),
            sa.ForeignKey("metric_series.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("level", labyard.db.base.CheckedInteger(), primary_key=True, autoincrement=False),
        sa.Column(
            "bucket", labyard.db.base.CheckedInteger(), primary_key=True, autoincrement=False
        ),
        *(sa.Column(c, sa.Double(), nullable=False) for c in ("low_x", "low", "high_x", "high")),
    )
    _backfill()


def _backfill() -> None:
    """Fold every existing point, series by series, in id order."""
    bind = op.get_bind()
    points = sa.table(
        "metric_points",
        sa.column("id"),
        sa.column("job_id"),
        sa.column("name"),
        sa.column("x_name"),
        sa.column("x"),
        sa.column("value"),
    )
    keys = bind.execute(sa.select(points.c.job_id, points.c.name, points.c.x_name).distinct())
    for job_id, name, x_name in list(keys):
        rows = bind.execute(
            sa.select(points.c.id, points.c.x, points.c.value)
            .where(points.c.job_id == job_id, points.c.name == name, points.c.x_name == x_name)
            .order_by(points.c.id)
        ).all()
        pairs = [(x, value) for _id, x, value in rows]
        values = [v for _x, v in pairs]
        series_id = bind.execute(
            sa.text(
                "INSERT INTO metric_series (job_id, name, x_name, points, first_x, first_value,"
                " last_x, last_value, low, high, last_point_id) VALUES (:job, :name, :axis,"
                " :n, :fx, :fv, :lx, :lv, :low, :high, :last) RETURNING id"
            ),
            {
                "job": job_id,
                "name": name,
                "axis": x_name,
                "n": len(pairs),
                "fx": pairs[0][0],
                "fv": pairs[0][1],
                "lx": pairs[-1][0],
                "lv": pairs[-1][1],
                "low": min(values),
                "high": max(values),
                "last": rows[-1][0],
            },
        ).scalar_one()
        buckets = [
            {
                "s": series_id,
                "level": level,
                "bucket": bucket,
                "lx": e.low[0],
                "l": e.low[1],
                "hx": e.high[0],
                "h": e.high[1],
            }
            for (level, bucket), e in rollup.merge_levels(0, pairs, {}).items()
        ]
        bind.execute(
            sa.text(
                "INSERT INTO metric_buckets (series_id, level, bucket, low_x, low, high_x, high)"
                " VALUES (:s, :level, :bucket, :lx, :l, :hx, :h)"
            ),
            buckets,
        )


def downgrade() -> None:
    op.drop_table("metric_buckets")
    op.drop_table("metric_series")
