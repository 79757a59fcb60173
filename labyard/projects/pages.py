"""Projects pages: the list and a project's actions (rename, members, delete). The project
page itself, its overview, is labyard.overview.pages (it reads labs, datasets and jobs)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from labyard.projects import service
from labyard.projects.models import Role
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
NAV_LINKS = [("Projects", "/projects")]


@router.get("/projects")
def projects_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """My projects with a form to create one."""
    return render(request, "projects.html", {"projects": service.list_projects(db, user)})


@router.post("/projects")
def create_project(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    name: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
) -> Response:
    """Create a project; htmx gets the refreshed list."""
    service.create_project(db, owner=user, name=name, description=description)
    return render(
        request, "projects.html", {"projects": service.list_projects(db, user)}, block="list"
    )


def project_context(db: SessionDep, user: CurrentUser, project_id: int) -> dict[str, object]:
    """What every tab of a project shows: the project, my role, members, the tab links."""
    project = service.require_project(db, user, project_id)
    role = service.role_of(db, user, project_id) or Role.READ
    return {
        "project": project,
        "role": role,
        "Role": Role,
        "members": service.list_members(db, user, project_id),
        "project_links": [
            ("Overview", f"/projects/{project_id}"),
            ("Labs", f"/projects/{project_id}/labs"),
            ("Datasets", f"/projects/{project_id}/datasets"),
            ("Jobs", f"/projects/{project_id}/jobs"),
        ],
    }


@router.post("/projects/{project_id}/rename")
def rename_project(
    request: Request,
    project_id: int,
    user: CurrentUser,
    db: SessionDep,
    name: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
) -> Response:
    """Rename a project (WRITE)."""
    service.update_project(db, user, project_id, name=name, description=description)
    return render(request, "project.html", project_context(db, user, project_id), block="header")


@router.post("/projects/{project_id}/delete")
def delete_project(
    project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Delete a project (OWN) after the page's confirmation."""
    service.delete_project(db, user, project_id, settings=settings)
    return Response(status_code=204, headers={"HX-Redirect": "/projects"})


@router.post("/projects/{project_id}/members")
def set_member(
    request: Request,
    project_id: int,
    user: CurrentUser,
    db: SessionDep,
    username: Annotated[str, Form()],
    role: Annotated[Literal["OWN", "WRITE", "READ"], Form()],
) -> Response:
    """Add a member or change a role (OWN)."""
    service.set_member(db, user, project_id, username=username.strip(), role=Role[role])
    return render(request, "project.html", project_context(db, user, project_id), block="members")


@router.post("/projects/{project_id}/members/{member_id}/remove")
def remove_member(
    request: Request, project_id: int, member_id: int, user: CurrentUser, db: SessionDep
) -> Response:
    """Remove a member (OWN)."""
    service.remove_member(db, user, project_id, member_id=member_id)
    return render(request, "project.html", project_context(db, user, project_id), block="members")
