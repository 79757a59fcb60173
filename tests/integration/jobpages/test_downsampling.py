"""The one downsampler (labyard/jobs/rollup): series summaries and chart buckets kept at
ingestion, checked point for point against a plain statement of the rule, on SQLite and
PostgreSQL: spikes, ties, short series, points arriving in batches of any size, several
jobs and series at once, and the migration that folds points stored before it."""

from __future__ import annotations

import random

import pytest
from alembic import command
from sqlalchemy import func, insert, select

from labyard.bootstrap import alembic_config
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import rollup
from labyard.jobs.metrics import Point, read_series, series_names, store_points
from labyard.jobs.models import MetricBucket, MetricPoint, MetricSeries
from tests.factories import make_job_row
from tests.integration.jobpages.conftest import People

Points = list[tuple[float, float]]


def expected(points: Points, max_points: int) -> Points:
    """The rule, stated plainly: every point of a short series; otherwise the first and
    last point and the lowest and highest (earliest on ties) of each run of `size`
    consecutive points, `size` the smallest power of 4 whose runs fit the budget."""
    if len(points) <= max_points:
        return sorted(points, key=lambda p: p[0])
    room = (max_points - 2) // 2
    size = next((4**k for k in range(1, 11) if -(-len(points) // 4**k) <= room), 4**10)
    kept: Points = []
    for start in range(0, len(points), size):
        run = points[start : start + size]
        low = min(run, key=lambda p: p[1])
        high = max(run, key=lambda p: p[1])
        kept.extend(sorted({low, high}, key=lambda p: p[0]))
    ends = [points[0], points[-1]]
    return sorted([ends[0], *(p for p in kept if p not in ends), ends[1]], key=lambda p: p[0])


def series(length: int, seed: int) -> Points:
    rng = random.Random(seed)
    values = [float(rng.randint(0, 9)) for _ in range(length)]  # many ties
    if length > 10:
        values[length // 3] = 1e6  # a spike
        values[2 * length // 3] = -1e6
    return [(float(i), v) for i, v in enumerate(values)]


def store(database: Database, job_id: int, name: str, points: Points, batches: list[int]) -> None:
    """Store `points` the way ingestion does, in batches of the given sizes (cycled)."""
    at, turn = 0, 0
    while at < len(points):
        size = batches[turn % len(batches)]
        chunk = points[at : at + size]
        with database.session() as db:
            store_points(db, job_id, [(Point(name, "step", x, y), utcnow()) for x, y in chunk])
        at, turn = at + size, turn + 1


@pytest.mark.parametrize("length", [1, 2, 99, 100, 101, 102, 5_003, 70_001])
def test_one_series_matches_the_rule(
    database: Database, settings: Settings, people: People, length: int
) -> None:
    points = series(length, seed=length)
    job = make_job_row(database, settings, people.project_id, points={"Train_loss": points})
    with database.session() as db:
        got = read_series(db, job, "Train_loss", 100)
        assert series_names(db, job) == [{"name": "Train_loss", "x_name": "step", "points": length}]
    assert got == expected(points, 100)
    assert len(got) <= 100 and got[0] == points[0] and got[-1] == points[-1]
    if length > 100:
        assert len(got) >= 100 // 4  # never far below the budget
    if length > 10:
        assert (float(length // 3), 1e6) in got and (float(2 * length // 3), -1e6) in got


@pytest.mark.parametrize(
    ("batches", "length"), [([1], 1_100), ([3, 1, 7], 1_500), ([64, 5], 3_001), ([1000], 3_001)]
)
def test_batches_of_any_size_give_the_same_buckets(
    database: Database, settings: Settings, people: People, batches: list[int], length: int
) -> None:
    points = series(length, seed=7)
    whole = make_job_row(database, settings, people.project_id, points={"Train_loss": points})
    pieces = make_job_row(database, settings, people.project_id)
    store(database, pieces, "Train_loss", points, batches)
    with database.session() as db:
        summaries = {
            s.job_id: s for s in rollup.series_where(db, MetricSeries.job_id.in_([whole, pieces]))
        }
        for field in ("points", "first_x", "first_value", "last_x", "last_value", "low", "high"):
            assert getattr(summaries[whole], field) == getattr(summaries[pieces], field), field
        buckets = {
            job: sorted(
                (b.level, b.bucket, b.low_x, b.low, b.high_x, b.high)
                for b in db.scalars(select(MetricBucket).where(MetricBucket.series_id == s.id))
            )
            for job, s in summaries.items()
        }
        assert buckets[whole] == buckets[pieces] and buckets[whole]
        for budget in (100, 1000, 5000):
            assert read_series(db, pieces, "Train_loss", budget) == expected(points, budget)


def test_series_and_jobs_are_downsampled_apart(
    database: Database, settings: Settings, people: People
) -> None:
    data = {
        "Train_loss": series(3_000, 1),
        "Train_acc": series(50, 2),
        "Validation_loss": series(777, 3),
    }
    first = make_job_row(database, settings, people.project_id, points=data)
    other = series(400, 4)
    second = make_job_row(database, settings, people.project_id, points={"Train_loss": other})
    with database.session() as db:
        found = rollup.series_where(db, MetricSeries.job_id.in_([first, second]))
        kept = rollup.downsampled(db, found, 64)
    got = {(s.job_id, s.name): kept[s.id] for s in found}
    want = {(first, name): expected(points, 64) for name, points in data.items()}
    want[(second, "Train_loss")] = expected(other, 64)
    assert got == want


def test_smallest_budgets(database: Database, settings: Settings, people: People) -> None:
    points = series(500, 9)
    job = make_job_row(database, settings, people.project_id, points={"Train_loss": points})
    with database.session() as db:
        for budget in (0, 1, 2, 3):
            assert read_series(db, job, "Train_loss", budget) == [points[0], points[-1]]
        assert read_series(db, job, "Train_loss", 4) == expected(points, 4)
        assert read_series(db, job, "Train_loss", 600) == points


def test_the_migration_folds_points_stored_before_it(
    db_url: str, database: Database, settings: Settings, people: People
) -> None:
    points = series(2_500, seed=11)
    job = make_job_row(database, settings, people.project_id)
    config = alembic_config(db_url)
    command.downgrade(config, "a7c1d3e5names")  # before summaries and buckets existed
    with database.session() as db:
        db.execute(
            insert(MetricPoint),
            [
                {"job_id": job, "name": "Train_loss", "x_name": "step", "x": x, "value": y}
                for x, y in points
            ],
        )
    command.upgrade(config, "head")
    with database.session() as db:
        assert read_series(db, job, "Train_loss", 200) == expected(points, 200)
        summary = db.scalars(select(MetricSeries)).one()
        top = db.scalar(select(func.max(MetricPoint.id)))
        assert (summary.points, summary.last_point_id, summary.low, summary.high) == (
            2_500,
            top,
            -1e6,
            1e6,
        )


@pytest.mark.parametrize(("length", "max_points"), [(60, 100), (6_000, 100)])
def test_steps_a_resumed_job_redid_are_kept_once_with_their_latest_value(
    database: Database, settings: Settings, people: People, length: int, max_points: int
) -> None:
    """The job logged steps 0..length-1, was requeued and redid the last third."""
    first = series(length, seed=7)
    redo = [(x, y + 0.5) for x, y in first[2 * length // 3 :]]
    job = make_job_row(database, settings, people.project_id, points={"Train_loss": first})
    store(database, job, "Train_loss", redo, [97])
    with database.session() as db:
        got = read_series(db, job, "Train_loss", max_points)
    xs = [x for x, _ in got]
    assert xs == sorted(set(xs)) and len(got) <= max_points  # one point per x
    assert got[-1] == redo[-1]
    if length <= max_points:  # every point: the redone steps carry the second try's value
        assert got == first[: 2 * length // 3] + redo
