"""Job priorities: low / normal / high, stored as `Job.priority` -1 / 0 / 1.

A job's priority is its project's `default_priority` unless the submitter chooses one; a
WRITE member may change it while the job is queued. Asking for `high` above the project's
default needs OWN on the project (or an admin), so one writer cannot jump everyone.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.errors import Conflict, PermissionDenied
from labyard.jobs.models import Job, JobStatus
from labyard.projects.models import PRIORITIES, Project, Role, priority_name
from labyard.projects.service import require_owned, require_project

PriorityName = Literal["low", "normal", "high"]
HIGH = PRIORITIES["high"]
__all__ = ["PRIORITIES", "PriorityName", "chosen_priority", "priority_name", "set_job_priority"]


def chosen_priority(db: Session, user: User, project: Project, name: PriorityName | None) -> int:
    """The stored value of a job's priority in `project`: `name`, or the project's default;
    `high` above the default needs OWN (PermissionDenied otherwise)."""
    if name is None:
        return project.default_priority
    value = PRIORITIES[name]
    if value == HIGH and project.default_priority < HIGH:
        require_project(db, user, project.id, Role.OWN)
    return value


def set_job_priority(db: Session, user: User, job_id: int, name: PriorityName) -> Job:
    """Change a queued job's priority (WRITE; `high` as in `chosen_priority`)."""
    job = require_owned(db, user, Job, job_id, Role.WRITE, noun="job")
    if job.status != JobStatus.QUEUED:
        raise Conflict(f"The job already {job.status}; only a queued job's priority changes.")
    project = db.get(Project, job.project_id)
    if project is None:  # pragma: no cover - the job's project was checked just above
        raise PermissionDenied("No such project.")
    job.priority = chosen_priority(db, user, project, name)
    return job
