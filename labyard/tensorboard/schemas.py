"""JSON shapes of the tensorboard API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from labyard.tensorboard.models import TensorBoardInstance


class LogDirChoice(BaseModel):
    """A folder inside a lab's or a job's files, relative to its root."""

    source: Literal["lab", "job"]
    source_id: int
    path: str = Field(default="", max_length=4096)


class TensorBoardOpen(BaseModel):
    """What to show: some jobs, a whole sweep, or one chosen log dir (exactly one)."""

    job_ids: list[int] | None = Field(default=None, max_length=1000)
    sweep_id: int | None = None
    logdir: LogDirChoice | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TensorBoardOpen:
        given = [x for x in (self.job_ids, self.sweep_id, self.logdir) if x is not None]
        if len(given) != 1:
            # (a ValueError's context would not serialize into the 422 answer)
            raise PydanticCustomError("one_source", "give exactly one of job_ids, sweep_id, logdir")
        return self


class TensorBoardOut(BaseModel):
    """A TensorBoard instance; open `url` in a browser (same login). `runs` names what it
    shows (the folders stay on the server: no server path leaves it)."""

    id: int
    url: str
    status: str
    project_id: int
    runs: list[str]
    started_by: str | None
    created_at: datetime
    last_access_at: datetime

    @classmethod
    def of(cls, instance: TensorBoardInstance) -> TensorBoardOut:
        """The API shape of an instance."""
        return cls(
            id=instance.id,
            url=instance.url,
            status=instance.status,
            project_id=instance.project_id,
            runs=instance.run_names,
            started_by=instance.started_by.username if instance.started_by else None,
            created_at=instance.created_at,
            last_access_at=instance.last_access_at,
        )
