"""The GPU quotas API (admins): list quotas with what is used against them, set one
project's or one user's limits (both limits empty: no quota)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.db import utcnow
from labyard.jobs import limits
from labyard.jobs.models import LIVE_STATUSES, GpuQuota, Job
from labyard.projects.models import Project
from labyard.web.deps import AdminUser, SessionDep

router = APIRouter(tags=["quotas"])


class QuotaIn(BaseModel):
    """One project's or user's GPU limits; null (or left out): no limit."""

    max_gpus: int | None = Field(default=None, ge=0, description="Most GPUs at once")
    monthly_gpu_hours: float | None = Field(
        default=None, ge=0, description="GPU-hours per calendar month (UTC)"
    )


class QuotaOut(QuotaIn):
    """A quota with its owner's name and what is used against it now."""

    id: int
    project_id: int | None
    user_id: int | None
    name: str = Field(description="The project's or the user's name")
    gpus_in_use: int
    gpu_hours_this_month: float


def quotas_out(db: Session) -> list[QuotaOut]:
    """Every quota with its current use (two grouped queries)."""
    live = list(db.scalars(select(Job).where(Job.status.in_(LIVE_STATUSES))))
    state = limits.QuotaState.load(db, live, utcnow())
    out = []
    for row in limits.list_quotas(db):
        if row.project_id is not None:
            key, owner = ("project", row.project_id), db.get(Project, row.project_id)
            name = owner.name if owner else ""
        else:
            key, user = ("user", row.user_id or 0), db.get(User, row.user_id)
            name = user.username if user else ""
        out.append(_out(row, name, state.live_gpus.get(key, 0), state.month_hours.get(key)))
    return out


def _out(row: GpuQuota, name: str, gpus: int, hours: float | None) -> QuotaOut:
    return QuotaOut(
        id=row.id,
        project_id=row.project_id,
        user_id=row.user_id,
        name=name,
        max_gpus=row.max_gpus,
        monthly_gpu_hours=row.monthly_gpu_hours,
        gpus_in_use=gpus,
        gpu_hours_this_month=round(hours or 0.0, 3),
    )


def _answer(db: Session, row: GpuQuota | None) -> Response | QuotaOut:
    if row is None:
        return Response(status_code=204)
    return next(q for q in quotas_out(db) if q.id == row.id)


@router.get("/quotas", response_model=list[QuotaOut])
def list_quotas(_admin: AdminUser, db: SessionDep) -> list[QuotaOut]:
    """Every project's and user's GPU quota, with GPUs in use and GPU-hours this month."""
    return quotas_out(db)


@router.put(
    "/quotas/projects/{project_id}",
    response_model=QuotaOut,
    responses={204: {"description": "Both limits empty: the quota is removed"}},
)
def set_project_quota(
    project_id: int, body: QuotaIn, _admin: AdminUser, db: SessionDep
) -> Response | QuotaOut:
    """Set a project's GPU limits (admin); its jobs past them wait with the reason."""
    row = limits.set_quota(db, project_id=project_id, **body.model_dump())
    return _answer(db, row)


@router.put(
    "/quotas/users/{user_id}",
    response_model=QuotaOut,
    responses={204: {"description": "Both limits empty: the quota is removed"}},
)
def set_user_quota(
    user_id: int, body: QuotaIn, _admin: AdminUser, db: SessionDep
) -> Response | QuotaOut:
    """Set a user's GPU limits over all their projects (admin)."""
    row = limits.set_quota(db, user_id=user_id, **body.model_dump())
    return _answer(db, row)
