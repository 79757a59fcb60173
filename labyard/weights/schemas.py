"""JSON shapes of the weights API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from labyard.weights.models import Weights

PATH_HELP = "The model inside the job's output: a file, or a SavedModel folder"


class WeightsCreate(BaseModel):
    """Register a finished job's model as weights of the job's project."""

    job_id: int
    name: str = Field(max_length=100, description="Unique in the project; letters, digits, -_.")
    path: str = Field(default="model.onnx", max_length=4096, description=PATH_HELP)
    description: str = Field(default="", max_length=2000)


class WeightsPatch(BaseModel):
    """What may change: the name (unless in use), the description, public (one way)."""

    name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    public: bool | None = None


class InferenceCreate(BaseModel):
    """Run the weights over a dataset (or a file or folder of it) as a job."""

    dataset_id: int
    path: str = Field(default="", max_length=4096, description="A file or folder of the dataset")
    flavor: str = Field(default="cpu", max_length=32)
    project_id: int | None = Field(
        default=None,
        description="Where the job runs (default the weights' project if you "
        "may submit there, else your own)",
    )


class WeightsOut(BaseModel):
    """Registered weights with their metadata and lineage."""

    id: int
    name: str
    description: str
    project_id: int
    is_public: bool
    read_only: bool
    framework: str
    format: str
    task: str
    classes: list[str]
    input_shape: list[Any]
    datasets: list[dict[str, Any]]
    metrics: dict[str, float]
    file_name: str
    files: list[str]
    size_bytes: int
    source_job_id: int | None
    source_job_name: str
    parent_id: int | None
    created_by: str | None
    created_at: datetime


def weights_out(weights: Weights) -> WeightsOut:
    """The JSON form of weights."""
    return WeightsOut(
        id=weights.id,
        name=weights.name,
        description=weights.description,
        project_id=weights.project_id,
        is_public=weights.is_public,
        read_only=weights.read_only,
        framework=weights.framework,
        format=weights.format,
        task=weights.task,
        classes=list(weights.classes or []),
        input_shape=list(weights.input_shape or []),
        datasets=list(weights.datasets or []),
        metrics=dict(weights.metrics or {}),
        file_name=weights.file_name,
        files=list(weights.files or []),
        size_bytes=weights.size_bytes,
        source_job_id=weights.source_job_id,
        source_job_name=weights.source_job_name,
        parent_id=weights.parent_id,
        created_by=weights.created_by.username if weights.created_by else None,
        created_at=weights.created_at,
    )
