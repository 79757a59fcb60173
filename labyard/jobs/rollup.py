"""Metric series kept summarised as their points arrive, so charts never scan every point.

Each series (a job's `Train_loss` over `step`) has a `MetricSeries` row (count, first, last,
lowest, highest) and, at each level of `SIZES`, one `MetricBucket` per `size` consecutive
points (in arrival order) holding the lowest and the highest of them. A chart asking for
at most N points gets the raw points when the series is that short, otherwise the first
and last point plus the low and high of each bucket of the finest level that fits: between
a quarter of N and N points, read from at most N/2 rows whatever the series' length.
Spikes survive, since every bucket keeps its extremes.

This is the one downsampler; ingestion (`record`) is the only writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from labyard.jobs.models import MetricBucket, MetricPoint, MetricSeries

SIZES = tuple(4 ** (level + 1) for level in range(10))  # 4 … 1,048,576 points a bucket

Pair = tuple[float, float]


@dataclass
class _Extremes:
    """The lowest and highest (x, value) of a run of points; the earliest wins ties."""

    low: Pair
    high: Pair

    def take(self, point: Pair) -> None:
        if point[1] < self.low[1]:
            self.low = point
        if point[1] > self.high[1]:
            self.high = point


def record(
    db: Session, job_id: int, name: str, x_name: str, points: Sequence[Pair], last_id: int
) -> None:
    """Fold a batch of new points of one series (in arrival order, the last with id
    `last_id`) into its summary and buckets, in the caller's transaction."""
    if not points:
        return
    series = db.scalars(
        select(MetricSeries)
        .where(
            MetricSeries.job_id == job_id, MetricSeries.name == name, MetricSeries.x_name == x_name
        )
        .with_for_update()
    ).one_or_none()
    if series is None:
        first = points[0]
        series = MetricSeries(
            job_id=job_id,
            name=name,
            x_name=x_name,
            points=0,
            first_x=first[0],
            first_value=first[1],
            last_x=first[0],
            last_value=first[1],
            low=first[1],
            high=first[1],
            last_point_id=last_id,
        )
        db.add(series)
        db.flush()
    start = series.points
    _fold_buckets(db, series.id, start, points)
    series.points = start + len(points)
    series.last_x, series.last_value = points[-1]
    series.low = min(series.low, min(v for _, v in points))
    series.high = max(series.high, max(v for _, v in points))
    series.last_point_id = last_id


def _fold_buckets(db: Session, series_id: int, start: int, points: Sequence[Pair]) -> None:
    """Merge points ranked start, start+1, … into every level's buckets: the first bucket
    of a level may exist (a partly filled one), every later one is new."""
    opened = [(level, start // size) for level, size in enumerate(SIZES) if start % size]
    existing: dict[tuple[int, int], _Extremes] = {}
    stored: dict[tuple[int, int], tuple[Pair, Pair]] = {}
    if opened:
        rows = db.scalars(
            select(MetricBucket).where(
                MetricBucket.series_id == series_id,
                or_(
                    *(and_(MetricBucket.level == lv, MetricBucket.bucket == b) for lv, b in opened)
                ),
            )
        )
        for row in rows:
            low, high = (row.low_x, row.low), (row.high_x, row.high)
            existing[(row.level, row.bucket)] = _Extremes(low, high)
            stored[(row.level, row.bucket)] = (low, high)
    merged = merge_levels(start, points, existing)
    fresh = []
    for (level, bucket), ext in merged.items():
        values = {
            "low_x": ext.low[0],
            "low": ext.low[1],
            "high_x": ext.high[0],
            "high": ext.high[1],
        }
        if (level, bucket) in existing:
            if stored[(level, bucket)] == (ext.low, ext.high):
                continue  # a coarse bucket's extremes rarely move: no write
            db.execute(
                update(MetricBucket)
                .where(
                    MetricBucket.series_id == series_id,
                    MetricBucket.level == level,
                    MetricBucket.bucket == bucket,
                )
                .values(**values)
            )
        else:
            fresh.append({"series_id": series_id, "level": level, "bucket": bucket, **values})
    if fresh:
        table = MetricBucket.__table__
        assert isinstance(table, Table)
        db.execute(insert(table), fresh)


def merge_levels(
    start: int, points: Sequence[Pair], existing: dict[tuple[int, int], _Extremes]
) -> dict[tuple[int, int], _Extremes]:
    """The buckets, by (level, index), touched by points ranked start, start+1, …, merged
    with the `existing` partly filled ones (updated in place). Level 0 gathers points 4 by
    4, each coarser level 4 buckets of the finer one, in arrival order so the earliest
    point still wins ties."""
    merged: dict[tuple[int, int], _Extremes] = {}
    units: list[tuple[int, Pair, Pair]] = [(start + i, p, p) for i, p in enumerate(points)]
    for level in range(len(SIZES)):
        order: list[int] = []
        for index, low, high in units:
            key = (level, index // 4)
            found = merged.get(key)
            if found is None:
                found = existing.get(key) or _Extremes(low, high)
                merged[key] = found
                order.append(key[1])
            found.take(low)
            found.take(high)
        units = [(b, merged[(level, b)].low, merged[(level, b)].high) for b in order]
    return merged


def level_for(points: int, max_points: int) -> int | None:
    """The finest level whose buckets fit `max_points` (None: the raw points fit)."""
    if points <= max_points:
        return None
    room = max(0, (max_points - 2) // 2)
    for level, size in enumerate(SIZES):
        if -(-points // size) <= room:
            return level
    return len(SIZES) - 1


def series_where(db: Session, where: ColumnElement[bool]) -> list[MetricSeries]:
    """The series matching `where` (on MetricSeries columns), by job, name and axis."""
    return list(
        db.scalars(
            select(MetricSeries)
            .where(where)
            .order_by(MetricSeries.job_id, MetricSeries.name, MetricSeries.x_name)
        )
    )


def downsampled(
    db: Session, series: Iterable[MetricSeries], max_points: int
) -> dict[int, list[Pair]]:
    """At most `max_points` (x, value) points of each series, sorted by x, by series id:
    the raw points of short series, the first, last and each bucket's extremes of long
    ones, one per x (`latest_per_x`). One query for the short series and one per level."""
    max_points = max(2, max_points)
    out: dict[int, list[Pair]] = {}
    short: list[MetricSeries] = []
    by_level: dict[int, list[MetricSeries]] = {}
    for s in series:
        level = level_for(s.points, max_points)
        if level is None:
            short.append(s)
        elif max_points < 4:  # room for the ends only
            out[s.id] = [(s.first_x, s.first_value), (s.last_x, s.last_value)]
        else:
            by_level.setdefault(level, []).append(s)
    out.update(_raw_points(db, short))
    for level, group in by_level.items():
        out.update(_bucket_points(db, level, group))
    return {series_id: latest_per_x(points) for series_id, points in out.items()}


def latest_per_x(points: list[Pair]) -> list[Pair]:
    """Points sorted by x (ties in arrival order) with one point per x, the latest: a step
    that a resumed or requeued job redid replaces its first try's value."""
    kept: list[Pair] = []
    for point in points:
        if kept and kept[-1][0] == point[0]:
            kept[-1] = point
        else:
            kept.append(point)
    return kept


def _raw_points(db: Session, series: list[MetricSeries]) -> dict[int, list[Pair]]:
    """Every point of each (short) series up to its summary's last point, sorted by x then
    arrival: points that arrived after the summary was read are left to the live stream."""
    if not series:
        return {}
    by_key = {(s.job_id, s.name, s.x_name): s for s in series}
    out: dict[int, list[Pair]] = {s.id: [] for s in series}
    names = {s.name for s in series}
    for chunk in chunks(sorted({s.job_id for s in series}), 500):
        rows = db.execute(
            select(
                MetricPoint.id,
                MetricPoint.job_id,
                MetricPoint.name,
                MetricPoint.x_name,
                MetricPoint.x,
                MetricPoint.value,
            )
            .where(MetricPoint.job_id.in_(chunk), MetricPoint.name.in_(names))
            .order_by(MetricPoint.job_id, MetricPoint.name, MetricPoint.x, MetricPoint.id)
        )
        for point_id, job_id, name, x_name, x, value in rows:
            owner = by_key.get((job_id, name, x_name))
            if owner is not None and point_id <= owner.last_point_id:
                out[owner.id].append((x, value))
    return out


def _bucket_points(db: Session, level: int, series: list[MetricSeries]) -> dict[int, list[Pair]]:
    """First, last and each bucket's low and high, sorted by x, for series of one level."""
    found: dict[int, list[Pair]] = {s.id: [] for s in series}
    for chunk in chunks([s.id for s in series], 500):
        rows = db.execute(
            select(
                MetricBucket.series_id,
                MetricBucket.low_x,
                MetricBucket.low,
                MetricBucket.high_x,
                MetricBucket.high,
            )
            .where(MetricBucket.series_id.in_(chunk), MetricBucket.level == level)
            .order_by(MetricBucket.series_id, MetricBucket.bucket)
        )
        for series_id, low_x, low, high_x, high in rows:
            pair = [(low_x, low), (high_x, high)]
            found[series_id].extend(sorted(set(pair), key=lambda p: p[0]))
    out = {}
    for s in series:
        ends = [(s.first_x, s.first_value), (s.last_x, s.last_value)]
        kept = [p for p in found[s.id] if p not in ends]
        out[s.id] = sorted([ends[0], *kept, ends[1]], key=lambda p: p[0])
    return out


def chunks(values: list[int], size: int) -> Iterable[list[int]]:
    """`values` in slices of at most `size` (bounded IN lists)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
