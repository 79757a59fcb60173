"""Jobs lists: filters (status, lab, sweep), sorting (columns, or the latest or best value of a
chosen metric) and paging.

Paging is keyset paging for the orders lists use most, by id and by start time: a page is
"the rows after (or before) this row's key", so page 1, the last page and every page between
cost the same at 10,000 jobs or at a million, and rows inserted while someone pages do not
shift what the next page shows. Other column sorts, and the metric sorts, page by offset:
a metric's latest and best values are aggregates that change while jobs report, so a
cursor on them would skip or repeat rows, and sorting by them has to aggregate every
filtered job anyway, so a cursor would not save that work. `page=N` still works for every
sort (links made before keyset paging), by offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from labyard.auth.models import User
from labyard.errors import InvalidInput
from labyard.jobs import service
from labyard.jobs.models import Job, JobStatus, MetricSeries, Sweep
from labyard.jobs.views import (
    LabRef,
    MetricSummary,
    find_labs,
    lower_is_better,
    metric_columns,
    metric_summaries,
    param_columns,
    queue_positions,
)
from labyard.numbers import ascii_int
from labyard.projects.service import require_project, visible_project_ids

SORTS = {
    "id": Job.id,
    "name": Job.name,
    "status": Job.status,
    "queued": Job.queued_at,
    "started": Job.started_at,
    "finished": Job.finished_at,
    "gpus": Job.gpus,
}
KEYSET_SORTS = ("id", "started")
METRIC_SORT = re.compile(r"^(latest|best):([A-Za-z0-9_./-]{1,100})$")


@dataclass(frozen=True)
class Key:
    """A row's position in a keyset order: its start time (for the `started` sort) and id."""

    id: int
    started: datetime | None = None

    def __str__(self) -> str:
        return f"{self.id}_{self.started.isoformat() if self.started else ''}"

    @classmethod
    def parse(cls, text: str, sort: str) -> Key:
        """`"<id>"` or `"<id>_<ISO start time or nothing>"`; InvalidInput when malformed."""
        head, _, tail = text.partition("_")
        try:
            started = datetime.fromisoformat(tail) if tail and sort == "started" else None
        except ValueError:
            started = None
            head = ""
        job_id = ascii_int(head)
        if job_id is None or len(text) > 60:
            raise InvalidInput("This page link is malformed; start from page 1.", field="after")
        return cls(job_id, started)

    @classmethod
    def of(cls, job: Job) -> Key:
        """The key of a job row."""
        return cls(job.id, job.started_at)


@dataclass
class JobFilters:
    """What a jobs list shows: the query string of a list page, checked.

    `sort` is a column (SORTS) or `latest:<metric>` / `best:<metric>`. With a keyset sort,
    `after` / `before` (a row's key) or `last` choose the page; `page` pages by offset."""

    fair_share_days: float  # the server's setting: queue positions' order
    project_id: int | None = None
    lab_id: int | None = None
    sweep_id: int | None = None
    status: JobStatus | None = None
    sort: str = "id"
    descending: bool = True
    page: int = 1
    per_page: int = 50
    after: str | None = None
    before: str | None = None
    last: bool = False
    metric: tuple[str, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        match = METRIC_SORT.match(self.sort)
        if match:
            self.metric = (match.group(1), match.group(2))
        elif self.sort not in SORTS:
            raise InvalidInput(f"Cannot sort by {self.sort!r}.", field="sort")
        self.page = max(1, self.page)
        self.per_page = max(1, min(self.per_page, 500))

    @property
    def keyset(self) -> bool:
        """Whether this list pages by key (id and start-time orders) rather than offset."""
        has_cursor = bool(self.after or self.before or self.last)
        return self.sort in KEYSET_SORTS and (has_cursor or self.page == 1)


@dataclass
class JobsPage:
    """One page of a jobs list with everything its rows show."""

    jobs: list[Job]
    total: int
    filters: JobFilters
    queue_positions: dict[int, int]
    metrics: dict[int, dict[str, MetricSummary]]
    param_columns: list[str]
    metric_columns: list[str]
    sweeps: list[Sweep] = field(default_factory=list)
    labs: list[LabRef] = field(default_factory=list)
    first_index: int = 1
    has_prev: bool = False
    has_next: bool = False

    def elapsed(self, job: Job) -> float | None:
        """The job's run time so far."""
        return service.elapsed_seconds(job)

    @property
    def pages(self) -> int:
        """How many pages the list has."""
        return max(1, -(-self.total // self.filters.per_page))

    @property
    def next_key(self) -> str | None:
        """The `after` of the next page (keyset lists)."""
        return str(Key.of(self.jobs[-1])) if self.jobs and self.has_next else None

    @property
    def prev_key(self) -> str | None:
        """The `before` of the previous page (keyset lists)."""
        return str(Key.of(self.jobs[0])) if self.jobs and self.has_prev else None


def _filtered(query: Select[Any], user_projects: list[int], filters: JobFilters) -> Select[Any]:
    query = query.where(Job.project_id.in_(user_projects))
    for column, value in (
        (Job.project_id, filters.project_id),
        (Job.lab_id, filters.lab_id),
        (Job.sweep_id, filters.sweep_id),
        (Job.status, filters.status),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def _order(filters: JobFilters, *, reverse: bool = False) -> list[Any]:
    """The keyset order (NULL start times last in display order, on every database)."""
    desc = filters.descending != reverse
    by_id = Job.id.desc() if desc else Job.id.asc()
    if filters.sort == "id":
        return [by_id]
    started = Job.started_at.desc() if desc else Job.started_at.asc()
    return [started.nulls_first() if reverse else started.nulls_last(), by_id]


def _beyond(filters: JobFilters, key: Key, *, forward: bool) -> ColumnElement[bool]:
    """Rows after `key` in display order (`forward`), or before it."""
    smaller = filters.descending == forward  # does "beyond" mean smaller values?

    def past(column: Any, value: Any) -> ColumnElement[bool]:
        return column < value if smaller else column > value

    if filters.sort == "id":
        return past(Job.id, key.id)
    started, same = Job.started_at, Job.started_at.is_(None)
    if key.started is None:  # the key is among the NULLs, which come last
        tail = and_(same, past(Job.id, key.id))
        return tail if forward else or_(started.is_not(None), tail)
    inside = or_(past(started, key.started), and_(started == key.started, past(Job.id, key.id)))
    return or_(inside, same) if forward else and_(started.is_not(None), inside)


def _keyset_page(db: Session, query: Select[Any], filters: JobFilters, total: int) -> JobsPage:
    n = filters.per_page
    if filters.last:
        jobs = list(db.scalars(query.order_by(*_order(filters, reverse=True)).limit(n)))[::-1]
        has_prev, has_next = total > len(jobs), False
    elif filters.before:
        key = Key.parse(filters.before, filters.sort)
        reverse = query.where(_beyond(filters, key, forward=False))
        jobs = list(db.scalars(reverse.order_by(*_order(filters, reverse=True)).limit(n + 1)))
        has_prev, has_next = len(jobs) > n, True
        jobs = jobs[:n][::-1]
    else:
        forward = query
        if filters.after:
            key = Key.parse(filters.after, filters.sort)
            forward = query.where(_beyond(filters, key, forward=True))
        jobs = list(db.scalars(forward.order_by(*_order(filters)).limit(n + 1)))
        has_prev, has_next = bool(filters.after), len(jobs) > n
        jobs = jobs[:n]
    first_index = 1
    if jobs and has_prev:
        before = query.with_only_columns(func.count()).order_by(None)
        before = before.where(_beyond(filters, Key.of(jobs[0]), forward=False))
        first_index = (db.scalar(before) or 0) + 1
    return _page(db, filters, jobs, total, first_index, has_prev, has_next)


def _metric_order(query: Select[Any], filters: JobFilters) -> Select[Any]:
    """`query` ordered by a metric's latest or best value; jobs without it come last."""
    assert filters.metric is not None
    kind, name = filters.metric
    job_ids = query.with_only_columns(Job.id).order_by(None)
    stats = (
        select(
            MetricSeries.job_id,
            func.max(MetricSeries.last_point_id).label("last_id"),
            func.min(MetricSeries.low).label("low"),
            func.max(MetricSeries.high).label("high"),
        )
        .where(MetricSeries.name == name, MetricSeries.job_id.in_(job_ids))
        .group_by(MetricSeries.job_id)
        .subquery()
    )
    query = query.outerjoin(stats, stats.c.job_id == Job.id)
    if kind == "best":
        value: Any = stats.c.low if lower_is_better(name) else stats.c.high
    else:
        latest = aliased(MetricSeries)
        query = query.outerjoin(latest, latest.last_point_id == stats.c.last_id)
        value = latest.last_value
    ordered = value.desc() if filters.descending else value.asc()
    return query.order_by(ordered.nulls_last(), Job.id.desc())


def _offset_page(db: Session, query: Select[Any], filters: JobFilters, total: int) -> JobsPage:
    if filters.metric is not None:
        query = _metric_order(query, filters)
    else:
        column = SORTS[filters.sort]
        order: list[Any] = [column.desc() if filters.descending else column.asc()]
        query = query.order_by(*order, Job.id.desc())
    offset = (filters.page - 1) * filters.per_page
    jobs = list(db.scalars(query.offset(offset).limit(filters.per_page)))
    has_next = offset + len(jobs) < total
    return _page(db, filters, jobs, total, offset + 1, filters.page > 1, has_next)


def _page(
    db: Session,
    filters: JobFilters,
    jobs: list[Job],
    total: int,
    first_index: int,
    has_prev: bool,
    has_next: bool,
) -> JobsPage:
    summaries = metric_summaries(db, [j.id for j in jobs])
    columns = metric_columns(summaries)
    if filters.metric is not None:  # the sorted metric is always shown, first
        chosen = filters.metric[1]
        columns = [chosen] + [c for c in columns if c != chosen][: len(columns) - 1]
    return JobsPage(
        jobs=jobs,
        total=total,
        filters=filters,
        queue_positions=queue_positions(db, jobs, filters.fair_share_days),
        metrics=summaries,
        param_columns=param_columns(jobs),
        metric_columns=columns,
        first_index=first_index,
        has_prev=has_prev,
        has_next=has_next,
    )


def jobs_page(db: Session, user: User, *, filters: JobFilters) -> JobsPage:
    """One page of the jobs the user can see, filtered and sorted, with its rows' extras and
    the sweeps and labs the filters offer."""
    if filters.project_id is not None:
        require_project(db, user, filters.project_id)
        projects = [filters.project_id]
    else:
        projects = visible_project_ids(db, user)
    total = db.scalar(_filtered(select(func.count()).select_from(Job), projects, filters)) or 0
    query = _filtered(select(Job), projects, filters)
    if not projects:
        query = query.where(false())
    if filters.keyset:
        page = _keyset_page(db, query, filters, total)
    else:
        page = _offset_page(db, query, filters, total)
    page.sweeps = list(
        db.scalars(
            select(Sweep).where(Sweep.project_id.in_(projects)).order_by(Sweep.id.desc()).limit(200)
        )
    )
    page.labs = find_labs(db, projects)
    return page
