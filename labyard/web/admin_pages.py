"""The admin page: users (create, reset password, deactivate), flavors and GPU quotas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from labyard.auth import service as auth_service
from labyard.errors import InvalidInput
from labyard.flavors import service as flavor_service
from labyard.flavors.schemas import FlavorIn, FlavorUpdate
from labyard.jobs import limits, quota_api
from labyard.jobs.isolation import isolation_warnings
from labyard.projects.models import Project
from labyard.web.deps import AdminUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(prefix="/admin", include_in_schema=False)


def _context(db: SessionDep) -> dict[str, object]:
    return {
        "users": auth_service.list_users(db),
        "flavors": flavor_service.list_flavors(db),
        "quotas": quota_api.quotas_out(db),
        "projects": list(db.scalars(select(Project).order_by(Project.name))),
    }


def _number(text: str, field: str, kind: type[int] | type[float]) -> int | float | None:
    """A form's limit: empty is no limit; else a number (InvalidInput next to `field`)."""
    if not text.strip():
        return None
    try:
        return kind(text.strip())
    except ValueError:
        raise InvalidInput(f"{text[:20]!r} is not a number.", field=field) from None


@router.get("")
def admin_page(
    request: Request, _admin: AdminUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Users and flavors; what local jobs can read, when they are not isolated."""
    context = _context(db) | {"job_warnings": isolation_warnings(settings)}
    return render(request, "admin.html", context)


@router.post("/users")
def create_user(
    request: Request,
    _admin: AdminUser,
    db: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    """Create a user."""
    auth_service.create_user(db, username=username.strip(), password=password, is_admin=is_admin)
    return render(request, "admin.html", _context(db), block="users")


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: int,
    _admin: AdminUser,
    db: SessionDep,
    password: Annotated[str, Form()],
) -> Response:
    """Set a new password for a user; their sessions and tokens end."""
    auth_service.set_password(db, auth_service.get_user(db, user_id), password)
    return render(request, "admin.html", _context(db), block="users")


@router.post("/users/{user_id}/active")
def set_active(
    request: Request,
    user_id: int,
    admin: AdminUser,
    db: SessionDep,
    active: Annotated[bool, Form()],
) -> Response:
    """Activate or deactivate a user."""
    auth_service.update_user(db, admin, user_id, is_active=active)
    return render(request, "admin.html", _context(db), block="users")


@router.post("/flavors")
def create_flavor(
    request: Request, admin: AdminUser, db: SessionDep, form: Annotated[FlavorIn, Form()]
) -> Response:
    """Define a flavor."""
    flavor_service.create_flavor(db, admin, **(form.model_dump() | {"name": form.name.strip()}))
    return render(request, "admin.html", _context(db), block="flavors")


@router.post("/flavors/{flavor_id}")
def update_flavor(
    request: Request,
    flavor_id: int,
    admin: AdminUser,
    db: SessionDep,
    form: Annotated[FlavorUpdate, Form()],
) -> Response:
    """Change a flavor's sizes and Slurm options."""
    flavor_service.update_flavor(db, admin, flavor_id, **form.model_dump())
    return render(request, "admin.html", _context(db), block="flavors")


@router.post("/flavors/{flavor_id}/delete")
def delete_flavor(request: Request, flavor_id: int, admin: AdminUser, db: SessionDep) -> Response:
    """Delete a flavor."""
    flavor_service.delete_flavor(db, admin, flavor_id)
    return render(request, "admin.html", _context(db), block="flavors")


QuotaForm = Annotated[str, Form(max_length=20)]


@router.post("/quotas/projects")
def set_project_quota(
    request: Request,
    _admin: AdminUser,
    db: SessionDep,
    target_id: Annotated[int, Form()],
    max_gpus: QuotaForm = "",
    monthly_gpu_hours: QuotaForm = "",
) -> Response:
    """Set a project's GPU limits (both empty: no quota); twin: PUT /api/v1/quotas/projects/{id}."""
    return _set_quota(request, db, {"project_id": target_id}, max_gpus, monthly_gpu_hours)


@router.post("/quotas/users")
def set_user_quota(
    request: Request,
    _admin: AdminUser,
    db: SessionDep,
    target_id: Annotated[int, Form()],
    max_gpus: QuotaForm = "",
    monthly_gpu_hours: QuotaForm = "",
) -> Response:
    """Set a user's GPU limits (both empty: no quota); twin: PUT /api/v1/quotas/users/{id}."""
    return _set_quota(request, db, {"user_id": target_id}, max_gpus, monthly_gpu_hours)


def _set_quota(
    request: Request, db: SessionDep, owner: dict[str, int], max_gpus: str, hours: str
) -> Response:
    limits.set_quota(
        db,
        **owner,
        max_gpus=_number(max_gpus, "max_gpus", int),  # type: ignore[arg-type]
        monthly_gpu_hours=_number(hours, "monthly_gpu_hours", float),
    )
    return render(request, "admin.html", _context(db), block="quotas")
