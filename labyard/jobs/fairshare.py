"""The queue's order: the one ordering both dispatch and queue positions use.

Queued jobs go by priority (high, normal, low), then fair share: the project that used the
fewest GPU-hours in the last `fair_share_days` goes first (GPU-hours of a job = its GPUs ×
the part of its run inside the window; a running job counts up to now; the attempts of a
job that were preempted or that Slurm requeued count too, as they ran), then FIFO (job
id). Every job of a project carries its project's usage, so a project's own jobs stay FIFO;
projects of equal usage (say none yet) interleave by submission. CPU-only jobs add no usage
and are ordered by their project's GPU-hours like the rest.

The usage is ONE grouped query over the live jobs and those that ended in the window
(indexes on status and on `finished_at`), joined into the ordering statement; `now` is the
dispatch round's time, so a job started in the round adds nothing until the next one and
the order stays put within a round (what the queue positions show is what happens).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, select, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import Subquery

from labyard.db.base import UTCDateTime
from labyard.jobs.models import ATTEMPTS_REQUEUED, LIVE_STATUSES, Job, JobAttempt, JobStatus

AnySelect = Select[*tuple[Any, ...]]  # a select of any columns


def _seconds_between(
    dialect: str, start: ColumnElement[datetime], end: ColumnElement[datetime]
) -> ColumnElement[float]:
    """SQL for `end - start` in seconds (SQLite keeps times as text, PostgreSQL as timestamps)."""
    if dialect == "postgresql":
        return func.extract("epoch", end - start)  # type: ignore[return-value]
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def gpu_seconds_query(
    dialect: str,
    group: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
    since: datetime,
    now: datetime,
) -> AnySelect:
    """(group value, GPU-seconds used since `since`) of every group with usage, grouped by
    `group` (Job.project_id or Job.created_by_id): one grouped query over the live jobs and
    the jobs that ended since `since` (two index searches: a long history or a long queue
    is not scanned)."""
    since_v = literal(since, UTCDateTime())
    now_v = literal(now, UTCDateTime())
    start = case((Job.started_at < since_v, since_v), else_=Job.started_at)
    end = func.coalesce(Job.finished_at, now_v)
    used = select(group.label("key"), (Job.gpus * _seconds_between(dialect, start, end)).label("s"))
    counted = (Job.gpus > 0, Job.started_at.is_not(None), Job.started_at < now_v)
    attempt_start = case((JobAttempt.started_at < since_v, since_v), else_=JobAttempt.started_at)
    attempt_end = func.coalesce(JobAttempt.ended_at, now_v)  # typed as a column element
    preempted = (
        select(
            group.label("key"),
            (Job.gpus * _seconds_between(dialect, attempt_start, attempt_end)).label("s"),
        )
        .select_from(JobAttempt)
        .join(Job, Job.id == JobAttempt.job_id)
        .where(
            JobAttempt.outcome.in_(ATTEMPTS_REQUEUED),
            JobAttempt.ended_at > since_v,
            JobAttempt.started_at.is_not(None),
            Job.gpus > 0,
        )
    )
    parts = union_all(
        # a job that started after `now` (later in this dispatch round) counts 0 so far
        used.where(Job.status.in_(LIVE_STATUSES), *counted),
        used.where(Job.finished_at > since_v, *counted),
        preempted,  # its earlier attempts, which ended before it went back to the queue
    ).subquery()
    return select(parts.c.key, func.sum(parts.c.s).label("seconds")).group_by(parts.c.key)


def gpu_seconds_by(
    db: Session,
    group: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
    since: datetime,
    now: datetime,
) -> dict[int, float]:
    """GPU-seconds used since `since` per project (or per user), as a dict."""
    rows = db.execute(gpu_seconds_query(db.get_bind().dialect.name, group, since, now))
    return {int(row[0]): float(row[1] or 0.0) for row in rows if row[0] is not None}


def _usage(db: Session, fair_share_days: float, now: datetime) -> Subquery:
    since = now - timedelta(days=fair_share_days)
    dialect = db.get_bind().dialect.name
    return gpu_seconds_query(dialect, Job.project_id, since, now).subquery("usage")


def in_queue_order(
    db: Session, fair_share_days: float, now: datetime, query: AnySelect
) -> AnySelect:
    """`query` (over jobs) narrowed to the queued jobs, in the order they start (see the
    module's doc)."""
    usage = _usage(db, fair_share_days, now)
    return (
        query.outerjoin(usage, usage.c.key == Job.project_id)
        .where(Job.status == JobStatus.QUEUED)
        .order_by(*_order(usage))
    )


def _order(usage: Subquery) -> tuple[ColumnElement[Any], ...]:
    return (Job.priority.desc(), func.coalesce(usage.c.seconds, 0.0).asc(), Job.id.asc())


def positions_query(db: Session, fair_share_days: float, now: datetime) -> Subquery:
    """(id, position) of every queued job, 1 = next to start, in `in_queue_order`'s order."""
    usage = _usage(db, fair_share_days, now)
    rank = func.row_number().over(order_by=_order(usage)).label("position")
    return (
        select(Job.id, rank)
        .outerjoin(usage, usage.c.key == Job.project_id)
        .where(Job.status == JobStatus.QUEUED)
        .subquery()
    )
