"""The datasets pages: the list, one dataset (drop zone, file browser, tasks, insight), preview.

Uploads from the drop zone go to the tus API (static/js/datasets.js); thumbnails and
downloads use the API's GET routes, which accept the session cookie.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import archives, browse, insight, service, tasks
from labyard.datasets.models import Dataset, DatasetTask, DatasetUpload
from labyard.datasets.schemas import task_progress
from labyard.db.oncommit import on_commit
from labyard.errors import InvalidInput
from labyard.projects.models import Role
from labyard.projects.service import list_projects
from labyard.web import viewer
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
NAV_LINKS = [("Datasets", "/datasets")]
PromptHeader = Annotated[str | None, Header(alias="HX-Prompt")]
# Fired (HX-Trigger) when no extraction runs any more: the file browser and insight reload.
CHANGED_EVENT = "dataset-changed"


def dataset_status(db: Session, dataset: Dataset) -> str:
    """A word for the list: extracting, uploading, read-only or ready."""
    busy = select(DatasetTask.id).where(
        DatasetTask.dataset_id == dataset.id,
        DatasetTask.status.in_(("queued", "running", "moving")),
    )
    if db.scalar(busy) is not None:
        return "extracting"
    if db.scalar(select(DatasetUpload.id).where(DatasetUpload.dataset_id == dataset.id)):
        return "uploading"
    return "read-only" if dataset.read_only else "ready"


def _list_context(db: Session, user: User) -> dict[str, Any]:
    datasets = service.list_datasets(db, user)
    projects = {p.id: p for p, _ in list_projects(db, user)}
    return {
        "rows": [(d, projects.get(d.project_id or -1), dataset_status(db, d)) for d in datasets],
        "writable_projects": [p for p, role in list_projects(db, user) if role >= Role.WRITE],
        "default_project_id": user.default_project_id,
    }


@router.get("/datasets")
def datasets_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """The project's datasets and the public ones, with a "New Dataset" form."""
    return render(request, "datasets.html", _list_context(db, user))


@router.post("/datasets")
def create_dataset(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form()],
    project_id: Annotated[int, Form()],
    description: Annotated[str, Form()] = "",
) -> Response:
    """Create a dataset and open it."""
    dataset = service.create_dataset(
        db, settings, user=user, name=name, project_id=project_id, description=description
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/datasets/{dataset.id}"})


def _detail_context(
    db: Session, settings: Settings, user: User, dataset_id: int, path: str
) -> dict[str, Any]:
    folder = browse.list_folder(db, settings, user=user, dataset_id=dataset_id, path=path)
    task_rows = tasks.list_tasks(db, user=user, dataset_id=dataset_id)
    return {
        "dataset": folder.dataset,
        "folder": folder,
        "writable": service.can_write(db, user, folder.dataset),
        "is_archive": archives.is_archive,
        "tasks": task_rows,
        "active": any(not t.finished for t in task_rows),
        "progress": task_progress,
        "quote": quote,
    }


@router.get("/datasets/{dataset_id}")
def dataset_page(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str = "",
) -> Response:
    """One dataset: drop zone, file browser, extraction tasks, insight."""
    context = _detail_context(db, settings, user, dataset_id, path)
    context["insight"] = insight.insight_for(db, settings, user=user, dataset_id=dataset_id)
    return render(request, "datasets_detail.html", context)


@router.get("/datasets/{dataset_id}/browser")
def browser_fragment(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str = "",
) -> Response:
    """The file browser alone (refreshed after uploads)."""
    context = _detail_context(db, settings, user, dataset_id, path)
    return render(request, "datasets_detail.html", context, block="browser")


@router.get("/datasets/{dataset_id}/tasks")
def tasks_fragment(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str = "",
) -> Response:
    """The extraction tasks alone (polled while one runs). Once none runs, the answer fires
    `dataset-changed`, so the file browser and the insight show what was extracted."""
    context = _detail_context(db, settings, user, dataset_id, path)
    headers = {} if context["active"] else {"HX-Trigger": CHANGED_EVENT}
    return render(request, "datasets_detail.html", context, block="tasks", headers=headers)


@router.get("/datasets/{dataset_id}/insight")
def insight_fragment(
    request: Request, dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The insight panel alone (reloaded when uploads or extractions change the dataset)."""
    context = {
        "dataset": service.get_dataset_for_user(db, user, dataset_id),
        "insight": insight.insight_for(db, settings, user=user, dataset_id=dataset_id),
    }
    return render(request, "datasets_detail.html", context, block="insight")


def _browser(
    request: Request, db: Session, settings: Settings, user: User, dataset_id: int, path: str
) -> Response:
    context = _detail_context(db, settings, user, dataset_id, path)
    return render(request, "datasets_detail.html", context, block="browser")


@router.post("/datasets/{dataset_id}/folders")
def new_folder(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form()],
    path: Annotated[str, Form()] = "",
) -> Response:
    """Create a folder in the current folder."""
    service.make_folder(db, settings, user=user, dataset_id=dataset_id, path=path, name=name)
    return _browser(request, db, settings, user, dataset_id, path)


@router.post("/datasets/{dataset_id}/rename")
def rename_entry(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str,
    prompt: PromptHeader = None,
    folder: str = "",
) -> Response:
    """Rename a file or folder (the new name comes from htmx's prompt)."""
    if not prompt:
        raise InvalidInput("Give the new name.", field="name")
    service.move_entry(db, settings, user=user, dataset_id=dataset_id, path=path, new_name=prompt)
    return _browser(request, db, settings, user, dataset_id, folder)


@router.post("/datasets/{dataset_id}/move")
def move_entry(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str,
    prompt: PromptHeader = None,
    folder: str = "",
) -> Response:
    """Move a file or folder into another folder (its path comes from htmx's prompt)."""
    service.move_entry(
        db, settings, user=user, dataset_id=dataset_id, path=path, to_folder=prompt or ""
    )
    return _browser(request, db, settings, user, dataset_id, folder)


@router.post("/datasets/{dataset_id}/delete-entry")
def delete_entry(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str,
    folder: str = "",
) -> Response:
    """Delete a file or folder after the page's confirmation."""
    service.delete_entry(db, settings, user=user, dataset_id=dataset_id, path=path)
    return _browser(request, db, settings, user, dataset_id, folder)


@router.post("/datasets/{dataset_id}/extract")
def extract(
    request: Request,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: str,
    folder: str = "",
) -> Response:
    """Start extracting an archive; answers the tasks block, which polls while it runs."""
    task = tasks.start_extraction(db, settings, user=user, dataset_id=dataset_id, path=path)
    on_commit(db, partial(tasks.runner_for(request.app).submit, task.id))
    context = _detail_context(db, settings, user, dataset_id, folder)
    return render(request, "datasets_detail.html", context, block="tasks")


@router.post("/datasets/{dataset_id}/tasks/{task_id}/cancel")
def cancel_task(
    request: Request,
    dataset_id: int,
    task_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Cancel an extraction."""
    tasks.cancel_task(db, tasks.runner_for(request.app), user=user, task_id=task_id)
    context = _detail_context(db, settings, user, dataset_id, "")
    return render(request, "datasets_detail.html", context, block="tasks")


@router.post("/datasets/{dataset_id}/delete")
def delete_dataset(
    dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Delete the dataset after the page's confirmation."""
    service.delete_dataset(db, settings, user=user, dataset_id=dataset_id)
    return Response(status_code=204, headers={"HX-Redirect": "/datasets"})


@router.get("/datasets/{dataset_id}/preview")
def preview_page(
    request: Request,
    dataset_id: int,
    path: str,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """One file in the viewer (images scaled up pixelated, text, tables), a download link."""
    dataset, target = browse.open_entry(db, settings, user=user, dataset_id=dataset_id, path=path)
    if not target.is_file():
        raise InvalidInput(f"{path!r} is a folder.", field="path")
    folder = browse.list_folder(
        db, settings, user=user, dataset_id=dataset_id, path=path.strip("/").rpartition("/")[0]
    )
    entry = next((e for e in folder.entries if e.name == target.name), None)
    api, quoted = f"/api/v1/datasets/{dataset_id}", quote(path, safe="")
    view = viewer.view_file(
        target,
        name=target.name,
        raw_url=f"{api}/thumbnail?path={quoted}&size=preview",
        download_url=f"{api}/download?path={quoted}",
    )
    return render(
        request,
        "datasets_preview.html",
        {"dataset": dataset, "folder": folder, "entry": entry, "path": path, "view": view},
    )
