"""The datasets JSON API: datasets, the file browser, extraction tasks, insight.

Uploads (plain multipart and the tus resumable protocol) live in tus.py and are included here.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from labyard.datasets import browse, files, insight, service, tasks, tus
from labyard.datasets.schemas import (
    DatasetCreate,
    DatasetOut,
    EntryOut,
    FolderCreate,
    MoveBody,
    PathBody,
    TaskOut,
    dataset_out,
    entry_out,
    task_out,
)
from labyard.db.oncommit import on_commit
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["datasets"])
router.include_router(tus.router)
PathQuery = Annotated[str, Query(max_length=4096)]


@router.post("/datasets", response_model=DatasetOut, status_code=201)
def create_dataset(
    body: DatasetCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> DatasetOut:
    """Create an empty dataset in a project (WRITE), or a public one (admins)."""
    dataset = service.create_dataset(
        db,
        settings,
        user=user,
        name=body.name,
        project_id=body.project_id,
        description=body.description,
        public=body.public,
    )
    return dataset_out(dataset)


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(
    user: CurrentUser, db: SessionDep, project_id: int | None = None
) -> list[DatasetOut]:
    """The datasets of the user's projects (or one project) and the public ones."""
    return [dataset_out(d) for d in service.list_datasets(db, user, project_id=project_id)]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: int, user: CurrentUser, db: SessionDep) -> DatasetOut:
    """One dataset (READ)."""
    return dataset_out(service.get_dataset_for_user(db, user, dataset_id))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> None:
    """Delete a dataset and its files (WRITE), unless a job or an extraction uses it."""
    service.delete_dataset(db, settings, user=user, dataset_id=dataset_id)


@router.post("/datasets/{dataset_id}/publish", response_model=DatasetOut)
def publish_dataset(
    dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> DatasetOut:
    """Make a dataset public and read-only (admins)."""
    return dataset_out(service.publish_dataset(db, settings, user=user, dataset_id=dataset_id))


# ---------------------------------------------------------------- files


@router.get("/datasets/{dataset_id}/files", response_model=list[EntryOut])
def list_files(
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathQuery = "",
) -> list[EntryOut]:
    """The entries of a folder (READ)."""
    folder = browse.list_folder(db, settings, user=user, dataset_id=dataset_id, path=path)
    return [entry_out(e) for e in folder.entries]


def download_response(settings: Any, db: Any, user: Any, dataset_id: int, path: str) -> Response:
    """A file as an attachment, or a folder as a zip streamed while it is built."""
    dataset, target = browse.open_entry(db, settings, user=user, dataset_id=dataset_id, path=path)
    if target.is_file():
        return FileResponse(target, filename=target.name, content_disposition_type="attachment")
    name = (target.name if path.strip("/") else dataset.name) + ".zip"
    return StreamingResponse(
        files.stream_zip(target),
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=utf-8''{quote(name, safe='')}"},
    )


@router.get("/datasets/{dataset_id}/download")
def download(
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathQuery = "",
) -> Response:
    """Download a file, or a folder (or the whole dataset) as a zip (READ)."""
    return download_response(settings, db, user, dataset_id, path)


@router.get("/datasets/{dataset_id}/thumbnail")
def thumbnail(
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathQuery,
    size: str = "thumb",
) -> Response:
    """A PNG thumbnail (size=thumb) or preview (size=preview) of an image (READ)."""
    image = browse.thumbnail(db, settings, user=user, dataset_id=dataset_id, path=path, size=size)
    return FileResponse(image, media_type="image/png", headers={"Cache-Control": "private"})


@router.post("/datasets/{dataset_id}/folders", response_model=EntryOut, status_code=201)
def make_folder(
    dataset_id: int,
    body: FolderCreate,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> EntryOut:
    """Create a folder (WRITE)."""
    path = service.make_folder(
        db, settings, user=user, dataset_id=dataset_id, path=body.path, name=body.name
    )
    folder = browse.list_folder(
        db, settings, user=user, dataset_id=dataset_id, path=path.rpartition("/")[0]
    )
    return entry_out(next(e for e in folder.entries if e.path == path))


@router.post("/datasets/{dataset_id}/move", response_model=dict[str, str])
def move_entry(
    dataset_id: int, body: MoveBody, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    """Rename and/or move a file or folder (WRITE); answers the new path."""
    path = service.move_entry(
        db,
        settings,
        user=user,
        dataset_id=dataset_id,
        path=body.path,
        to_folder=body.to,
        new_name=body.name,
    )
    return {"path": path}


@router.delete("/datasets/{dataset_id}/files", status_code=204)
def delete_entry(
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathQuery,
) -> None:
    """Delete a file or folder (WRITE)."""
    service.delete_entry(db, settings, user=user, dataset_id=dataset_id, path=path)


# ---------------------------------------------------------------- extraction and insight


@router.post("/datasets/{dataset_id}/extract", response_model=TaskOut, status_code=202)
def extract(
    dataset_id: int,
    body: PathBody,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> TaskOut:
    """Extract an archive into its folder in the background; poll the task it answers."""
    task = tasks.start_extraction(db, settings, user=user, dataset_id=dataset_id, path=body.path)
    on_commit(db, partial(tasks.runner_for(request.app).submit, task.id))
    return task_out(task)


@router.get("/datasets/{dataset_id}/tasks", response_model=list[TaskOut])
def list_tasks(dataset_id: int, user: CurrentUser, db: SessionDep) -> list[TaskOut]:
    """The dataset's recent tasks (READ)."""
    return [task_out(t) for t in tasks.list_tasks(db, user=user, dataset_id=dataset_id)]


@router.get("/dataset-tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: int, user: CurrentUser, db: SessionDep) -> TaskOut:
    """A task's status and progress (READ on its dataset)."""
    return task_out(tasks.get_task(db, user=user, task_id=task_id))


@router.post("/dataset-tasks/{task_id}/cancel", response_model=TaskOut)
def cancel_task(task_id: int, request: Request, user: CurrentUser, db: SessionDep) -> TaskOut:
    """Cancel a queued or running extraction (WRITE)."""
    runner = tasks.runner_for(request.app)
    return task_out(tasks.cancel_task(db, runner, user=user, task_id=task_id))


@router.get("/datasets/{dataset_id}/insight", response_model=insight.InsightOut)
def dataset_insight(
    dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> insight.InsightOut:
    """Classes and image counts per split, image sizes and modes (READ)."""
    return insight.insight_for(db, settings, user=user, dataset_id=dataset_id)
