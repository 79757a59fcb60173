"""The admin page: users (create, reset password, deactivate), flavors, GPU quotas and
DeepHealth clients (with their /api/v1 twin, `api`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.deephealth import clients as deephealth_clients
from labyard.deephealth.models import DeepHealthClient
from labyard.errors import DomainError, InvalidInput
from labyard.flavors import service as flavor_service
from labyard.flavors.schemas import FlavorIn, FlavorUpdate
from labyard.jobs import limits, quota_api
from labyard.jobs.isolation import isolation_warnings
from labyard.projects.models import Project
from labyard.web.deps import AdminUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(prefix="/admin", include_in_schema=False)
api = APIRouter(prefix="/api/v1/admin", tags=["admin"])


def _context(db: SessionDep, admin: User | None = None) -> dict[str, object]:
    return {
        "deephealth_clients": deephealth_clients.list_clients(db, admin) if admin else [],
        "client_errors": {},
        "client_form": {},
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
    context = _context(db, _admin) | {
        "job_warnings": isolation_warnings(settings),
        "setting_client_ids": sorted(deephealth_clients.setting_ids(settings)),
    }
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


# ---------------------------------------------------------------- DeepHealth clients


def _clients_section(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    admin: User,
    change: Callable[[], object],
    form: dict[str, str],
) -> Response:
    """Make the change; the section again, with a refusal next to its field (200)."""
    errors: dict[str, str] = {}
    try:
        change()
    except DomainError as exc:
        db.rollback()
        errors = {exc.field or "client_id": exc.message}
    context = _context(db, admin) | {
        "client_errors": errors,
        "client_form": form if errors else {},
        "setting_client_ids": sorted(deephealth_clients.setting_ids(settings)),
    }
    return render(request, "admin.html", context, block="deephealth_clients")


@router.post("/deephealth-clients")
def add_deephealth_client(
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    settings: SettingsDep,
    client_id: Annotated[str, Form(max_length=200)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Register a DeepHealth client id; twin: POST /api/v1/admin/deephealth-clients."""
    return _clients_section(
        request,
        db,
        settings,
        admin,
        lambda: deephealth_clients.add_client(db, settings, admin, client_id=client_id, name=name),
        {"client_id": client_id, "name": name},
    )


@router.post("/deephealth-clients/remove")
def remove_deephealth_client(
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    settings: SettingsDep,
    client_id: Annotated[str, Form(max_length=200)],
) -> Response:
    """Unregister a client id; twin: DELETE /api/v1/admin/deephealth-clients/{client_id}."""
    return _clients_section(
        request,
        db,
        settings,
        admin,
        lambda: deephealth_clients.remove_client(db, settings, admin, client_id),
        {},
    )


class ClientIn(BaseModel):
    """A DeepHealth front-end's OAuth2 client id and a name to know it by."""

    client_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=200)


class ClientOut(BaseModel):
    """A registered DeepHealth client."""

    client_id: str
    name: str
    created_at: datetime
    created_by: str | None = Field(description="The admin who registered it")


def _client_out(row: DeepHealthClient) -> ClientOut:
    creator = row.created_by.username if row.created_by else None
    return ClientOut(
        client_id=row.client_id, name=row.name, created_at=row.created_at, created_by=creator
    )


@api.get("/deephealth-clients", response_model=list[ClientOut])
def list_deephealth_clients(admin: AdminUser, db: SessionDep) -> list[ClientOut]:
    """The client ids registered here (LABYARD_DEEPHEALTH_CLIENT_IDS adds its own) (admin)."""
    return [_client_out(row) for row in deephealth_clients.list_clients(db, admin)]


@api.post("/deephealth-clients", response_model=ClientOut, status_code=201)
def create_deephealth_client(
    body: ClientIn, admin: AdminUser, db: SessionDep, settings: SettingsDep
) -> ClientOut:
    """Register a DeepHealth client id: its users may log in at /backend/auth/token/ (admin)."""
    row = deephealth_clients.add_client(
        db, settings, admin, client_id=body.client_id, name=body.name
    )
    return _client_out(row)


@api.delete("/deephealth-clients/{client_id}", status_code=204)
def delete_deephealth_client(
    client_id: str, admin: AdminUser, db: SessionDep, settings: SettingsDep
) -> None:
    """Unregister a client id: its next logins get 401 invalid_client (admin)."""
    deephealth_clients.remove_client(db, settings, admin, client_id)
