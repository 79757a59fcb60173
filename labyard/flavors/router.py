"""The flavors JSON API: everyone lists, admins change."""

from __future__ import annotations

from fastapi import APIRouter

from labyard.flavors import service
from labyard.flavors.models import Flavor
from labyard.flavors.schemas import FlavorIn, FlavorOut, FlavorUpdate
from labyard.web.deps import AdminUser, CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/flavors", tags=["flavors"])


@router.get("", response_model=list[FlavorOut])
def list_flavors(_user: CurrentUser, db: SessionDep) -> list[Flavor]:
    """Every flavor."""
    return service.list_flavors(db)


@router.post("", response_model=FlavorOut, status_code=201)
def create_flavor(body: FlavorIn, admin: AdminUser, db: SessionDep) -> Flavor:
    """Define a flavor (admin)."""
    return service.create_flavor(db, admin, **body.model_dump())


@router.patch("/{flavor_id}", response_model=FlavorOut)
def update_flavor(flavor_id: int, body: FlavorUpdate, admin: AdminUser, db: SessionDep) -> Flavor:
    """Change a flavor's sizes (admin)."""
    return service.update_flavor(db, admin, flavor_id, **body.model_dump())


@router.delete("/{flavor_id}", status_code=204)
def delete_flavor(flavor_id: int, admin: AdminUser, db: SessionDep) -> None:
    """Delete a flavor (admin)."""
    service.delete_flavor(db, admin, flavor_id)
