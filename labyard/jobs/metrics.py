"""Metric lines in MLSteam's format, parsed from a job's log into `metric_points`.

`Train step=10 loss=0.818 acc=0.95` gives `Train_loss` and `Train_acc` over `step`.
Groups: Train, Validation, Test. x-axes: step, iter, epoch (when a line has several, the
first of step, iter, epoch is the axis). Any other line, a bad x value, a name that is not
an identifier, or a value that is not a finite number is ignored: a job's output is
untrusted text, and garbage must never stop ingestion.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from labyard.jobs import rollup
from labyard.jobs.models import MetricPoint, MetricSeries

GROUPS = frozenset({"Train", "Validation", "Test"})
X_AXES = ("step", "iter", "epoch")
MAX_LINE = 4096
MAX_METRICS_PER_LINE = 64
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Point:
    """One parsed metric value."""

    name: str
    x_name: str
    x: float
    value: float


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_metric_line(text: str) -> list[Point]:
    """The points of one output line ([] when it is not a metric line)."""
    if len(text) > MAX_LINE:
        return []
    parts = text.split()
    if len(parts) < 3 or parts[0] not in GROUPS:
        return []
    pairs: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or not _NAME_RE.match(key) or key in pairs:
            return []
        pairs[key] = value
    x_name = next((axis for axis in X_AXES if axis in pairs), None)
    if x_name is None:
        return []
    x = _number(pairs[x_name])
    if x is None:
        return []
    points = []
    for key, raw in pairs.items():
        number = _number(raw) if key not in X_AXES else None
        if number is not None:
            points.append(Point(f"{parts[0]}_{key}", x_name, x, number))
    return points[:MAX_METRICS_PER_LINE]


def store_points(db: Session, job_id: int, points: list[tuple[Point, datetime]]) -> None:
    """Insert a batch of points in one statement and fold them into their series' summary
    and buckets (labyard.jobs.rollup), in the same transaction."""
    if not points:
        return
    rows = [
        {"job_id": job_id, "name": p.name, "x_name": p.x_name, "x": p.x, "value": p.value, "ts": ts}
        for p, ts in points
    ]
    table = MetricPoint.__table__
    assert isinstance(table, Table)
    ids = db.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).all()
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    last_ids: dict[tuple[str, str], int] = {}
    for (point, _ts), point_id in zip(points, ids, strict=True):
        pairs.setdefault((point.name, point.x_name), []).append((point.x, point.value))
        last_ids[(point.name, point.x_name)] = point_id
    for (name, x_name), series_pairs in pairs.items():
        rollup.record(db, job_id, name, x_name, series_pairs, last_ids[(name, x_name)])


def series_names(db: Session, job_id: int) -> list[dict[str, object]]:
    """The job's series: name, x axis and number of points."""
    found = rollup.series_where(db, MetricSeries.job_id == job_id)
    return [{"name": s.name, "x_name": s.x_name, "points": s.points} for s in found]


def read_series(db: Session, job_id: int, name: str, max_points: int) -> list[tuple[float, float]]:
    """The series' (x, value) points by x, downsampled to at most `max_points` per axis."""
    found = rollup.series_where(db, (MetricSeries.job_id == job_id) & (MetricSeries.name == name))
    kept = rollup.downsampled(db, found, max_points)
    return [point for s in found for point in kept[s.id]]
