"""Read models of the overview pages and their JSON twins.

`home` answers the home page: the running and queued jobs the user may see (admins: all;
members: their projects'), each with the jobs list's live numbers (`views.row_state`), the
queue with positions (`views.queue_positions`, one query), recent failures with their reason,
and every GPU of the node with the job that holds it. A GPU held by a job the user may not
see says only that it is busy. `project` answers a project's overview page.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.orm import Session, load_only

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.db import utcnow
from labyard.jobs import fairshare, views
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.overview.gpus import GpuReading, cached_inventory, read_gpus
from labyard.projects import service as projects_service
from labyard.projects.models import Membership, Project, Role

MAX_RUNNING = 200  # rows shown; the jobs list has the rest
MAX_QUEUED = 50
RECENT_FAILURES = 10
RECENT_JOBS = 10


@dataclass(frozen=True)
class JobRow:
    """A job as the overview lists it: its name and project with the live row numbers."""

    job: Job
    state: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The row for the API."""
        return {"name": self.job.name, "project_id": self.job.project_id, **self.state}


@dataclass(frozen=True)
class GpuRow:
    """One GPU of a node: what NVML reads (None without NVML) and who holds it."""

    node: str
    id: str
    reading: GpuReading
    busy: bool
    job_id: int | None = None  # None when free, or held by a job the user may not see
    job_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The row for the API."""
        r = self.reading
        return {
            "node": self.node,
            "id": self.id,
            "model": r.model,
            "memory_total_mb": r.memory_total_mb,
            "memory_used_mb": r.memory_used_mb,
            "utilisation": r.utilisation,
            "busy": self.busy,
            "job_id": self.job_id,
            "job_name": self.job_name,
        }


@dataclass
class Overview:
    """The home page: scope ("all" for admins, else "projects"), jobs, queue, GPUs."""

    scope: str
    queued_total: int = 0
    running: list[JobRow] = field(default_factory=list)
    queued: list[JobRow] = field(default_factory=list)
    failures: list[JobRow] = field(default_factory=list)
    gpus: list[GpuRow] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The overview for the API."""
        return {
            "scope": self.scope,
            "queued_total": self.queued_total,
            "running": [r.as_json() for r in self.running],
            "queued": [r.as_json() for r in self.queued],
            "failures": [r.as_json() for r in self.failures],
            "gpus": [g.as_json() for g in self.gpus],
        }


def _visible(user: User) -> ColumnElement[bool]:
    """Jobs the user may see: every job for admins, else those of the user's projects."""
    if user.is_admin:
        return true()
    mine = select(Membership.project_id).where(Membership.user_id == user.id)
    return Job.project_id.in_(mine.scalar_subquery())


def _rows(db: Session, jobs: list[Job], fair_share_days: float) -> list[JobRow]:
    positions = views.queue_positions(db, jobs, fair_share_days)
    return [JobRow(job, views.row_state(job, positions.get(job.id))) for job in jobs]


# What a row shows (views.row_state and the templates); params, command and datasets are
# JSON that the overview never shows, and decoding them was most of its time.
_ROW_COLUMNS = load_only(
    Job.id, Job.project_id, Job.name, Job.status, Job.reason, Job.exit_code, Job.gpus,
    Job.assigned_gpus, Job.priority, Job.started_at, Job.finished_at, Job.eta_seconds,
    Job.progress_fraction, Job.progress_line, Job.stop_requested_at, Job.attempt, Job.node,
    Job.engine_state, Job.engine_reason, Job.queue_position,
)  # fmt: skip


def _jobs(db: Session, query: Select[Job], limit: int) -> list[Job]:
    return list(db.scalars(query.options(_ROW_COLUMNS).limit(limit)))


def home(db: Session, user: User, *, settings: Settings) -> Overview:
    """The home overview for `user` (any logged-in user; what it lists depends on the role)."""
    visible = _visible(user)
    running = select(Job).where(visible, Job.status.in_(LIVE_STATUSES))
    queued = select(Job).where(visible, Job.status == JobStatus.QUEUED)
    failed = select(Job).where(visible, Job.status == JobStatus.FAILED)
    newest = (Job.finished_at.desc().nulls_last(), Job.id.desc())
    days = settings.fair_share_days
    in_order = fairshare.in_queue_order(db, days, utcnow(), queued)  # the scheduler's order
    queued_rows = _rows(db, _jobs(db, in_order, MAX_QUEUED), days)
    return Overview(
        scope="all" if user.is_admin else "projects",
        queued_total=db.scalar(queued.with_only_columns(func.count())) or 0,
        running=_rows(db, _jobs(db, running.order_by(Job.id), MAX_RUNNING), days),
        queued=queued_rows,
        failures=_rows(db, _jobs(db, failed.order_by(*newest), RECENT_FAILURES), days),
        gpus=gpu_rows(db, user, settings=settings),
    )


def gpu_rows(db: Session, user: User, *, settings: Settings) -> list[GpuRow]:
    """Every GPU of this node with the live job the scheduler assigned it to."""
    inventory = cached_inventory(settings)
    holders = db.execute(
        select(Job.id, Job.name, Job.project_id, Job.assigned_gpus).where(
            Job.status.in_(LIVE_STATUSES)
        )
    ).all()
    visible = set(projects_service.visible_project_ids(db, user)) if holders else set()
    held: dict[str, tuple[int, str, bool]] = {}
    for job_id, name, project_id, assigned in holders:
        for gpu in assigned or []:
            held[str(gpu)] = (job_id, name, project_id in visible)
    readings = read_gpus(inventory.gpus)
    node = socket.gethostname()
    rows = []
    for gpu in inventory.gpus:
        holder = held.get(gpu)
        shown = holder is not None and holder[2]
        rows.append(
            GpuRow(
                node=node,
                id=gpu,
                reading=readings.get(gpu, GpuReading()),
                busy=holder is not None,
                job_id=holder[0] if holder and shown else None,
                job_name=holder[1] if holder and shown else None,
            )
        )
    return rows


# --------------------------------------------------------------------------- a project


@dataclass
class ProjectOverview:
    """A project's overview: its labs, datasets, recent jobs and members (READ)."""

    project: Project
    role: Role
    labs: list[views.LabRef]
    datasets: list[Dataset]
    recent_jobs: list[JobRow]
    members: list[Membership]

    def as_json(self) -> dict[str, Any]:
        """The overview for the API."""
        return {
            "project": {"id": self.project.id, "name": self.project.name},
            "role": self.role.name,
            "labs": [{"id": lab.id, "name": lab.name} for lab in self.labs],
            "datasets": [
                {"id": d.id, "name": d.name, "files": d.file_count, "bytes": d.size_bytes}
                for d in self.datasets
            ],
            "recent_jobs": [r.as_json() for r in self.recent_jobs],
            "members": [{"username": m.user.username, "role": m.role.name} for m in self.members],
        }


def project_datasets(db: Session, user: User, project_id: int) -> list[Dataset]:
    """The project's own datasets, by name (READ; public ones are on /datasets)."""
    rows = datasets_service.list_datasets(db, user, project_id=project_id)
    return [d for d in rows if d.project_id == project_id]


def project(db: Session, user: User, project_id: int, *, settings: Settings) -> ProjectOverview:
    """One project's overview (READ; a non-member gets NotFound)."""
    row = projects_service.require_project(db, user, project_id)
    recent = select(Job).where(Job.project_id == project_id).order_by(Job.id.desc())
    return ProjectOverview(
        project=row,
        role=projects_service.role_of(db, user, project_id) or Role.READ,
        labs=views.find_labs(db, [project_id]),
        datasets=project_datasets(db, user, project_id),
        recent_jobs=_rows(db, _jobs(db, recent, RECENT_JOBS), settings.fair_share_days),
        members=projects_service.list_members(db, user, project_id),
    )
