"""API shapes of the labs domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from labyard.jobs.priority import PriorityName


class TemplateOut(BaseModel):
    """A lab template of the catalog."""

    name: str
    title: str
    description: str
    default_datasets: list[str]
    default_flavor: str


class LabCreate(BaseModel):
    """Create a lab: blank without `template`."""

    name: str = Field(max_length=200)
    project_id: int
    template: str | None = None
    flavor: str | None = None
    description: str = Field(default="", max_length=2000)


class LabUpdate(BaseModel):
    """Change a lab's default flavor or description."""

    flavor: str | None = None
    description: str | None = Field(default=None, max_length=2000)


class MountOut(BaseModel):
    """An attached dataset and where jobs see it."""

    dataset_id: int
    name: str
    public: bool
    mount_path: str


class LabOut(BaseModel):
    """A lab."""

    id: int
    project_id: int
    name: str
    template: str | None
    flavor: str
    description: str
    created_at: datetime
    datasets: list[MountOut]
    job_counts: dict[str, int]


class LabDatasetsChanged(LabOut):
    """A lab after attaching or detaching a dataset; `note` says when the change reaches a
    JupyterLab session that is queued or running (at its next start), else it is empty."""

    note: str = ""


class FileEntryOut(BaseModel):
    """A file or folder of a lab."""

    name: str
    path: str
    type: str
    size: int
    modified: datetime


class FolderOut(BaseModel):
    """A folder listing."""

    path: str
    entries: list[FileEntryOut]


class FileContent(BaseModel):
    """A text file's content."""

    path: str = Field(max_length=4096)
    content: str


class PathIn(BaseModel):
    """A path inside the lab."""

    path: str = Field(max_length=4096)


class MoveIn(BaseModel):
    """Rename or move a file or folder."""

    path: str = Field(max_length=4096)
    new_path: str = Field(max_length=4096)


class ConfigIn(BaseModel):
    """The raw mlsteam.yml text."""

    content: str


class ParametersOut(BaseModel):
    """The parameter form as JSON."""

    lab_id: int
    command: str
    fields: list[dict[str, Any]]
    jobs: int


class SweepCreate(BaseModel):
    """Submit a grid: `{name: [values]}`; omitted params keep the file's values; at a
    priority (default: the project's; `high` above it needs OWN)."""

    params: dict[str, list[Any] | Any] = Field(default_factory=dict)
    flavor: str | None = None
    priority: PriorityName | None = None
