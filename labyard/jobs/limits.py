"""GPU quotas of projects and users (set by admins) and what they mean at dispatch.

A quota row (`GpuQuota`) limits one project or one user: most GPUs at once (the GPUs of
their live jobs) and GPU-hours per calendar month (UTC; a running job counts up to now).
A queued job that would pass a limit waits, with the reason on the job ("waiting: project
quota of 4 GPUs at once reached"), and starts when the limit allows; it does not hold back
the jobs behind it. A job's user is its submitter. CPU-only jobs are never limited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.errors import InvalidInput, NotFound
from labyard.jobs.fairshare import gpu_seconds_by
from labyard.jobs.models import GpuQuota, Job
from labyard.projects.models import Project

WAITING = "waiting: "  # the prefix of every quota reason (the scheduler owns such reasons)
Key = tuple[str, int]  # ("project", id) or ("user", id)


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass
class QuotaState:
    """The limits and what is used against them, read once per dispatch round."""

    limits: dict[Key, GpuQuota]
    live_gpus: dict[Key, int] = field(default_factory=dict)
    month_hours: dict[Key, float] = field(default_factory=dict)

    @classmethod
    def load(cls, db: Session, live: list[Job], now: datetime) -> QuotaState:
        """The quotas, the live jobs' GPUs and (only when an hours quota exists) this
        month's GPU-hours per project and user: two grouped queries."""
        limits: dict[Key, GpuQuota] = {}
        for row in db.scalars(select(GpuQuota)):
            key = ("project", row.project_id) if row.project_id else ("user", row.user_id or 0)
            limits[key] = row
        state = cls(limits)
        for job in live:
            state.admit(job.project_id, job.created_by_id, job.gpus)
        if any(q.monthly_gpu_hours is not None for q in limits.values()):
            since = month_start(now)
            for kind, column in (("project", Job.project_id), ("user", Job.created_by_id)):
                for owner, seconds in gpu_seconds_by(db, column, since, now).items():
                    state.month_hours[(kind, owner)] = seconds / 3600.0
        return state

    def admit(self, project_id: int, user_id: int | None, gpus: int) -> None:
        """Count a job that holds (or is about to hold) `gpus` GPUs."""
        for key in _keys(project_id, user_id):
            self.live_gpus[key] = self.live_gpus.get(key, 0) + gpus

    def why_wait(self, project_id: int, user_id: int | None, gpus: int) -> str:
        """Why a job of `gpus` GPUs must wait for a quota ("" when it may start)."""
        if gpus <= 0 or not self.limits:
            return ""
        for key in _keys(project_id, user_id):
            quota = self.limits.get(key)
            if quota is None:
                continue
            held = self.live_gpus.get(key, 0)
            if quota.max_gpus is not None and held + gpus > quota.max_gpus:
                return (
                    f"{WAITING}{key[0]} quota of {quota.max_gpus} GPUs at once reached "
                    f"({held} in use, the job needs {gpus})"
                )
            used = self.month_hours.get(key, 0.0)
            if quota.monthly_gpu_hours is not None and used >= quota.monthly_gpu_hours:
                return (
                    f"{WAITING}{key[0]} quota of {quota.monthly_gpu_hours:g} GPU-hours this "
                    f"month used ({used:.1f} used)"
                )
        return ""


def _keys(project_id: int, user_id: int | None) -> list[Key]:
    keys: list[Key] = [("project", project_id)]
    if user_id is not None:
        keys.append(("user", user_id))
    return keys


# --------------------------------------------------------------------------- admin


def list_quotas(db: Session) -> list[GpuQuota]:
    """Every quota row, projects first."""
    projects_first = (GpuQuota.project_id.is_(None), GpuQuota.project_id, GpuQuota.user_id)
    return list(db.scalars(select(GpuQuota).order_by(*projects_first)))


def set_quota(
    db: Session,
    *,
    project_id: int | None = None,
    user_id: int | None = None,
    max_gpus: int | None,
    monthly_gpu_hours: float | None,
) -> GpuQuota | None:
    """Set (or, with both limits None, remove) the quota of one project or one user;
    the caller checked that an admin asks. Negative limits are refused."""
    if max_gpus is not None and max_gpus < 0:
        raise InvalidInput("The most GPUs at once cannot be negative.", field="max_gpus")
    if monthly_gpu_hours is not None and not monthly_gpu_hours >= 0:
        raise InvalidInput("GPU-hours per month cannot be negative.", field="monthly_gpu_hours")
    if project_id is not None:
        if db.get(Project, project_id) is None:
            raise NotFound("No such project.")
        row = db.scalar(select(GpuQuota).where(GpuQuota.project_id == project_id))
    else:
        if user_id is None or db.get(User, user_id) is None:
            raise NotFound("No such user.")
        row = db.scalar(select(GpuQuota).where(GpuQuota.user_id == user_id))
    if max_gpus is None and monthly_gpu_hours is None:
        if row is not None:
            db.delete(row)
        return None
    if row is None:
        row = GpuQuota(project_id=project_id, user_id=user_id)
        db.add(row)
    row.max_gpus, row.monthly_gpu_hours = max_gpus, monthly_gpu_hours
    db.flush()
    return row
