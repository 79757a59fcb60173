"""The home page (`/`), its live rows, a project's overview and Datasets tab, and their JSON
twins under /api/v1 (the `api` router, listed in OpenAPI). Routers only call
labyard.overview.service, which owns who sees what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labyard.datasets.pages import dataset_status
from labyard.overview import service
from labyard.projects.pages import project_context
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["overview"])
POLL_SECONDS = 5


@router.get("/")
def home_page(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """My running and queued jobs, the queue, recent failures and every GPU."""
    overview = service.home(db, user, settings=settings)
    return render(request, "overview.html", {"o": overview, "poll_seconds": POLL_SECONDS})


@router.get("/overview/live")
def home_live(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The home page's live part (jobs, queue, failures, GPUs), polled by htmx."""
    overview = service.home(db, user, settings=settings)
    context = {"o": overview, "poll_seconds": POLL_SECONDS}
    return render(request, "overview.html", context, block="live")


@api.get("/overview")
def home_api(user: CurrentUser, db: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The home overview: running and queued jobs (with progress, ETA, queue position),
    recent failures with their reason, and every GPU with the job holding it. Admins see
    every job; members see their projects' jobs."""
    return service.home(db, user, settings=settings).as_json()


@router.get("/projects/{project_id}")
def project_page(
    request: Request, project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """One project: its overview (labs, datasets, recent jobs, members) and its settings."""
    context = project_context(db, user, project_id)
    overview = service.project(db, user, project_id, settings=settings)
    return render(request, "project.html", {**context, "overview": overview, "tab": "Overview"})


@router.get("/projects/{project_id}/datasets")
def project_datasets_page(
    request: Request, project_id: int, user: CurrentUser, db: SessionDep
) -> Response:
    """The project's Datasets tab: its own datasets with their state."""
    context = project_context(db, user, project_id)
    rows = [(d, dataset_status(db, d)) for d in service.project_datasets(db, user, project_id)]
    return render(request, "project_datasets.html", {**context, "rows": rows, "tab": "Datasets"})


@api.get("/projects/{project_id}/overview")
def project_api(
    project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """A project's overview: labs, datasets, the ten newest jobs and members (READ)."""
    return service.project(db, user, project_id, settings=settings).as_json()
