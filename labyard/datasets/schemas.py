"""JSON shapes of the datasets API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from labyard.datasets.files import Entry
from labyard.datasets.models import Dataset, DatasetTask


class DatasetCreate(BaseModel):
    """A new dataset: in a project, or public (admins only)."""

    name: str = Field(max_length=100)
    project_id: int | None = None
    description: str = Field(default="", max_length=2000)
    public: bool = False


class DatasetOut(BaseModel):
    """A dataset."""

    id: int
    name: str
    description: str
    project_id: int | None
    is_public: bool
    read_only: bool
    size_bytes: int
    file_count: int
    created_by: str | None
    created_at: datetime


def dataset_out(dataset: Dataset) -> DatasetOut:
    """The JSON form of a dataset."""
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        project_id=dataset.project_id,
        is_public=dataset.is_public,
        read_only=dataset.read_only,
        size_bytes=dataset.size_bytes,
        file_count=dataset.file_count,
        created_by=dataset.created_by.username if dataset.created_by else None,
        created_at=dataset.created_at,
    )


class EntryOut(BaseModel):
    """A file or folder in a dataset."""

    name: str
    path: str
    type: str
    size: int
    modified: datetime


def entry_out(entry: Entry) -> EntryOut:
    """The JSON form of a listing entry."""
    return EntryOut(
        name=entry.name,
        path=entry.path,
        type=entry.type,
        size=entry.size,
        modified=entry.modified,
    )


class PlacedOut(BaseModel):
    """A file stored by an upload, and the extraction task started for it."""

    path: str
    size: int
    task_id: int | None = None


class PathBody(BaseModel):
    """A path inside a dataset."""

    path: str = Field(max_length=4096)


class FolderCreate(BaseModel):
    """A new folder `name` inside folder `path`."""

    path: str = Field(default="", max_length=4096)
    name: str = Field(max_length=1000)


class MoveBody(BaseModel):
    """Rename (`name`) and/or move (`to`, a folder) the entry at `path`."""

    path: str = Field(max_length=4096)
    to: str | None = Field(default=None, max_length=4096)
    name: str | None = Field(default=None, max_length=1000)


class TaskOut(BaseModel):
    """A background task (an extraction) with its progress."""

    id: int
    dataset_id: int
    kind: str
    status: str
    source_path: str
    target_path: str
    total_bytes: int
    done_bytes: int
    total_entries: int
    done_entries: int
    progress: float
    message: str
    created_at: datetime
    finished_at: datetime | None


def task_progress(task: DatasetTask) -> float:
    """0..1, by bytes when known, else by entries."""
    if task.status == "done":
        return 1.0
    if task.total_bytes:
        return min(1.0, task.done_bytes / task.total_bytes)
    if task.total_entries:
        return min(1.0, task.done_entries / task.total_entries)
    return 0.0


def task_out(task: DatasetTask) -> TaskOut:
    """The JSON form of a task."""
    return TaskOut(
        id=task.id,
        dataset_id=task.dataset_id,
        kind=task.kind,
        status=task.status,
        source_path=task.source_path,
        target_path=task.target_path,
        total_bytes=task.total_bytes,
        done_bytes=task.done_bytes,
        total_entries=task.total_entries,
        done_entries=task.done_entries,
        progress=task_progress(task),
        message=task.message,
        created_at=task.created_at,
        finished_at=task.finished_at,
    )
