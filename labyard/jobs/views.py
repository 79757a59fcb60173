"""Read models of the jobs pages (the lists themselves are in `listing`): metric
summaries (latest and best per series) for many jobs in one query, queue positions of a
page of jobs, chart data, the sweep comparison, and page actions on a selection of jobs.

Nothing here changes a job except `bulk_action`, which calls the jobs service per job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import utcnow
from labyard.errors import DomainError, InvalidInput
from labyard.hooks import HookPoint
from labyard.jobs import fairshare, rollup, service
from labyard.jobs.models import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    Job,
    JobStatus,
    MetricPoint,
    MetricSeries,
    Sweep,
)
from labyard.numbers import ascii_int
from labyard.projects.service import visible_project_ids

LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity", "wer", "cer")
PRIMARY_PREFERENCE = ("Validation_loss", "Validation_acc", "Test_acc", "Train_loss", "Train_acc")
MAX_PARAM_COLUMNS = 8
MAX_METRIC_COLUMNS = 4
BULK_ACTIONS = ("stop", "delete", "retry")
BulkAction = Literal["stop", "delete", "retry"]


@dataclass(frozen=True)
class LabRef:
    """What the jobs pages show of a lab (the labs domain builds on jobs, so it answers)."""

    id: int
    name: str
    project_name: str


# (db, project_ids, lab_id or None for all) -> the labs; connected in labyard.app.wire_hooks.
LabFinder = Callable[[Session, Sequence[int], "int | None"], list[LabRef]]
LAB_FINDER: HookPoint[LabFinder] = HookPoint("jobs.lab_finder")


def find_labs(db: Session, project_ids: Sequence[int], lab_id: int | None = None) -> list[LabRef]:
    """The labs of these projects (only `lab_id` when given), by name."""
    return [ref for finder in LAB_FINDER.handlers() for ref in finder(db, project_ids, lab_id)]


def parse_ids(values: list[str], *, field: str) -> list[int]:
    """Job ids from form fields, each one id or several separated by commas."""
    ids: list[int] = []
    for value in values:
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            job_id = ascii_int(part)
            if job_id is None:
                raise InvalidInput(f"{part[:40]!r} is not a job id.", field=field)
            ids.append(job_id)
    return ids


def lower_is_better(name: str) -> bool:
    """True for metrics where smaller is better (losses and errors)."""
    short = name.split("_", 1)[-1].lower()
    return any(word in short for word in LOWER_IS_BETTER)


@dataclass(frozen=True)
class MetricSummary:
    """One series of one job: its latest value, its best value and how many points."""

    latest: float
    best: float
    points: int


def visible_jobs(db: Session, user: User, job_ids: list[int]) -> list[Job]:
    """Those of `job_ids` the user may see (others are silently left out)."""
    if not job_ids:
        return []
    query = select(Job).where(
        Job.id.in_(job_ids[:1000]), Job.project_id.in_(visible_project_ids(db, user))
    )
    return list(db.scalars(query.order_by(Job.id)))


def queue_positions(db: Session, jobs: list[Job], fair_share_days: float) -> dict[int, int]:
    """Queue position (1 = next to start, in the scheduler's own order:
    `fairshare.positions_query`) of each queued job among `jobs`, in one query; the one
    place positions are computed. Pass the server's `fair_share_days` setting."""
    queued = [j.id for j in jobs if j.status == JobStatus.QUEUED]
    if not queued:
        return {}
    ranked = fairshare.positions_query(db, fair_share_days, utcnow())
    rows = db.execute(select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(queued)))
    return {job_id: int(position) for job_id, position in rows}


def metric_summaries(db: Session, job_ids: list[int]) -> dict[int, dict[str, MetricSummary]]:
    """Latest and best value of every metric of each job, from the series summaries kept at
    ingestion (a metric over several x axes combines them: the latest is the last stored)."""
    out: dict[int, dict[str, MetricSummary]] = {}
    for chunk in rollup.chunks(job_ids, 900):
        found = rollup.series_where(db, MetricSeries.job_id.in_(chunk))
        for s in sorted(found, key=lambda s: s.last_point_id):
            best = s.low if lower_is_better(s.name) else s.high
            before = out.setdefault(s.job_id, {}).get(s.name)
            if before is not None:
                pick = min if lower_is_better(s.name) else max
                best = pick(best, before.best)
            count = s.points + (before.points if before else 0)
            out[s.job_id][s.name] = MetricSummary(s.last_value, best, count)
    return out


def metric_columns(summaries: dict[int, dict[str, MetricSummary]]) -> list[str]:
    """The series shown as columns: the preferred ones first, then by name."""
    names = {name for per_job in summaries.values() for name in per_job}
    preferred = [n for n in PRIMARY_PREFERENCE if n in names]
    rest = sorted(names - set(preferred))
    return (preferred + rest)[:MAX_METRIC_COLUMNS]


def primary_metric(names: list[str] | set[str]) -> str | None:
    """The series that decides which job is best."""
    for name in PRIMARY_PREFERENCE:
        if name in names:
            return name
    return min(names) if names else None


def param_columns(jobs: list[Job]) -> list[str]:
    """Param names shown as columns: those whose values differ first, then the others."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for key, value in job.params.items():
            values.setdefault(key, set()).add(repr(value))
    varying = sorted(k for k, v in values.items() if len(v) > 1)
    constant = sorted(k for k, v in values.items() if len(v) <= 1)
    return (varying + constant)[:MAX_PARAM_COLUMNS]


def row_state(job: Job, position: int | None) -> dict[str, Any]:
    """What a live row (or the job page's top panel) shows about a job's state."""
    running = job.status == JobStatus.RUNNING
    return {
        "id": job.id,
        "status": job.status,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "elapsed_seconds": service.elapsed_seconds(job),
        "eta_seconds": job.eta_seconds if running else None,
        "progress": job.progress_fraction,
        "progress_line": job.progress_line,
        "queue_position": position,
        "stop_requested": job.stop_requested_at is not None,
        "assigned_gpus": list(job.assigned_gpus or []),
        "node": job.node,
        "cluster": job.engine_summary,
        "attempt": job.attempt,
        "final": job.status in FINAL_STATUSES,
        "live": job.status in LIVE_STATUSES,
    }


# --------------------------------------------------------------------------- charts


def chart_data(db: Session, job_id: int, *, max_points: int) -> dict[str, Any]:
    """Every series of a job, downsampled, up to the metric point id read with them.

    Returns {"series": [{"name", "group", "x_name", "x": [...], "y": [...]}], "last_id"}.
    """
    found = rollup.series_where(db, MetricSeries.job_id == job_id)
    last_id = max((s.last_point_id for s in found), default=0)
    kept = rollup.downsampled(db, found, max_points)
    grouped = {(s.name, s.x_name): kept[s.id] for s in found}
    series = [
        {
            "name": name,
            "group": name.split("_", 1)[0],
            "x_name": x_name,
            "x": [p[0] for p in points],
            "y": [p[1] for p in points],
        }
        for (name, x_name), points in grouped.items()
    ]
    return {"series": series, "last_id": last_id}


def new_points(db: Session, job_id: int, after_id: int, limit: int = 5000) -> list[tuple[Any, ...]]:
    """Metric points of a job with an id above `after_id`: (id, name, x_name, x, value)."""
    rows = db.execute(
        select(
            MetricPoint.id, MetricPoint.name, MetricPoint.x_name, MetricPoint.x, MetricPoint.value
        )
        .where(MetricPoint.job_id == job_id, MetricPoint.id > after_id)
        .order_by(MetricPoint.id)
        .limit(limit)
    )
    return list(rows)


# --------------------------------------------------------------------------- sweeps


@dataclass
class SweepComparison:
    """A sweep's jobs with their params and their final and best metrics."""

    sweep: Sweep
    jobs: list[Job]
    param_columns: list[str]
    metric_columns: list[str]
    metrics: dict[int, dict[str, MetricSummary]]
    primary: str | None
    best_job_id: int | None


def compare_sweep(db: Session, user: User, sweep_id: int) -> SweepComparison:
    """Every job of a sweep with params and metrics, and which job is best (READ)."""
    sweep = service.get_sweep(db, user, sweep_id)
    jobs = list(db.scalars(select(Job).where(Job.sweep_id == sweep.id).order_by(Job.id)))
    summaries = metric_summaries(db, [j.id for j in jobs])
    names = {name for per_job in summaries.values() for name in per_job}
    primary = primary_metric(names)
    best = None
    if primary is not None:
        scored = [(s[primary].best, job_id) for job_id, s in summaries.items() if primary in s]
        if scored:
            best = (min(scored) if lower_is_better(primary) else max(scored))[1]
    preferred = [n for n in PRIMARY_PREFERENCE if n in names]
    columns = preferred + sorted(names - set(preferred))
    grid_keys = [k for k, v in sweep.grid.items() if isinstance(v, list) and len(v) > 1]
    params = grid_keys + [k for k in param_columns(jobs) if k not in grid_keys]
    return SweepComparison(sweep, jobs, params, columns, summaries, primary, best)


def sweep_curves(
    db: Session, user: User, sweep_id: int, *, metric: str, max_points: int
) -> list[dict[str, Any]]:
    """One downsampled curve of `metric` per job of the sweep, with its x-axis name (READ)."""
    sweep = service.get_sweep(db, user, sweep_id)
    job_ids = select(Job.id).where(Job.sweep_id == sweep.id).scalar_subquery()
    found = rollup.series_where(
        db, MetricSeries.job_id.in_(job_ids) & (MetricSeries.name == metric)
    )
    kept = rollup.downsampled(db, found, max_points)
    per_job: dict[int, list[tuple[float, float]]] = {}
    axis: dict[int, str] = {}
    for s in found:
        per_job.setdefault(s.job_id, []).extend(kept[s.id])
        axis.setdefault(s.job_id, s.x_name)
    curves = []
    for job_id, points in per_job.items():
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        curves.append({"job_id": job_id, "x_name": axis[job_id], "x": xs, "y": ys})
    return curves


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class BulkResult:
    """What happened to one job of a bulk action."""

    job_id: int
    ok: bool
    error: str = ""
    new_job_id: int | None = None


def bulk_action(
    db: Session, user: User, *, action: str, job_ids: list[int], settings: Settings
) -> list[BulkResult]:
    """Stop, delete or retry each job (each in its own savepoint; errors are per job)."""
    if action not in BULK_ACTIONS:
        raise InvalidInput(f"Unknown action {action!r}; use one of {BULK_ACTIONS}.", field="action")
    if not job_ids:
        raise InvalidInput("Select at least one job.", field="job_ids")
    if len(job_ids) > 1000:
        raise InvalidInput("At most 1000 jobs at once.", field="job_ids")
    results = []
    for job_id in dict.fromkeys(job_ids):
        savepoint = db.begin_nested()
        try:
            new_id = _one_action(db, user, action, job_id, settings)
        except DomainError as exc:
            savepoint.rollback()
            results.append(BulkResult(job_id, False, exc.message))
        else:
            savepoint.commit()
            results.append(BulkResult(job_id, True, new_job_id=new_id))
    return results


def _one_action(
    db: Session, user: User, action: str, job_id: int, settings: Settings
) -> int | None:
    if action == "stop":
        service.stop_job(db, user, job_id)
    elif action == "retry":
        return service.retry_job(db, user, job_id, settings=settings).id
    else:
        service.delete_job(db, user, job_id, settings=settings)
    return None
