"""The projects JSON API."""

from __future__ import annotations

from fastapi import APIRouter

from labyard.projects import service
from labyard.projects.models import Membership, Project, Role, priority_name
from labyard.projects.schemas import MemberOut, MemberSet, ProjectCreate, ProjectOut, ProjectUpdate
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def project_out(project: Project, role: Role) -> ProjectOut:
    """The API shape of a project seen with `role`."""
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        role=role.name,  # type: ignore[arg-type]
        default_priority=priority_name(project.default_priority),  # type: ignore[arg-type]
    )


def member_out(row: Membership) -> MemberOut:
    """The API shape of a membership."""
    return MemberOut(user_id=row.user_id, username=row.user.username, role=row.role.name)  # type: ignore[arg-type]


@router.get("", response_model=list[ProjectOut])
def list_projects(user: CurrentUser, db: SessionDep) -> list[ProjectOut]:
    """The projects I can see."""
    return [project_out(p, r) for p, r in service.list_projects(db, user)]


@router.post("", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectCreate, user: CurrentUser, db: SessionDep) -> ProjectOut:
    """Create a project that I own."""
    project = service.create_project(db, owner=user, name=body.name, description=body.description)
    return project_out(project, Role.OWN)


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: int, user: CurrentUser, db: SessionDep) -> ProjectOut:
    """One project (READ)."""
    project = service.require_project(db, user, project_id)
    return project_out(project, service.role_of(db, user, project_id) or Role.READ)


@router.patch("/{project_id}", response_model=ProjectOut)
def update_project(
    project_id: int, body: ProjectUpdate, user: CurrentUser, db: SessionDep
) -> ProjectOut:
    """Rename or describe a project (WRITE); set its jobs' default priority (OWN)."""
    project = service.update_project(
        db,
        user,
        project_id,
        name=body.name,
        description=body.description,
        default_priority=body.default_priority,
    )
    return project_out(project, service.role_of(db, user, project_id) or Role.READ)


@router.delete("/{project_id}", status_code=204)
def delete_project(
    project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> None:
    """Delete a project and everything in it (OWN)."""
    service.delete_project(db, user, project_id, settings=settings)


@router.get("/{project_id}/members", response_model=list[MemberOut])
def list_members(project_id: int, user: CurrentUser, db: SessionDep) -> list[MemberOut]:
    """The project's members (READ)."""
    return [member_out(m) for m in service.list_members(db, user, project_id)]


@router.post("/{project_id}/members", response_model=MemberOut, status_code=201)
def set_member(project_id: int, body: MemberSet, user: CurrentUser, db: SessionDep) -> MemberOut:
    """Add a member or change their role (OWN)."""
    row = service.set_member(db, user, project_id, username=body.username, role=Role[body.role])
    return member_out(row)


@router.delete("/{project_id}/members/{member_id}", status_code=204)
def remove_member(project_id: int, member_id: int, user: CurrentUser, db: SessionDep) -> None:
    """Remove a member (OWN)."""
    service.remove_member(db, user, project_id, member_id=member_id)
