"""The labs pages: the labs lists with "Create New", the templates catalog, delete.

The lab's tabs (files, datasets, parameters, config, jobs) are in `lab_pages.py`, and the
Parameters tab's "Start search" in `search_pages.py`; their routers are included here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.errors import DomainError
from labyard.labs import lab_pages, search_pages, service
from labyard.labs.models import Lab
from labyard.projects.models import Role
from labyard.projects.service import list_projects, require_project
from labyard.templates_catalog import list_templates
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
router.include_router(lab_pages.router)
router.include_router(search_pages.router)
NAV_LINKS = [("Templates", "/templates"), ("Labs", "/labs")]


def _list_context(
    db: Session,
    settings: Settings,
    user: User,
    project_id: int | None,
    form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    labs: list[Lab] = service.list_labs(db, user, project_id=project_id)
    projects = [(p, r) for p, r in list_projects(db, user) if r >= Role.WRITE]
    return {
        "project": require_project(db, user, project_id) if project_id else None,
        "labs": labs,
        "counts": service.job_counts(db, [lab.id for lab in labs]),
        "projects": projects,
        "templates": list_templates(),
        "flavors": service.flavor_choices(db, settings),
        "form": form or {},
        "errors": {},
        "name_rule": service.LAB_NAME_RULE,
    }


@router.get("/labs")
def all_labs(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    template: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The labs of every project I can see, with "Create New"."""
    form = {"template": template} if template else None
    return render(request, "labs.html", _list_context(db, settings, user, None, form))


@router.get("/projects/{project_id}/labs")
def project_labs(
    request: Request, project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """One project's labs, with "Create New"."""
    return render(request, "labs.html", _list_context(db, settings, user, project_id))


@router.post("/labs")
def create_lab(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    project_id: Annotated[int, Form()],
    name: Annotated[str, Form(max_length=200)],
    flavor: Annotated[str, Form(max_length=64)] = "",
    use_template: Annotated[str, Form()] = "",
    template: Annotated[str, Form(max_length=100)] = "",
    in_project: Annotated[str, Form()] = "",
) -> Response:
    """Create a lab and go to it; a wrong field re-renders the form with the reason inline."""
    chosen = template if use_template and template else None
    form = {"project_id": project_id, "name": name, "flavor": flavor, "template": chosen or ""}
    form["use_template"] = bool(use_template)
    try:
        lab = service.create_lab(
            db,
            settings,
            user,
            project_id=project_id,
            name=name,
            template=chosen,
            flavor=flavor or None,
        )
    except DomainError as exc:
        if exc.field is None:
            raise
        db.rollback()
        ctx = _list_context(db, settings, user, project_id if in_project else None, form)
        ctx["errors"] = {exc.field: exc.message}
        # 200: the form again with the reason inline (not a failed request)
        return render(request, "labs.html", ctx, block="create_form")
    return Response(status_code=204, headers={"HX-Redirect": f"/labs/{lab.id}/files"})


@router.get("/labs/{lab_id}")
def lab_home(lab_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """A lab opens on its Files tab."""
    service.get_lab(db, user, lab_id)
    return RedirectResponse(f"/labs/{lab_id}/files", status_code=303)


@router.post("/labs/{lab_id}/delete")
def delete_lab(lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> Response:
    """Delete a lab after the page's confirmation; its jobs stay."""
    project_id = service.get_lab(db, user, lab_id).project_id
    service.delete_lab(db, settings, user, lab_id)
    return Response(status_code=204, headers={"HX-Redirect": f"/projects/{project_id}/labs"})


@router.get("/templates")
def templates_page(request: Request, _user: CurrentUser) -> Response:
    """The templates catalog: a card per template with "Use template"."""
    return render(request, "templates_catalog.html", {"templates": list_templates()})
