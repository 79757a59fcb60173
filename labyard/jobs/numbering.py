"""Sweep and job numbers, and the names built from them (jobs.naming), written at creation.

A sweep's number is the next in its lab. On PostgreSQL two submissions to one lab may read
the same highest number at once: the unique (lab_id, number) constraint refuses the second
insert, which is retried in a savepoint with a fresh read. SQLite takes the write lock at
BEGIN (db.engine), so its writers never read the same highest number.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labyard.errors import Conflict
from labyard.jobs import naming
from labyard.jobs.models import Job, Sweep

NUMBER_ATTEMPTS = 20


def _next_sweep_number(db: Session, sweep: Sweep) -> int:
    query = select(func.max(Sweep.number))
    if sweep.lab_id is not None:
        query = query.where(Sweep.lab_id == sweep.lab_id)
    else:  # sweeps from no lab are numbered within their project
        query = query.where(Sweep.lab_id.is_(None), Sweep.project_id == sweep.project_id)
    return (db.scalar(query) or 0) + 1


def add_numbered_sweep(db: Session, sweep: Sweep) -> Sweep:
    """Insert `sweep` with the next number of its lab (unique even under concurrent submits)."""
    for _ in range(NUMBER_ATTEMPTS):
        sweep.number = _next_sweep_number(db, sweep)
        try:
            with db.begin_nested():
                db.add(sweep)
                db.flush()
            return sweep
        except IntegrityError:  # another submission took this number: read again
            continue
    raise Conflict("Too many submissions to this lab at once; submit again.")


def name_sweep_jobs(sweep: Sweep, jobs: list[Job]) -> None:
    """Number `jobs` 1, 2, ... in order and name each by the params that vary in the grid."""
    varying = naming.grid_varying(sweep.grid)
    prefix = sweep.display_name
    for number, job in enumerate(jobs, start=1):
        job.number = number
        job.label = naming.job_label(number, job.params, varying)[:200]
        job.name = naming.job_display_name(prefix, job.label)[:200]


def name_retry(db: Session, old: Job, new: Job) -> None:
    """Name a retry of `old` in old's sweep: the sweep's next number, "retry of #1 · …"."""
    sweep = db.get(Sweep, old.sweep_id, with_for_update=True) if old.sweep_id else None
    if sweep is None:
        new.name = f"{old.name} (retry)"[:200]
        return
    top = db.scalar(select(func.max(Job.number)).where(Job.sweep_id == sweep.id))
    new.number = (top or 0) + 1
    new.label = naming.retry_label(new.number, old.sweep_label)[:200]
    new.name = naming.job_display_name(sweep.display_name, new.label)[:200]
